/**
 * The one error type crypto/ throws. `code` is stable and safe to show or log: it never
 * carries key bytes or plaintext, and `message` names only the field or step that failed.
 */
export type CryptoErrorCode =
  | 'not_ready' // ready() was not awaited before a synchronous call
  | 'invalid_argument' // a caller passed a value of the wrong shape (length, range)
  | 'truncated' // a decoder ran out of bytes
  | 'trailing_bytes' // a decoder found bytes after the last field
  | 'unknown_version' // a version byte this implementation does not know
  | 'malformed' // a field has an impossible value (unknown kind, bad length prefix, bad UTF-8)
  | 'invalid_public_key' // low-order / all-zero X25519 point, or a key that fails its check
  | 'bad_signature' // an Ed25519 signature does not verify
  | 'device_list_rollback' // a device list with a lower (or equal but different) version
  | 'device_list_invalid' // a device list that breaks a rule (duplicate id, resurrected device, ...)
  | 'identity_mismatch' // a key is not the one pinned / listed for that user or device
  | 'unknown_device' // a device id is not in the (active) device list
  | 'bundle_invalid' // a prekey bundle is inconsistent (wrong device, wrong prekey kind)
  | 'unknown_prekey' // a prekey message names a prekey we no longer hold
  | 'no_session' // no session with that device
  | 'decrypt_failed' // AEAD authentication failed: tampered or not for us
  | 'duplicate_message' // a message key already used (replay) or no longer held
  | 'too_many_skipped' // a message would skip more keys than MAX_SKIP
  | 'hash_mismatch' // a fan-out payload or attachment whose hash is not the promised one
  | 'attachment_truncated'; // an attachment stream without its final chunk

export class CryptoError extends Error {
  override readonly name = 'CryptoError';
  readonly code: CryptoErrorCode;
  constructor(code: CryptoErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}

export function isCryptoError(e: unknown, code?: CryptoErrorCode): e is CryptoError {
  return e instanceof CryptoError && (code === undefined || e.code === code);
}

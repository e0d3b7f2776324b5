/**
 * The account-key backup (PROTOCOL.md §4.2): the account's Ed25519 secret key encrypted under a
 * key derived from OPAQUE's export key, which only a client knowing the password obtains. The
 * relay stores the bytes and can do nothing with them.
 *
 *   k      = KDF("Petrel/v1/account-backup", exportKey, 32)
 *   backup = 0x01 || nonce (24) || XChaCha20-Poly1305(k, nonce, accountSecretKey, ad = 0x01)
 *
 * OPAQUE's export key is 64 bytes; sealing draws only the nonce, rng(24).
 */
import { checkBytes, Reader, Writer } from './bytes.ts';
import { LABEL } from './consts.ts';
import { CryptoError } from './errors.ts';
import { kdf } from './kdf.ts';
import { AEAD_NONCE_BYTES, aeadDecrypt, aeadEncrypt, type Rng } from './sodium.ts';

export const BACKUP_VERSION = 0x01;
const AD = new Uint8Array([BACKUP_VERSION]);

function backupKey(exportKey: Uint8Array): Uint8Array {
  if (exportKey.length < 32) throw new CryptoError('invalid_argument', 'export key shorter than 32 bytes');
  return kdf(LABEL.backup, exportKey, 32);
}

export function sealAccountBackup(exportKey: Uint8Array, accountSecretKey: Uint8Array, rng: Rng): Uint8Array {
  checkBytes(accountSecretKey, 64, 'account secretKey');
  const nonce = rng(AEAD_NONCE_BYTES);
  const ct = aeadEncrypt(backupKey(exportKey), nonce, accountSecretKey, AD);
  return new Writer(1 + nonce.length + ct.length).u8(BACKUP_VERSION).bytes(nonce).bytes(ct).finish();
}

/** The account secret key; throws decrypt_failed for a wrong key or tampered bytes. */
export function openAccountBackup(exportKey: Uint8Array, backup: Uint8Array): Uint8Array {
  const r = new Reader(backup, 'account backup');
  const version = r.u8('version');
  if (version !== BACKUP_VERSION) throw new CryptoError('unknown_version', `account backup version ${version}`);
  const nonce = r.bytes(AEAD_NONCE_BYTES, 'nonce');
  const secret = aeadDecrypt(backupKey(exportKey), nonce, r.rest(), AD);
  if (secret.length !== 64) throw new CryptoError('malformed', 'account backup does not hold a 64-byte key');
  return secret;
}

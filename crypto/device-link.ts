/**
 * Linking a new device (PROTOCOL.md §4.1). The new device has no account key yet, so it
 * cannot prove anything to the relay except possession of its own device key:
 *
 * 1. The new device generates its keys and shows a **link code**: its two public keys. The
 *    user carries the code (QR or text) to an existing device: that physical transfer is what
 *    authenticates the keys, so the code needs no signature.
 *
 *      link code = 0x02 || signingKey (32) || dhKey (32) || check (4)   (69 bytes, base64url: 92 chars)
 *      check     = deviceId[0..4], deviceId = KDF("Petrel/v1/device-id", signingKey || dhKey, 16)
 *
 *    People type these codes: version 1 (the keys alone) turned any typo into another pair of
 *    valid-looking keys, and the approving device listed a device that did not exist. The check
 *    catches a mistyped code (a wrong code passes with probability 2^-32); it is not a MAC and
 *    need not be one, since the transfer, not the code, is what is trusted.
 *
 * 2. The existing device adds the device to the signed list and publishes it.
 * 3. The new device asks the relay for its token with a **device claim**, signed by its
 *    device key; the relay checks it against the key in the account's list:
 *
 *      claim = 0x01 || deviceId (16) || timestamp (u64 ms) || sig (64)
 *      sig   = Ed25519(signingSecret, L("Petrel/v1/sig/device-claim") || 0x01 || deviceId || timestamp)
 *
 *    The timestamp bounds replay (the relay accepts ±300,000 ms and only for an unclaimed device).
 * 4. The account key then travels to the new device inside an ordinary end-to-end message.
 */
import { checkBytes, equalBytes, Reader, Writer } from './bytes.ts';
import { SIG_CONTEXT } from './consts.ts';
import { CryptoError } from './errors.ts';
import { deriveDeviceId, type DeviceKeyPair, type DevicePublic } from './identity.ts';
import { kdfLabel } from './kdf.ts';
import { ed25519Sign, ed25519Verify } from './sodium.ts';

/** Version 1 (no check) is refused: see above. */
export const LINK_CODE_VERSION = 0x02;
export const DEVICE_CLAIM_VERSION = 0x01;
export const LINK_CODE_BYTES = 69;
/** Bytes of the device id a link code carries as its check; 1 + 64 + 4 = 69 = 23 × 3, so base64url has no spare bits. */
export const LINK_CODE_CHECK_BYTES = 4;
export const DEVICE_CLAIM_BYTES = 89;

export function encodeLinkCode(device: DevicePublic): Uint8Array {
  const check = deriveDeviceId(device.signingKey, device.dhKey).subarray(0, LINK_CODE_CHECK_BYTES);
  return new Writer(LINK_CODE_BYTES).u8(LINK_CODE_VERSION).bytes(device.signingKey).bytes(device.dhKey).bytes(check).finish();
}

/**
 * The new device's public keys; its id is derived, so a code cannot name a foreign id. A check
 * that is not the start of that id (a typo) is refused with `malformed`.
 */
export function decodeLinkCode(bytes: Uint8Array): DevicePublic {
  const r = new Reader(bytes, 'link code');
  const version = r.u8('version');
  if (version !== LINK_CODE_VERSION) throw new CryptoError('unknown_version', `link code version ${version}`);
  const signingKey = r.bytes(32, 'signingKey');
  const dhKey = r.bytes(32, 'dhKey');
  const check = r.bytes(LINK_CODE_CHECK_BYTES, 'check');
  r.end();
  const deviceId = deriveDeviceId(signingKey, dhKey);
  if (!equalBytes(check, deviceId.subarray(0, LINK_CODE_CHECK_BYTES))) throw new CryptoError('malformed', 'link code check does not match its keys');
  return { deviceId, signingKey, dhKey };
}

export interface DeviceClaim {
  readonly deviceId: Uint8Array;
  readonly timestamp: number;
  readonly signature: Uint8Array;
}

function claimBody(deviceId: Uint8Array, timestamp: number): Uint8Array {
  checkBytes(deviceId, 16, 'deviceId');
  const ctx = kdfLabel(SIG_CONTEXT.deviceClaim);
  return new Writer(ctx.length + 25).bytes(ctx).u8(DEVICE_CLAIM_VERSION).bytes(deviceId).u64(timestamp).finish();
}

export function signDeviceClaim(device: DeviceKeyPair, timestamp: number): Uint8Array {
  const signature = ed25519Sign(claimBody(device.deviceId, timestamp), device.signingSecret);
  return new Writer(DEVICE_CLAIM_BYTES).u8(DEVICE_CLAIM_VERSION).bytes(device.deviceId).u64(timestamp).bytes(signature).finish();
}

export function decodeDeviceClaim(bytes: Uint8Array): DeviceClaim {
  const r = new Reader(bytes, 'device claim');
  const version = r.u8('version');
  if (version !== DEVICE_CLAIM_VERSION) throw new CryptoError('unknown_version', `device claim version ${version}`);
  const deviceId = r.bytes(16, 'deviceId');
  const timestamp = r.u64('timestamp');
  const signature = r.bytes(64, 'signature');
  r.end();
  return { deviceId, timestamp, signature };
}

/**
 * Checks a decoded claim against the device's listed key and the verifier's clock, in this order:
 * invalid_argument when |now - timestamp| > maxSkewMs (stale or from the future; the window is
 * inclusive), then bad_signature when the signature does not verify under the device's signing
 * key or the claim names another device id; a claim by another device is therefore bad_signature.
 */
export function verifyDeviceClaim(claim: DeviceClaim, device: DevicePublic, now: number, maxSkewMs: number): void {
  if (Math.abs(now - claim.timestamp) > maxSkewMs) throw new CryptoError('invalid_argument', 'device claim timestamp outside the accepted window');
  const expected = deriveDeviceId(device.signingKey, device.dhKey);
  if (!ed25519Verify(claim.signature, claimBody(claim.deviceId, claim.timestamp), device.signingKey) || !equalBytes(claim.deviceId, expected)) {
    throw new CryptoError('bad_signature', 'device claim signature does not verify for that device');
  }
}


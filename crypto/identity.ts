/**
 * Identities (PROTOCOL.md §3). A user has one account key (Ed25519) that signs the list of
 * their devices; each device has its own Ed25519 signing key and X25519 key. A device id is
 * derived from the device's two public keys, so it is self-certifying: nobody can list a
 * device under an id that does not match its keys.
 *
 *   deviceId = KDF("Petrel/v1/device-id", signingKey || dhKey, 16)
 */
import { checkBytes, equalBytes } from './bytes.ts';
import { DEVICE_ID_BYTES, LABEL } from './consts.ts';
import { CryptoError } from './errors.ts';
import { kdf } from './kdf.ts';
import { ed25519FromSeed, type Rng, x25519Base } from './sodium.ts';

/** The user's account identity key pair. `secretKey` is libsodium's 64-byte form (seed || public). */
export interface AccountKeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

/** What anyone may know about a device: its id and public keys. */
export interface DevicePublic {
  readonly deviceId: Uint8Array;
  readonly signingKey: Uint8Array;
  readonly dhKey: Uint8Array;
}

/** Our own device: its public half plus the secrets, which never leave the device. */
export interface DeviceKeyPair extends DevicePublic {
  readonly signingSecret: Uint8Array;
  readonly dhSecret: Uint8Array;
}

export function generateAccountKey(rng: Rng): AccountKeyPair {
  return ed25519FromSeed(rng(32));
}

export function accountKeyFromSecret(secretKey: Uint8Array): AccountKeyPair {
  checkBytes(secretKey, 64, 'account secretKey');
  return ed25519FromSeed(secretKey.subarray(0, 32));
}

export function deriveDeviceId(signingKey: Uint8Array, dhKey: Uint8Array): Uint8Array {
  checkBytes(signingKey, 32, 'signingKey');
  checkBytes(dhKey, 32, 'dhKey');
  const input = new Uint8Array(64);
  input.set(signingKey);
  input.set(dhKey, 32);
  return kdf(LABEL.deviceId, input, DEVICE_ID_BYTES);
}

/** Draws the signing seed first, then the X25519 secret (the order is part of the spec). */
export function generateDevice(rng: Rng): DeviceKeyPair {
  const signingSeed = rng(32);
  return deviceFromSecrets(signingSeed, rng(32));
}

/** Rebuilds a device's key pair (public keys and id included) from its two stored secrets. */
export function deviceFromSecrets(signingSeed: Uint8Array, dhSecret: Uint8Array): DeviceKeyPair {
  checkBytes(signingSeed, 32, 'signing seed');
  checkBytes(dhSecret, 32, 'dh secret');
  const signing = ed25519FromSeed(signingSeed);
  const dhKey = x25519Base(dhSecret);
  return {
    deviceId: deriveDeviceId(signing.publicKey, dhKey),
    signingKey: signing.publicKey,
    dhKey,
    signingSecret: signing.secretKey,
    dhSecret,
  };
}

/** Builds a DevicePublic after checking lengths and that the id matches the keys. */
export function devicePublic(deviceId: Uint8Array, signingKey: Uint8Array, dhKey: Uint8Array): DevicePublic {
  checkBytes(deviceId, DEVICE_ID_BYTES, 'deviceId');
  if (!equalBytes(deriveDeviceId(signingKey, dhKey), deviceId)) {
    throw new CryptoError('identity_mismatch', 'device id does not match its keys');
  }
  return { deviceId, signingKey, dhKey };
}

export function publicPart(d: DevicePublic): DevicePublic {
  return { deviceId: d.deviceId, signingKey: d.signingKey, dhKey: d.dhKey };
}

export function sameDevice(a: DevicePublic, b: DevicePublic): boolean {
  return equalBytes(a.deviceId, b.deviceId) && equalBytes(a.signingKey, b.signingKey) && equalBytes(a.dhKey, b.dhKey);
}

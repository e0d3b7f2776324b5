/**
 * Fan-out (PROTOCOL.md §11): one message to N devices is one payload encrypted once under a
 * fresh content key, plus N small ratchet messages each carrying that key and the payload's
 * hash. The relay stores the payload once; each device gets its own 65-byte key message.
 * Sending to 100 devices costs one payload encryption and 100 small ratchet encryptions.
 *
 *   payload     = | 1 version=0x01 | XChaCha20-Poly1305(K, nonce = 0^24, ad = "Petrel/v1/payload", m) |
 *   key message = | 1 version=0x01 | 32 K | 32 BLAKE2b-256(payload) |
 *
 * K is fresh for every payload, so the fixed nonce never repeats under one key.
 */
import { equalBytes, Reader, utf8 } from './bytes.ts';
import { HASH_BYTES, KEY_BYTES, LABEL } from './consts.ts';
import { CryptoError } from './errors.ts';
import { type DecryptResult, decryptFromDevice, type DeviceSessions, encryptForDevice } from './device-sessions.ts';
import type { DeviceKeyPair, DevicePublic } from './identity.ts';
import type { PrekeyLookup } from './session-setup.ts';
import { aeadDecrypt, aeadEncrypt, blake2b, type Rng } from './sodium.ts';

export const PAYLOAD_VERSION = 0x01;
export const KEY_MESSAGE_VERSION = 0x01;
const ZERO_NONCE = new Uint8Array(24);
const PAYLOAD_AD = utf8(LABEL.payload);

export function sealPayload(plaintext: Uint8Array, rng: Rng): { payload: Uint8Array; keyMessage: Uint8Array } {
  const key = rng(KEY_BYTES);
  const ct = aeadEncrypt(key, ZERO_NONCE, plaintext, PAYLOAD_AD);
  const payload = new Uint8Array(1 + ct.length);
  payload[0] = PAYLOAD_VERSION;
  payload.set(ct, 1);
  const keyMessage = new Uint8Array(1 + KEY_BYTES + HASH_BYTES);
  keyMessage[0] = KEY_MESSAGE_VERSION;
  keyMessage.set(key, 1);
  keyMessage.set(blake2b(HASH_BYTES, payload), 1 + KEY_BYTES);
  return { payload, keyMessage };
}

export function decodeKeyMessage(bytes: Uint8Array): { key: Uint8Array; hash: Uint8Array } {
  const r = new Reader(bytes, 'key message');
  r.version([KEY_MESSAGE_VERSION]);
  const key = r.bytes(KEY_BYTES, 'key');
  const hash = r.bytes(HASH_BYTES, 'hash');
  r.end();
  return { key, hash };
}

/** Checks the payload against the hash the sender promised, then decrypts it. */
export function openPayload(payload: Uint8Array, keyMessage: Uint8Array): Uint8Array {
  const { key, hash } = decodeKeyMessage(keyMessage);
  if (!equalBytes(blake2b(HASH_BYTES, payload), hash)) throw new CryptoError('hash_mismatch', 'payload is not the one the sender sent');
  const r = new Reader(payload, 'payload');
  r.version([PAYLOAD_VERSION]);
  return aeadDecrypt(key, ZERO_NONCE, r.rest(), PAYLOAD_AD);
}

export interface FanoutTarget<A> {
  readonly address: A;
  readonly record: DeviceSessions;
}

export interface FanoutOutput<A> {
  readonly payload: Uint8Array;
  readonly messages: readonly { readonly address: A; readonly message: Uint8Array; readonly record: DeviceSessions }[];
}

/** Encrypts `plaintext` once and its key once per target device. Each target needs a session. */
export function fanoutEncrypt<A>(plaintext: Uint8Array, targets: readonly FanoutTarget<A>[], rng: Rng): FanoutOutput<A> {
  const { payload, keyMessage } = sealPayload(plaintext, rng);
  const messages = targets.map((t) => {
    const r = encryptForDevice(t.record, keyMessage);
    return { address: t.address, message: r.message, record: r.record };
  });
  return { payload, messages };
}

/**
 * The receiving side: decrypts this device's key message, checks the payload's hash, decrypts
 * the payload. The new session record is returned only if all three succeed.
 */
export function fanoutDecrypt(
  record: DeviceSessions,
  deviceMessage: Uint8Array,
  payload: Uint8Array,
  ours: DeviceKeyPair,
  theirs: DevicePublic,
  lookup: PrekeyLookup,
  rng: Rng,
): DecryptResult {
  const r = decryptFromDevice(record, deviceMessage, ours, theirs, lookup, rng);
  return { ...r, plaintext: openPayload(payload, r.plaintext) };
}

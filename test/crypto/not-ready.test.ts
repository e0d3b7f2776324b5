// Calls made before `await ready()` fail with `not_ready`, and never with a code that blames the
// peer: a client that saw `bad_signature` or `decrypt_failed` here would flag a bundle as forged
// or drop a genuine message. This file deliberately does not call ready() until its last test
// (vitest gives each test file its own module graph, so crypto/ starts out not ready).
// Every input is built by hand, since nothing that needs libsodium can run yet.
import { describe, expect, test } from 'vitest';
import {
  CryptoError,
  type CryptoErrorCode,
  createAttachmentDecryptor,
  decodeDeviceList,
  decryptFromDevice,
  type DeviceKeyPair,
  type DevicePublic,
  EMPTY_DEVICE_SESSIONS,
  encodeDeviceMessage,
  fingerprint,
  generateAccountKey,
  generateDevice,
  initiateSession,
  kdf,
  MessageKind,
  openPayload,
  type PrekeyBundle,
  type PrekeyHeader,
  PrekeyKind,
  type PrekeySecret,
  type PublicPrekey,
  ratchetDecrypt,
  ratchetEncrypt,
  ready,
  respondToPrekey,
  type Session,
  sealPayload,
  seededRng,
  verifyBundle,
  verifyPrekey,
} from '../../crypto/index.ts';

/** X-Wing sizes (PROTOCOL.md §2); crypto/index.ts does not export sodium.ts's constants. */
const XWING_PUBLIC_BYTES = 1216;
const XWING_CIPHERTEXT_BYTES = 1120;

const fill = (n: number, v: number) => new Uint8Array(n).fill(v);
const fixedRng = (length: number) => fill(length, 7);

// A device, a bundle and a session made of arbitrary bytes: enough to reach each primitive.
const device: DeviceKeyPair = { deviceId: fill(16, 1), signingKey: fill(32, 2), dhKey: fill(32, 3), signingSecret: fill(64, 4), dhSecret: fill(32, 5) };
const peer: DevicePublic = { deviceId: fill(16, 6), signingKey: fill(32, 7), dhKey: fill(32, 8) };
const prekey = (kind: PrekeyKind, id: number): PublicPrekey => ({ kind, id, publicKey: fill(kind >= 3 ? XWING_PUBLIC_BYTES : 32, 9), signature: fill(64, 10) });
const bundle: PrekeyBundle = { deviceId: peer.deviceId, signedPrekey: prekey(1, 1), pqPrekey: prekey(3, 2), oneTimePrekey: prekey(2, 3) };
const secret = (kind: PrekeyKind, id: number): PrekeySecret => ({ kind, id, publicKey: fill(kind >= 3 ? XWING_PUBLIC_BYTES : 32, 11), secretKey: fill(32, 12) });
const header: PrekeyHeader = {
  sender: peer,
  baseKey: fill(32, 13),
  signedPrekeyId: 1,
  pqKind: PrekeyKind.pqOneTime,
  pqPrekeyId: 2,
  oneTimePrekeyId: 3,
  pqCiphertext: fill(XWING_CIPHERTEXT_BYTES, 14),
};
const RATCHET_KEY = fill(32, 15);
/** A RatchetMessage: version 1, ratchet key, PN 0, N 0, a 20-byte "ciphertext". */
const ratchetMessage = new Uint8Array([1, ...RATCHET_KEY, 0, 0, 0, 0, 0, 0, 0, 0, ...fill(20, 16)]);
const session = (withSkippedKey: boolean): Session => ({
  ad: fill(160, 17),
  baseKey: fill(32, 18),
  initiatedByUs: true,
  confirmed: true,
  rootKey: fill(32, 19),
  ourRatchet: { secret: fill(32, 20), public: fill(32, 21) },
  sending: { chainKey: fill(32, 22), index: 0 },
  previousCounter: 0,
  receiving: [],
  skipped: withSkippedKey ? [{ ratchetKey: RATCHET_KEY, index: 0, messageKey: fill(32, 23) }] : [],
  pending: null,
});

function codeOf(fn: () => unknown): CryptoErrorCode | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (e) {
    expect(e, 'only CryptoError').toBeInstanceOf(CryptoError);
    return (e as CryptoError).code;
  }
}

// The first group: calls that reach a libsodium primitive which, once ready, could fail because of
// the input (signature, AEAD, X25519, X-Wing): before the fix these said bad_signature,
// decrypt_failed or invalid_public_key.
const peerBlamingCalls: [string, () => unknown][] = [
  ['verifyPrekey', () => verifyPrekey(bundle.signedPrekey, peer)],
  ['verifyBundle', () => verifyBundle(bundle, peer)],
  ['initiateSession', () => initiateSession(device, peer, bundle, fixedRng)],
  ['respondToPrekey', () => respondToPrekey(device, peer, header, (kind, id) => secret(kind, id))],
  ['ratchetDecrypt, new chain (X25519)', () => ratchetDecrypt(session(false), ratchetMessage, fixedRng)],
  ['ratchetDecrypt, skipped key (AEAD)', () => ratchetDecrypt(session(true), ratchetMessage, fixedRng)],
  [
    'decryptFromDevice',
    () => decryptFromDevice({ active: session(false), inactive: [] }, encodeDeviceMessage({ kind: MessageKind.ratchet, message: ratchetMessage }), device, peer, () => undefined, fixedRng),
  ],
  [
    'decryptFromDevice, prekey message',
    () =>
      decryptFromDevice(EMPTY_DEVICE_SESSIONS, encodeDeviceMessage({ kind: MessageKind.prekey, prekey: { ...header, message: ratchetMessage } }), device, peer, (kind, id) => secret(kind, id), fixedRng),
  ],
];

// The second group: everything else that needs libsodium.
const otherCalls: [string, () => unknown][] = [
  ['kdf', () => kdf('Petrel/v1/root', fill(32, 1), 32)],
  ['seededRng', () => seededRng(fill(32, 1))(8)],
  ['generateAccountKey', () => generateAccountKey(fixedRng)],
  ['generateDevice', () => generateDevice(fixedRng)],
  ['ratchetEncrypt', () => ratchetEncrypt(session(false), fill(3, 1))],
  ['sealPayload', () => sealPayload(fill(3, 1), fixedRng)],
  ['openPayload', () => openPayload(fill(20, 1), new Uint8Array([1, ...fill(64, 2)]))],
  ['fingerprint', () => fingerprint('alice', fill(32, 1))],
  ['createAttachmentDecryptor', () => createAttachmentDecryptor({ key: fill(32, 1), chunkSize: 4, size: 4, hash: fill(32, 2) })],
  // A structurally valid one-device list whose id is not derived from its keys: the id check needs BLAKE2b.
  ['decodeDeviceList', () => decodeDeviceList(new Uint8Array([1, 1, 97, ...fill(32, 1), 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, ...fill(80, 2), 0, ...fill(16, 0), ...fill(64, 3)]))],
];

describe('before ready()', () => {
  test.each(peerBlamingCalls)('%s: not_ready, not a verdict on the input', (_, fn) => {
    expect(codeOf(fn)).toBe('not_ready');
  });

  test.each(otherCalls)('%s: not_ready', (_, fn) => {
    expect(codeOf(fn)).toBe('not_ready');
  });
});

describe('after ready()', () => {
  test('the same inputs now get the verdict they deserve', async () => {
    await ready();
    expect(codeOf(() => verifyPrekey(bundle.signedPrekey, peer))).toBe('bad_signature');
    expect(codeOf(() => verifyBundle(bundle, peer))).toBe('bad_signature');
    expect(codeOf(() => initiateSession(device, peer, bundle, fixedRng))).toBe('bad_signature');
    expect(codeOf(() => ratchetDecrypt(session(false), ratchetMessage, fixedRng))).toBe('decrypt_failed');
    expect(codeOf(() => ratchetDecrypt(session(true), ratchetMessage, fixedRng))).toBe('decrypt_failed');
    expect(codeOf(() => respondToPrekey(device, peer, header, (kind, id) => secret(kind, id)))).toBe('ok');
    expect(codeOf(() => decodeDeviceList(new Uint8Array([1, 1, 97, ...fill(32, 1), 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, ...fill(80, 2), 0, ...fill(16, 0), ...fill(64, 3)])))).toBe(
      'device_list_invalid',
    );
  });
});

// Prekeys and bundles (PROTOCOL.md §5), and the stored key formats (§10.2): round trips, every bit
// of a prekey flipped, signatures from the wrong device or over another kind / id, bundles for
// another device or with the wrong kind in a slot.
import { beforeAll, describe, expect, test } from 'vitest';
import {
  decodeBundle,
  decodeDeviceKeyPair,
  decodePrekey,
  decodePrekeySecret,
  encodeBundle,
  encodeDeviceKeyPair,
  encodePrekey,
  encodePrekeySecret,
  generateDevice,
  generatePrekey,
  generatePrekeys,
  type PrekeyBundle,
  PrekeyKind,
  publicPart,
  ready,
  verifyBundle,
  verifyPrekey,
} from '../../crypto/index.ts';
import { expectCode, flipBit, hexOf, outcome, rngFor, sodium } from './helpers.ts';

beforeAll(async () => {
  await ready();
  await sodium.ready;
});

const KINDS = [PrekeyKind.signed, PrekeyKind.oneTime, PrekeyKind.pqOneTime, PrekeyKind.pqLastResort] as const;

function setUp(label: string) {
  const rng = rngFor(`prekeys/${label}`);
  const device = generateDevice(rng);
  const other = generateDevice(rng);
  const spk = generatePrekey(device, PrekeyKind.signed, 7, rng);
  const pq = generatePrekey(device, PrekeyKind.pqOneTime, 8, rng);
  const last = generatePrekey(device, PrekeyKind.pqLastResort, 9, rng);
  const otk = generatePrekey(device, PrekeyKind.oneTime, 10, rng);
  const bundle: PrekeyBundle = { deviceId: device.deviceId, signedPrekey: spk.public, pqPrekey: pq.public, oneTimePrekey: otk.public };
  return { rng, device, other, spk, pq, last, otk, bundle };
}

describe('round trips', () => {
  test('every kind of prekey: encode/decode, verify, and its secret re-derives the public key', () => {
    const { rng, device } = setUp('round');
    for (const kind of KINDS) {
      const p = generatePrekey(device, kind, 0xfffffffe + (kind & 1), rng);
      const bytes = encodePrekey(p.public);
      expect(bytes.length).toBe(1 + 1 + 4 + (kind >= 3 ? 1216 : 32) + 64);
      expect(decodePrekey(bytes)).toEqual(p.public);
      verifyPrekey(decodePrekey(bytes), publicPart(device));
      const sbytes = encodePrekeySecret(p.secret);
      expect(sbytes.length).toBe(38);
      const back = decodePrekeySecret(sbytes);
      expect(back).toEqual(p.secret);
      expect(hexOf(encodePrekeySecret(back))).toBe(hexOf(sbytes));
    }
  });

  test('a device key pair: encode/decode re-derives the public keys and the id', () => {
    const { device } = setUp('device');
    const bytes = encodeDeviceKeyPair(device);
    expect(bytes.length).toBe(65);
    const back = decodeDeviceKeyPair(bytes);
    expect(back).toEqual(device);
    expect(hexOf(encodeDeviceKeyPair(back))).toBe(hexOf(bytes));
  });

  test('bundles with and without a one-time prekey', () => {
    const { bundle, device } = setUp('bundle');
    for (const b of [bundle, { ...bundle, oneTimePrekey: null }]) {
      const bytes = encodeBundle(b);
      expect(decodeBundle(bytes)).toEqual(b);
      expect(hexOf(encodeBundle(decodeBundle(bytes)))).toBe(hexOf(bytes));
      verifyBundle(decodeBundle(bytes), publicPart(device));
    }
  });

  test('generatePrekeys makes consecutive ids, wrapping at 2^32; a bad id is invalid_argument', () => {
    const { rng, device } = setUp('ids');
    expect(generatePrekeys(device, PrekeyKind.oneTime, 0xfffffffe, 3, rng).map((p) => p.public.id)).toEqual([0xfffffffe, 0xffffffff, 0]);
    for (const id of [-1, 2 ** 32, 1.5, Number.NaN]) expectCode(() => generatePrekey(device, PrekeyKind.oneTime, id, rng), 'invalid_argument', String(id));
  });
});

describe('tampered prekeys', () => {
  for (const kind of [PrekeyKind.signed, PrekeyKind.pqOneTime] as const) {
    test(`every bit of an encoded prekey of kind ${kind}`, () => {
      const { rng, device } = setUp(`flip/${kind}`);
      const bytes = encodePrekey(generatePrekey(device, kind, 5, rng).public);
      const pub = publicPart(device);
      const keyEnd = 6 + (kind === PrekeyKind.signed ? 32 : 1216);
      for (let bit = 0; bit < bytes.length * 8; bit++) {
        const byte = bit >> 3;
        const bad = flipBit(bytes, bit);
        const code = outcome(() => verifyPrekey(decodePrekey(bad), pub));
        if (byte === 0) expect(code).toBe('unknown_version');
        else if (byte === 1) expect(['malformed', 'truncated', 'trailing_bytes', 'bad_signature'], `bit ${bit}`).toContain(code);
        else expect(code, `bit ${bit} (${byte < 6 ? 'id' : byte < keyEnd ? 'key' : 'signature'})`).toBe('bad_signature');
      }
    });
  }

  test('a valid prekey checked against another device, or relabelled with another kind or id: bad_signature', () => {
    const { device, other, spk, otk, pq, last } = setUp('relabel');
    expectCode(() => verifyPrekey(spk.public, publicPart(other)), 'bad_signature');
    // Same id space, same key length: a signed prekey passed off as a one-time key and vice versa.
    expectCode(() => verifyPrekey({ ...spk.public, kind: PrekeyKind.oneTime }, publicPart(device)), 'bad_signature');
    expectCode(() => verifyPrekey({ ...otk.public, kind: PrekeyKind.signed }, publicPart(device)), 'bad_signature');
    // A last-resort key passed off as a one-time one (it would then be "deleted"), and vice versa.
    expectCode(() => verifyPrekey({ ...last.public, kind: PrekeyKind.pqOneTime }, publicPart(device)), 'bad_signature');
    expectCode(() => verifyPrekey({ ...pq.public, kind: PrekeyKind.pqLastResort }, publicPart(device)), 'bad_signature');
    expectCode(() => verifyPrekey({ ...spk.public, id: spk.public.id + 1 }, publicPart(device)), 'bad_signature');
    expectCode(() => verifyPrekey({ ...spk.public, signature: spk.public.signature.subarray(0, 63) }, publicPart(device)), 'bad_signature');
  });
});

describe('bundles', () => {
  test('a bundle for another device, or checked against another device: bundle_invalid', () => {
    const { bundle, other, device } = setUp('other-device');
    expectCode(() => verifyBundle(bundle, publicPart(other)), 'bundle_invalid');
    expectCode(() => verifyBundle({ ...bundle, deviceId: other.deviceId }, publicPart(device)), 'bundle_invalid');
    // Another device's id with this device's keys: the id is what is compared.
    expectCode(() => verifyBundle(bundle, { ...publicPart(device), deviceId: other.deviceId }), 'bundle_invalid');
    expectCode(() => verifyBundle({ ...bundle, deviceId: bundle.deviceId.subarray(0, 15) }, publicPart(device)), 'invalid_argument');
  });

  test('the wrong kind in each slot: bundle_invalid', () => {
    const { bundle, device, spk, pq, last, otk } = setUp('slots');
    const pub = publicPart(device);
    expectCode(() => verifyBundle({ ...bundle, signedPrekey: otk.public }, pub), 'bundle_invalid', 'one-time in signed slot');
    expectCode(() => verifyBundle({ ...bundle, signedPrekey: pq.public }, pub), 'bundle_invalid', 'pq in signed slot');
    expectCode(() => verifyBundle({ ...bundle, pqPrekey: spk.public }, pub), 'bundle_invalid', 'signed in pq slot');
    expectCode(() => verifyBundle({ ...bundle, pqPrekey: otk.public }, pub), 'bundle_invalid', 'one-time in pq slot');
    expectCode(() => verifyBundle({ ...bundle, oneTimePrekey: spk.public }, pub), 'bundle_invalid', 'signed in one-time slot');
    expectCode(() => verifyBundle({ ...bundle, oneTimePrekey: last.public }, pub), 'bundle_invalid', 'pq in one-time slot');
    verifyBundle({ ...bundle, pqPrekey: last.public }, pub); // last resort in the pq slot is fine
  });

  test('a tampered signature in each slot, or a prekey signed by another device: bad_signature', () => {
    const { rng, bundle, device, other } = setUp('sigs');
    const pub = publicPart(device);
    for (const slot of ['signedPrekey', 'pqPrekey', 'oneTimePrekey'] as const) {
      const p = bundle[slot]!;
      for (const bit of [0, 100, 511]) {
        expectCode(() => verifyBundle({ ...bundle, [slot]: { ...p, signature: flipBit(p.signature, bit) } }, pub), 'bad_signature', `${slot} sig bit ${bit}`);
      }
      expectCode(() => verifyBundle({ ...bundle, [slot]: { ...p, publicKey: flipBit(p.publicKey, 9) } }, pub), 'bad_signature', `${slot} key`);
      const foreign = generatePrekey(other, p.kind, p.id, rng).public;
      expectCode(() => verifyBundle({ ...bundle, [slot]: foreign }, pub), 'bad_signature', `${slot} from another device`);
    }
  });

  test('every bit of an encoded bundle: never accepted', () => {
    const { bundle, device } = setUp('bundle-flip');
    const bytes = encodeBundle({ ...bundle, pqPrekey: { ...bundle.pqPrekey } });
    const pub = publicPart(device);
    const tally: Record<string, number> = {};
    // The pq prekey's 1,216-byte key: one bit per byte; everything else: every bit.
    const pqKeyAt = 1 + 16 + 2 + 102 + 2 + 6;
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const byte = bit >> 3;
      if (byte >= pqKeyAt && byte < pqKeyAt + 1216 && bit % 8 !== byte % 8) continue;
      const code = outcome(() => verifyBundle(decodeBundle(flipBit(bytes, bit)), pub));
      expect(code, `bit ${bit}`).not.toBe('ok');
      tally[code] = (tally[code] ?? 0) + 1;
    }
    expect(Object.keys(tally).sort()).toEqual(['bad_signature', 'bundle_invalid', 'malformed', 'trailing_bytes', 'truncated', 'unknown_version']);
  });
});

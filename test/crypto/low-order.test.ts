// Low-order / all-zero X25519 points (PROTOCOL.md §2: an all-zero X25519 result is refused with
// invalid_public_key) in every place a peer can put one: the device dhKey of a bundle's target, a
// signed prekey, a one-time prekey, the base key of a prekey message, the sender's listed dhKey, and
// the ratchet key of a header. Prekeys must carry a valid signature to reach the X25519 check, so the
// test signs the low-order key with the device's own signing key.
import { beforeAll, describe, expect, test } from 'vitest';
import {
  type DeviceKeyPair,
  type DevicePublic,
  deriveDeviceId,
  decryptFromDevice,
  EMPTY_DEVICE_SESSIONS,
  encryptForDevice,
  fromHex,
  generateDevice,
  generatePrekey,
  type PrekeyBundle,
  PrekeyKind,
  type PublicPrekey,
  publicPart,
  ready,
  type Rng,
  SIG_CONTEXT,
  startSession,
  utf8,
  verifyBundle,
  Writer,
} from '../../crypto/index.ts';
import { makeParty, type Party, takeBundle } from '../support/parties.ts';
import { Duo, expectCode, hexOf, LOW_ORDER_POINTS, PK, RM, replaced, rngFor, sodium } from './helpers.ts';

beforeAll(async () => {
  await ready();
  await sodium.ready;
});

/** A prekey with an arbitrary public key, validly signed by `device` (§5's signed message). */
function signedPrekey(device: DeviceKeyPair, kind: PrekeyKind, id: number, publicKey: Uint8Array): PublicPrekey {
  const ctx = utf8(SIG_CONTEXT.prekey);
  const msg = new Writer().u8(ctx.length).bytes(ctx).bytes(device.deviceId).u8(kind).u32(id).bytes(publicKey).finish();
  return { kind, id, publicKey, signature: sodium.crypto_sign_detached(msg, device.signingSecret) };
}

/** A device whose listed X25519 key is `dhKey` (its id is derived from it, so a device list would accept it). */
function deviceWithDhKey(rng: Rng, dhKey: Uint8Array): DeviceKeyPair {
  const real = generateDevice(rng);
  return { ...real, dhKey, deviceId: deriveDeviceId(real.signingKey, dhKey) };
}

/** A complete bundle for `device`, every prekey generated and signed by it. */
function bundleOf(device: DeviceKeyPair, rng: Rng): PrekeyBundle {
  return {
    deviceId: device.deviceId,
    signedPrekey: generatePrekey(device, PrekeyKind.signed, 1, rng).public,
    pqPrekey: generatePrekey(device, PrekeyKind.pqOneTime, 2, rng).public,
    oneTimePrekey: generatePrekey(device, PrekeyKind.oneTime, 3, rng).public,
  };
}

/** Bob's side for a message from `theirs`, on an empty record. */
function receiveAs(me: Party, m: Uint8Array, theirs: DevicePublic, rng: Rng) {
  return decryptFromDevice(EMPTY_DEVICE_SESSIONS, m, me.device, theirs, me.lookup, rng);
}

describe.each(LOW_ORDER_POINTS)('low-order point %s', (hex) => {
  const point = fromHex(hex);

  test('is genuinely low order: libsodium refuses it as an X25519 peer key', () => {
    for (let i = 0; i < 4; i++) {
      expect(() => sodium.crypto_scalarmult(sodium.randombytes_buf(32), point)).toThrow();
    }
    // The same with the (ignored) top bit set is refused too.
    const high = point.slice();
    high[31]! |= 0x80;
    expect(() => sodium.crypto_scalarmult(sodium.randombytes_buf(32), high)).toThrow();
  });

  test('as the device dhKey of the bundle target, a signed prekey, or a one-time prekey', () => {
    const d = new Duo(`low/${hex}/bundle`).establish();
    const bob = d.b.device;
    const bundle = takeBundle(d.b);
    const before = d.snapshot('a');
    const cases: [string, DevicePublic, PrekeyBundle][] = [];
    const weird = deviceWithDhKey(d.rng, point);
    cases.push(['target dhKey', publicPart(weird), bundleOf(weird, d.rng)]);
    cases.push(['signed prekey', d.b.pub, { ...bundle, signedPrekey: signedPrekey(bob, PrekeyKind.signed, 77, point) }]);
    cases.push(['one-time prekey', d.b.pub, { ...bundle, oneTimePrekey: signedPrekey(bob, PrekeyKind.oneTime, 78, point) }]);
    for (const [what, theirs, b] of cases) {
      verifyBundle(b, theirs); // the signatures are fine: only the X25519 check can refuse it
      expectCode(() => startSession(d.rec.a, d.a.device, theirs, b, d.rng), 'invalid_public_key', what);
      expect(hexOf(d.snapshot('a')), what).toBe(hexOf(before));
    }
    expect(d.recv('b', d.send('a', 'still here'))).toBe('still here');
  });

  test('as the base key of a prekey message', () => {
    const d = new Duo(`low/${hex}/base`).establish();
    d.start('a');
    const m = d.send('a', 'new');
    const before = d.snapshot('b');
    expectCode(() => d.tryRecv('b', replaced(m, PK.baseKey, point)), 'invalid_public_key');
    expect(hexOf(d.snapshot('b'))).toBe(hexOf(before));
    expect(d.recv('b', m)).toBe('new');
  });

  test("as the sender's listed dhKey (responder side)", () => {
    const rng = rngFor(`low/${hex}/sender`);
    const bob = makeParty(`low/${hex}/bob`, rng, 1);
    const mallory = deviceWithDhKey(rng, point);
    // Mallory's initiator side works (DH1 uses her real secret); Bob's DH1 with her listed key cannot.
    const s = startSession(EMPTY_DEVICE_SESSIONS, mallory, bob.pub, takeBundle(bob), rng);
    const m = encryptForDevice(s, utf8('hi')).message;
    const held = [...bob.prekeys.keys()].join();
    expectCode(() => receiveAs(bob, m, publicPart(mallory), rng), 'invalid_public_key');
    expect([...bob.prekeys.keys()].join()).toBe(held);
  });

  test('as the ratchet key of a header, on an established session and inside a prekey message', () => {
    const d = new Duo(`low/${hex}/ratchet`).establish();
    const m = d.send('a', 'next');
    expect(m[1]).toBe(1);
    const before = d.snapshot('b');
    expectCode(() => d.tryRecv('b', replaced(m, RM.ratchetKey, point)), 'invalid_public_key', 'ratchet message');
    expect(hexOf(d.snapshot('b'))).toBe(hexOf(before));
    expect(d.recv('b', m)).toBe('next');

    d.start('a');
    const pk = d.send('a', 'prekey');
    const at = PK.ratchet(pk[PK.hasOneTime] === 1) + 1;
    const before2 = d.snapshot('b');
    expectCode(() => d.tryRecv('b', replaced(pk, at, point)), 'invalid_public_key', 'prekey message');
    expect(hexOf(d.snapshot('b'))).toBe(hexOf(before2));
    expect(d.recv('b', pk)).toBe('prekey');
  });
});

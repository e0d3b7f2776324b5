// Session setup (PQXDH, PROTOCOL.md §6) as the responder sees it through decryptFromDevice:
// every field of a first prekey message tampered, wrong sender identity, missing prekeys,
// downgrades, and replays / retransmissions of prekey messages (§8). Each refusal asserts the exact
// code, that Bob's DeviceSessions record is byte-for-byte unchanged and that his prekeys are all still
// there, then that the genuine message decrypts.
import { beforeAll, describe, expect, test } from 'vitest';
import {
  type CryptoErrorCode,
  decodeDeviceMessage,
  type DevicePublic,
  decryptFromDevice,
  encodeDeviceMessage,
  MessageKind,
  type PrekeyMessage,
  ready,
} from '../../crypto/index.ts';
import { makeParty } from '../support/parties.ts';
import { Duo, expectCode, flipBit, hexOf, PK, ratchetPart, replaced, sodium } from './helpers.ts';

beforeAll(async () => {
  await ready();
  await sodium.ready;
});

/** Bob decrypts `message` as if it came from `theirs` (the device his lookup found for the sender). */
function decryptAs(d: Duo, message: Uint8Array, theirs: DevicePublic) {
  return decryptFromDevice(d.rec.b, message, d.b.device, theirs, d.b.lookup, d.rng);
}

function prekeyOf(message: Uint8Array): PrekeyMessage {
  const m = decodeDeviceMessage(message);
  if (m.kind !== MessageKind.prekey) throw new Error('not a prekey message');
  return m.prekey;
}

function u32(b: Uint8Array, off: number): number {
  return new DataView(b.buffer, b.byteOffset + off, 4).getUint32(0);
}

/** Asserts Bob refuses `bad` with `code` and that neither his record nor his prekeys changed. */
function bobRefuses(d: Duo, bad: Uint8Array, code: CryptoErrorCode | readonly CryptoErrorCode[], what: string): CryptoErrorCode {
  const before = d.snapshot('b');
  const keys = [...d.b.prekeys.keys()].join(',');
  let got: CryptoErrorCode | undefined;
  try {
    d.tryRecv('b', bad);
  } catch (e) {
    got = (e as { code?: CryptoErrorCode }).code;
    expect(e, what).toBeInstanceOf(Error);
  }
  const allowed = typeof code === 'string' ? [code] : code;
  expect(allowed, `${what}: got ${got}`).toContain(got);
  expect(hexOf(d.snapshot('b')), `${what}: record changed`).toBe(hexOf(before));
  expect([...d.b.prekeys.keys()].join(','), what).toBe(keys);
  return got!;
}

/** Alice and Bob already talk; Alice then starts a fresh session and sends a prekey message. */
function secondSession(label: string, withOneTime = true) {
  const d = new Duo(label).establish();
  d.start('a', withOneTime ? undefined : d.b.bundles.at(-1));
  const first = d.send('a', 'new session');
  return { d, first };
}

describe('a tampered first prekey message', () => {
  test('every bit of the handshake and embedded ratchet message: exact code, nothing changes', () => {
    const { d, first } = secondSession('setup/flip');
    const has = first[PK.hasOneTime] === 1;
    expect(has).toBe(true);
    const ctStart = PK.ct(has);
    const ratchetAt = PK.ratchet(has);
    const held = (kind: number, id: number) => d.b.lookup(kind as 1, id) !== undefined;
    const tally: Record<string, number> = {};
    for (let bit = 0; bit < first.length * 8; bit++) {
      const byte = bit >> 3;
      // The X-Wing ciphertext: one bit per byte (1,120 decapsulations), every bit of its X25519 part.
      if (byte >= ctStart && byte < ratchetAt - 32 && bit % 8 !== byte % 8) continue;
      const bad = flipBit(first, bit);
      let code: CryptoErrorCode | readonly CryptoErrorCode[];
      if (byte === 0 || byte === PK.version) code = 'unknown_version';
      else if (byte === 1 || byte === PK.pqKind) code = 'malformed';
      else if (byte < PK.baseKey) code = 'identity_mismatch';
      else if (byte < PK.spkId) code = byte === PK.baseKey + 31 && bit % 8 === 7 ? 'invalid_public_key' : 'decrypt_failed';
      else if (byte < PK.pqKind) code = held(1, u32(bad, PK.spkId)) ? 'decrypt_failed' : 'unknown_prekey';
      else if (byte < PK.hasOneTime) code = held(3, u32(bad, PK.pqId)) ? 'decrypt_failed' : 'unknown_prekey';
      else if (byte === PK.hasOneTime) code = bit % 8 === 0 ? ['unknown_version', 'malformed', 'decrypt_failed', 'truncated'] : 'malformed';
      else if (byte < ctStart) code = held(2, u32(bad, PK.oneTimeId)) ? 'decrypt_failed' : 'unknown_prekey';
      else if (byte < ratchetAt) code = 'decrypt_failed';
      else if (byte === ratchetAt) code = 'unknown_version';
      else if (byte >= ratchetAt + 37 && byte < ratchetAt + 41) code = u32(bad, ratchetAt + 37) > 2000 ? 'too_many_skipped' : 'decrypt_failed';
      else code = 'decrypt_failed';
      const got = bobRefuses(d, bad, code, `bit ${bit} (byte ${byte})`);
      tally[got] = (tally[got] ?? 0) + 1;
    }
    expect(Object.keys(tally).sort()).toEqual([
      'decrypt_failed',
      'identity_mismatch',
      'invalid_public_key',
      'malformed',
      'too_many_skipped',
      'unknown_prekey',
      'unknown_version',
    ]);
    expect(d.recv('b', first)).toBe('new session');
    expect(d.recv('a', d.send('b', 'ok'))).toBe('ok');
  });

  test('dropping the one-time prekey (downgrade to three DHs) or switching the PQ key: decrypt_failed', () => {
    const { d, first } = secondSession('setup/downgrade');
    const p = prekeyOf(first);
    const noOtk = encodeDeviceMessage({ kind: MessageKind.prekey, prekey: { ...p, oneTimePrekeyId: null } });
    bobRefuses(d, noOtk, 'decrypt_failed', 'one-time prekey dropped');
    const lastResort = encodeDeviceMessage({ kind: MessageKind.prekey, prekey: { ...p, pqKind: 4, pqPrekeyId: 1000 } });
    bobRefuses(d, lastResort, 'decrypt_failed', 'pq prekey switched to the last-resort one');
    const otherOtk = encodeDeviceMessage({ kind: MessageKind.prekey, prekey: { ...p, oneTimePrekeyId: p.oneTimePrekeyId! + 1 } });
    bobRefuses(d, otherOtk, 'decrypt_failed', 'another (held) one-time prekey');
    const kindSwap = encodeDeviceMessage({ kind: MessageKind.prekey, prekey: { ...p, pqKind: 4 } });
    bobRefuses(d, kindSwap, 'unknown_prekey', 'pq kind 3 -> 4 with the one-time id');
    expect(d.recv('b', first)).toBe('new session');
  });

  test('a base key equal to our signed prekey is invalid_public_key', () => {
    const { d, first } = secondSession('setup/ek-eq-spk');
    const spk = d.b.lookup(1, prekeyOf(first).signedPrekeyId)!.publicKey;
    bobRefuses(d, replaced(first, PK.baseKey, spk), 'invalid_public_key', 'EK == SPK');
    expect(d.recv('b', first)).toBe('new session');
  });
});

describe('identity and prekeys', () => {
  test("a prekey message received as another device's (Carol's listed keys) is identity_mismatch", () => {
    const { d, first } = secondSession('setup/identity');
    const carol = makeParty('setup/identity/carol', d.rng, 0);
    const before = d.snapshot('b');
    expectCode(() => decryptAs(d, first, carol.pub), 'identity_mismatch');
    expect(hexOf(d.snapshot('b'))).toBe(hexOf(before));
    // Alice's keys with Carol's device id, and Carol's keys with Alice's id: both refused too.
    expectCode(() => decryptAs(d, first, { ...d.a.pub, deviceId: carol.pub.deviceId }), 'identity_mismatch');
    expectCode(() => decryptAs(d, first, { ...carol.pub, deviceId: d.a.pub.deviceId }), 'identity_mismatch');
    expect(d.recv('b', first)).toBe('new session');
  });

  for (const [name, key] of [
    ['one-time prekey', (d: Duo, first: Uint8Array) => `2/${prekeyOf(first).oneTimePrekeyId}`],
    ['pq one-time prekey', (d: Duo, first: Uint8Array) => `3/${prekeyOf(first).pqPrekeyId}`],
    ['signed prekey (rotated away)', (d: Duo, first: Uint8Array) => `1/${prekeyOf(first).signedPrekeyId}`],
  ] as const) {
    test(`a missing ${name} on the responder is unknown_prekey`, () => {
      const { d, first } = secondSession(`setup/missing/${name}`);
      const k = key(d, first);
      const secret = d.b.prekeys.get(k)!;
      expect(secret).toBeDefined();
      d.b.prekeys.delete(k);
      bobRefuses(d, first, 'unknown_prekey', name);
      d.b.prekeys.set(k, secret);
      expect(d.recv('b', first)).toBe('new session');
    });
  }

  test('the last-resort PQ key (no one-time keys left) works and is not reported as used', () => {
    const d = new Duo('setup/last-resort', 0);
    d.start('a');
    const first = d.send('a', 'via last resort');
    expect(prekeyOf(first).pqKind).toBe(4);
    expect(prekeyOf(first).oneTimePrekeyId).toBeNull();
    const r = d.tryRecv('b', first);
    expect(r.used).toEqual({ oneTimePrekeyId: null, pqOneTimePrekeyId: null });
    expect(d.recv('b', first)).toBe('via last resort');
  });

  test('one-time prekeys used are reported only after a successful decrypt', () => {
    const { d, first } = secondSession('setup/used');
    const p = prekeyOf(first);
    const r = d.tryRecv('b', first);
    expect(r.used).toEqual({ oneTimePrekeyId: p.oneTimePrekeyId, pqOneTimePrekeyId: p.pqPrekeyId });
  });
});

describe('replays and retransmissions of prekey messages', () => {
  test('a retransmitted prekey message (same base key) decrypts on the existing session and creates none', () => {
    const d = new Duo('setup/retransmit');
    d.start('a');
    const m1 = d.send('a', 'one');
    const m2 = d.send('a', 'two');
    const m3 = d.send('a', 'three');
    expect(m2[1]).toBe(MessageKind.prekey);
    expect(hexOf(prekeyOf(m2).baseKey)).toBe(hexOf(prekeyOf(m1).baseKey));
    expect(d.recv('b', m2)).toBe('two');
    expect(d.rec.b.inactive.length).toBe(0);
    const base = hexOf(d.rec.b.active!.baseKey);
    // Bob deleted the one-time keys it used: the retransmissions must not need them.
    const r = d.tryRecv('b', m1);
    expect(r.used).toBeNull();
    expect(d.recv('b', m1)).toBe('one');
    expect(d.recv('b', m3)).toBe('three');
    expect(d.rec.b.inactive.length).toBe(0);
    expect(hexOf(d.rec.b.active!.baseKey)).toBe(base);
    for (const m of [m1, m2, m3]) bobRefuses(d, m, 'duplicate_message', 'replay before the reply');
    expect(d.recv('a', d.send('b', 'reply'))).toBe('reply');
    expect(d.rec.a.active!.pending).toBeNull();
    const m4 = d.send('a', 'four');
    expect(m4[1]).toBe(MessageKind.ratchet);
    for (const m of [m1, m2, m3]) bobRefuses(d, m, 'duplicate_message', 'replay after the reply');
    expect(d.recv('b', m4)).toBe('four');
  });

  test('a replay whose base key differs only in the top bit (same X25519 value) is refused, not a second session', () => {
    // Without one-time keys nothing else stops a replayed first message (§6 step 5 keeps the
    // last-resort key), so the base key must name the session exactly.
    const d = new Duo('setup/basekey-top-bit', 0);
    d.start('a');
    const first = d.send('a', 'pay 10');
    expect(d.recv('b', first)).toBe('pay 10');
    const alias = flipBit(first, (PK.baseKey + 31) * 8 + 7);
    bobRefuses(d, alias, 'invalid_public_key', 'base key with the top bit set');
    // And as the very first message Bob sees (he must not adopt a non-canonical session name).
    const fresh = new Duo('setup/basekey-top-bit-fresh', 0);
    fresh.start('a');
    const m = fresh.send('a', 'hi');
    bobRefuses(fresh, flipBit(m, (PK.baseKey + 31) * 8 + 7), 'invalid_public_key', 'fresh, top bit');
    expect(fresh.recv('b', m)).toBe('hi');
  });

  test('a retransmission naming other sender keys is identity_mismatch even when its session exists', () => {
    const d = new Duo('setup/retransmit-identity');
    d.start('a');
    const m1 = d.send('a', 'one');
    const m2 = d.send('a', 'two');
    expect(d.recv('b', m1)).toBe('one');
    for (const at of [PK.senderId, PK.senderSigning, PK.senderDh]) {
      bobRefuses(d, flipBit(m2, at * 8 + 3), 'identity_mismatch', `sender field at ${at}`);
    }
    expect(d.recv('b', m2)).toBe('two');
  });

  test('a tampered embedded ratchet message on a retransmission is decrypt_failed, session kept', () => {
    const d = new Duo('setup/retransmit-tamper');
    d.start('a');
    const m1 = d.send('a', 'one');
    const m2 = d.send('a', 'two');
    expect(d.recv('b', m1)).toBe('one');
    const at = PK.ratchet(true);
    expect(ratchetPart(m2)[0]).toBe(1);
    bobRefuses(d, flipBit(m2, (at + 20) * 8), 'decrypt_failed', 'ratchet key');
    bobRefuses(d, flipBit(m2, (at + 36) * 8), 'decrypt_failed', 'PN');
    bobRefuses(d, flipBit(m2, (m2.length - 1) * 8), 'decrypt_failed', 'tag');
    expect(d.recv('b', m2)).toBe('two');
  });
});

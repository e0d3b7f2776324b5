// Per-device session management (Sesame, PROTOCOL.md §8): simultaneous initiation converges,
// an inactive session that receives is promoted, the inactive list is bounded, replays on an
// inactive session are final, and every refusal leaves the DeviceSessions record unchanged.
import { beforeAll, describe, expect, test } from 'vitest';
import {
  compareBytes,
  decodeDeviceSessions,
  decryptFromDevice,
  EMPTY_DEVICE_SESSIONS,
  encodeDeviceSessions,
  encryptForDevice,
  hasSession,
  MAX_INACTIVE_SESSIONS,
  MessageKind,
  ready,
  utf8,
} from '../../crypto/index.ts';
import { Duo, expectCode, flipBit, hexOf, RM, sodium } from './helpers.ts';

beforeAll(async () => {
  await ready();
  await sodium.ready;
});

function baseOf(d: Duo, s: 'a' | 'b'): string {
  return hexOf(d.rec[s].active!.baseKey);
}

function refuse(d: Duo, to: 'a' | 'b', m: Uint8Array, code: Parameters<typeof expectCode>[1], what = ''): void {
  const before = d.snapshot(to);
  expectCode(() => d.tryRecv(to, m), code, what);
  expect(hexOf(d.snapshot(to)), `${what}: record changed`).toBe(hexOf(before));
}

describe('simultaneous initiation', () => {
  const orderings = new Set<string>();

  for (let seed = 0; seed < 6; seed++) {
    test(`both start at once and converge on the smaller base key (seed ${seed})`, () => {
      const d = new Duo(`sesame/simultaneous/${seed}`);
      d.start('a');
      d.start('b');
      const baseA = d.rec.a.active!.baseKey;
      const baseB = d.rec.b.active!.baseKey;
      const winner = hexOf(compareBytes(baseA, baseB) < 0 ? baseA : baseB);
      orderings.add(compareBytes(baseA, baseB) < 0 ? 'alice smaller' : 'bob smaller');
      const fromA = [d.send('a', 'a1'), d.send('a', 'a2')];
      const fromB = [d.send('b', 'b1'), d.send('b', 'b2')];
      expect(fromA[0]![1]).toBe(MessageKind.prekey);
      expect(fromB[0]![1]).toBe(MessageKind.prekey);
      // Each receives the other's first message: both now hold both sessions and agree.
      expect(d.recv('a', fromB[0]!)).toBe('b1');
      expect(d.recv('b', fromA[0]!)).toBe('a1');
      expect(baseOf(d, 'a')).toBe(winner);
      expect(baseOf(d, 'b')).toBe(winner);
      expect(d.rec.a.inactive.length).toBe(1);
      expect(d.rec.b.inactive.length).toBe(1);
      // What was sent on the losing session still decrypts, and changes nothing.
      expect(d.recv('a', fromB[1]!)).toBe('b2');
      expect(d.recv('b', fromA[1]!)).toBe('a2');
      expect(baseOf(d, 'a')).toBe(winner);
      expect(baseOf(d, 'b')).toBe(winner);
      // And they keep talking on the one session, in ratchet messages once confirmed.
      for (let i = 0; i < 8; i++) {
        const from = i % 2 === 0 ? 'a' : 'b';
        const to = from === 'a' ? 'b' : 'a';
        const m = d.send(from, `x${i}`);
        if (i >= 2) expect(m[1]).toBe(MessageKind.ratchet);
        expect(d.recv(to, m)).toBe(`x${i}`);
        expect(baseOf(d, 'a')).toBe(winner);
        expect(baseOf(d, 'b')).toBe(winner);
      }
      expect(d.rec.a.inactive.length + d.rec.b.inactive.length).toBe(2);
    });
  }

  test('the seeds above covered both orderings of the base keys', () => {
    expect([...orderings].sort()).toEqual(['alice smaller', 'bob smaller']);
  });
});

describe('active and inactive sessions', () => {
  test('an inactive session receiving a normal message is promoted to active', () => {
    const d = new Duo('sesame/promote').establish();
    const s1 = baseOf(d, 'a');
    d.start('a'); // Alice starts S2: S1 becomes inactive on her side
    const lost = d.send('a', 'lost on S2');
    expect(lost[1]).toBe(MessageKind.prekey);
    const s2 = baseOf(d, 'a');
    expect(hexOf(d.rec.a.inactive[0]!.baseKey)).toBe(s1);
    const m = d.send('b', 'on S1');
    expect(m[1]).toBe(MessageKind.ratchet);
    expect(d.recv('a', m)).toBe('on S1');
    expect(baseOf(d, 'a')).toBe(s1);
    expect(hexOf(d.rec.a.inactive[0]!.baseKey)).toBe(s2);
    const back = d.send('a', 'back on S1');
    expect(back[1]).toBe(MessageKind.ratchet);
    expect(d.recv('b', back)).toBe('back on S1');
    expect(d.rec.b.inactive.length).toBe(0);
  });

  test(`the inactive list is bounded by MAX_INACTIVE_SESSIONS (${MAX_INACTIVE_SESSIONS}), oldest dropped`, () => {
    const d = new Duo('sesame/bound', MAX_INACTIVE_SESSIONS + 3);
    const firsts: Uint8Array[] = [];
    const bases: string[] = [];
    for (let k = 0; k < MAX_INACTIVE_SESSIONS + 3; k++) {
      d.start('a');
      bases.push(baseOf(d, 'a'));
      expect(d.rec.a.inactive.length).toBe(Math.min(k, MAX_INACTIVE_SESSIONS));
      firsts.push(d.send('a', `s${k}`));
    }
    expect(d.rec.a.inactive.map((s) => hexOf(s.baseKey))).toEqual(bases.slice(-1 - MAX_INACTIVE_SESSIONS, -1).reverse());
    for (let k = 0; k < firsts.length; k++) {
      expect(d.recv('b', firsts[k]!)).toBe(`s${k}`);
      expect(baseOf(d, 'b')).toBe(bases[k]);
      expect(d.rec.b.inactive.length).toBe(Math.min(k, MAX_INACTIVE_SESSIONS));
    }
    expect(d.rec.b.inactive.map((s) => hexOf(s.baseKey))).toEqual(bases.slice(-1 - MAX_INACTIVE_SESSIONS, -1).reverse());
    // Bob dropped the two oldest sessions (and deleted their one-time prekeys when he committed
    // them), so their replays find neither a session nor the prekeys: unknown_prekey.
    refuse(d, 'b', firsts[0]!, 'unknown_prekey', 'replay of a dropped session');
    refuse(d, 'b', firsts[1]!, 'unknown_prekey', 'replay of a dropped session');
    refuse(d, 'b', firsts[2]!, 'duplicate_message', 'replay on the oldest kept session');
    expect(d.recv('a', d.send('b', 'latest'))).toBe('latest');
  }, 30_000);

  test('a replay of a message that belongs to an inactive session is duplicate_message (final)', () => {
    const d = new Duo('sesame/dup-inactive').establish();
    const old = d.send('a', 'on S1');
    expect(d.recv('b', old)).toBe('on S1');
    d.start('a');
    expect(d.recv('b', d.send('a', 'on S2'))).toBe('on S2');
    expect(d.rec.b.inactive.length).toBe(1);
    refuse(d, 'b', old, 'duplicate_message', 'replay on the inactive session');
    refuse(d, 'b', flipBit(old, (old.length - 1) * 8), 'duplicate_message', 'a tampered copy: the index check comes before authentication');
    expect(d.recv('a', d.send('b', 'reply on S2'))).toBe('reply on S2');
  });

  test('no session: encrypting or receiving a ratchet message with an empty record', () => {
    const d = new Duo('sesame/none').establish();
    expectCode(() => encryptForDevice(EMPTY_DEVICE_SESSIONS, utf8('x')), 'no_session');
    expect(hasSession(EMPTY_DEVICE_SESSIONS)).toBe(false);
    expect(hasSession(d.rec.a)).toBe(true);
    const m = d.send('a', 'x');
    expectCode(() => decryptFromDevice(EMPTY_DEVICE_SESSIONS, m, d.b.device, d.a.pub, d.b.lookup, d.rng), 'no_session');
  });

  test('refusals on a record with several sessions leave every session unchanged', () => {
    const d = new Duo('sesame/refuse').establish();
    d.start('a');
    expect(d.recv('b', d.send('a', 's2'))).toBe('s2');
    const m = d.send('b', 'to alice');
    expect(d.rec.a.inactive.length).toBe(1);
    for (const bit of [RM.ratchetKey * 8 + 5, RM.pn * 8 + 31, (RM.n + 3) * 8 + 1, (m.length - 3) * 8]) {
      refuse(d, 'a', flipBit(m, bit), 'decrypt_failed', `bit ${bit}`);
    }
    refuse(d, 'a', flipBit(m, RM.n * 8 + 7), 'too_many_skipped', 'N + 2^31');
    expect(d.recv('a', m)).toBe('to alice');
  });

  test('records survive encodeDeviceSessions / decodeDeviceSessions at every step', () => {
    const d = new Duo('sesame/persist', 6).establish();
    for (let i = 0; i < 40; i++) {
      for (const s of ['a', 'b'] as const) {
        const bytes = encodeDeviceSessions(d.rec[s]);
        d.rec[s] = decodeDeviceSessions(bytes);
        expect(hexOf(encodeDeviceSessions(d.rec[s]))).toBe(hexOf(bytes));
      }
      if (i % 9 === 4) d.start(i % 2 ? 'a' : 'b');
      const from = i % 3 === 0 ? 'b' : 'a';
      expect(d.recv(from === 'a' ? 'b' : 'a', d.send(from, `m${i}`))).toBe(`m${i}`);
    }
  });
});

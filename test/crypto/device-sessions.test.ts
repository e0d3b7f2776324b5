// Per-device session management (Sesame, PROTOCOL.md §8): simultaneous initiation converges,
// an inactive session that receives is promoted, the inactive list is bounded, replays on an
// inactive session are final, and every refusal leaves the DeviceSessions record unchanged.
import { beforeAll, describe, expect, test } from 'vitest';
import {
  compareBytes,
  decodeDeviceSessions,
  decryptFromDevice,
  type DeviceSessions,
  dropRefused,
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

describe('a peer\u2019s report of refused sessions (rule 7)', () => {
  const bases = (r: DeviceSessions) => [r.active, ...r.inactive].map((s) => (s ? hexOf(s.baseKey) : null));

  /**
   * Alice starts S_A from a bundle whose signed prekey Bob has since replaced: he refuses it and
   * starts S_B, on which he sends `repair`. Returns after Alice received that message.
   */
  function refusedStart(label: string) {
    const d = new Duo(label);
    d.start('a');
    const sA = d.rec.a.active!.baseKey;
    const first = d.send('a', 'on S_A');
    d.b.prekeys.delete('1/1'); // rotated away
    refuse(d, 'b', first, 'unknown_prekey', 'S_A names a signed prekey Bob no longer holds');
    d.start('b');
    const sB = d.rec.b.active!.baseKey;
    const r = d.tryRecv('a', d.send('b', 'repair'));
    expect(hexOf(r.baseKey)).toBe(hexOf(sB));
    d.rec.a = r.record;
    return { d, sA, sB, first };
  }

  const orders = new Set<boolean>();
  for (let seed = 0; seed < 4; seed++) {
    test(`Alice drops the session Bob refused and both converge on his, whichever base key is smaller (seed ${seed})`, () => {
      const { d, sA, sB, first } = refusedStart(`sesame/report/${seed}`);
      const aliceSmaller = compareBytes(sA, sB) < 0;
      orders.add(aliceSmaller);
      // Before the report the tie-break decides: with S_A the smaller, Alice would stay on it for good.
      expect(baseOf(d, 'a')).toBe(hexOf(aliceSmaller ? sA : sB));
      if (aliceSmaller) {
        const stuck = d.send('a', 'still on S_A');
        expect(stuck[1]).toBe(MessageKind.prekey);
        refuse(d, 'b', stuck, 'unknown_prekey', 'what Alice sends on S_A');
      }
      const before = d.rec.a;
      d.rec.a = dropRefused(before, [sA], sB);
      expect(bases(d.rec.a)).toEqual([hexOf(sB)]);
      // Alice answers on S_B with a ratchet message; Bob's session is confirmed; both stay there.
      const m = d.send('a', 'on S_B');
      expect(m[1]).toBe(MessageKind.ratchet);
      expect(d.recv('b', m)).toBe('on S_B');
      expect(d.rec.b.active!.confirmed).toBe(true);
      expect(d.recv('a', d.send('b', 'reply'))).toBe('reply');
      expect(bases(d.rec.a)).toEqual([hexOf(sB)]);
      expect(bases(d.rec.b)).toEqual([hexOf(sB)]);
      // S_A is forgotten (rule 6): its prekey message is a new session again, still refused.
      refuse(d, 'b', first, 'unknown_prekey', 'S_A again');
    });
  }
  test('the seeds above covered both orders of the base keys', () => {
    expect(orders).toEqual(new Set([true, false]));
  });

  test('only sessions we started and the peer never confirmed are dropped; the order is kept', () => {
    const d = new Duo('sesame/report/which', 6).establish(); // S1: Alice's, confirmed
    const s1 = d.rec.a.active!.baseKey;
    d.start('b'); // S2: Bob's, received by Alice
    expect(d.recv('a', d.send('b', 'on S2'))).toBe('on S2');
    const s2 = d.rec.a.active!.baseKey;
    d.start('a'); // S3, S4: Alice's, unconfirmed
    const s3 = d.rec.a.active!.baseKey;
    d.start('a');
    const s4 = d.rec.a.active!.baseKey;
    const rec = d.rec.a;
    expect(bases(rec)).toEqual([s4, s3, s2, s1].map(hexOf));
    // A report naming only sessions that must stay, or nothing held: the very same record.
    const unknown = new Uint8Array(32).fill(7);
    expect(dropRefused(rec, [s1, s2, unknown], s2)).toBe(rec);
    expect(dropRefused(rec, [], s2)).toBe(rec);
    // An inactive one: removed, the active stays, the rest keep their order.
    expect(bases(dropRefused(rec, [s3, s1], s2))).toEqual([s4, s2, s1].map(hexOf));
    // The active one: the carrier becomes active, the others keep their order.
    expect(bases(dropRefused(rec, [s4], s1))).toEqual([s1, s3, s2].map(hexOf));
    expect(bases(dropRefused(rec, [s4, s3], s2))).toEqual([s2, s1].map(hexOf));
    // A carrier not held: no active session (the next send starts one).
    const none = dropRefused(rec, [s4], unknown);
    expect(bases(none)).toEqual([null, s3, s2, s1].map((k) => k && hexOf(k)));
    expect(hasSession(none)).toBe(false);
    expectCode(() => encryptForDevice(none, utf8('x')), 'no_session');
    expect(hexOf(encodeDeviceSessions(decodeDeviceSessions(encodeDeviceSessions(none))))).toBe(hexOf(encodeDeviceSessions(none)));
    // The record passed in is never modified.
    expect(bases(rec)).toEqual([s4, s3, s2, s1].map(hexOf));
    expectCode(() => dropRefused(rec, [s4.subarray(0, 31)], s1), 'invalid_argument');
    expectCode(() => dropRefused(rec, [s4], new Uint8Array(33)), 'invalid_argument');
  });

  test('DecryptResult.baseKey names the session each kind of message decrypted on', () => {
    const d = new Duo('sesame/report/carrier', 3);
    d.start('a');
    const sA = hexOf(d.rec.a.active!.baseKey);
    const p0 = d.send('a', 'p0');
    const p1 = d.send('a', 'p1');
    expect(hexOf(d.tryRecv('b', p0).baseKey)).toBe(sA); // a new session
    d.recv('b', p0);
    expect(hexOf(d.tryRecv('b', p1).baseKey)).toBe(sA); // a held base key
    const reply = d.send('b', 'r0'); // a ratchet message on S_A
    expect(reply[1]).toBe(MessageKind.ratchet);
    expect(hexOf(d.tryRecv('a', reply).baseKey)).toBe(sA);
    // A new session kept inactive by the tie-break, or made active: refusedStart above checks that
    // the base key is the new session's either way.
  });
});

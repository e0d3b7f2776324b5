// Sesame (PROTOCOL.md §8) when a device starts a new session although the peer already sent on one:
// a reset after a decryption failure, a restore, a re-fetched bundle. Found by
// network-oracle.test.ts: Q responds to P's session S1 (its reply is lost), then starts S2; P, still
// waiting on S1, keeps S1 by the simultaneous-start tie-break when S1 has the smaller base key. Each
// then sends prekey messages on its own pending session and receives the other's on a session it
// already holds. Such a "known" prekey message must make its session active under the same rule as
// a new one, or the two never converge and neither session ever takes a DH ratchet step.
import { beforeAll, describe, expect, test } from 'vitest';
import {
  decryptFromDevice,
  type DeviceSessions,
  EMPTY_DEVICE_SESSIONS,
  encryptForDevice,
  fromUtf8,
  MessageKind,
  ready,
  seededRng,
  startSession,
  toHex,
  utf8,
} from '../../crypto/index.ts';
import { makeParty, type Party, takeBundle } from '../support/parties.ts';

beforeAll(ready);

class Link {
  readonly rng;
  readonly p: Party;
  readonly q: Party;
  rec: { p: DeviceSessions; q: DeviceSessions } = { p: EMPTY_DEVICE_SESSIONS, q: EMPTY_DEVICE_SESSIONS };
  constructor(seed: number) {
    this.rng = seededRng(new Uint8Array(32).fill(seed));
    this.p = makeParty('p', this.rng);
    this.q = makeParty('q', this.rng);
  }
  start(from: 'p' | 'q'): string {
    const [me, peer] = from === 'p' ? [this.p, this.q] : [this.q, this.p];
    this.rec[from] = startSession(this.rec[from], me.device, peer.pub, takeBundle(peer), this.rng);
    return toHex(this.rec[from].active!.baseKey);
  }
  send(from: 'p' | 'q', text: string): Uint8Array {
    const r = encryptForDevice(this.rec[from], utf8(text));
    this.rec[from] = r.record;
    return r.message;
  }
  recv(to: 'p' | 'q', message: Uint8Array): string {
    const [me, peer] = to === 'p' ? [this.p, this.q] : [this.q, this.p];
    const r = decryptFromDevice(this.rec[to], message, me.device, peer.pub, me.lookup, this.rng);
    this.rec[to] = r.record;
    if (r.used?.oneTimePrekeyId != null) me.prekeys.delete(`2/${r.used.oneTimePrekeyId}`);
    if (r.used?.pqOneTimePrekeyId != null) me.prekeys.delete(`3/${r.used.pqOneTimePrekeyId}`);
    return fromUtf8(r.plaintext, 'plaintext');
  }
  active(side: 'p' | 'q'): string {
    return toHex(this.rec[side].active!.baseKey);
  }
}

/** Runs the scenario; returns which base key ordering it had and whether the pair converged. */
function restartScenario(seed: number) {
  const l = new Link(seed);
  const s1 = l.start('p');
  expect(l.recv('q', l.send('p', 'p1 on S1'))).toBe('p1 on S1');
  l.send('q', 'reply on S1, lost'); // Q's reply never arrives: P's S1 stays unconfirmed
  const s2 = l.start('q'); // Q restarts
  expect(l.recv('p', l.send('q', 'q1 on S2'))).toBe('q1 on S2');
  const ordering = l.active('p') === s1 ? 'S1 kept by P' : 'P moved to S2';
  expect(ordering === 'S1 kept by P', 'the tie-break keeps the smaller base key').toBe(s1 < s2);

  // Both keep talking, strictly taking turns (no message crosses another).
  const kinds: number[] = [];
  for (let i = 0; i < 6; i++) {
    const [from, to] = i % 2 === 0 ? (['p', 'q'] as const) : (['q', 'p'] as const);
    const m = l.send(from, `turn ${i}`);
    kinds.push(m[1]!);
    expect(l.recv(to, m)).toBe(`turn ${i}`);
  }
  return { ordering, l, kinds };
}

describe('a device restarts a session while the peer still waits on its own', () => {
  const seen = new Set<string>();
  for (let seed = 1; seed <= 6; seed++) {
    test(`both converge on one confirmed session and ratchet (seed ${seed})`, () => {
      const { ordering, l, kinds } = restartScenario(seed);
      seen.add(ordering);
      expect(l.active('p')).toBe(l.active('q'));
      expect(l.rec.p.active!.confirmed).toBe(true);
      expect(l.rec.q.active!.confirmed).toBe(true);
      // Once converged, messages are ratchet messages (no more 1.3 KB prekey headers), and each
      // turn uses a new ratchet key: the DH ratchet runs.
      expect(kinds.slice(-3)).toEqual([MessageKind.ratchet, MessageKind.ratchet, MessageKind.ratchet]);
      const keys = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const from = i % 2 === 0 ? 'p' : 'q';
        const m = l.send(from, `more ${i}`);
        keys.add(toHex(m.subarray(3, 35)));
        expect(l.recv(from === 'p' ? 'q' : 'p', m)).toBe(`more ${i}`);
      }
      expect(keys.size).toBe(4);
    });
  }
  test('the seeds above covered both base key orderings (the tie-break kept S1 at least once)', () => {
    expect([...seen].sort()).toEqual(['P moved to S2', 'S1 kept by P']);
  });
});

describe('the tie-break still holds for a known session', () => {
  test('our pending session with the smaller base key stays active when a retransmission of the peer’s arrives', () => {
    // Simultaneous starts; the peer's second prekey message reaches us after its first.
    for (let seed = 10; seed < 20; seed++) {
      const l = new Link(seed);
      const sp = l.start('p');
      const sq = l.start('q');
      const q1 = l.send('q', 'q1');
      const q2 = l.send('q', 'q2');
      const p1 = l.send('p', 'p1');
      expect(l.recv('p', q1)).toBe('q1');
      const winner = sp < sq ? sp : sq;
      expect(l.active('p')).toBe(winner);
      expect(l.recv('p', q2)).toBe('q2'); // the known-session path: same rule, same winner
      expect(l.active('p')).toBe(winner);
      expect(l.recv('q', p1)).toBe('p1');
      expect(l.active('q')).toBe(winner);
    }
  });
});

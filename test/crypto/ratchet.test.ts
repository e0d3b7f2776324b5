// The double ratchet (PROTOCOL.md §7) at the Session level: round trips, out-of-order and late
// delivery, serialisation, tampering of every header bit, replay, and the limits MAX_SKIP,
// MAX_SKIPPED_KEYS and MAX_RECEIVING_CHAINS. Every refusal asserts the exact code and that the
// receiver's encoded state is byte-for-byte unchanged, then that the genuine message still decrypts.
import { beforeAll, describe, expect, test } from 'vitest';
import {
  type CryptoErrorCode,
  decodeSession,
  encodeSession,
  equalBytes,
  MAX_RECEIVING_CHAINS,
  MAX_SKIP,
  MAX_SKIPPED_KEYS,
  ratchetDecrypt,
  ready,
  type Session,
} from '../../crypto/index.ts';
import { Dice, flipBit, hexOf, Pair, type Side, sodium } from './helpers.ts';

beforeAll(async () => {
  await ready();
  await sodium.ready;
});

const HEADER = 41;

function u32(b: Uint8Array, off: number): number {
  return new DataView(b.buffer, b.byteOffset + off, 4).getUint32(0);
}

/**
 * The code §7.4 prescribes for a RatchetMessage that is NOT the genuine one (tampered), given the
 * receiver's state: the checks run in the spec's order, and authentication fails last.
 */
function expectedRefusal(session: Session, m: Uint8Array): CryptoErrorCode {
  if (m[0] !== 1) return 'unknown_version';
  const key = m.subarray(1, 33);
  const n = u32(m, 37);
  if (session.skipped.some((k) => k.index === n && equalBytes(k.ratchetKey, key))) return 'decrypt_failed';
  const chain = session.receiving.find((c) => equalBytes(c.ratchetKey, key));
  if (!chain) return n > MAX_SKIP ? 'too_many_skipped' : 'decrypt_failed';
  if (n < chain.index) return 'duplicate_message';
  if (n >= chain.end) return 'decrypt_failed';
  if (n - chain.index > MAX_SKIP) return 'too_many_skipped';
  return 'decrypt_failed';
}

/** Flips every bit of `m` (header and ciphertext) and checks each refusal, then the genuine message. */
function everyBitFlipRefused(p: Pair, to: Side, m: Uint8Array, expectPlain: string): Record<string, number> {
  const seen: Record<string, number> = {};
  for (let bit = 0; bit < m.length * 8; bit++) {
    const bad = flipBit(m, bit);
    const code = expectedRefusal(p.s[to], bad);
    p.refuse(to, bad, code, `bit ${bit}`);
    seen[code] = (seen[code] ?? 0) + 1;
  }
  expect(p.dec(to, m)).toBe(expectPlain);
  return seen;
}

describe('round trips', () => {
  test('a long conversation in both directions, with many DH ratchet steps', () => {
    const p = new Pair('ratchet/long');
    const dice = new Dice('ratchet/long');
    const keysSeen = new Set<string>();
    for (let turn = 0; turn < 80; turn++) {
      const from: Side = turn % 2 === 0 ? 'a' : 'b';
      const to: Side = from === 'a' ? 'b' : 'a';
      const n = 1 + dice.int(4);
      for (let i = 0; i < n; i++) {
        const m = p.enc(from, `t${turn}m${i}`);
        keysSeen.add(hexOf(m.subarray(1, 33)));
        expect(p.dec(to, m)).toBe(`t${turn}m${i}`);
      }
    }
    // One ratchet key per turn: 80 DH steps (plus the two of the setup).
    expect(keysSeen.size).toBe(80);
    expect(p.s.a.skipped.length + p.s.b.skipped.length).toBe(0);
    expect(p.s.a.receiving.length).toBe(MAX_RECEIVING_CHAINS);
  });

  test('out-of-order delivery within one chain uses skipped keys, each exactly once', () => {
    const p = new Pair('ratchet/ooo');
    const ms = p.encMany('a', 6, 'm');
    const order = [5, 0, 3, 1, 4, 2];
    const expectedSkipped = [5, 4, 3, 2, 1, 0];
    order.forEach((i, k) => {
      expect(p.dec('b', ms[i]!)).toBe(`m${i}`);
      expect(p.s.b.skipped.length).toBe(expectedSkipped[k]);
    });
    for (const i of order) p.refuse('b', ms[i]!, 'duplicate_message', `replay m${i}`);
    expect(p.dec('b', p.enc('a', 'after'))).toBe('after');
  });

  test('out-of-order across chains: a late message from an older epoch derives its key on demand', () => {
    const p = new Pair('ratchet/epochs');
    const e1 = p.encMany('a', 4, 'e1-');
    expect(p.dec('b', e1[0]!)).toBe('e1-0');
    expect(p.dec('a', p.enc('b', 'reply'))).toBe('reply');
    const e2 = p.encMany('a', 3, 'e2-');
    // Epoch 2 arrives backwards, then the rest of epoch 1, also backwards.
    expect(p.dec('b', e2[2]!)).toBe('e2-2');
    expect(p.dec('b', e2[0]!)).toBe('e2-0');
    expect(p.s.b.receiving[1]!.end).toBe(4); // epoch 1 closed at its PN
    expect(p.s.b.skipped.length).toBe(1); // e2-1 only: epoch 1 keys are not pre-derived
    expect(p.dec('b', e1[3]!)).toBe('e1-3');
    expect(p.dec('b', e1[1]!)).toBe('e1-1');
    expect(p.dec('b', e2[1]!)).toBe('e2-1');
    expect(p.dec('b', e1[2]!)).toBe('e1-2');
    expect(p.s.b.skipped.length).toBe(0);
    for (const m of [...e1, ...e2]) p.refuse('b', m, 'duplicate_message');
    p.roundTrip('a', 'later');
  });

  test('state encoded and decoded mid-conversation keeps working, and re-encodes identically', () => {
    const p = new Pair('ratchet/serialise');
    const dice = new Dice('ratchet/serialise');
    const pending: { to: Side; m: Uint8Array; text: string }[] = [];
    for (let step = 0; step < 300; step++) {
      for (const side of ['a', 'b'] as const) {
        const bytes = encodeSession(p.s[side]);
        const back = decodeSession(bytes);
        expect(hexOf(encodeSession(back))).toBe(hexOf(bytes));
        p.s[side] = back;
      }
      if (pending.length === 0 || dice.chance(0.55)) {
        const from: Side = dice.chance(0.5) ? 'a' : 'b';
        const t = `s${step}`;
        pending.push({ to: from === 'a' ? 'b' : 'a', m: p.enc(from, t), text: t });
      } else {
        const [x] = pending.splice(dice.int(pending.length), 1);
        expect(p.dec(x!.to, x!.m)).toBe(x!.text);
      }
    }
    for (const x of pending) expect(p.dec(x.to, x.m)).toBe(x.text);
  });
});

describe('tampering', () => {
  test('every bit of a message on the current chain: exact code, state unchanged', () => {
    const p = new Pair('ratchet/flip-current');
    const ms = p.encMany('a', 4, 'c');
    expect(p.dec('b', ms[0]!)).toBe('c0');
    expect(p.dec('b', ms[2]!)).toBe('c2'); // leaves a skipped key for index 1
    const seen = everyBitFlipRefused(p, 'b', ms[3]!, 'c3');
    // The N field's low bits reach a used index (duplicate) and a skipped one; its high bits MAX_SKIP.
    expect(Object.keys(seen).sort()).toEqual(['decrypt_failed', 'duplicate_message', 'too_many_skipped', 'unknown_version']);
    expect(p.dec('b', ms[1]!)).toBe('c1');
  });

  test('every bit of a message that opens a new chain (DH step on receipt)', () => {
    const p = new Pair('ratchet/flip-new');
    const m = p.enc('a', 'new chain');
    const seen = everyBitFlipRefused(p, 'b', m, 'new chain');
    expect(seen['decrypt_failed']).toBeGreaterThan(0);
    expect(seen['too_many_skipped']).toBeGreaterThan(0);
  });

  test('every bit of a late message on an older, closed chain', () => {
    const p = new Pair('ratchet/flip-late');
    const e1 = p.encMany('a', 3, 'old');
    expect(p.dec('b', e1[0]!)).toBe('old0');
    p.roundTrip('b', 'rt');
    const seen = everyBitFlipRefused(p, 'b', e1[1]!, 'old1');
    expect(seen['duplicate_message']).toBeGreaterThan(0);
    // The old chain is closed at end = 3: index 2 still decrypts, anything at or past 3 cannot.
    expect(p.s.b.receiving[1]!.end).toBe(3);
    expect(p.dec('b', e1[2]!)).toBe('old2');
  });

  test('a truncated ciphertext or one shorter than its tag', () => {
    const p = new Pair('ratchet/short');
    const m = p.enc('a', 'x');
    p.refuse('b', m.subarray(0, m.length - 1), 'decrypt_failed');
    p.refuse('b', m.subarray(0, HEADER + 15), 'truncated');
    p.refuse('b', m.subarray(0, HEADER), 'truncated');
    expect(p.dec('b', m)).toBe('x');
  });

  test('a session with another AD (wrong identities bound) cannot decrypt', () => {
    const p = new Pair('ratchet/ad');
    const m = p.enc('a', 'for bob');
    for (const byte of [0, 40, 80, 159]) {
      const wrong: Session = { ...p.s.b, ad: flipBit(p.s.b.ad, byte * 8) };
      const before = hexOf(encodeSession(wrong));
      expect(() => ratchetDecrypt(wrong, m, p.rng)).toThrowError(expect.objectContaining({ code: 'decrypt_failed' }));
      expect(hexOf(encodeSession(wrong))).toBe(before);
    }
    // Swapping the two halves (initiator <-> responder) is a different AD too.
    const swapped: Session = { ...p.s.b, ad: new Uint8Array([...p.s.b.ad.subarray(80), ...p.s.b.ad.subarray(0, 80)]) };
    expect(() => ratchetDecrypt(swapped, m, p.rng)).toThrowError(expect.objectContaining({ code: 'decrypt_failed' }));
    expect(p.dec('b', m)).toBe('for bob');
  });

  test("a message for another conversation (Carol's session) is refused", () => {
    const p = new Pair('ratchet/other-a');
    const q = new Pair('ratchet/other-b');
    const m = p.enc('a', 'to bob');
    const before = hexOf(q.state('b'));
    expect(() => ratchetDecrypt(q.s.b, m, q.rng)).toThrowError(expect.objectContaining({ code: 'decrypt_failed' }));
    expect(hexOf(q.state('b'))).toBe(before);
    expect(p.dec('b', m)).toBe('to bob');
  });
});

describe('replay', () => {
  test('the same message twice is duplicate_message, in order and out of order, in both directions', () => {
    const p = new Pair('ratchet/replay');
    for (let round = 0; round < 5; round++) {
      const [x, y, z] = p.encMany('a', 3, `r${round}-`);
      expect(p.dec('b', z!)).toBe(`r${round}-2`);
      p.refuse('b', z!, 'duplicate_message');
      expect(p.dec('b', x!)).toBe(`r${round}-0`);
      p.refuse('b', x!, 'duplicate_message');
      expect(p.dec('b', y!)).toBe(`r${round}-1`);
      p.refuse('b', y!, 'duplicate_message');
      const back = p.enc('b', `back${round}`);
      expect(p.dec('a', back)).toBe(`back${round}`);
      p.refuse('a', back, 'duplicate_message');
    }
  });
});

describe('limits', () => {
  test(`a new chain: N = MAX_SKIP (${MAX_SKIP}) works, N = MAX_SKIP + 1 is too_many_skipped`, () => {
    const p = new Pair('ratchet/maxskip-new');
    const ms = p.encMany('a', MAX_SKIP + 2, 'k');
    p.refuse('b', ms[MAX_SKIP + 1]!, 'too_many_skipped');
    expect(p.dec('b', ms[MAX_SKIP]!)).toBe(`k${MAX_SKIP}`);
    expect(p.s.b.skipped.length).toBe(MAX_SKIP);
    expect(p.dec('b', ms[MAX_SKIP + 1]!)).toBe(`k${MAX_SKIP + 1}`);
    expect(p.dec('b', ms[0]!)).toBe('k0');
    expect(p.dec('b', ms[MAX_SKIP - 1]!)).toBe(`k${MAX_SKIP - 1}`);
  });

  test('an existing chain: a gap of exactly MAX_SKIP works, one more is too_many_skipped', () => {
    const p = new Pair('ratchet/maxskip-old');
    const ms = p.encMany('a', MAX_SKIP + 3, 'k');
    expect(p.dec('b', ms[0]!)).toBe('k0'); // chain index now 1
    p.refuse('b', ms[MAX_SKIP + 2]!, 'too_many_skipped');
    expect(p.dec('b', ms[MAX_SKIP + 1]!)).toBe(`k${MAX_SKIP + 1}`);
    expect(p.s.b.skipped.length).toBe(MAX_SKIP);
    expect(p.dec('b', ms[MAX_SKIP + 2]!)).toBe(`k${MAX_SKIP + 2}`);
  });

  test(`MAX_SKIPPED_KEYS (${MAX_SKIPPED_KEYS}): the oldest skipped keys are evicted first`, () => {
    const p = new Pair('ratchet/evict');
    const e1 = p.encMany('a', MAX_SKIP + 1, 'e1-');
    expect(p.dec('b', e1[MAX_SKIP]!)).toBe(`e1-${MAX_SKIP}`);
    expect(p.s.b.skipped.length).toBe(MAX_SKIP);
    p.roundTrip('b', 'rt'); // Alice moves to a new chain
    const e2 = p.encMany('a', 6, 'e2-');
    expect(p.dec('b', e2[5]!)).toBe('e2-5'); // 5 more skipped keys: 2005 > 2000
    expect(p.s.b.skipped.length).toBe(MAX_SKIPPED_KEYS);
    expect(p.s.b.skipped[0]!.index).toBe(5); // e1 keys 0..4 evicted
    for (let i = 0; i < 5; i++) p.refuse('b', e1[i]!, 'duplicate_message', `evicted e1-${i}`);
    expect(p.dec('b', e1[5]!)).toBe('e1-5');
    for (let i = 0; i < 5; i++) expect(p.dec('b', e2[i]!)).toBe(`e2-${i}`);
    expect(p.dec('b', e1[MAX_SKIP - 1]!)).toBe(`e1-${MAX_SKIP - 1}`);
    expect(p.s.b.skipped.length).toBe(MAX_SKIPPED_KEYS - 5 - 2);
  });

  for (let epochs = 1; epochs <= MAX_RECEIVING_CHAINS; epochs++) {
    const kept = epochs < MAX_RECEIVING_CHAINS;
    test(`a late message from ${epochs} epoch(s) back ${kept ? 'decrypts' : 'fails cleanly (chain dropped)'}`, () => {
      const p = new Pair(`ratchet/old-epoch-${epochs}`);
      const late = p.encMany('a', 3, 'late');
      expect(p.dec('b', late[0]!)).toBe('late0');
      for (let i = 0; i < epochs; i++) p.roundTrip('b', `rt${i}`);
      expect(p.s.b.receiving.length).toBe(Math.min(MAX_RECEIVING_CHAINS, epochs + 2));
      if (kept) {
        expect(p.dec('b', late[2]!)).toBe('late2');
        expect(p.dec('b', late[1]!)).toBe('late1');
      } else {
        p.refuse('b', late[1]!, 'decrypt_failed');
        p.refuse('b', late[2]!, 'decrypt_failed');
      }
      p.roundTrip('a', 'still');
    });
  }
});

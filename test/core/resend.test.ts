// What the engine keeps of messages sent on unconfirmed sessions (web/core/resend.ts), to send them
// again when the peer reports it refused those sessions (PROTOCOL.md §8 rule 7).
import { beforeAll, describe, expect, test } from 'vitest';
import { ready, toHex } from '../../crypto/index.ts';
import { encodeContent } from '../../web/core/protocol/content.ts';
import { afterSeal, keptAt, type SentEntry, takeDropped } from '../../web/core/resend.ts';
import { Duo } from '../crypto/helpers.ts';

beforeAll(ready);

const content = (n: number, type: 'text' | 'typing' = 'text', size = 10) =>
  encodeContent({ v: 1, id: `id${n}`, at: 1000 + n, conv: { t: 'dm', to: 'bob' }, body: type === 'text' ? { type, text: 'x'.repeat(size) } : { type, on: true } });

describe('the log of what went on unconfirmed sessions', () => {
  test('kept while the session is ours and unconfirmed, dropped once it is confirmed', () => {
    const d = new Duo('resend/confirm');
    d.start('a');
    const base = toHex(d.rec.a.active!.baseKey);
    const c1 = content(1);
    let log: readonly SentEntry[] = afterSeal([], d.rec.a, c1, keptAt(c1), true)!;
    expect(log).toEqual([{ baseKey: base, content: c1, at: 1001 }]);
    // A typing notice is not kept: the log is unchanged.
    expect(keptAt(content(2, 'typing'))).toBeNull();
    expect(afterSeal(log, d.rec.a, content(2, 'typing'), null, true)).toBeNull();
    log = afterSeal(log, d.rec.a, content(3), keptAt(content(3)), true)!;
    expect(log.map((e) => e.at)).toEqual([1001, 1003]);
    // Bob answers: the session is confirmed, so the next seal (a ratchet message) empties the log.
    d.recv('b', d.send('a', 'hi'));
    d.recv('a', d.send('b', 'hello'));
    expect(afterSeal(log, d.rec.a, content(4), keptAt(content(4)), false)).toEqual([]);
    expect(afterSeal([], d.rec.a, content(5), keptAt(content(5)), false)).toBeNull();
  });

  test('bounded: the newest entries, and what a report drops is taken out', () => {
    const d = new Duo('resend/bound');
    d.start('a');
    let log: readonly SentEntry[] = [];
    for (let n = 0; n < 60; n++) log = afterSeal(log, d.rec.a, content(n), keptAt(content(n)), true)!;
    expect(log.length).toBe(50);
    expect(log[0]!.at).toBe(1010);
    const big = content(99, 'text', 15_000);
    for (let n = 0; n < 20; n++) log = afterSeal(log, d.rec.a, big, keptAt(big), true)!;
    expect(log.reduce((s, e) => s + e.content.length, 0)).toBeLessThanOrEqual(256 * 1024);
    const base = toHex(d.rec.a.active!.baseKey);
    expect(takeDropped(log, new Set([base]))).toEqual({ resend: log, rest: [] });
    expect(takeDropped(log, new Set(['00'.repeat(32)]))).toEqual({ resend: [], rest: log });
  });
});

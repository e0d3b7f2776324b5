// Session repair between two engines (headless, in-process relay on PGlite): Alice starts a session
// from a bundle whose signed prekey Bob then rotates away, so Bob refuses it (`unknown_prekey`) and
// repairs by starting a session of his own. Alice's own session is still unconfirmed when his
// arrives, so §8's tie-break compares the two base keys. Whichever is the smaller, Alice must move to
// Bob's session at once (his repair names the session he refused, §8 rule 7) and send again what he
// could not read; before that rule, with Alice's base key the smaller, she kept sending on the
// session Bob can never decrypt until some later repair happened to draw a smaller base key.
// Seeded RNGs make both orders happen, one each.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { decryptFailures } from '../../web/core/views.ts';
import { compareBytes, type DeviceSessions, encodePrekey, encodePrekeySecret, generatePrekey, PrekeyKind, seededRng, toHex, utf8 } from '../../crypto/index.ts';
import { address } from '../../web/core/context.ts';
import { Engine } from '../../web/core/engine.ts';
import type { Fetch } from '../../web/core/net/api.ts';
import { MemoryStore } from '../../web/core/store/memory-store.ts';
import { backends, startTestRelay, type TestRelay, uniqueName } from '../relay/harness.ts';

const BASE = 'http://relay.test';

describe.each(backends.slice(0, 1))('session repair on $name', (backend) => {
  let relay: TestRelay;
  const fetch: Fetch = async (url, init) => relay.app.request(url.slice(BASE.length), init as RequestInit);
  const device = (seed: string) => Engine.open({ store: new MemoryStore(), relayUrl: BASE, fetch, rng: seededRng(utf8(`Petrel repair test: ${seed}`)) });

  beforeAll(async () => {
    relay = await startTestRelay(backend);
  });
  afterAll(async () => relay?.close());

  /** `of`'s record for its peer's (only) device. */
  const record = (of: Engine, peer: Engine): DeviceSessions => {
    const p = peer.ctx.requireMe();
    return of.ctx.sessions.get(address(p.username, p.device.deviceId))!;
  };

  /** Bob replaces his signed prekey (the relay serves the new one) and deletes the old one's secret. */
  const rotateSignedPrekey = async (e: Engine): Promise<void> => {
    const ctx = e.ctx;
    const old = [...ctx.prekeys.keys()].filter((k) => k.startsWith(`${PrekeyKind.signed}/`));
    expect(old.length).toBe(1);
    const made = generatePrekey(ctx.requireMe().device, PrekeyKind.signed, 900_000, ctx.rng);
    await ctx.api.putPrekeys([encodePrekey(made.public)]);
    await ctx.store.write(['prekeys'], async (tx) => {
      await tx.put('prekeys', { id: `${PrekeyKind.signed}/900000`, secret: encodePrekeySecret(made.secret) });
      for (const k of old) await tx.delete('prekeys', k);
    });
    ctx.prekeys.set(`${PrekeyKind.signed}/900000`, made.secret);
    for (const k of old) ctx.prekeys.delete(k);
  };

  const texts = (ms: readonly { text: string }[]) => ms.map((m) => m.text);

  // The seeds are chosen so that each order happens; the test checks that they still do.
  test.each([
    { order: 'alice\u2019s refused session has the smaller base key (the tie-break keeps it)', seed: 7, aliceSmaller: true },
    { order: 'bob\u2019s repair session has the smaller base key', seed: 1, aliceSmaller: false },
  ])('a refused session is replaced at once and what it carried is sent again: $order', async ({ seed, aliceSmaller }) => {
    const [a, b] = [await device(`alice ${seed}`), await device(`bob ${seed}`)];
    const [an, bn] = [uniqueName('a'), uniqueName('b')];
    await a.register(an, 'p');
    await b.register(bn, 'p');
    const conv = await a.openDirect(bn);

    // Alice starts S_A from Bob's bundle; Bob rotates that signed prekey away before it arrives.
    expect(await a.send(conv, 'one')).toMatchObject({ status: 'sent' });
    await a.sendControl([bn], { type: 'typing', on: true }, { t: 'dm', to: bn }); // not worth sending again
    expect(await a.send(conv, 'one more')).toMatchObject({ status: 'sent' });
    await rotateSignedPrekey(b);
    expect(await b.sync()).toEqual([]);
    expect((await decryptFailures(b.ctx.store)).map((f) => f.error)).toEqual(['unknown_prekey', 'unknown_prekey', 'unknown_prekey']);
    // Bob's repair: a session S_B of his own, the repair request sent on it.
    const sA = record(a, b).active!;
    const sB = record(b, a).active!;
    expect(sA.initiatedByUs && !sA.confirmed && sB.initiatedByUs && !sB.confirmed).toBe(true);
    expect(compareBytes(sA.baseKey, sB.baseKey) < 0, 'the seed no longer gives this order of base keys: pick another').toBe(aliceSmaller);

    await a.sync(); // Bob's repair request, on S_B
    // Alice moved to S_B and forgot S_A, which Bob said he refused.
    const after = record(a, b);
    expect(toHex(after.active!.baseKey)).toBe(toHex(sB.baseKey));
    expect([after.active, ...after.inactive].some((s) => s && toHex(s.baseKey) === toHex(sA.baseKey))).toBe(false);

    await a.send(conv, 'two');
    // Bob reads them all: what he refused sent again on S_B, in order, then 'two'; nothing more fails.
    expect(texts(await b.sync())).toEqual(['one', 'one more', 'two']);
    expect((await decryptFailures(b.ctx.store)).length).toBe(3);
    expect(toHex(record(b, a).active!.baseKey)).toBe(toHex(sB.baseKey));

    // Both ways from here on, on the one session.
    await b.send(`dm:${an}`, 'three');
    expect(texts(await a.sync())).toEqual(['three']);
    await a.send(conv, 'four');
    expect(texts(await b.sync())).toEqual(['four']);
    expect(toHex(record(a, b).active!.baseKey)).toBe(toHex(sB.baseKey));
    expect((await decryptFailures(a.ctx.store)).length).toBe(0);
    // Alice's messages are delivered (Bob's receipts came back).
    expect((await a.messages(conv)).filter((m) => m.from === an).map((m) => [m.text, m.status])).toEqual([
      ['one', 'delivered'],
      ['one more', 'delivered'],
      ['two', 'delivered'],
      ['four', 'sent'],
    ]);
    // Nothing is kept for sending again once the sessions are confirmed.
    const kept = await a.ctx.store.read(['meta'], (tx) => tx.getAll('meta'));
    expect(kept.filter((r) => r.key.startsWith('unconfirmed/'))).toEqual([]);
  });
});

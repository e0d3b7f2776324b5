// Two engines on one store, as two tabs of the PWA (or a tab and the service worker's push
// handler) share one IndexedDB under one Web Lock: each must see the sessions the other advanced,
// or it encrypts again with message keys already used and the receiver drops those messages.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Engine } from '../../web/core/engine.ts';
import { mutex } from '../../web/core/context.ts';
import type { Fetch } from '../../web/core/net/api.ts';
import { MemoryStore } from '../../web/core/store/memory-store.ts';
import { backends, startTestRelay, type TestRelay, uniqueName } from '../relay/harness.ts';

const BASE = 'http://relay.test';
let relay: TestRelay;
const fetch: Fetch = async (url, init) => relay.app.request(url.slice(BASE.length), init as RequestInit);

beforeAll(async () => {
  relay = await startTestRelay(backends[0]!);
});
afterAll(async () => relay?.close());

test('two tabs of one device send in turns; every message reaches the other side', async () => {
  const store = new MemoryStore();
  const lock = mutex(); // stands for the Web Lock both tabs take
  const tab1 = await Engine.open({ store, relayUrl: BASE, fetch, lock });
  const b = await Engine.open({ store: new MemoryStore(), relayUrl: BASE, fetch });
  const an = uniqueName('alice');
  const bn = uniqueName('bob');
  await tab1.register(an, 'correct horse');
  await b.register(bn, 'battery staple');
  const tab2 = await Engine.open({ store, relayUrl: BASE, fetch, lock });
  const conv = await tab1.openDirect(bn);
  await tab1.send(conv, 'one, from the first tab');
  await tab2.send(conv, 'two, from the second tab');
  await tab1.send(conv, 'three, from the first tab again');
  await tab2.send(conv, 'four, from the second tab again');
  await b.sync();
  expect((await b.messages(`dm:${an}`)).map((m) => m.text)).toEqual(['one, from the first tab', 'two, from the second tab', 'three, from the first tab again', 'four, from the second tab again']);
}, 60_000);

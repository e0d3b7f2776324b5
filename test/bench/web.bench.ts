// npm run bench:web — the PWA in headless Chromium (Debian's /usr/bin/chromium) on loopback:
//   - gzip bytes of the app's own JavaScript (without libsodium and OPAQUE) and of libsodium;
//   - navigation -> conversation list interactive, cold (no service worker, empty HTTP cache)
//     and warm (service worker precache), for a registered user with stored conversations;
//   - opening a conversation of 10,000 stored messages, and scrolling it to its top, which
//     loads pages of 50 as the top comes into view (never all 10,000 at once).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { buildWeb, sizes } from '../../scripts/build-web.ts';
import { spawnRelay } from '../support/relay-process.ts';

const log = (s: string) => process.stderr.write(s + '\n');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

await buildWeb();
const gz = sizes();
const relay = await spawnRelay({ env: { PETREL_WEB_ROOT: 'web/dist', PETREL_RATE_LIMIT_SCALE: '100' } });
const profile = mkdtempSync(join(tmpdir(), 'petrel-bench-web-'));
const ctx = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
const page = ctx.pages()[0] ?? (await ctx.newPage());
const cdp = await ctx.newCDPSession(page);
await page.goto(relay.url);
await page.waitForSelector('body[data-ready="true"]');
log('registering and storing a 10,000-message conversation...');
await page.getByRole('tab', { name: 'Create account' }).click();
await page.getByLabel('Username').fill(`bench${Date.now().toString(36)}`);
await page.getByLabel('Password').fill('benchmark password');
await page.getByRole('button', { name: 'Create account' }).click();
await page.getByRole('navigation', { name: 'Conversations' }).waitFor();
await page.evaluate(async () => {
  const db: IDBDatabase = await new Promise((res) => { const r = indexedDB.open('petrel'); r.onsuccess = () => res(r.result); });
  const tx = db.transaction(['messages', 'conversations'], 'readwrite');
  const now = Date.now() - 10_000 * 60_000;
  for (let c = 0; c < 30; c++) {
    tx.objectStore('conversations').put({ id: `dm:peer${c}`, kind: 'direct', title: `peer${c}`, members: [`peer${c}`], groupVersion: 0, left: false, lastActivity: now + c, lastPreview: `hello from peer${c}`, unread: c % 3, createdAt: now, keyWarning: false });
  }
  for (let i = 0; i < 10_000; i++) {
    const at = now + i * 60_000;
    tx.objectStore('messages').put({ key: `peer0/m${i}`, id: `m${i}`, conversation: 'dm:peer0', sender: i % 2 ? 'peer0' : 'me', senderDevice: 'x', sentAt: at, receivedAt: at, order: at * 1000, text: `message number ${i}: the quick brown fox jumps over the lazy dog`, replyTo: null, attachment: null, reactions: {}, editedAt: null, deleted: false, status: 'received', deliveredTo: [], readBy: [], system: false });
  }
  await new Promise((r) => (tx.oncomplete = r));
  db.close();
});
await page.evaluate(() => navigator.serviceWorker.ready);

const ready = () => page.evaluate(() => performance.getEntriesByName('petrel-ready')[0]?.startTime ?? NaN);
const warm: number[] = [];
const cold: number[] = [];
for (let i = 0; i < 7; i++) {
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  warm.push(await ready());
}
await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
for (let i = 0; i < 7; i++) {
  await page.evaluate(async () => {
    for (const r of await navigator.serviceWorker.getRegistrations()) await r.unregister();
    for (const k of await caches.keys()) await caches.delete(k);
  });
  await cdp.send('Network.clearBrowserCache');
  await page.goto(relay.url + '/?cold=' + i);
  await page.waitForSelector('body[data-ready="true"]');
  cold.push(await ready());
}
await cdp.send('Network.setCacheDisabled', { cacheDisabled: false });
log(`list interactive: warm ${warm.map((x) => x.toFixed(0)).join(', ')} ms; cold ${cold.map((x) => x.toFixed(0)).join(', ')} ms`);

const opens: number[] = [];
let scroll = NaN;
let rendered = 0;
let maxDom = 0;
for (let i = 0; i < 5; i++) {
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  const t = await page.evaluate(async () => {
    const t0 = performance.now();
    const btn = [...document.querySelectorAll<HTMLButtonElement>('nav .chat')].find((b) => b.textContent?.includes('peer0'))!;
    btn.click();
    const deadline = performance.now() + 15_000;
    while (document.querySelectorAll('.bubble').length === 0) {
      if (performance.now() > deadline) throw new Error('the conversation did not render');
      await new Promise((r) => setTimeout(r, 5));
    }
    return performance.now() - t0;
  });
  opens.push(t);
  if (i === 0) {
    rendered = await page.locator('.bubble').count();
    const t0 = Date.now();
    await page.evaluate(async () => {
      const list = document.querySelector('.messages')!;
      const deadline = performance.now() + 120_000;
      while (!document.querySelector('.top-sentinel span')) {
        if (performance.now() > deadline) throw new Error(`did not reach the top: ${document.querySelectorAll('.bubble').length} bubbles`);
        list.scrollTop = 0;
        await new Promise((r) => setTimeout(r, 16));
        // What a person does at the top: the IntersectionObserver loads the next page; if the
        // position did not change (nothing new intersected), the visible button does it.
        const more = document.querySelector<HTMLButtonElement>('.top-sentinel button');
        if (more && list.scrollTop === 0) more.click();
      }
    });
    scroll = Date.now() - t0;
    maxDom = await page.locator('.bubble').count();
  }
}
await ctx.close();
await relay.close();
rmSync(profile, { recursive: true, force: true });

const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
const ok = (b: boolean) => (b ? 'PASS' : 'MISS');
console.log('\nPetrel web benchmark — headless Chromium on loopback, medians\n');
console.log(`${ok(gz.app <= 60 * 1024)}  app JavaScript, gzip (without libsodium and OPAQUE)   ${kb(gz.app).padStart(9)}   target <= 60 KB`);
console.log(`      libsodium, gzip                                          ${kb(gz.libsodium).padStart(9)}   (standard build ~150 KB)`);
console.log(`      OPAQUE (@serenity-kit/opaque, WASM), gzip                ${kb(gz.opaque).padStart(9)}`);
console.log(`${ok(median(warm) <= 300)}  conversation list interactive, warm (service worker)    ${median(warm).toFixed(0).padStart(6)} ms   target <= 300 ms`);
console.log(`${ok(median(cold) <= 1000)}  conversation list interactive, cold                      ${median(cold).toFixed(0).padStart(6)} ms   target <= 1 s`);
console.log(`${ok(median(opens) <= 300)}  open a 10,000-message conversation                       ${median(opens).toFixed(0).padStart(6)} ms   target <= 300 ms (${rendered} messages rendered on open)`);
console.log(`      scroll that conversation to its top (pages of 50)       ${(scroll / 1000).toFixed(2).padStart(6)} s    (${maxDom} messages in the DOM at the top)`);
process.exit(0);

// The PWA in a real Chromium: register, chat live, link a device with the code (a mistyped one
// is refused; a wait nobody answers can be cancelled; a device whose clock is off is told why it
// cannot link), verify a contact (the mark reaches the other device), a group of three, offline
// and back, a push that the service worker decrypts into a notification, and the update prompt
// (which keeps a half-written message). The shell itself (CSP, install criteria, offline start,
// keyboard, labels) is shell.test.ts. Screenshots go to test/artifacts/screenshots/.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { encodeLinkCode, generateDevice, ready, systemRng } from '../../crypto/index.ts';
import { toB64 } from '../../web/core/b64.ts';
import { uniqueName } from '../relay/harness.ts';
import { announceChromium, enter, hasChromium, type Lab, openChat, shot, startLab } from './harness.ts';

announceChromium('app.test.ts');

const register = (page: Page, name: string) => enter(page, 'Create account', name);

async function send(page: Page, text: string) {
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
}

const bubbles = (page: Page) => page.locator('.bubble .text');

describe.skipIf(!hasChromium)('the PWA in Chromium', () => {
  let lab: Lab;
  const alice = uniqueName('alice');
  const bob = uniqueName('bob');
  const carol = uniqueName('carol');
  let a1: Page, b1: Page, a2: Page, c1: Page;

  beforeAll(async () => {
    lab = await startLab();
  }, 120_000);
  afterAll(async () => lab?.close());

  test('shows the welcome screen', async () => {
    ({ page: a1 } = await lab.device('alice desktop'));
    await expect(a1.getByRole('heading', { name: 'Petrel' }).isVisible()).resolves.toBe(true);
    await a1.evaluate(() => navigator.serviceWorker.ready);
  }, 60_000);

  test('register Alice and Bob; they chat live both ways', async () => {
    await register(a1, alice);
    await shot(a1, '02-empty-conversations');
    ({ page: b1 } = await lab.device('bob phone'));
    await register(b1, bob);
    await a1.getByRole('button', { name: 'New chat' }).click();
    await a1.getByLabel('Username').fill(bob);
    await a1.getByRole('button', { name: 'Start chat' }).click();
    await send(a1, 'Hello Bob, this is end-to-end encrypted');
    await expect.poll(() => a1.locator('.bubble.mine').first().getAttribute('data-status'), { timeout: 15_000 }).toMatch(/sent|delivered|read/);
    await openChat(b1, alice);
    await b1.locator('.bubble .text', { hasText: 'Hello Bob' }).waitFor({ timeout: 15_000 });
    await send(b1, 'Hi Alice! Got it 👍');
    await a1.locator('.bubble .text', { hasText: 'Hi Alice!' }).waitFor({ timeout: 15_000 });
    await expect.poll(() => a1.locator('.bubble.mine').first().getAttribute('data-status'), { timeout: 15_000 }).toBe('read');
    await shot(a1, '03-conversation-desktop');
    await shot(b1, '04-conversation-phone');
  }, 90_000);

  test('edits and deletes reach the chat list: its preview and its search never keep the old text', async () => {
    // Bob looks at his chat list (a phone: the list alone) while Alice writes, edits and deletes.
    await b1.getByRole('button', { name: 'Back to conversations' }).click();
    const bobList = b1.getByRole('navigation', { name: 'Conversations' });
    await send(a1, 'Meet at the old pier');
    await bobList.getByText('Meet at the old pier').waitFor({ timeout: 15_000 });
    const original = a1.locator('.bubble.mine', { hasText: 'Meet at the old pier' });
    await original.hover();
    await original.getByRole('button', { name: 'Edit' }).click();
    await a1.getByLabel('Message', { exact: true }).fill('Meet at the harbour gate');
    await a1.getByRole('button', { name: 'Send' }).click();
    await bobList.getByText('Meet at the harbour gate').waitFor({ timeout: 15_000 });
    expect(await bobList.getByText('old pier').count()).toBe(0);
    const edited = a1.locator('.bubble.mine', { hasText: 'Meet at the harbour gate' });
    a1.once('dialog', (d) => void d.accept());
    await edited.hover();
    await edited.getByRole('button', { name: 'Delete for everyone' }).click();
    await bobList.getByText('Message deleted').waitFor({ timeout: 15_000 });
    await a1.getByRole('navigation', { name: 'Conversations' }).getByText('Message deleted').waitFor();
    await b1.getByLabel('Search conversations').fill('harbour');
    await bobList.getByText('Nothing matches').waitFor();
    await b1.getByLabel('Search conversations').fill('');
    await openChat(b1, alice);
  }, 60_000);

  test('a message the relay refuses says Not sent, in words clear of the composer; Retry sends it once', async () => {
    // Every submission refused (a 4xx, which the outbox does not retry by itself) until it failed.
    await a1.route('**/v1/messages', (route) =>
      route.request().method() === 'POST' ? route.fulfill({ status: 403, contentType: 'application/json', body: JSON.stringify({ error: 'forbidden', message: 'refused by the test' }) }) : route.continue(),
    );
    await send(a1, 'Try this once more');
    const bubble = a1.locator('.bubble.mine', { hasText: 'Try this once more' });
    await bubble.getByText('Not sent').waitFor({ timeout: 15_000 });
    await a1.unroute('**/v1/messages');
    const toast = a1.locator('.toast.error');
    await toast.waitFor();
    expect(await toast.textContent()).toMatch(/^A message was not sent\./);
    expect(await toast.textContent()).not.toMatch(/forbidden|_/);
    const t = (await toast.boundingBox())!;
    for (const name of ['Send', 'Emoji', 'Retry sending this message']) {
      const b = (await a1.getByRole('button', { name, exact: true }).boundingBox())!;
      expect(t.y + t.height <= b.y || b.y + b.height <= t.y || t.x + t.width <= b.x || b.x + b.width <= t.x, `the toast covers ${name}`).toBe(true);
    }
    await shot(a1, '04b-not-sent');
    await bubble.getByRole('button', { name: 'Retry sending this message' }).click();
    await expect.poll(() => bubble.getAttribute('data-status'), { timeout: 15_000 }).toMatch(/sent|delivered|read/);
    expect(await bubble.getByText('Not sent').count()).toBe(0);
    await b1.locator('.bubble .text', { hasText: 'Try this once more' }).waitFor({ timeout: 15_000 });
    expect(await b1.locator('.bubble .text', { hasText: 'Try this once more' }).count()).toBe(1);
    // Read says so in a word, not by shade alone.
    await expect.poll(() => bubble.getAttribute('data-status'), { timeout: 15_000 }).toBe('read');
    expect(await bubble.locator('.tick-word').textContent()).toBe('Read');
    await a1.getByRole('button', { name: 'Dismiss message' }).click().catch(() => {}); // gone by itself already is fine
  }, 60_000);

  test('link a second Alice device with the code; it gets history and live messages', async () => {
    ({ page: a2 } = await lab.device('alice laptop'));
    await a2.getByRole('tab', { name: 'Link this device' }).click();
    await a2.getByRole('button', { name: 'Show link code' }).click();
    const code = await a2.getByTestId('link-code').inputValue();
    expect(code.length).toBe(92);
    // Looking at another tab and back keeps the code the engine is waiting on.
    await a2.getByRole('tab', { name: 'Log in' }).click();
    await a2.getByRole('tab', { name: 'Link this device' }).click();
    expect(await a2.getByTestId('link-code').inputValue()).toBe(code);
    await shot(a2, '05-link-code');
    expect(await a2.getByRole('button', { name: 'Copy code' }).isVisible()).toBe(true);
    await a1.getByRole('button', { name: 'Settings' }).click();
    // One character mistyped: refused, and no device is listed for it.
    const i = 30;
    await a1.getByTestId('approve-code').fill(code.slice(0, i) + (code[i] === 'x' ? 'y' : 'x') + code.slice(i + 1));
    await a1.getByRole('button', { name: 'Approve device' }).click();
    await a1.getByRole('alert').filter({ hasText: 'mistyped' }).waitFor({ timeout: 10_000 });
    // (The list loads on its own: under load it can come after the alert.)
    await expect.poll(() => a1.locator('.devices li').count()).toBe(1);
    // Wrapped over lines, as a narrow window or a chat may paste it: accepted.
    await a1.getByTestId('approve-code').fill(`${code.slice(0, 46)}\n${code.slice(46)}\n`);
    await a1.getByLabel('Name for it (optional)').fill('Alice’s laptop');
    await a1.getByRole('button', { name: 'Approve device' }).click();
    await a2.getByRole('navigation', { name: 'Conversations' }).waitFor({ timeout: 60_000 });
    // Its polls while waiting for the approval were answered "pending", not with errors the console shows.
    expect(lab.problems.filter((p) => p.startsWith('alice laptop:'))).toEqual([]);
    await a1.locator('.devices li', { hasText: 'Alice’s laptop' }).waitFor({ timeout: 10_000 });
    await shot(a1, '06-settings-devices');
    // The linked laptop keeps the name given when approving, and shows under "This device" the
    // short ID its row on the desktop shows.
    const laptopId = await a1.locator('.devices li', { hasText: 'Alice’s laptop' }).locator('.short-id').textContent();
    expect(laptopId).toMatch(/^[0-9A-Z]{4} [0-9A-Z]{4}$/);
    await a1.getByRole('button', { name: 'Close' }).click();
    await a2.getByRole('button', { name: 'Settings' }).click();
    await a2.locator('.this-device strong', { hasText: 'Alice’s laptop' }).waitFor({ timeout: 10_000 });
    expect(await a2.locator('.this-device .short-id').textContent()).toBe(laptopId);
    await a2.getByRole('button', { name: 'Close' }).click();
    await openChat(a2, bob);
    await a2.locator('.bubble .text', { hasText: 'Hello Bob' }).waitFor({ timeout: 30_000 });
    await send(b1, 'Both of your devices see this');
    await a2.locator('.bubble .text', { hasText: 'Both of your devices' }).waitFor({ timeout: 15_000 });
    await a1.locator('.bubble .text', { hasText: 'Both of your devices' }).waitFor({ timeout: 15_000 });
  }, 120_000);

  test('an approval that nobody answers stays shown when Settings is reopened, and can be cancelled and removed', async () => {
    // A code of a device that exists nowhere, so it never comes online.
    await ready();
    const absent = toB64(encodeLinkCode(generateDevice(systemRng)));
    await a1.getByRole('button', { name: 'Settings' }).click();
    await a1.getByTestId('approve-code').fill(absent);
    await a1.getByLabel('Name for it (optional)').fill('Old tablet');
    await a1.getByRole('button', { name: 'Approve device' }).click();
    await a1.getByText('Waiting for Old tablet to come online').waitFor({ timeout: 10_000 });
    await a1.getByRole('button', { name: 'Close' }).click();
    await a1.getByRole('button', { name: 'Settings' }).click();
    // The wait goes on: shown with its Cancel, and no second Approve.
    await a1.getByText('Waiting for Old tablet to come online').waitFor({ timeout: 10_000 });
    expect(await a1.getByRole('button', { name: 'Approve device' }).count()).toBe(0);
    await a1.locator('.devices li', { hasText: 'Old tablet' }).waitFor({ timeout: 10_000 });
    await a1.getByRole('button', { name: 'Cancel' }).click();
    await a1.getByText('Stopped waiting.').waitFor({ timeout: 10_000 });
    await a1.getByRole('button', { name: 'Remove Old tablet' }).click();
    await a1.getByRole('button', { name: 'Approve device' }).waitFor({ timeout: 10_000 });
    await expect.poll(() => a1.locator('.devices li', { hasText: 'Old tablet' }).count(), { timeout: 10_000 }).toBe(0);
    // Nothing to tell: no toast about the removed device.
    expect(await a1.getByRole('alert').filter({ hasText: /removed|Old tablet/ }).count()).toBe(0);
    await a1.getByRole('button', { name: 'Close' }).click();
  }, 60_000);

  test('a device whose clock is 20 minutes fast is told so where it shows the link code', async () => {
    const { page } = await lab.device('fast clock tablet');
    // The engine reads the clock from the page it starts in: set it, then start the page again.
    await page.clock.setSystemTime(Date.now() + 20 * 60_000);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
    await page.getByRole('tab', { name: 'Link this device' }).click();
    await page.getByRole('button', { name: 'Show link code' }).click();
    const status = page.getByText('Linking stopped:');
    await status.waitFor({ timeout: 15_000 });
    expect(await status.textContent()).toBe(
      'Linking stopped: This device’s clock is 20 minutes ahead of the relay’s (linking allows 5 minutes either way). Set its date, time and time zone correctly (automatic is best), then start linking again.',
    );
    // Once the clock is right, the person can start again.
    expect(await page.getByRole('button', { name: 'Show link code' }).isVisible()).toBe(true);
    await page.context().close();
  }, 60_000);

  test('Alice verifies Bob: the mark shows in the header and the list, and reaches her laptop', async () => {
    const mark = (p: Page) => p.locator('.conv-head').getByText('Verified', { exact: true });
    await openChat(a1, bob);
    expect(await mark(a1).count()).toBe(0);
    await a1.getByRole('button', { name: 'Contact info' }).click();
    const digits = a1.getByLabel('Safety number digits');
    await digits.waitFor();
    // The QR code is an SVG image in a data: URL: it loads under the CSP, at 4 px per module.
    const qr = a1.getByRole('img', { name: 'Safety number as a QR code' });
    await expect.poll(() => qr.evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth > 0)).toBe(true);
    expect(((await qr.boundingBox())!.width - 32) % 4).toBe(0);
    // Bob, on his phone, sees the same number for Alice: they compare, it matches.
    await openChat(b1, alice);
    await b1.getByRole('button', { name: 'Contact info' }).click();
    await b1.getByLabel('Safety number digits').waitFor();
    expect(await b1.getByLabel('Safety number digits').textContent()).toBe(await digits.textContent());
    await b1.getByRole('button', { name: 'Close' }).click();
    await a1.getByRole('checkbox', { name: 'Verified' }).check();
    await mark(a1).waitFor({ timeout: 10_000 });
    expect(await a1.getByRole('checkbox', { name: 'Verified' }).isChecked()).toBe(true);
    // In the list the word is for screen readers; the row's name carries it.
    await a1.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: new RegExp(`${bob}\\W+verified`) }).waitFor();
    await shot(a1, '06a-verified-contact');
    await a1.getByRole('button', { name: 'Close' }).click();
    // Alice's laptop has the conversation open: the mark appears there too, for the same key.
    await mark(a2).waitFor({ timeout: 20_000 });
    // Bob did not verify Alice: nothing is claimed on his side.
    expect(await mark(b1).count()).toBe(0);
  }, 90_000);

  test('a different key for Bob on the laptop: the mark goes, and the conversation says his safety number changed', async () => {
    // The relay cannot be made to serve a second key for Bob here. Instead the laptop's pinned
    // key for him is made to differ (contacts are not sealed at rest): seen from the laptop, the
    // relay now serves a list signed by another key — the same event, down the same code path.
    await a2.evaluate(async (user) => {
      const db = await new Promise<IDBDatabase>((ok, fail) => Object.assign(indexedDB.open('petrel'), { onsuccess(this: IDBOpenDBRequest) { ok(this.result); }, onerror: fail }));
      const tx = db.transaction('contacts', 'readwrite');
      const row = await new Promise<{ accountKey: Uint8Array }>((ok) => Object.assign(tx.objectStore('contacts').get(user), { onsuccess(this: IDBRequest) { ok(this.result); } }));
      tx.objectStore('contacts').put({ ...row, accountKey: crypto.getRandomValues(new Uint8Array(row.accountKey.length)) });
      await new Promise((ok) => (tx.oncomplete = ok));
      db.close();
    }, bob);
    // Comparing numbers fetches Bob's list afresh.
    await a2.getByRole('button', { name: 'Contact info' }).click();
    await a2.getByText(`Your safety number with ${bob} changed`, { exact: false }).first().waitFor({ timeout: 15_000 });
    const head = a2.locator('.conv-head');
    await expect.poll(() => head.getByText('Verified', { exact: true }).count()).toBe(0);
    await a2.getByRole('alert').filter({ hasText: `Your safety number with ${bob} changed` }).waitFor();
    await a2.locator('.system', { hasText: `${bob} is no longer marked as verified` }).waitFor();
    expect(await a2.getByRole('checkbox', { name: 'Verified' }).isChecked()).toBe(false);
    await a2.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: new RegExp(`${bob}\\W+safety number changed`) }).waitFor();
    await shot(a2, '06b-safety-number-changed');
    // Comparing again and marking the new number verified settles it.
    await a2.getByRole('checkbox', { name: 'Verified' }).check();
    await head.getByText('Verified', { exact: true }).waitFor({ timeout: 10_000 });
    await a2.locator('.key-warning').waitFor({ state: 'detached' });
    await a2.getByRole('button', { name: 'Close' }).click();
  }, 60_000);

  test('a group of three', async () => {
    ({ page: c1 } = await lab.device('carol desktop'));
    await register(c1, carol);
    await a1.getByRole('button', { name: 'New group' }).click();
    await a1.getByLabel('Group name').fill('Lighthouse');
    await a1.getByLabel(/Members/).fill(`${bob}, ${carol}`);
    await a1.getByRole('button', { name: 'Create group' }).click();
    await a1.getByRole('heading', { name: 'Lighthouse' }).waitFor();
    await send(a1, 'Welcome to the group');
    for (const p of [b1, c1]) {
      const back = p.getByRole('button', { name: 'Back to conversations' });
      if (await back.isVisible()) await back.click();
      await p.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: /Lighthouse/ }).waitFor({ timeout: 20_000 });
      await openChat(p, 'Lighthouse');
      await p.locator('.bubble .text', { hasText: 'Welcome to the group' }).waitFor({ timeout: 20_000 });
    }
    await send(c1, 'Carol here');
    await a1.locator('.bubble .text', { hasText: 'Carol here' }).waitFor({ timeout: 20_000 });
    await b1.locator('.bubble .text', { hasText: 'Carol here' }).waitFor({ timeout: 20_000 });
    // A group claims no verification of its own; in its member list, verified Bob is marked, Carol is not.
    expect(await a1.locator('.conv-head .verified-mark').count()).toBe(0);
    expect(await a1.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: /Lighthouse/ }).locator('.verified-mark').count()).toBe(0);
    await a1.getByRole('button', { name: 'Group info' }).click();
    await a1.locator('.members li', { hasText: bob }).getByText('Verified', { exact: true }).waitFor();
    expect(await a1.locator('.members li', { hasText: carol }).locator('.verified-mark').count()).toBe(0);
    await shot(a1, '07-group-info');
    await a1.getByRole('button', { name: 'Close' }).click();
  }, 120_000);

  test('after leaving a group its info is read-only, and the group can be removed from the chat list', async () => {
    c1.once('dialog', (d) => void d.accept());
    await c1.getByRole('button', { name: 'Group info' }).click();
    await c1.getByRole('button', { name: 'Leave group' }).click();
    await c1.getByRole('dialog', { name: 'Group info' }).getByText('You are no longer a member of this group.', { exact: false }).waitFor({ timeout: 15_000 });
    for (const name of ['Rename', 'Add', 'Leave group', `Remove ${bob}`]) expect(await c1.getByRole('button', { name, exact: true }).count(), name).toBe(0);
    await shot(c1, '07b-left-group-info');
    c1.once('dialog', (d) => void d.accept());
    await c1.getByRole('button', { name: 'Remove from chat list' }).click();
    await expect.poll(() => c1.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: /Lighthouse/ }).count(), { timeout: 10_000 }).toBe(0);
  }, 60_000);

  test('offline: history from IndexedDB after a reload, the message waits, then is delivered', async () => {
    await openChat(a1, bob);
    await a1.context().setOffline(true);
    await send(a1, 'Sent while offline');
    // In the outbox (IndexedDB) once it shows as pending; a reload before that could lose it.
    const waiting = a1.locator('.bubble.mine[data-status="pending"]', { hasText: 'Sent while offline' });
    await waiting.waitFor({ timeout: 10_000 });
    await a1.locator('.outbox').waitFor({ timeout: 10_000 });
    await a1.reload();
    await a1.waitForSelector('body[data-ready="true"]');
    await openChat(a1, bob);
    await a1.locator('.bubble .text', { hasText: 'Hello Bob' }).waitFor();
    await waiting.waitFor(); // still waiting after the reload: the outbox survived it
    await shot(a1, '08-offline');
    await openChat(b1, alice);
    await a1.context().setOffline(false);
    await b1.locator('.bubble .text', { hasText: 'Sent while offline' }).waitFor({ timeout: 40_000 });
    await a1.locator('.outbox').waitFor({ state: 'detached', timeout: 20_000 });
  }, 90_000);

  test('a push delivered to the service worker shows a decrypted notification', async () => {
    // Bob closes the app; a same-origin page without the app stays open to talk to the worker.
    const ctx = b1.context();
    const quiet = await ctx.newPage();
    await quiet.goto(lab.relay.url + '/manifest.webmanifest');
    await b1.close();
    await send(a1, 'Ping for your lock screen');
    // The push must find the message at the relay: wait until the relay has accepted it.
    await a1.locator('.bubble.mine:not([data-status="pending"])', { hasText: 'Ping for your lock screen' }).waitFor({ timeout: 20_000 });
    const cdp = await ctx.newCDPSession(quiet);
    const registration = new Promise<string>((resolve) =>
      cdp.on('ServiceWorker.workerRegistrationUpdated', (e: { registrations: { registrationId: string; scopeURL: string; isDeleted: boolean }[] }) => {
        const r = e.registrations.find((x) => !x.isDeleted);
        if (r) resolve(r.registrationId);
      }),
    );
    await cdp.send('ServiceWorker.enable');
    await cdp.send('ServiceWorker.deliverPushMessage', { origin: lab.relay.url, registrationId: await registration, data: '{"v":1,"type":"sync"}' });
    const notes = await expect
      .poll(async () => quiet.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => ({ title: n.title, body: n.body }))), { timeout: 20_000 })
      .toEqual(expect.arrayContaining([{ title: alice, body: 'Ping for your lock screen' }]));
    void notes;
  }, 60_000);

  test('a new version shows the update prompt; reloading keeps the half-written message', async () => {
    await openChat(a1, bob);
    await a1.getByLabel('Message', { exact: true }).fill('half-written, not sent yet');
    appendFileSync(join(lab.webRoot, 'sw.js'), `\n// version bump ${Date.now()}\n`);
    await a1.evaluate(async () => (await navigator.serviceWorker.getRegistration())!.update());
    await a1.getByText('A new version of Petrel is ready').waitFor({ timeout: 20_000 });
    await shot(a1, '09-update-available');
    // Nothing happens until the person clicks; then the new worker takes over and the page reloads.
    expect(await a1.getByLabel('Message', { exact: true }).inputValue()).toBe('half-written, not sent yet');
    await Promise.all([a1.waitForEvent('load', { timeout: 20_000 }), a1.getByRole('button', { name: 'Reload' }).click()]);
    await a1.waitForSelector('body[data-ready="true"]');
    await openChat(a1, bob);
    expect(await a1.getByLabel('Message', { exact: true }).inputValue()).toBe('half-written, not sent yet');
    expect(await a1.getByText('A new version of Petrel is ready').count()).toBe(0);
    expect(lab.problems.filter((p) => !/Failed to load resource|ERR_INTERNET_DISCONNECTED|net::ERR/.test(p))).toEqual([]);
  }, 60_000);
});

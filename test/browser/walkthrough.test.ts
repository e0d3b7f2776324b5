// What a new user ran into in a walkthrough of the PWA, in Chromium: after logging in on a new
// device, the history still on its way said so nowhere (and the empty list claimed there were no
// conversations); "Link this device" waited silently while the relay was out of reach; on a phone,
// a toast on the welcome screen covered the heading and a message's toolbar covered the time of
// the message above. Each is checked here as the user sees it. Screenshots go to
// test/artifacts/screenshots/.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Engine } from '../../web/core/engine.ts';
import { explain } from '../../web/core/explain.ts';
import type { Fetch } from '../../web/core/net/api.ts';
import { MemoryStore } from '../../web/core/store/memory-store.ts';
import { uniqueName } from '../relay/harness.ts';
import { announceChromium, enter, hasChromium, type Lab, PASSWORD, shot, startLab } from './harness.ts';

announceChromium('walkthrough.test.ts');

type Box = { x: number; y: number; width: number; height: number };
const overlap = (a: Box, b: Box) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

describe.skipIf(!hasChromium)('a new user’s walkthrough, in Chromium', () => {
  let lab: Lab;
  const headless = () => Engine.open({ store: new MemoryStore(), relayUrl: lab.relay.url, fetch: globalThis.fetch as unknown as Fetch });
  const alice = uniqueName('alice');
  const bob = uniqueName('bob');
  let phone: Engine;
  let bobs: Engine;

  beforeAll(async () => {
    lab = await startLab();
    phone = await headless();
    await phone.register(alice, PASSWORD);
    bobs = await headless();
    await bobs.register(bob, 'battery staple');
    await phone.send(await phone.openDirect(bob), 'from before the laptop');
  }, 120_000);
  afterAll(async () => lab?.close());

  test('logged in on a new device: the history is said to be arriving, not "no conversations", until it came', async () => {
    const { page } = await lab.device('alice laptop');
    await enter(page, 'Log in', alice);
    // Alice's phone has not been online since: the history waits for it.
    const arriving = page.getByRole('status').filter({ hasText: 'Your history is still arriving from your other device' });
    await arriving.waitFor({ timeout: 15_000 });
    const list = page.getByRole('navigation', { name: 'Conversations' });
    await list.getByText('Your conversations are still arriving').waitFor();
    expect(await page.getByText('No conversations yet').count()).toBe(0); // the list, nor the pane beside it
    await shot(page, 'walkthrough-history-arriving');
    // Still so after a reload: it is the device's state, not the page's.
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    await arriving.waitFor({ timeout: 15_000 });

    await phone.sync(); // the phone hears of the laptop and sends it the history
    await list.getByRole('button', { name: new RegExp(bob) }).waitFor({ timeout: 30_000 });
    await arriving.waitFor({ state: 'detached', timeout: 15_000 });
    expect(await page.getByText('still arriving').count()).toBe(0);
  }, 90_000);

  test('"Link this device" says when the relay is out of reach, and goes on once it answers', async () => {
    const { page } = await lab.device('alice tablet');
    await page.route('**/v1/devices/claim', (route) => route.abort());
    await page.getByRole('tab', { name: 'Link this device' }).click();
    await page.getByRole('button', { name: 'Show link code' }).click();
    const down = page.getByRole('alert').filter({ hasText: 'Petrel cannot reach the relay. Check your connection; linking goes on by itself once it is back.' });
    await down.waitFor({ timeout: 15_000 });
    await shot(page, 'walkthrough-link-unreachable');
    await page.unroute('**/v1/devices/claim');
    await down.waitFor({ state: 'detached', timeout: 15_000 });
    await page.getByText('Waiting for approval on your other device').waitFor();
    // It finishes by itself: the relay answers, the phone approves, the tablet is in.
    await phone.approveLink(await page.getByTestId('link-code').inputValue(), { pollMs: 200 });
    await page.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: new RegExp(bob) }).waitFor({ timeout: 30_000 });
  }, 90_000);

  test('the relay out of reach reads the same everywhere: the banner says what the failed action says', async () => {
    const { page } = await lab.device('alice desk');
    await page.route('**/v1/accounts/login/start', (route) => route.abort());
    await page.getByRole('tab', { name: 'Log in' }).click();
    await page.getByLabel('Username').fill(alice);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').locator('.toast', { hasText: 'Petrel cannot reach the relay. Check your connection; then try again.' }).waitFor({ timeout: 15_000 });
    await page.unroute('**/v1/accounts/login/start');
    await enter(page, 'Log in', alice);
    await page.context().setOffline(true);
    await page.getByRole('status').filter({ hasText: explain('network') }).waitFor({ timeout: 15_000 });
    expect(explain('network')).toMatch(/^Petrel cannot reach the relay\. Check your connection; /);
    expect(await page.getByText(/Offline —|cannot be reached|cannot reach the server/).count()).toBe(0);
    await page.context().setOffline(false);
  }, 90_000);

  test('on a phone, a welcome-screen toast leaves the heading and the tabs visible', async () => {
    const { page } = await lab.device('carol phone');
    // An error toast on the welcome screen (a wrong password).
    await page.getByRole('tab', { name: 'Log in' }).click();
    await page.getByLabel('Username').fill(alice);
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Log in' }).click();
    const toast = page.getByRole('alert').locator('.toast', { hasText: 'Wrong username or password' });
    await toast.waitFor({ timeout: 20_000 });
    await shot(page, 'walkthrough-phone-welcome-toast');
    const heading = await page.getByRole('heading', { name: 'Petrel' }).boundingBox();
    expect(overlap((await toast.boundingBox())!, heading!)).toBe(false);
    for (const tab of await page.getByRole('tab').all()) expect(overlap((await toast.boundingBox())!, (await tab.boundingBox())!)).toBe(false);
  }, 60_000);

  test('on a phone, a message’s toolbar leaves the time and text of the message above it visible, and stays on the screen', async () => {
    const { page } = await lab.device('carol phone');
    const carol = uniqueName('carol');
    await enter(page, 'Create account', carol);
    await page.getByRole('button', { name: 'New chat' }).click();
    await page.getByLabel('Username').fill(bob);
    await page.getByRole('button', { name: 'Start chat' }).click();
    // Short and long, mine and theirs, in every order: the toolbar of each against the time above.
    const texts = ['ok', 'yes', 'a longer message that takes most of the width of a phone, and wraps', 'k', 'fine'];
    for (const [i, text] of texts.entries()) {
      if (i === 3) {
        const conv = await bobs.openDirect(carol);
        await bobs.send(conv, 'k');
        await bobs.send(conv, 'a reply from Bob that is long enough to wrap on a phone, too');
      } else await send(page, text);
    }
    const bubbles = page.locator('.bubble');
    await bubbles.nth(texts.length).waitFor({ timeout: 15_000 });
    const n = await bubbles.count();
    expect(n).toBe(texts.length + 1);
    const width = page.viewportSize()!.width;
    for (let i = 1; i < n; i++) {
      await bubbles.nth(i).focus();
      const bar = bubbles.nth(i).locator('.actions');
      const [box, above] = [(await bar.boundingBox())!, (await bubbles.nth(i - 1).locator('time').boundingBox())!];
      expect(overlap(box, above), `message ${i}'s toolbar against the time of message ${i - 1}`).toBe(false);
      expect(overlap(box, (await bubbles.nth(i - 1).locator('.text').boundingBox())!)).toBe(false);
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(width);
      if (i === 3) await shot(page, 'walkthrough-phone-toolbar');
    }
  }, 120_000);
});

async function send(page: Page, text: string): Promise<void> {
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('.bubble.mine .text', { hasText: text }).waitFor({ timeout: 15_000 });
}

// A reaction or an edit the relay refuses, in Chromium: the message says so in words (no codes)
// with Retry and Discard, still after a reload (it is stored, not held in memory); Retry, pressed
// from the keyboard, sends the edit once (Bob sees it, one message) and leaves focus on the
// message; Discard takes a refused reaction back. Screenshots go to test/artifacts/screenshots/.
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { uniqueName } from '../relay/harness.ts';
import { announceChromium, enter, hasChromium, type Lab, openChat, shot, startLab, unnamedControls } from './harness.ts';

announceChromium('changes.test.ts');

const holds = (l: Locator) => l.evaluate((el) => el.contains(document.activeElement));
const focusIsOn = (l: Locator) => expect.poll(() => holds(l), { timeout: 10_000 }).toBe(true);

/** Every submission refused with a 4xx (which the outbox does not retry by itself) until `allow`. */
async function refuseSends(page: Page): Promise<() => Promise<void>> {
  const pattern = '**/v1/messages';
  await page.route(pattern, (route) =>
    route.request().method() === 'POST' ? route.fulfill({ status: 403, contentType: 'application/json', body: JSON.stringify({ error: 'forbidden', message: 'refused by the test' }) }) : route.continue(),
  );
  return () => page.unroute(pattern);
}


describe.skipIf(!hasChromium)('failed reactions and edits in Chromium', () => {
  let lab: Lab;
  const alice = uniqueName('alice');
  const bob = uniqueName('bob');
  let a: Page, b: Page;

  beforeAll(async () => {
    lab = await startLab();
    ({ page: a } = await lab.device('changes alice desktop'));
    ({ page: b } = await lab.device('changes bob desktop'));
    await enter(a, 'Create account', alice);
    await enter(b, 'Create account', bob);
  }, 180_000);
  afterAll(async () => lab?.close());

  test('a refused edit shows on its message across a reload; Retry from the keyboard sends it once; Discard takes a refused reaction back', async () => {
    await a.getByRole('button', { name: 'New chat' }).click();
    await a.getByLabel('Username').fill(bob);
    await a.getByRole('button', { name: 'Start chat' }).click();
    await a.getByLabel('Message', { exact: true }).fill('The ferry leaves at nine');
    await a.getByRole('button', { name: 'Send' }).click();
    await b.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: new RegExp(alice) }).waitFor({ timeout: 15_000 });
    await openChat(b, alice);
    const bobsCopy = b.locator('.bubble', { hasText: /The ferry leaves at/ });
    await bobsCopy.waitFor({ timeout: 15_000 });

    // The edit, refused.
    const allow = await refuseSends(a);
    const mine = a.locator('.bubble.mine', { hasText: /The ferry leaves at/ });
    await mine.hover();
    await mine.getByRole('button', { name: 'Edit' }).click();
    const box = a.getByLabel('Message', { exact: true });
    await box.fill('The ferry leaves at ten');
    await box.press('Enter');
    const notice = mine.locator('.change-failed');
    await notice.waitFor({ timeout: 15_000 });
    expect(await notice.textContent()).toMatch(/Your edit was not sent: the others still see the earlier text\./);
    expect(await notice.textContent()).not.toMatch(/forbidden|_/);

    // Stored, not only in memory: a reload shows it again.
    await a.reload();
    await a.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
    await openChat(a, bob);
    await notice.waitFor({ timeout: 15_000 });
    expect(await mine.locator('.text').textContent()).toBe('The ferry leaves at ten');
    expect(await unnamedControls(a)).toEqual([]);
    await shot(a, 'change-not-sent');

    // Retry from the keyboard: the notice goes, focus stays on the message (not the page).
    await allow();
    const retry = mine.getByRole('button', { name: 'Retry sending this edit' });
    await retry.focus();
    await a.keyboard.press('Enter');
    await expect.poll(() => notice.count(), { timeout: 15_000 }).toBe(0);
    await focusIsOn(mine);
    expect(await a.evaluate(() => document.activeElement === document.body)).toBe(false);
    await b.locator('.bubble .text', { hasText: 'The ferry leaves at ten' }).waitFor({ timeout: 15_000 });
    expect(await bobsCopy.count()).toBe(1);
    expect(await bobsCopy.textContent()).toMatch(/edited/);

    // A refused reaction, discarded: the message shows no reaction of ours, as Bob sees it.
    const allowAgain = await refuseSends(a);
    await mine.hover();
    await mine.getByRole('button', { name: 'React' }).click();
    await a.getByRole('button', { name: 'React with 👍' }).click();
    await notice.waitFor({ timeout: 15_000 });
    expect(await notice.textContent()).toMatch(/👍 Your reaction was not sent\./);
    await mine.locator('.reactions').waitFor();
    await notice.getByRole('button', { name: 'Discard this reaction' }).click();
    await expect.poll(() => notice.count(), { timeout: 10_000 }).toBe(0);
    expect(await mine.locator('.reactions').count()).toBe(0);
    await focusIsOn(mine);
    await allowAgain();
    expect(await bobsCopy.locator('.reactions').count()).toBe(0);
  }, 120_000);
});

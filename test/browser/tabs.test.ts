// Two tabs of one profile, in Chromium: each runs an engine over the same IndexedDB, under one
// Web Lock. A message the relay delivers shows in both tabs (whichever took it tells the other),
// and both can send in turns without the other side losing any (each turn rereads the sessions
// the other tab advanced).
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { uniqueName } from '../relay/harness.ts';
import { announceChromium, enter, hasChromium, type Lab, startLab, watch } from './harness.ts';

announceChromium('tabs.test.ts');

const box = (p: Page) => p.getByRole('textbox', { name: 'Message', exact: true });
async function send(p: Page, text: string): Promise<void> {
  await box(p).fill(text);
  await box(p).press('Enter');
  await p.locator('.bubble.mine', { hasText: text }).waitFor();
}
const texts = (p: Page) => p.locator('.bubble .text').allTextContents();

describe.skipIf(!hasChromium)('two tabs of one profile', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await startLab();
  }, 120_000);
  afterAll(async () => lab?.close());

  test('both tabs show what arrives; sending from each in turn loses nothing', async () => {
    const alice = uniqueName('alice');
    const bob = uniqueName('bob');
    const { context, page: tab1 } = await lab.device('alice');
    await enter(tab1, 'Create account', alice);
    const { page: b } = await lab.device('bob');
    await enter(b, 'Create account', bob);
    await tab1.getByRole('button', { name: 'New chat' }).click();
    await tab1.getByRole('dialog').getByLabel('Username').fill(bob);
    await tab1.getByRole('button', { name: 'Start chat' }).click();
    await send(tab1, 'one, from the first tab');
    const tab2 = await context.newPage();
    watch(context, tab2, 'alice tab 2', lab.relay.url, lab.problems);
    await tab2.goto(lab.relay.url);
    await tab2.getByRole('button', { name: new RegExp(bob) }).click();
    await b.getByRole('button', { name: new RegExp(alice) }).click();
    for (const t of ['bob 1', 'bob 2', 'bob 3']) {
      await box(b).fill(t);
      await box(b).press('Enter');
    }
    for (const tab of [tab1, tab2]) await tab.locator('.bubble .text', { hasText: 'bob 3' }).waitFor({ timeout: 15_000 });
    expect(await texts(tab1)).toEqual(await texts(tab2));
    await send(tab2, 'two, from the second tab');
    await send(tab1, 'three, from the first tab again');
    await send(tab2, 'four, from the second tab again');
    await b.locator('.bubble .text', { hasText: 'four' }).waitFor({ timeout: 15_000 });
    await expect.poll(() => texts(b), { timeout: 15_000 }).toEqual(['one, from the first tab', 'bob 1', 'bob 2', 'bob 3', 'two, from the second tab', 'three, from the first tab again', 'four, from the second tab again']);
    expect(lab.problems).toEqual([]);
  }, 120_000);
});

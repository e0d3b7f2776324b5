// What a newcomer runs into, in Chromium: an error from a first try at an account does not stay
// on the screen once the second try worked, and someone removed from a group is told they are no
// longer a member (not that they left), in the chat list and in the group's info; the longest
// username fits the group's member list.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { uniqueName } from '../relay/harness.ts';
import { announceChromium, enter, hasChromium, type Lab, PASSWORD, startLab } from './harness.ts';

announceChromium('newcomer.test.ts');

describe.skipIf(!hasChromium)('a newcomer', () => {
  let lab: Lab;
  const alice = uniqueName('alice');
  const bob = uniqueName('bob');
  let a: Page, b: Page;

  beforeAll(async () => {
    lab = await startLab();
  }, 120_000);
  afterAll(async () => lab?.close());

  test('a taken username says so; once another name works, that error is gone', async () => {
    ({ page: a } = await lab.device('alice'));
    await enter(a, 'Create account', alice);
    ({ page: b } = await lab.device('bob'));
    await b.getByLabel('Username').fill(alice.toUpperCase());
    await b.getByLabel('Password').fill(PASSWORD);
    await b.getByRole('button', { name: 'Create account' }).click();
    await b.getByRole('alert').getByText('That username is taken').waitFor({ timeout: 15_000 });
    await enter(b, 'Create account', bob);
    expect(await b.getByText('That username is taken').count()).toBe(0);
  }, 60_000);

  test('removed from a group: "no longer a member", not "you left"', async () => {
    await a.getByRole('button', { name: 'New group' }).click();
    await a.getByLabel('Group name').fill('Dinghy');
    await a.getByLabel(/Members/).fill(bob);
    await a.getByRole('button', { name: 'Create group' }).click();
    const row = b.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: /Dinghy/ });
    await row.waitFor({ timeout: 15_000 });
    a.once('dialog', (d) => void d.accept());
    await a.getByRole('button', { name: 'Group info' }).click();
    await a.getByRole('button', { name: `Remove ${bob}` }).click();
    await row.getByText('You are no longer a member').waitFor({ timeout: 15_000 });
    await row.click();
    await b.getByRole('button', { name: 'Group info' }).click();
    await b.getByRole('dialog', { name: 'Group info' }).getByText('You are no longer a member of this group.', { exact: false }).waitFor();
    expect(await b.getByText(/you left/i).count()).toBe(0);
  }, 60_000);

  test('a 32-character username in a group\'s members wraps; its Remove button stays in the panel', async () => {
    const long = uniqueName('w'.repeat(22)); // 32 characters, the most a username may have
    expect(long.length).toBe(32);
    const { page: w } = await lab.device('long name');
    await enter(w, 'Create account', long);
    await a.keyboard.press('Escape'); // the group info left open by the test before
    await a.getByRole('button', { name: 'New group' }).click();
    await a.getByLabel('Group name').fill('Long names');
    await a.getByLabel(/Members/).fill(long);
    await a.getByRole('button', { name: 'Create group' }).click();
    await a.getByRole('heading', { name: 'Long names' }).waitFor();
    await a.getByRole('button', { name: 'Group info' }).click();
    const panel = a.getByRole('dialog', { name: 'Group info' });
    const remove = panel.getByRole('button', { name: `Remove ${long}` });
    await remove.waitFor();
    const [p, r] = [await panel.boundingBox(), await remove.boundingBox()];
    expect(r!.x + r!.width).toBeLessThanOrEqual(p!.x + p!.width);
    expect(await panel.evaluate((el) => el.scrollWidth - el.clientWidth)).toBe(0);
    expect(lab.problems.filter((p) => !/409|Failed to load resource/.test(p))).toEqual([]);
  }, 60_000);
});

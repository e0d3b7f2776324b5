// What a newcomer runs into, in Chromium: an error from a first try at an account does not stay
// on the screen once the second try worked, and someone removed from a group is told they are no
// longer a member (not that they left), in the chat list and in the group's info.
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
    expect(lab.problems.filter((p) => !/409|Failed to load resource/.test(p))).toEqual([]);
  }, 60_000);
});

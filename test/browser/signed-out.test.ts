// A device signed out by the relay, in Chromium: another session issues Alice's browser a new
// token (its socket is closed with 4403) while her account still lists it. The page says so in a
// banner (not the removed-device screen, not "offline"), keeps the history, queues what she
// writes, stays that way after a reload without using the dead token, tells a wrong password and
// an unreachable relay apart, and signs in again with the password: what Bob sent meanwhile
// arrives and the queued message goes out. Screenshots go to test/artifacts/screenshots/.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fromB64 } from '../../web/core/b64.ts';
import { Engine } from '../../web/core/engine.ts';
import type { Fetch } from '../../web/core/net/api.ts';
import { MemoryStore } from '../../web/core/store/memory-store.ts';
import { uniqueName } from '../relay/harness.ts';
import { announceChromium, enter, hasChromium, type Lab, PASSWORD, shot, startLab, unnamedControls } from './harness.ts';

announceChromium('signed-out.test.ts');

describe.skipIf(!hasChromium)('a device signed out by the relay, in Chromium', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab();
  }, 120_000);
  afterAll(async () => lab?.close());

  test('banner, history kept, outbox kept, no request with the dead token after a reload; wrong password and offline said; signing in again resumes', async () => {
    const alice = uniqueName('alice');
    const headless = () => Engine.open({ store: new MemoryStore(), relayUrl: lab.relay.url, fetch: globalThis.fetch as unknown as Fetch });
    const bobName = uniqueName('bob');
    const bob = await headless();
    await bob.register(bobName, 'battery staple');

    const { page } = await lab.device('alice laptop');
    await enter(page, 'Create account', alice);
    await page.getByRole('button', { name: 'New chat' }).click();
    await page.getByLabel('Username').fill(bobName);
    await page.getByRole('button', { name: 'Start chat' }).click();
    await page.getByLabel('Message', { exact: true }).fill('before');
    await page.getByRole('button', { name: 'Send' }).click();
    await expect.poll(() => page.locator('.bubble.mine').first().getAttribute('data-status'), { timeout: 15_000 }).toMatch(/sent|delivered|read/);

    // Another session (Alice on a second device) issues the browser's device a new token.
    const other = await headless();
    await other.login(alice, PASSWORD);
    const laptop = (await other.devices()).find((d) => !d.current)!;
    await other.ctx.api.issueToken(fromB64(laptop.deviceId), other.ctx.api.token!);

    const banner = page.locator('form.banner.signed-out');
    await banner.getByText('This device was signed out by the relay.').waitFor({ timeout: 15_000 });
    expect(await banner.textContent()).toContain('your messages are still here');
    expect(await page.getByRole('heading', { name: 'This device was removed from your account' }).count()).toBe(0);
    expect(await page.locator('.banner.offline').count()).toBe(0);
    expect(await page.locator('.bubble .text', { hasText: 'before' }).count()).toBe(1);
    expect(await unnamedControls(page)).toEqual([]);
    expect(await page.locator('[style]').count()).toBe(0);
    await shot(page, 'signed-out-banner');

    // What she writes now waits on the device.
    await page.getByLabel('Message', { exact: true }).fill('written while signed out');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.locator('.bubble.mine', { hasText: 'written while signed out' }).waitFor();
    expect(await page.locator('.bubble.mine', { hasText: 'written while signed out' }).getAttribute('data-status')).toBe('pending');
    await bob.send(await bob.openDirect(alice), 'sent meanwhile');

    // A reload starts signed out, and nothing goes out with the dead token.
    const withToken: string[] = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname.startsWith('/v1/') && r.headers().authorization) withToken.push(`${r.method()} ${r.url()}`);
    });
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    await banner.waitFor();
    await page.waitForTimeout(1_500);
    expect(withToken).toEqual([]);

    // A wrong password, then the relay out of reach: said in words, the banner stays.
    const password = banner.getByLabel('Password');
    await password.fill('not the password');
    await banner.getByRole('button', { name: 'Sign in again' }).click();
    await banner.getByRole('alert').filter({ hasText: 'Wrong password' }).waitFor({ timeout: 20_000 });
    await page.route('**/v1/accounts/login/start', (route) => route.abort());
    await password.fill(PASSWORD);
    await banner.getByRole('button', { name: 'Sign in again' }).click();
    await banner.getByRole('alert').filter({ hasText: 'Petrel cannot reach the relay' }).waitFor({ timeout: 20_000 });
    await shot(page, 'signed-out-offline');
    await page.unroute('**/v1/accounts/login/start');
    expect(withToken).toEqual([]);

    await banner.getByRole('button', { name: 'Sign in again' }).click();
    await banner.waitFor({ state: 'detached', timeout: 30_000 });
    await page.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: new RegExp(bobName) }).first().click();
    await page.locator('.bubble .text', { hasText: 'sent meanwhile' }).waitFor({ timeout: 15_000 });
    await expect.poll(() => page.locator('.bubble.mine', { hasText: 'written while signed out' }).getAttribute('data-status'), { timeout: 15_000 }).toMatch(/sent|delivered|read/);
    expect((await bob.sync()).map((m) => m.text)).toContain('written while signed out');
    expect(await page.locator('.bubble .text', { hasText: 'before' }).count()).toBe(1);
    expect(lab.problems.filter((p) => !/Failed to load resource|net::ERR/.test(p))).toEqual([]);
  }, 150_000);
});

// The app shell in Debian's Chromium, before and just after an account exists: it loads under
// the relay's CSP with no console error, CSP violation or request to another origin; the
// manifest and service worker meet Chromium's install criteria; it starts offline from the
// service worker's cache; it can be used with the keyboard alone, and every control has a
// name a screen reader can say. Screenshots (phone and desktop) go to test/artifacts/screenshots/.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { uniqueName } from '../relay/harness.ts';
import { announceChromium, hasChromium, type Lab, persistentProfile, shot, startLab, unnamedControls, watch } from './harness.ts';

announceChromium('shell.test.ts');

/** Width and height from a PNG's IHDR chunk. */
function pngSize(b: Uint8Array): { w: number; h: number } {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  if (!sig.every((x, i) => b[i] === x)) throw new Error('not a PNG');
  const v = new DataView(b.buffer, b.byteOffset);
  return { w: v.getUint32(16), h: v.getUint32(20) };
}

describe.skipIf(!hasChromium)('the app shell in Chromium', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab();
  }, 120_000);
  afterAll(async () => lab?.close());

  test('served under the strict CSP; renders with no error, violation, style attribute or third-party request', async () => {
    const res = await fetch(lab.relay.url + '/');
    const csp = res.headers.get('content-security-policy') ?? '';
    for (const d of ["default-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", "style-src 'self'", "connect-src 'self'", "worker-src 'self'"]) expect(csp).toContain(d);
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // every script is a file
    expect(html).not.toMatch(/\sstyle=|<style/);
    for (const name of ['desktop', 'phone']) {
      const { page } = await lab.device(`shell ${name}`);
      await page.getByRole('heading', { name: 'Petrel' }).waitFor();
      await page.evaluate(() => navigator.serviceWorker.ready);
      expect(await page.locator('[style]').count()).toBe(0);
      await shot(page, `shell-welcome-${name}`);
    }
    expect(lab.problems).toEqual([]);
  }, 60_000);

  test('meets the install criteria: manifest, icons, service worker', async () => {
    const manifest = await (await fetch(lab.relay.url + '/manifest.webmanifest')).json();
    expect(manifest).toMatchObject({ id: '/', short_name: 'Petrel', start_url: '/', scope: '/', display: 'standalone' });
    expect(manifest.name).toMatch(/^Petrel/);
    expect(manifest.theme_color).toMatch(/^#[0-9a-f]{6}$/i);
    expect(manifest.background_color).toMatch(/^#[0-9a-f]{6}$/i);
    const icons = manifest.icons as { src: string; sizes: string; purpose: string }[];
    for (const want of [{ sizes: '192x192', purpose: 'any' }, { sizes: '512x512', purpose: 'any' }, { sizes: '512x512', purpose: 'maskable' }]) {
      const icon = icons.find((i) => i.sizes === want.sizes && i.purpose === want.purpose);
      expect(icon, `${want.purpose} ${want.sizes}`).toBeDefined();
      const bytes = new Uint8Array(await (await fetch(lab.relay.url + icon!.src)).arrayBuffer());
      const { w, h } = pngSize(bytes);
      expect(`${w}x${h}`).toBe(want.sizes);
    }
    const profile = await persistentProfile();
    try {
      const page = profile.context.pages()[0] ?? (await profile.context.newPage());
      watch(profile.context, page, 'install', lab.relay.url, lab.problems);
      await page.goto(lab.relay.url);
      await page.waitForSelector('body[data-ready="true"]');
      await page.evaluate(() => navigator.serviceWorker.ready);
      const cdp = await profile.context.newCDPSession(page);
      const { installabilityErrors } = (await cdp.send('Page.getInstallabilityErrors')) as { installabilityErrors: unknown[] };
      expect(installabilityErrors).toEqual([]);
    } finally {
      await profile.close();
    }
  }, 60_000);

  test('starts offline from the service worker cache (one versioned cache)', async () => {
    const { context, page } = await lab.device('offline desktop');
    await page.evaluate(() => navigator.serviceWorker.ready);
    expect(await page.evaluate(() => caches.keys())).toEqual(['petrel-shell-v1']);
    await context.setOffline(true);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
    await page.getByRole('tab', { name: 'Create account' }).waitFor();
    expect(await page.evaluate(() => navigator.serviceWorker.controller?.scriptURL)).toMatch(/\/sw\.js$/);
    await shot(page, 'shell-offline-start');
    await context.setOffline(false);
    expect(lab.problems.filter((p) => !/net::ERR|Failed to load resource|Failed to fetch/.test(p))).toEqual([]);
  }, 60_000);

  test('keyboard only: create an account, open settings and the new-chat form; every control is named', async () => {
    const { page } = await lab.device('keyboard phone');
    expect(await unnamedControls(page)).toEqual([]);
    const name = uniqueName('kb');
    // Tab order from the top: the chosen tab (the tabs are one stop; arrow keys choose), then the form.
    const focused = () => page.evaluate(() => document.activeElement?.textContent);
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('Create account');
    await page.keyboard.press('ArrowRight');
    expect(await focused()).toBe('Log in');
    expect(await page.getByRole('tab', { name: 'Log in' }).getAttribute('aria-selected')).toBe('true');
    expect(await page.getByRole('tabpanel', { name: 'Log in' }).getByRole('button', { name: 'Log in' }).count()).toBe(1);
    await page.keyboard.press('End');
    expect(await focused()).toBe('Link this device');
    await page.keyboard.press('ArrowRight'); // round to the first
    expect(await focused()).toBe('Create account');
    await page.keyboard.press('Tab');
    await page.keyboard.type(name);
    await page.keyboard.press('Tab');
    await page.keyboard.type('a long keyboard password');
    await page.keyboard.press('Enter');
    await page.getByRole('navigation', { name: 'Conversations' }).waitFor({ timeout: 30_000 });
    await page.getByText('No conversations yet.').waitFor();
    await shot(page, 'shell-empty-list-phone');
    expect(await unnamedControls(page)).toEqual([]);

    await page.getByRole('button', { name: 'Settings' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('dialog', { name: 'Settings' }).waitFor();
    expect(await unnamedControls(page)).toEqual([]);
    await shot(page, 'shell-settings-phone');
    await page.getByRole('button', { name: 'Close' }).focus();
    await page.keyboard.press('Enter');

    await page.getByRole('button', { name: 'New chat' }).focus();
    await page.keyboard.press('Enter');
    // The username field takes focus by itself; a name that does not exist is explained.
    const field = page.getByLabel('Username');
    await expect.poll(() => field.evaluate((el) => el === document.activeElement)).toBe(true);
    await page.keyboard.type(uniqueName('nobody'));
    await page.keyboard.press('Enter');
    await page.locator('.toast.error').waitFor();
    expect(await unnamedControls(page)).toEqual([]);
    await shot(page, 'shell-new-chat-unknown-phone');
    expect(lab.problems.filter((p) => !/net::ERR|Failed to load resource|404/.test(p))).toEqual([]);
  }, 90_000);
});

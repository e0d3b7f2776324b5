// Browser tests drive Debian's Chromium (/usr/bin/chromium, never a downloaded browser) through
// playwright-core, against a real relay process (relay/server.ts on a free port, a temporary
// PETREL_DATA_DIR) serving the built PWA — web/dist, rebuilt first when stale, then copied so a
// test can publish a "new version" without touching the build.
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { type RelayProcess, spawnRelay } from '../support/relay-process.ts';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);
export const ARTIFACTS = new URL('../artifacts/screenshots/', import.meta.url).pathname;

/** TOOLCHAIN.md's flags: no sandbox (containers), no GPU, nothing phoning home. */
export const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * Call at the top of each browser test file. Without a Chromium the tests are skipped, loudly;
 * under CI=true that is a failure instead (CI installs Debian's chromium in .ci/run).
 */
export function announceChromium(file: string): void {
  if (hasChromium) return;
  const msg = `\n*** BROWSER TESTS SKIPPED (${file}): no Chromium at ${CHROMIUM} — apt-get install -y chromium ***\n`;
  if (process.env.CI === 'true') throw new Error(msg + 'Under CI a missing Chromium is a failure.');
  console.warn(msg);
}

export interface Lab {
  readonly browser: Browser;
  readonly relay: RelayProcess;
  readonly webRoot: string;
  /** Console errors, page errors, CSP violations and requests to other origins, from any page. */
  readonly problems: string[];
  device(name: string): Promise<{ context: BrowserContext; page: Page }>;
  close(): Promise<void>;
}

/** Reports every CSP violation as a console error (Chromium logs most, but not all, itself). */
const WATCH_CSP = `document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline')));`;

/** Records what a page reports and any request that leaves the relay's origin. */
export function watch(context: BrowserContext, page: Page, name: string, origin: string, problems: string[]): void {
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`${name}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${name}: ${e.message}`));
  context.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin + '/') && !/^(data|blob):/.test(u)) problems.push(`${name}: third-party request ${u}`);
  });
}

export async function startLab(): Promise<Lab> {
  const { buildWeb, webBuildIsStale } = await import('../../scripts/build-web.ts');
  if (webBuildIsStale()) await buildWeb();
  const webRoot = mkdtempSync(join(tmpdir(), 'petrel-web-'));
  cpSync(new URL('../../web/dist/', import.meta.url).pathname, webRoot, { recursive: true });
  mkdirSync(ARTIFACTS, { recursive: true });
  const relay = await spawnRelay({ env: { PETREL_WEB_ROOT: webRoot, PETREL_PUSH_ALLOW_HTTP: '1', PETREL_RATE_LIMIT_SCALE: '100' } });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  const problems: string[] = [];
  return {
    browser,
    relay,
    webRoot,
    problems,
    async device(name) {
      const context = await browser.newContext({ viewport: name.includes('phone') ? { width: 390, height: 780 } : { width: 1200, height: 800 } });
      await context.grantPermissions(['notifications'], { origin: relay.url });
      await context.addInitScript(WATCH_CSP);
      const page = await context.newPage();
      watch(context, page, name, relay.url, problems);
      await page.goto(relay.url);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
      return { context, page };
    },
    async close() {
      await browser.close();
      await relay.close();
      rmSync(webRoot, { recursive: true, force: true });
    },
  };
}

/** A persistent (non-incognito) profile: Chromium judges install criteria only there. */
export async function persistentProfile(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-profile-'));
  const context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, args: FLAGS, headless: true });
  return {
    context,
    async close() {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The browser tests' accounts' password. */
export const PASSWORD = 'a long password';

/** Creates an account or logs in from the welcome screen; resolves once the chat list shows. */
export async function enter(page: Page, tab: 'Create account' | 'Log in', name: string, password = PASSWORD): Promise<void> {
  await page.getByRole('tab', { name: tab }).click();
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: tab }).click();
  await page.getByRole('navigation', { name: 'Conversations' }).waitFor({ timeout: 30_000 });
}

/** Opens the conversation whose row in the chat list names `title` (back to the list first on a phone). */
export async function openChat(page: Page, title: string): Promise<void> {
  // On a phone-sized window the list is hidden while a conversation is open.
  const back = page.getByRole('button', { name: 'Back to conversations' });
  if (await back.isVisible()) await back.click();
  await page.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: new RegExp(title) }).first().click();
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
}

/** Interactive elements without an accessible name (what a screen reader would call "button"). */
export function unnamedControls(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    for (const el of document.querySelectorAll<HTMLElement>('button, a[href], input, textarea, select, [tabindex]:not([tabindex="-1"])')) {
      if (el.closest('[hidden], [aria-hidden="true"]')) continue;
      const labelled = el.getAttribute('aria-labelledby')?.split(' ').map((id) => document.getElementById(id)?.textContent ?? '').join(' ');
      const fromLabels = 'labels' in el ? [...((el as HTMLInputElement).labels ?? [])].map((l) => l.textContent ?? '').join(' ') : '';
      const name = (el.getAttribute('aria-label') ?? '') + (labelled ?? '') + fromLabels + (el.textContent ?? '') + (el.getAttribute('title') ?? '') + (el.getAttribute('alt') ?? '');
      if (!name.trim()) out.push(el.outerHTML.slice(0, 120));
    }
    return out;
  });
}

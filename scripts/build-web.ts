// npm run build: the PWA into web/dist — one vite build with the page and the service worker as
// two entries sharing chunks (web/vite.config.ts), then Workbox's precache manifest injected
// into dist/sw.js, then the gzip sizes of what a browser downloads: the app's own JavaScript
// apart from libsodium and OPAQUE (third-party WASM, each in its own chunk).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = fileURLToPath(new URL('..', import.meta.url));
const web = join(root, 'web');
const dist = join(web, 'dist');
const quiet = process.argv.includes('--quiet');

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'dist' || e.name === 'node_modules' || e.name === 'headless') continue;
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** web/dist is missing, or older than a source it is built from (web/, crypto/, the lock file). */
export function webBuildIsStale(): boolean {
  const stamp = join(dist, 'sw.js'); // written last: a build that stopped half-way counts as stale
  if (!existsSync(stamp) || !existsSync(join(dist, 'index.html'))) return true;
  const sources = Math.max(newest(web), newest(join(root, 'crypto')), statSync(join(root, 'package-lock.json')).mtimeMs);
  return sources > statSync(stamp).mtimeMs;
}

export async function buildWeb(): Promise<void> {
  // Loaded here, not at the top: `npm start` imports this file for webBuildIsStale(), and vite
  // and workbox-build are dev dependencies that a production install may lack.
  const { build } = await import('vite');
  const { injectManifest } = await import('workbox-build');
  // Always a production build: vite takes DEV from NODE_ENV when it is set, and under vitest
  // (a browser test rebuilding a stale dist) it is "test" — which built the page with its service
  // worker switched off (web/net/sw-bridge.ts), failing every test that needs one.
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    await build({ configFile: join(web, 'vite.config.ts'), mode: 'production', logLevel: quiet ? 'error' : 'warn' });
  } finally {
    if (nodeEnv === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = nodeEnv;
  }
  const r = await injectManifest({
    swSrc: join(dist, 'sw.js'),
    swDest: join(dist, 'sw.js'),
    globDirectory: dist,
    globPatterns: ['**/*.{html,js,css,png,webmanifest,wasm}'],
    globIgnores: ['sw.js'],
    // libsodium and OPAQUE inline their WASM: ~430 KB each before compression.
    maximumFileSizeToCacheInBytes: 8 * 1024 * 1024,
  });
  if (!quiet) console.log(`service worker precaches ${r.count} files (${(r.size / 1024).toFixed(0)} KB)`);
}

export interface WebSizes {
  /** The page's JavaScript without libsodium and OPAQUE (engine chunk included). */
  readonly app: number;
  readonly libsodium: number;
  readonly opaque: number;
  /** The worker's own code (it imports the engine, libsodium and OPAQUE chunks above). */
  readonly sw: number;
  readonly css: number;
}

/** Gzip (level 9) sizes in bytes of the built files. */
export function sizes(): WebSizes {
  const gz = (f: string) => gzipSync(readFileSync(f), { level: 9 }).length;
  const assets = join(dist, 'assets');
  const out = { app: 0, libsodium: 0, opaque: 0, sw: gz(join(dist, 'sw.js')), css: 0 };
  for (const f of readdirSync(assets)) {
    const n = gz(join(assets, f));
    if (f.endsWith('.css')) out.css += n;
    else if (!f.endsWith('.js')) continue;
    else if (f.startsWith('libsodium')) out.libsodium += n;
    else if (f.startsWith('opaque')) out.opaque += n;
    else out.app += n;
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const t0 = Date.now();
  await buildWeb();
  const s = sizes();
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
  console.log(`built web/dist in ${((Date.now() - t0) / 1000).toFixed(1)} s — gzip:`);
  console.log(`  app JS (without libsodium and OPAQUE)  ${kb(s.app)}   (budget 60 KB)`);
  console.log(`  libsodium                             ${kb(s.libsodium)}`);
  console.log(`  OPAQUE                                ${kb(s.opaque)}`);
  console.log(`  service worker (own code)             ${kb(s.sw)}`);
  console.log(`  CSS                                   ${kb(s.css)}`);
}

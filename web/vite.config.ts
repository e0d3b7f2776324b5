// The PWA build (npm run build → scripts/build-web.ts): ONE build with two entries, the page
// (web/index.html) and the service worker (web/sw/sw.ts → /sw.js), so both import the same
// hashed chunks — the engine, libsodium (its own chunk, measured apart from the app) and OPAQUE.
// The worker is registered as a module worker, which may import chunks statically; before,
// it was a separate 1 MB bundle repeating libsodium and OPAQUE, downloaded a second time.
// Workbox's precache manifest is injected into dist/sw.js afterwards (workbox-build).
import { defineConfig } from 'vite';

const root = new URL('.', import.meta.url).pathname;

export default defineConfig({
  root,
  publicDir: 'public',
  resolve: {
    // workbox-window's package "module" is its ES5 build (async functions and classes
    // transpiled away); its ES2017 build is the same code at 1.3 KB gzip instead of 2.4.
    alias: [{ find: /^workbox-window$/, replacement: 'workbox-window/build/workbox-window.prod.mjs' }],
  },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // <link rel="modulepreload"> for the page's chunks stays; the polyfill for browsers without
    // it (none that can run Petrel: module workers are newer) would only be dead code.
    modulePreload: { polyfill: false },
    rollupOptions: {
      input: { index: `${root}index.html`, sw: `${root}sw/sw.ts` },
      output: {
        // The worker must keep a stable URL (a new URL would be a second registration).
        entryFileNames: (chunk) => (chunk.name === 'sw' ? 'sw.js' : 'assets/[name]-[hash].js'),
        // Higher priority first: a group also takes its modules' dependencies, so libsodium and
        // OPAQUE must be claimed before the engine group would swallow them.
        codeSplitting: {
          groups: [
            { name: 'libsodium', test: /[\\/]node_modules[\\/]libsodium/, priority: 3 },
            { name: 'opaque', test: /[\\/]node_modules[\\/]@serenity-kit[\\/]opaque/, priority: 3 },
            // What page and worker share: the engine, the IndexedDB store, idb, web/shared.
            { name: 'engine', test: /[\\/]web[\\/](core|storage|shared)[\\/]|[\\/]node_modules[\\/]idb[\\/]/, priority: 1 },
          ],
        },
      },
    },
  },
  server: {
    // npm run dev: the page from Vite, the API and the WebSocket from a relay on :8787.
    proxy: {
      '/v1': { target: 'http://127.0.0.1:8787', ws: true },
      '/healthz': 'http://127.0.0.1:8787',
    },
  },
});

import { configDefaults, defineConfig } from 'vitest/config';

// One config for the PWA build (web/, later issues) and for vitest.
//
// Two projects: the browser tests (each drives several Chromium pages against a relay of its own)
// run one file at a time after everything else, so that two of them, or one beside the busiest
// relay suites, never compete for the 2 cores: sharing them, waits tuned for a page (a service
// worker update, a live edit reaching a list) ran out now and then in CI.
export default defineConfig({
  test: {
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      { extends: true, test: { name: 'node', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, 'test/browser/**'], sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'browser', include: ['test/browser/**/*.test.ts'], fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});

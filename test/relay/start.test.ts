// A relay that cannot start says why and what to change, in one log line, and exits 1: a typo in
// a variable stops the start (rather than becoming a NaN limit), a taken port or a locked data
// directory names the fix.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { DataDirLockedError } from '../../relay/db/lock.ts';
import { startFailure } from '../../relay/server.ts';

const SERVER = fileURLToPath(new URL('../../relay/server.ts', import.meta.url));

function start(env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', SERVER], { env: { ...process.env, DATABASE_URL: '', ...env }, encoding: 'utf8', timeout: 60_000 });
  const lines = r.stderr.trim().split('\n');
  return { status: r.status, line: JSON.parse(lines.at(-1)!) as { level: string; msg: string; error: string; hint?: string }, stderr: r.stderr };
}

test.each([
  ['PORT', 'abc'],
  ['PORT', '70000'],
  ['PORT', '-1'],
  ['PETREL_INBOX_RETENTION_DAYS', 'abc'],
  ['PETREL_DB_POOL', '0'],
  ['PETREL_PUSH_GRACE_MS', '-1'],
  ['PETREL_RATE_LIMIT_SCALE', 'x'],
  ['PETREL_LOG_LEVEL', 'verbose'],
  ['PETREL_TRUST_PROXY', 'maybe'],
  ['PETREL_PUSH_ALLOW_HTTP', '2'],
  ['PETREL_METRICS_TOKEN', ''],
])('%s=%s is refused at start', (name, value) => {
  const r = start({ [name]: value });
  expect(r.status).toBe(1);
  expect(r.line).toMatchObject({ level: 'error', msg: 'relay failed to start' });
  expect(r.line.error).toContain(name);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
});

test('a misspelt relay variable is named in a warning', () => {
  // The pool check fails after the warning, so the start stops without needing a database.
  const r = spawnSync(process.execPath, ['--import', 'tsx', SERVER], {
    env: { ...process.env, DATABASE_URL: '', PETREL_LOG_LEVLE: 'debug', PETREL_RELAY: 'http://x', PETREL_DB_POOL: '0' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.status).toBe(1);
  expect(r.stdout).toContain('PETREL_LOG_LEVLE is not a relay setting');
  expect(r.stdout).not.toContain('PETREL_RELAY '); // the CLI's variable is not the relay's to judge
});

test('failures name what to change', () => {
  expect(startFailure(new DataDirLockedError('/d', 42)).hint).toMatch(/PETREL_DATA_DIR/);
  expect(startFailure(Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' }), { PORT: '9000' }).hint).toMatch(/port 9000.*PORT/);
  const url = { DATABASE_URL: 'postgres://x@db:5432/petrel' };
  expect(startFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), url).hint).toMatch(/DATABASE_URL/);
  expect(startFailure(new TypeError('Invalid URL'), url).error).toBe('DATABASE_URL is not a valid URL');
  expect(startFailure(Object.assign(new Error('database "petrel" does not exist'), { code: '3D000' }), url).hint).toMatch(/createdb/);
  expect(startFailure(new Error('something else'), {})).toEqual({ error: 'something else' });
});

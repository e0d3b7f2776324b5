// What an operator relies on: /healthz follows the database, a stop lets work finish and tells
// sockets to go elsewhere (1001) even with keep-alive clients, rate limits behind a proxy key on
// the address the proxy added, and a failed query's parameters never reach the log.
import { Agent, request } from 'node:http';
import { DrizzleQueryError } from 'drizzle-orm/errors';
import postgres from 'postgres';
import { describe, expect, test } from 'vitest';
import { errorFields, silentLogger } from '../../relay/log.ts';
import { startRelay } from '../../relay/server.ts';
import { backends, startTestRelay, TEST_CONFIG } from './harness.ts';
import { TestSocket } from './ws-client.ts';

const pg = backends.find((b) => b.name === 'postgres');

test.skipIf(!pg)('/healthz answers 503 while the database is unreachable, 200 once it is back', async () => {
  const relay = await startTestRelay(pg!);
  const admin = postgres(process.env.TEST_DATABASE_URL!, { max: 1, onnotice: () => {} });
  try {
    expect((await relay.fetch('/healthz')).status).toBe(200);
    const dbName = (await relay.database.query<{ d: string }>('SELECT current_database() AS d', []))[0]!.d;
    await admin.unsafe(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS false`);
    await admin.unsafe(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${dbName}' AND pid <> pg_backend_pid()`);
    const down = await relay.fetch('/healthz');
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ status: 'unavailable', error: 'database_unavailable' });
    await admin.unsafe(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`);
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await relay.fetch('/healthz')).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
  } finally {
    await admin.end();
    await relay.close();
  }
});

describe('stopping', () => {
  test('sockets get 1001 and a keep-alive client does not hold the stop', async () => {
    const relay = await startRelay({ port: 0, hostname: '127.0.0.1', log: silentLogger, config: TEST_CONFIG });
    const sock = await TestSocket.connect(relay.url);
    const agent = new Agent({ keepAlive: true });
    const get = () =>
      new Promise<number>((resolve, reject) => {
        const req = request(`${relay.url}/healthz`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
    expect(await get()).toBe(200); // the agent now holds an open keep-alive connection
    const started = Date.now();
    await relay.close();
    expect(Date.now() - started).toBeLessThan(3000);
    expect((await sock.waitClosed()).code).toBe(1001);
    agent.destroy();
  });
});

test('behind a proxy, the rate-limit key is the address the proxy appended, not what the client wrote', async () => {
  const limits = { ...TEST_CONFIG.rateLimits!, registerPerIp: { burst: 3, perMinute: 3 } };
  const relay = await startRelay({ port: 0, hostname: '127.0.0.1', log: silentLogger, trustProxy: true, config: { ...TEST_CONFIG, rateLimits: limits } });
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${relay.url}/v1/accounts/register/start`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': `10.9.9.${i}, 203.0.113.7` },
        body: JSON.stringify({ username: `forged${i}`, registrationRequest: 'AAAA' }),
      });
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    expect(statuses.slice(0, 3).every((s) => s !== 429)).toBe(true);
    expect(statuses.slice(3)).toEqual([429, 429]);
  } finally {
    await relay.close();
  }
});

test("a failed query's parameters are not logged; its cause is", () => {
  const cause = Object.assign(new Error('canceling statement due to lock timeout'), { code: '55P03' });
  const e = new DrizzleQueryError('update "accounts" set "backup" = $1 where "id" = $2', [Buffer.from('SECRET BACKUP BYTES'), 7], cause);
  const fields = errorFields(e);
  expect(JSON.stringify(fields)).not.toMatch(/SECRET|83,69,67/);
  expect(fields).toMatchObject({ cause: 'canceling statement due to lock timeout', code: '55P03' });
  expect(String(fields.errMessage)).toMatch(/^Failed query: update "accounts"/);
});

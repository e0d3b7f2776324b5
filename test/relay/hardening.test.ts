// Serving the PWA under a strict CSP, registration limits per username, and the race between a
// submission and the removal of one of its target devices.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createApp } from '../../relay/app.ts';
import { rowsOf } from '../../relay/db/client.ts';
import { devices } from '../../relay/db/schema.ts';
import { call, createUser, register, removeDevice, type TestDevice } from './client.ts';
import { backends, startTestRelay, type TestRelay, uniqueName, withConfig } from './harness.ts';

describe.each(backends)('hardening on $name', (backend) => {
  let relay: TestRelay;
  let root: string;
  beforeAll(async () => {
    relay = await startTestRelay(backend);
    root = mkdtempSync(join(tmpdir(), 'petrel-web-'));
    writeFileSync(join(root, 'index.html'), '<!doctype html><script type="module" src="/main.js"></script>');
    writeFileSync(join(root, 'main.js'), 'export {};');
  });
  afterAll(async () => {
    rmSync(root, { recursive: true, force: true });
    await relay?.close();
  });

  test('the built PWA is served from webRoot with a strict CSP; the API is not shadowed; no traversal', async () => {
    const app = createApp(relay.services, { webRoot: root });
    const index = await app.request('/');
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/text\/html/);
    const csp = index.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(index.headers.get('x-content-type-options')).toBe('nosniff');
    expect(index.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(index.headers.get('cross-origin-resource-policy')).toBe('same-origin');
    expect(index.headers.get('referrer-policy')).toBe('no-referrer');
    expect((await app.request('/main.js')).headers.get('content-type')).toMatch(/javascript/);

    expect((await app.request('/healthz')).status).toBe(200);
    const api = await app.request('/v1/nothing');
    expect(api.status).toBe(404);
    expect(((await api.json()) as { error: string }).error).toBe('not_found');
    for (const path of ['/../package.json', '/%2e%2e/package.json', '/..%2fpackage.json', '//etc/passwd']) {
      const r = await app.request(path);
      expect(r.status, path).toBe(404);
    }
    // Without a webRoot nothing outside /v1 and /healthz exists.
    expect((await relay.app.request('/')).status).toBe(404);
  });

  test('registration attempts per username are limited', async () => {
    await withConfig(relay, { rateLimits: { registerPerUser: { burst: 2, perMinute: 1 } } as never }, async (fetch) => {
      const name = uniqueName('eve');
      const codes: number[] = [];
      for (let i = 0; i < 3; i++) codes.push((await register(fetch, name, 'pw')).status);
      expect(codes).toEqual([201, 409, 429]);
      // Another name is unaffected.
      expect((await register(fetch, uniqueName('eve'), 'pw')).status).toBe(201);
    });
  });

  const rowId = async (d: TestDevice) =>
    (await relay.services.db.select({ id: devices.id }).from(devices).where(eq(devices.deviceId, d.keys.deviceId)))[0]!.id;

  test('a device removed after the envelope check gets nothing; the others get theirs', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'), 1, 1);
    const bob = await createUser(relay.fetch, uniqueName('bob'), 2, 1);
    const [kept, gone] = [bob.devices[0]!, bob.devices[1]!];
    const [keptId, goneId] = [await rowId(kept), await rowId(gone)];
    // The route has checked the envelope set (both of Bob's devices); then Bob removes one.
    expect((await removeDevice(relay.fetch, bob, gone)).status).toBe(200);
    const sender = alice.devices[0]!;
    const result = await relay.services.writer.submit({
      senderDevice: await rowId(sender),
      senderUser: alice.name,
      senderDeviceId: sender.keys.deviceId,
      clientId: 'race-1',
      payload: new Uint8Array([9, 9, 9]),
      targets: [
        { device: keptId, envelope: new Uint8Array([1]) },
        { device: goneId, envelope: new Uint8Array([2]) },
      ],
    });
    expect(result.messageId).toBeGreaterThan(0);
    const count = async (device: number) =>
      Number(rowsOf<{ n: unknown }>(await relay.services.db.execute(sql`SELECT count(*) AS n FROM inbox WHERE device = ${device}::bigint`))[0]!.n);
    expect(await count(goneId)).toBe(0);
    expect(await count(keptId)).toBe(1);
    const page = await call(relay.fetch, 'GET', '/v1/inbox', { token: kept.token });
    expect(page.body.envelopes.map((e: { seq: number }) => e.seq)).toEqual([1]);
  });
});

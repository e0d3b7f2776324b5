// Accounts over OPAQUE, usernames, backup, and the error shape of malformed requests.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { backends, startTestRelay, type TestRelay, uniqueName, withConfig } from './harness.ts';
import { b64, call, login, register } from './client.ts';

describe.each(backends)('accounts on $name', (backend) => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay(backend);
  });
  afterAll(async () => relay?.close());

  test('register, log in, wrong password rejected', async () => {
    const name = uniqueName('alice');
    const reg = await register(relay.fetch, name, 'correct horse');
    expect(reg.status).toBe(201);
    expect(reg.body.username).toBe(name);
    expect(reg.body.sessionToken).toMatch(/^ps_/);

    const ok = await login(relay.fetch, name, 'correct horse');
    expect(ok.status).toBe(200);
    expect(ok.body.sessionToken).toMatch(/^ps_/);
    expect(ok.exportKey).toBe(reg.exportKey);
    expect(ok.body.backup).toBeNull();

    // A wrong password: the client cannot finish (OPAQUE detects it client-side)...
    const bad = await login(relay.fetch, name, 'wrong');
    expect(bad.body.error).toBe('client_rejected');
    // ...and a forged finish message is refused by the relay.
    const start = await call(relay.fetch, 'POST', '/v1/accounts/login/start', {
      body: { username: name, startLoginRequest: (await import('@serenity-kit/opaque')).client.startLogin({ password: 'x' }).startLoginRequest },
    });
    expect(start.status).toBe(200);
    const forged = await call(relay.fetch, 'POST', '/v1/accounts/login/finish', { body: { loginId: start.body.loginId, finishLoginRequest: 'AAAA' } });
    expect(forged).toMatchObject({ status: 401, body: { error: 'login_failed' } });
    // A login state is single-use.
    const again = await call(relay.fetch, 'POST', '/v1/accounts/login/finish', { body: { loginId: start.body.loginId, finishLoginRequest: 'AAAA' } });
    expect(again.status).toBe(401);
  });

  test('unknown user: login start answers like for a real one, finish fails', async () => {
    const r = await login(relay.fetch, uniqueName('ghost'), 'pw');
    expect([0, 401]).toContain(r.status);
  });

  test('a registration record that is not one is refused, and the name stays free', async () => {
    const name = uniqueName('rec');
    for (const registrationRecord of ['AAAA', 'A'.repeat(256), Buffer.alloc(192, 1).toString('base64url')]) {
      const r = await call(relay.fetch, 'POST', '/v1/accounts/register/finish', { body: { username: name, registrationRecord } });
      expect([r.status, r.body.error]).toEqual([400, 'invalid_opaque_message']);
    }
    expect((await register(relay.fetch, name, 'correct horse battery')).status).toBe(201);
  });

  test('usernames are normalised, validated and unique', async () => {
    const base = uniqueName('bob');
    expect((await register(relay.fetch, base.toUpperCase(), 'pw')).status).toBe(201);
    // Fullwidth letters fold to the same name under NFKC + lower case.
    const full = [...base].map((ch) => (/[a-z]/.test(ch) ? String.fromCharCode(ch.charCodeAt(0) + 0xfee0) : ch)).join('');
    const dup = await register(relay.fetch, full, 'pw');
    expect(dup).toMatchObject({ status: 409, body: { error: 'username_taken' } });
    for (const bad of ['ab', 'x'.repeat(33), 'has space', 'émile', 'semi;colon', '']) {
      const r = await register(relay.fetch, bad, 'pw');
      expect(r.status, bad).toBe(400);
      expect(['invalid_username', 'invalid_request']).toContain(r.body.error);
    }
  });

  test('account-key backup is stored and returned after login', async () => {
    const name = uniqueName('carol');
    const reg = await register(relay.fetch, name, 'pw1');
    const blob = new Uint8Array(200).map((_, i) => i);
    expect((await call(relay.fetch, 'GET', '/v1/account/backup', { token: reg.body.sessionToken })).body.error).toBe('no_backup');
    const put = await call(relay.fetch, 'PUT', '/v1/account/backup', { token: reg.body.sessionToken, body: { backup: b64(blob) } });
    expect(put.status).toBe(204);
    const l = await login(relay.fetch, name, 'pw1');
    expect(l.body.backup).toBe(b64(blob));
    const got = await call(relay.fetch, 'GET', '/v1/account/backup', { token: l.body.sessionToken });
    expect(got.body.backup).toBe(b64(blob));
    expect((await call(relay.fetch, 'GET', '/v1/account/backup')).status).toBe(401);
    expect((await call(relay.fetch, 'GET', '/v1/account/backup', { token: 'ps_' + 'A'.repeat(43) })).status).toBe(401);
  });

  test('malformed input is a JSON 4xx, never a 500', async () => {
    const cases: [string, string, { raw?: string; body?: unknown }][] = [
      ['POST', '/v1/accounts/register/start', { raw: '{not json' }],
      ['POST', '/v1/accounts/register/start', { body: [] }],
      ['POST', '/v1/accounts/register/start', { body: { username: 5 } }],
      ['POST', '/v1/accounts/register/start', { body: { username: 'valid_name', registrationRequest: 'AAAA' } }],
      ['POST', '/v1/accounts/login/start', { body: { username: 'valid_name', startLoginRequest: '!!' } }],
      ['POST', '/v1/accounts/login/start', { body: { username: 'valid_name', startLoginRequest: 'AAAA' } }],
      ['POST', '/v1/accounts/login/finish', { body: { loginId: 'short', finishLoginRequest: 'AAAA' } }],
      ['POST', '/v1/accounts/register/finish', { raw: JSON.stringify({ username: 'x'.repeat(100_000) }) }],
      ['GET', '/v1/users/%E2%80%AE/devices', {}],
      ['GET', '/v1/nothing-here', {}],
      ['POST', '/v1/messages', { raw: 'null' }],
      ['GET', '/v1/inbox?after=-1', {}],
    ];
    for (const [method, path, o] of cases) {
      const r = await call(relay.fetch, method, path, o);
      expect(r.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
      expect(r.status, `${method} ${path}`).toBeLessThan(500);
      expect(typeof r.body.error, `${method} ${path}`).toBe('string');
      expect(typeof r.body.message).toBe('string');
      expect(JSON.stringify(r.body)).not.toMatch(/at .*\.ts:\d+/);
    }
    const big = await call(relay.fetch, 'POST', '/v1/accounts/register/finish', { raw: JSON.stringify({ username: 'x'.repeat(100_000) }) });
    expect(big).toMatchObject({ status: 413, body: { error: 'payload_too_large' } });
  });

  test('login attempts per username are limited', async () => {
    await withConfig(relay, { rateLimits: { loginPerUser: { burst: 3, perMinute: 1 } } as never }, async (fetch) => {
      const name = uniqueName('dave');
      await register(fetch, name, 'pw');
      const codes: number[] = [];
      for (let i = 0; i < 5; i++) codes.push((await login(fetch, name, 'pw')).status);
      expect(codes.slice(0, 3)).toEqual([200, 200, 200]);
      expect(codes[3]).toBe(429);
    });
  });
});

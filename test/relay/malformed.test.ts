// Every route, fed malformed bodies, queries, paths and credentials, answers a JSON 4xx with a
// stable code and never a 500 or a stack trace — also when the caller is authenticated, so the
// inputs reach the handlers and not only the auth middleware.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { backends, startTestRelay, type TestRelay, uniqueName } from './harness.ts';
import { b64, call, createUser, type TestUser } from './client.ts';

const ROUTES: [string, string][] = [
  ['POST', '/v1/accounts/register/start'],
  ['POST', '/v1/accounts/register/finish'],
  ['POST', '/v1/accounts/login/start'],
  ['POST', '/v1/accounts/login/finish'],
  ['PUT', '/v1/account/backup'],
  ['PUT', '/v1/account/devices'],
  ['PUT', '/v1/keys'],
  ['POST', '/v1/messages'],
  ['POST', '/v1/inbox/ack'],
];

const BODIES: string[] = [
  '',
  '{',
  'null',
  '[]',
  '"str"',
  '42',
  '{}',
  '{"__proto__":{"x":1}}',
  '{"username":["a"],"registrationRequest":{}}',
  '{"username":"abc","registrationRecord":"' + 'A'.repeat(3000) + '"}',
  '{"loginId":"' + 'A'.repeat(22) + '","finishLoginRequest":"AAAA"}',
  '{"backup":"not base64!"}',
  '{"backup":"' + 'A'.repeat(30_000) + '"}',
  '{"list":"AAAA"}',
  '{"list":""}',
  '{"prekeys":["AAAA"]}',
  '{"prekeys":[]}',
  '{"prekeys":"AAAA"}',
  '{"seq":-1}',
  '{"seq":1.5}',
  '{"seq":1e300}',
  '{"seq":"5"}',
  '{"clientMessageId":"x","to":["nobody_here"],"payload":"AAAA","envelopes":[{"user":"nobody_here","device":"AAAA","body":"AAAA"}]}',
  '{"clientMessageId":"x","to":[],"payload":"AAAA","envelopes":[]}',
  '{"clientMessageId":"' + 'x'.repeat(65) + '","to":["a"],"payload":"AAAA","envelopes":[]}',
];

const GETS = [
  '/v1/users/%FF%FE/devices',
  '/v1/users/' + 'a'.repeat(5000) + '/devices',
  '/v1/users/ab/devices',
  '/v1/users/nobody_here/devices',
  '/v1/users/nobody_here/bundles',
  '/v1/users/nobody_here/bundles?devices=',
  '/v1/users/nobody_here/bundles?devices=AAAA,,',
  '/v1/inbox?after=abc',
  '/v1/inbox?after=99999999999999999999',
  '/v1/inbox?limit=-5',
  '/v1/inbox?after=1&after=2',
  '/v1/keys/count',
  '/v1/account/backup',
  '/v1/account/devices/AAAA/token',
  '/v1/ws',
];

function expectCleanError(r: { status: number; body: any }, what: string) {
  expect(r.status, what).toBeGreaterThanOrEqual(400);
  expect(r.status, what).toBeLessThan(500);
  expect(typeof r.body?.error, what).toBe('string');
  expect(typeof r.body?.message, what).toBe('string');
  expect(JSON.stringify(r.body), what).not.toMatch(/\.ts:\d+|\n\s+at /);
}

describe.each(backends)('malformed input on $name', (backend) => {
  let relay: TestRelay;
  let user: TestUser;
  beforeAll(async () => {
    relay = await startTestRelay(backend);
    user = await createUser(relay.fetch, uniqueName('mal'), 1, 1);
  });
  afterAll(async () => relay?.close());

  test('every route x every bad body, with no, a bad, a session and a device token', async () => {
    const tokens = [undefined, 'pd_' + 'A'.repeat(43), 'garbage token', user.session, user.devices[0]!.token];
    for (const token of tokens) {
      for (const [method, path] of ROUTES) {
        for (const raw of BODIES) {
          const r = await call(relay.fetch, method, path, { raw, ...(token ? { token } : {}) });
          expectCleanError(r, `${method} ${path} ${raw.slice(0, 60)} (${token?.slice(0, 3)})`);
        }
      }
      for (const path of GETS) {
        const r = await call(relay.fetch, path.endsWith('/token') ? 'POST' : 'GET', path, token ? { token } : {});
        if (r.status < 400) continue; // e.g. /v1/keys/count with a device token
        expectCleanError(r, `GET ${path} (${token?.slice(0, 3)})`);
      }
    }
  });

  test('wrong content type and odd headers are 4xx', async () => {
    const device = user.devices[0]!;
    const cases: RequestInit[] = [
      { method: 'POST', headers: { 'content-type': 'text/plain', authorization: `Bearer ${device.token}` }, body: '{"seq":1}' },
      { method: 'POST', headers: { authorization: `Bearer ${device.token}` }, body: '{"seq":1}' },
      { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Basic ${b64(new Uint8Array(8))}` }, body: '{"seq":1}' },
      { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer' }, body: '{"seq":1}' },
    ];
    for (const init of cases) {
      const res = await relay.fetch('/v1/inbox/ack', init);
      const body = await res.json();
      expectCleanError({ status: res.status, body }, JSON.stringify(init.headers));
    }
    const wrongMethod = await relay.fetch('/v1/inbox/ack', { method: 'DELETE' });
    expectCleanError({ status: wrongMethod.status, body: await wrongMethod.json() }, 'DELETE');
  });
});

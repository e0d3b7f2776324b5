// Every route, fed malformed bodies, queries, paths and credentials, answers a JSON 4xx with a
// stable code and never a 500 or a stack trace — also when the caller is authenticated, so the
// inputs reach the handlers and not only the auth middleware.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { backends, startTestRelay, type TestRelay, uniqueName } from './harness.ts';
import { b64, call, createUser, type TestUser } from './client.ts';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import * as v from 'valibot';
import { describe as describeIssues } from '../../relay/validate.ts';

/** A well-formed attachment id that names nothing. */
const ID = 'A'.repeat(22);

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
  ['POST', '/v1/attachments'],
  ['PUT', `/v1/attachments/${ID}/chunks/0`],
  ['PUT', '/v1/attachments/short/chunks/0'],
  ['PUT', `/v1/attachments/${ID}/chunks/-1`],
  ['PUT', `/v1/attachments/${ID}/chunks/1e3`],
  ['PUT', `/v1/attachments/${ID}/chunks/9999999999`],
  ['POST', `/v1/attachments/${ID}/complete`],
  ['POST', '/v1/attachments/%FF%FE/complete'],
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
  '{"size":0}',
  '{"size":-1}',
  '{"size":1.5}',
  '{"size":1e300}',
  '{"size":"5"}',
  '{"size":null}',
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
  '/v1/attachments/short',
  `/v1/attachments/${ID}`,
  '/v1/attachments/' + 'A'.repeat(5000),
  '/v1/attachments/%00%00',
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

  test('attachments: odd ids, indices, chunk bodies, methods and ranges on a real upload', async () => {
    const token = user.devices[0]!.token;
    const auth = { authorization: `Bearer ${token}` };
    const made = await call(relay.fetch, 'POST', '/v1/attachments', { token, body: { size: 10 } });
    expect(made.status).toBe(201);
    const id: string = made.body.id;
    // Chunk bodies that do not fit (empty, too long for the slot or the chunk size) and indices that do not parse.
    const chunkBodies: BodyInit[] = ['', 'x'.repeat(11), new Uint8Array(2 * 1024 * 1024), ...BODIES.filter((b) => b.length > 10)];
    for (const body of chunkBodies) {
      for (const idx of ['0', '1', '-0', '+0', '0x1', ' 0', '%30', '00000000000000000001']) {
        const res = await relay.fetch(`/v1/attachments/${id}/chunks/${idx}`, { method: 'PUT', headers: auth, body });
        expectCleanError({ status: res.status, body: await res.json() }, `PUT chunk ${idx} (${String(body).slice(0, 20)})`);
      }
    }
    for (const [method, path] of [
      ['DELETE', `/v1/attachments/${ID}`],
      ['DELETE', '/v1/attachments/short'],
      ['POST', `/v1/attachments/${id}`],
      ['GET', `/v1/attachments/${id}/chunks/0`],
      ['GET', `/v1/attachments/${id}`], // incomplete
      ['POST', `/v1/attachments/${id}/complete`], // nothing uploaded
    ] as const) {
      expectCleanError(await call(relay.fetch, method, path, { token }), `${method} ${path}`);
    }
    expect((await relay.fetch(`/v1/attachments/${id}/chunks/0`, { method: 'PUT', headers: auth, body: 'ten bytes!' })).status).toBe(204);
    expect((await call(relay.fetch, 'POST', `/v1/attachments/${id}/complete`, { token })).status).toBe(200);
    for (const range of ['bytes=99999999999999999999-', 'bytes=-99999999999999999999', 'bytes=10-', 'bytes=--1', 'bytes=1-2-3', 'bytes=0-0;q=1', 'bytes=0-0, 1-1']) {
      const res = await relay.fetch(`/v1/attachments/${id}`, { headers: { ...auth, range } });
      expect(res.status, range).toBeLessThan(500);
      if (res.status >= 400) expectCleanError({ status: res.status, body: await res.json() }, range);
      else await res.arrayBuffer();
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

    // A JSON body without its content type is named as that mistake, not as missing fields.
    for (const type of ['text/plain', undefined, 'application/x-www-form-urlencoded']) {
      const res = await relay.fetch('/v1/accounts/register/start', { method: 'POST', headers: type ? { 'content-type': type } : {}, body: '{"username":"abc"}' });
      expect([res.status, (await res.json()).error], String(type)).toEqual([415, 'unsupported_media_type']);
    }
    const charset = await relay.fetch('/v1/inbox/ack', {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${device.token}` },
      body: '{"seq":0}',
    });
    expect(charset.status).toBe(200);
  });

  test('errors name the field, never echo the value', async () => {
    const secret = 'my-secret-password-here';
    for (const [path, body] of [
      ['/v1/accounts/login/finish', { loginId: secret, finishLoginRequest: 'AAAA' }],
      ['/v1/accounts/register/start', { username: 5, registrationRequest: secret }],
      ['/v1/accounts/login/start', { username: secret + '!', startLoginRequest: 42 }],
    ] as const) {
      const r = await call(relay.fetch, 'POST', path, { body });
      expect(r.status, path).toBe(400);
      expect(r.body.message, path).not.toContain(secret);
      expect(r.body.message, path).not.toMatch(/received/);
    }
  });

  test('a number is not echoed either (valibot says "Received 1.5")', () => {
    for (const [schema, value] of [
      [v.object({ size: v.pipe(v.number(), v.safeInteger()) }), { size: 1.5 }],
      [v.object({ seq: v.pipe(v.number(), v.integer()) }), { seq: Infinity }],
      [v.object({ n: v.pipe(v.number(), v.minValue(0)) }), { n: -123456 }],
    ] as const) {
      // Through Standard Schema, as Hono's validator calls it.
      const r = (schema as v.GenericSchema)['~standard'].validate(value) as { issues?: readonly StandardSchemaV1.Issue[] };
      expect(r.issues).toBeDefined();
      const message = describeIssues('json', r.issues!);
      expect(message).toMatch(/^json field \w+: Invalid/);
      expect(message).not.toMatch(/1\.5|Infinity|123456|[Rr]eceived/);
    }
  });

  test('a body refused for its size closes the connection, and says so', async () => {
    const res = await relay.fetch('/v1/accounts/register/start', { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(70_000) });
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBe('close');
    expect((await res.json()).error).toBe('payload_too_large');
  });
});

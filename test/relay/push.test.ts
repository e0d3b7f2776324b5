// Web Push: VAPID keys, subscription checks, one content-free push per burst to a device without
// a socket, none to a connected device or one that acknowledged in time (as a device connected to
// another process does), one push when two relay instances commit for the same device, and
// subscriptions deleted when the push service says 404/410 or the device is removed.
// The push service is a strict loopback double that checks VAPID and decrypts the payload.
// Second relay instances over the same database (own hub, writer and push sender: they share
// only the database, like processes) stand in for other processes on both backends.
import { createPrivateKey, sign } from 'node:crypto';
import { sql } from 'drizzle-orm';
import webpush from 'web-push';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createApp } from '../../relay/app.ts';
import type { RelayConfig } from '../../relay/config.ts';
import { rowsOf } from '../../relay/db/client.ts';
import { silentLogger } from '../../relay/log.ts';
import { type RunningRelay, startRelay } from '../../relay/server.ts';
import { createServices, type RelayServices } from '../../relay/services.ts';
import { PushServiceDouble } from '../support/push-service.ts';
import { call, createUser, removeDevice, send, type TestDevice, type TestUser } from './client.ts';
import { backends, type Fetch, TEST_CONFIG, uniqueName } from './harness.ts';
import { TestSocket } from './ws-client.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = async (f: () => boolean | Promise<boolean>, ms = 5000) => {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(20);
  }
};

const GRACE = 100;
const COALESCE = 1500;
const PUSH_CONFIG: Partial<RelayConfig> = { ...TEST_CONFIG, pushGraceMs: GRACE, pushCoalesceMs: COALESCE, pushAllowInsecureEndpoints: true };

describe.each(backends)('web push on $name', (backend) => {
  let relay: RunningRelay;
  let fetch: Fetch;
  let drop: () => Promise<void>;
  let push: PushServiceDouble;
  let vapidKey: string;
  beforeAll(async () => {
    const db = await backend.create();
    drop = db.drop;
    push = await PushServiceDouble.start();
    relay = await startRelay({
      port: 0,
      hostname: '127.0.0.1',
      log: silentLogger,
      config: PUSH_CONFIG,
      ...(db.url ? { databaseUrl: db.url } : {}),
    });
    fetch = (path, init) => globalThis.fetch(relay.url + path, init);
    vapidKey = (await call(fetch, 'GET', '/v1/push/vapid')).body.publicKey;
  });
  afterAll(async () => {
    await relay?.close();
    await push?.close();
    await drop?.();
  });

  /** Another relay instance on the same database (app.request, no port). */
  const instance = async (config: Partial<RelayConfig> = PUSH_CONFIG): Promise<{ services: RelayServices; fetch: Fetch }> => {
    const services = await createServices({ database: relay.services.database, config });
    const app = createApp(services);
    return { services, fetch: async (path, init) => app.request(path, init) };
  };
  /** Subscribes like a browser: with the relay's VAPID key as applicationServerKey. */
  const subscribe = async (d: TestDevice, via = fetch) => {
    const sub = push.newSubscription({ applicationServerKey: vapidKey });
    expect((await call(via, 'PUT', '/v1/push/subscription', { token: d.token, body: sub })).status).toBe(204);
    return sub;
  };
  const subscriptions = async (d: TestDevice) =>
    rowsOf<{ n: number }>(
      await relay.services.db.execute(sql`SELECT count(*)::int AS n FROM push_subscriptions p JOIN devices d ON d.id = p.device WHERE d.device_id = ${d.keys.deviceId}`),
    )[0]!.n;
  const users = async (...prefixes: string[]): Promise<TestUser[]> => Promise.all(prefixes.map((p) => createUser(fetch, uniqueName(p))));

  test('the VAPID public key is served and stays the same across restarts', async () => {
    expect(Buffer.from(vapidKey, 'base64url')).toHaveLength(65); // an uncompressed P-256 point, as applicationServerKey wants
    expect(Buffer.from(vapidKey, 'base64url')[0]).toBe(4);
    const again = await instance();
    try {
      expect(again.services.vapid.publicKey).toBe(vapidKey);
      expect((await call(again.fetch, 'GET', '/v1/push/vapid')).body.publicKey).toBe(vapidKey);
    } finally {
      await again.services.close();
    }
  });

  test('subscriptions are checked: device token, shape, endpoint scheme, key lengths and point', async () => {
    const [alice] = await users('alice');
    const t = alice!.devices[0]!.token;
    const good = push.newSubscription();
    const put = (body: unknown, token: string | null = t, via = fetch) => call(via, 'PUT', '/v1/push/subscription', { ...(token ? { token } : {}), body });
    expect((await put(good, null)).status).toBe(401);
    expect((await put(good, alice!.session)).status).toBe(401); // an account session is not a device
    expect((await call(fetch, 'DELETE', '/v1/push/subscription')).status).toBe(401);

    const offCurve = Buffer.from(good.keys.p256dh, 'base64url');
    offCurve[64]! ^= 1;
    const compressed = Buffer.concat([Buffer.from([2]), Buffer.from(good.keys.p256dh, 'base64url').subarray(1, 33)]);
    const keys = (k: Partial<typeof good.keys>) => ({ ...good, keys: { ...good.keys, ...k } });
    for (const bad of [
      keys({ p256dh: 'AAAA' }),
      keys({ p256dh: offCurve.toString('base64url') }),
      keys({ p256dh: compressed.toString('base64url') }),
      keys({ p256dh: good.keys.p256dh + '!' }),
      keys({ auth: good.keys.p256dh }),
      keys({ auth: good.keys.auth.slice(0, 20) }),
      { ...good, endpoint: 'not a url' },
      { ...good, endpoint: 'ftp://push.example/x' },
      { ...good, endpoint: 'https://user:pw@push.example/x' },
    ]) {
      const r = await put(bad);
      expect([r.status, r.body.error], JSON.stringify(bad)).toEqual([400, 'invalid_subscription']);
      expect(JSON.stringify(r.body)).not.toContain(good.keys.auth); // never echoes the secret
    }
    for (const bad of [{ endpoint: good.endpoint }, { ...good, keys: { ...good.keys, auth: 7 } }, { ...good, endpoint: 'https://x/' + 'a'.repeat(2100) }]) {
      expect((await put(bad)).body.error).toBe('invalid_request');
    }

    // http:// only where the operator allowed it (this relay does, for the double); https always.
    const strict = await instance({ ...TEST_CONFIG });
    try {
      const r = await put(good, t, strict.fetch);
      expect([r.status, r.body.error]).toEqual([400, 'invalid_subscription']);
      expect(r.body.message).toMatch(/https/);
      expect((await put({ ...good, endpoint: 'https://push.example/sub/1' }, t, strict.fetch)).status).toBe(204);
      // Nor anything that aims the relay at internal services.
      for (const endpoint of [
        'https://127.0.0.1/x',
        'https://169.254.169.254/latest/meta-data',
        'https://10.1.2.3/x',
        'https://[::1]/x',
        'https://[::ffff:127.0.0.1]/x',
        'https://[fd00::1]/x',
        'https://localhost/x',
        'https://push.localhost/x',
        'https://push.example:5432/x',
      ]) {
        const r = await put({ ...good, endpoint }, t, strict.fetch);
        expect([r.status, r.body.error], endpoint).toEqual([400, 'invalid_subscription']);
      }
      // Stored as parsed: control characters inside percent-encoded, tabs dropped, blanks and
      // controls around it trimmed (a NUL stored as given was a 500 from the database).
      expect((await put({ ...good, endpoint: ' https://push.example/x\u0000y\t?q#f\u0000 ' }, t, strict.fetch)).status).toBe(204);
      const [row] = rowsOf<{ endpoint: string }>(
        await relay.services.db.execute(sql`SELECT endpoint FROM push_subscriptions p JOIN devices d ON d.id = p.device WHERE d.device_id = ${alice!.devices[0]!.keys.deviceId}`),
      );
      expect(row?.endpoint).toBe('https://push.example/x%00y?q#f');
    } finally {
      await strict.services.close();
    }
    expect((await put(good)).status).toBe(204);
    expect(await subscriptions(alice!.devices[0]!)).toBe(1);
    expect((await call(fetch, 'DELETE', '/v1/push/subscription', { token: t })).status).toBe(204);
    expect(await subscriptions(alice!.devices[0]!)).toBe(0);
  });

  test('an offline device gets one content-free push per burst, and another after the window', async () => {
    const [alice, carol, bob] = await users('alice', 'carol', 'bob');
    const sub = await subscribe(bob!.devices[0]!);
    const sentBefore = relay.services.metrics.push.get({ result: 'sent' });
    // Two senders at once: several batches commit within the grace period.
    await Promise.all(
      [alice!, carol!].map(async (u) => {
        for (let i = 0; i < 5; i++) expect((await send(fetch, u.devices[0]!, [bob!.name], utf8(`secret burst ${i}`), `b${i}`)).status).toBe(200);
      }),
    );
    await until(() => push.forEndpoint(sub.endpoint).length >= 1);
    await sleep(GRACE * 4); // a second push would have come by now
    const got = push.forEndpoint(sub.endpoint);
    expect(got).toHaveLength(1);
    expect(JSON.parse(got[0]!.payload)).toEqual({ v: 1, type: 'sync' });
    expect(got[0]!.payload).not.toMatch(/secret|burst|alice|carol/);
    expect(got[0]!.ttl).toBeGreaterThan(0);
    expect(got[0]!.urgency).toBe('high');
    expect(relay.services.metrics.push.get({ result: 'sent' })).toBe(sentBefore + 1);

    await sleep(COALESCE); // the window has passed: the next message wakes the device again
    expect((await send(fetch, alice!.devices[0]!, [bob!.name], utf8('later'), 'later')).status).toBe(200);
    await until(() => push.forEndpoint(sub.endpoint).length === 2);
    expect(push.rejected).toEqual([]);
  });

  test('no push to a device with a live socket, nor to one that acknowledged within the grace period', async () => {
    const [alice, bob, dave] = await users('alice', 'bob', 'dave');
    const bobSub = await subscribe(bob!.devices[0]!);
    const sock = await TestSocket.open(relay.url, bob!.devices[0]!.token);
    await send(fetch, alice!.devices[0]!, [bob!.name], utf8('live'), 'l1');
    const [e] = await sock.envelopes(1);
    sock.send({ type: 'ack', seq: e!.seq });

    // Dave has no socket on the instance that commits (a long grace), but acknowledges through
    // another instance, as a device connected to another process does: no push.
    const daveSub = await subscribe(dave!.devices[0]!);
    const other = await instance({ ...PUSH_CONFIG, pushGraceMs: 800 });
    try {
      await send(other.fetch, alice!.devices[0]!, [dave!.name], utf8('elsewhere'), 'e1');
      const inbox = await call(fetch, 'GET', '/v1/inbox?after=0', { token: dave!.devices[0]!.token });
      expect((await call(fetch, 'POST', '/v1/inbox/ack', { token: dave!.devices[0]!.token, body: { seq: inbox.body.envelopes[0].seq } })).status).toBe(200);
      await sleep(1000);
      expect(other.services.push.counts).toEqual({ sent: 0, gone: 0, failed: 0 });
    } finally {
      await other.services.close();
    }
    expect(push.forEndpoint(bobSub.endpoint)).toHaveLength(0);
    expect(push.forEndpoint(daveSub.endpoint)).toHaveLength(0);
    sock.close();
  });

  test('two instances committing for one device send one push; a stopping instance runs its pending checks', async () => {
    const [alice, carol, bob, erin] = await users('alice', 'carol', 'bob', 'erin');
    const sub = await subscribe(bob!.devices[0]!);
    const other = await instance();
    try {
      await Promise.all([
        send(fetch, alice!.devices[0]!, [bob!.name], utf8('from a'), 'a1'),
        send(other.fetch, carol!.devices[0]!, [bob!.name], utf8('from b'), 'b1'),
      ]);
      await until(() => push.forEndpoint(sub.endpoint).length >= 1);
      await sleep(GRACE * 4);
      expect(push.forEndpoint(sub.endpoint)).toHaveLength(1);
    } finally {
      await other.services.close();
    }

    const erinSub = await subscribe(erin!.devices[0]!);
    const stopping = await instance({ ...PUSH_CONFIG, pushGraceMs: 60_000 });
    await send(stopping.fetch, alice!.devices[0]!, [erin!.name], utf8('just before a deploy'), 'd1');
    await stopping.services.close();
    expect(push.forEndpoint(erinSub.endpoint)).toHaveLength(1);
  });

  test('404 and 410 delete the subscription, 500 keeps it; removing the device deletes it too', async () => {
    const [alice] = await users('alice');
    const bob = await createUser(fetch, uniqueName('bob'), 4);
    const [d410, d404, d500, kept] = bob.devices as [TestDevice, TestDevice, TestDevice, TestDevice];
    push.setStatus((await subscribe(d410)).endpoint, 410);
    push.setStatus((await subscribe(d404)).endpoint, 404);
    push.setStatus((await subscribe(d500)).endpoint, 500);
    const keptSub = await subscribe(kept);
    const before = { ...relay.services.push.counts };
    await send(fetch, alice!.devices[0]!, [bob.name], utf8('wake up'), 'w1');
    await until(() => relay.services.push.counts.sent + relay.services.push.counts.gone + relay.services.push.counts.failed === before.sent + before.gone + before.failed + 4);
    expect(relay.services.push.counts).toEqual({ sent: before.sent + 1, gone: before.gone + 2, failed: before.failed + 1 });
    expect([await subscriptions(d410), await subscriptions(d404), await subscriptions(d500), await subscriptions(kept)]).toEqual([0, 0, 1, 1]);
    expect(push.forEndpoint(keptSub.endpoint)).toHaveLength(1);

    expect((await removeDevice(fetch, bob, kept)).status).toBe(200);
    expect(await subscriptions(kept)).toBe(0);
  });

  test('a new subscription replaces the old one', async () => {
    const [alice, bob] = await users('alice', 'bob');
    const first = await subscribe(bob!.devices[0]!);
    const second = await subscribe(bob!.devices[0]!);
    expect(await subscriptions(bob!.devices[0]!)).toBe(1);
    await send(fetch, alice!.devices[0]!, [bob!.name], utf8('one'), 'r1');
    await until(() => push.forEndpoint(second.endpoint).length === 1);
    expect(push.forEndpoint(first.endpoint)).toHaveLength(0);
  });
});

// The double must be as strict as a real push service, or the tests above prove little.
describe('push service double', () => {
  let push: PushServiceDouble;
  beforeAll(async () => (push = await PushServiceDouble.start()));
  afterAll(() => push.close());

  const keys = webpush.generateVAPIDKeys();
  const post = (endpoint: string, headers: Record<string, string>, body: Uint8Array) =>
    globalThis.fetch(endpoint, { method: 'POST', headers, body: body as Uint8Array<ArrayBuffer> });
  /** A request as web-push builds it for `sub`, signed with `keys`. */
  const request = (sub: ReturnType<PushServiceDouble['newSubscription']>, payload = 'x') => {
    const r = webpush.generateRequestDetails(sub, payload, { vapidDetails: { subject: 'mailto:a@b.example', ...keys }, TTL: 60 });
    return { endpoint: r.endpoint, headers: r.headers as Record<string, string>, body: new Uint8Array(r.body as Buffer) };
  };
  /** An ES256 JWT over `claims`, signed with the private key of `keys` (RFC 7515/7518). */
  const jwt = (claims: Record<string, unknown>) => {
    const pub = Buffer.from(keys.publicKey, 'base64url');
    const key = createPrivateKey({
      key: { kty: 'EC', crv: 'P-256', d: keys.privateKey, x: pub.subarray(1, 33).toString('base64url'), y: pub.subarray(33).toString('base64url') },
      format: 'jwk',
    });
    const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const input = `${part({ typ: 'JWT', alg: 'ES256' })}.${part(claims)}`;
    return `${input}.${sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  };

  test('accepts what web-push sends and decrypts it', async () => {
    const sub = push.newSubscription({ applicationServerKey: keys.publicKey });
    const r = request(sub, 'hello');
    expect((await post(r.endpoint, r.headers, r.body)).status).toBe(201);
    expect(push.forEndpoint(sub.endpoint).map((x) => x.payload)).toEqual(['hello']);
  });

  test('rejects a bad VAPID signature, wrong aud or exp, another key, no TTL, a tampered body', async () => {
    const sub = push.newSubscription({ applicationServerKey: keys.publicKey });
    const r = request(sub);
    const other = webpush.generateVAPIDKeys();
    const now = Math.floor(Date.now() / 1000);
    const claims = { aud: push.origin, exp: now + 3600, sub: 'mailto:a@b.example' };
    const auth = (t: string, k = keys.publicKey) => ({ ...r.headers, Authorization: `vapid t=${t}, k=${k}` });
    const [head, body] = jwt(claims).split('.');
    const cases: [Record<string, string>, Uint8Array, number][] = [
      [auth(jwt(claims), other.publicKey), r.body, 401], // signature does not verify with k
      [auth(`${head}.${body}.${'A'.repeat(86)}`), r.body, 401], // a forged signature
      [auth(jwt({ ...claims, aud: 'http://127.0.0.1:1' })), r.body, 401],
      [auth(jwt({ ...claims, exp: now - 10 })), r.body, 401],
      [auth(jwt({ ...claims, exp: now + 25 * 3600 })), r.body, 401],
      [{ ...r.headers, Authorization: 'WebPush abc' }, r.body, 401],
      [Object.fromEntries(Object.entries(r.headers).filter(([k]) => k !== 'TTL')), r.body, 400],
      [{ ...r.headers, Urgency: 'urgent' }, r.body, 400],
      [r.headers, Uint8Array.from(r.body, (b, i) => (i === r.body.length - 1 ? b ^ 1 : b)), 400],
    ];
    for (const [headers, b, status] of cases) expect((await post(r.endpoint, headers, b)).status).toBe(status);
    // Signed correctly, but by a key other than the subscription's applicationServerKey.
    const foreign = webpush.generateRequestDetails(sub, 'x', { vapidDetails: { subject: 'mailto:a@b.example', ...other }, TTL: 60 });
    expect((await post(foreign.endpoint, foreign.headers as Record<string, string>, new Uint8Array(foreign.body as Buffer))).status).toBe(403);
    expect(push.forEndpoint(sub.endpoint)).toEqual([]);
    expect(push.rejected).toHaveLength(cases.length + 1);
  });
});

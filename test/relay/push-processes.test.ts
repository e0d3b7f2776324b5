// Web Push across two real relay processes on one PostgreSQL (runs only with TEST_DATABASE_URL),
// configured through the environment as deployed (PETREL_PUSH_ALLOW_HTTP, PETREL_PUSH_GRACE_MS):
// a device whose socket is held by the other process is not pushed (it acknowledged within the
// grace period), and a burst committed by both processes wakes a sleeping device exactly once,
// signed with the one VAPID key both processes read from the database.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PushServiceDouble } from '../support/push-service.ts';
import { type RelayProcess, spawnRelay } from '../support/relay-process.ts';
import { call, createUser, send } from './client.ts';
import { backends, type Fetch, uniqueName } from './harness.ts';
import { TestSocket } from './ws-client.ts';

const pg = backends.find((b) => b.name === 'postgres');
const utf8 = (s: string) => new TextEncoder().encode(s);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const GRACE = 400;

describe.skipIf(!pg)('web push across two relay processes', () => {
  let a: RelayProcess | undefined;
  let b: RelayProcess | undefined;
  let push: PushServiceDouble;
  let drop: (() => Promise<void>) | undefined;
  const fetchOf =
    (p: RelayProcess): Fetch =>
    (path, init) =>
      globalThis.fetch(p.url + path, init);

  beforeAll(async () => {
    const db = await pg!.create();
    drop = db.drop;
    push = await PushServiceDouble.start();
    const env = { PETREL_PUSH_ALLOW_HTTP: '1', PETREL_PUSH_GRACE_MS: String(GRACE), PETREL_RATE_LIMIT_SCALE: '100' };
    // One after the other: the second reads the VAPID key the first created.
    a = await spawnRelay({ databaseUrl: db.url!, env });
    b = await spawnRelay({ databaseUrl: db.url!, env });
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await push?.close();
    await drop?.();
  });

  test('connected through the other process: no push; a burst through both: one push', async () => {
    const [fa, fb] = [fetchOf(a!), fetchOf(b!)];
    const vapid = (await call(fa, 'GET', '/v1/push/vapid')).body.publicKey;
    expect((await call(fb, 'GET', '/v1/push/vapid')).body.publicKey).toBe(vapid);
    const [alice, carol, bob] = await Promise.all(['alice', 'carol', 'bob'].map((n) => createUser(fa, uniqueName(n))));
    const bobDevice = bob!.devices[0]!;
    const sub = push.newSubscription({ applicationServerKey: vapid });
    expect((await call(fb, 'PUT', '/v1/push/subscription', { token: bobDevice.token, body: sub })).status).toBe(204);

    // Bob's socket is on B; A commits, B delivers (NOTIFY) and Bob acknowledges well within the grace.
    const sock = await TestSocket.open(b!.url, bobDevice.token);
    const arriving = sock.envelopes(1);
    expect((await send(fa, alice!.devices[0]!, [bob!.name], utf8('while connected'), 'c1')).status).toBe(200);
    const [e] = await arriving;
    sock.send({ type: 'ack', seq: e.seq, confirm: true });
    await sock.next((f) => f.type === 'acked');
    await sleep(GRACE * 2.5);
    expect(push.forEndpoint(sub.endpoint)).toHaveLength(0);
    sock.close();

    // Asleep: both processes commit envelopes for Bob and both check after the grace; one wins the claim.
    await Promise.all([
      (async () => {
        for (let i = 0; i < 4; i++) expect((await send(fa, alice!.devices[0]!, [bob!.name], utf8(`a${i}`), `a${i}`)).status).toBe(200);
      })(),
      (async () => {
        for (let i = 0; i < 4; i++) expect((await send(fb, carol!.devices[0]!, [bob!.name], utf8(`c${i}`), `c${i}`)).status).toBe(200);
      })(),
    ]);
    const deadline = Date.now() + 5000;
    while (push.forEndpoint(sub.endpoint).length === 0 && Date.now() < deadline) await sleep(20);
    await sleep(GRACE * 2.5);
    const got = push.forEndpoint(sub.endpoint);
    expect(got).toHaveLength(1);
    expect(JSON.parse(got[0]!.payload)).toEqual({ v: 1, type: 'sync' });
    expect(push.rejected).toEqual([]);
  });
});

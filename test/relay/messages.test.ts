// Messages: real fan-out end to end, 409 device mismatch, idempotent retries, gap-free seqs
// under concurrent submitters, paging, acknowledgement and payload deletion.
import { sql } from 'drizzle-orm';
import { generateAccountKey, generateDevice, newDeviceList, systemRng, withDeviceAdded } from '../../crypto/index.ts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createApp } from '../../relay/app.ts';
import { rowsOf } from '../../relay/db/client.ts';
import { sweep } from '../../relay/inbox/reader.ts';
import {
  addDevice,
  b64,
  call,
  createUser,
  issueToken,
  open,
  publishList,
  register,
  removeDevice,
  send,
  type TestDevice,
  type TestUser,
  uploadPrekeys,
  type WireEnvelope,
} from './client.ts';
import { createServices } from '../../relay/services.ts';
import { backends, startTestRelay, TEST_CONFIG, type TestRelay, uniqueName } from './harness.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);

async function inbox(relay: TestRelay, d: TestDevice, after = 0, limit = 100): Promise<{ envelopes: WireEnvelope[]; more: boolean }> {
  const r = await call(relay.fetch, 'GET', `/v1/inbox?after=${after}&limit=${limit}`, { token: d.token });
  expect(r.status).toBe(200);
  return r.body;
}

/** A raw submission with opaque envelope bytes (the relay never looks inside). */
function raw(from: TestDevice, clientMessageId: string, to: string[], targets: TestDevice[], payload = new Uint8Array([1, 2, 3]), fetch = globalFetch!) {
  return call(fetch, 'POST', '/v1/messages', {
    token: from.token,
    body: {
      clientMessageId,
      to,
      payload: b64(payload),
      envelopes: targets.map((t) => ({ user: t.user.name, device: b64(t.keys.deviceId), body: b64(utf8(`for ${b64(t.keys.deviceId)}`)) })),
    },
  });
}
let globalFetch: TestRelay['fetch'] | undefined;

/**
 * Lists a new device for `user` the way an approved link code does, and nothing more: no token
 * claimed, no prekeys uploaded (a device that never came online). Not in user.devices.
 */
async function listPending(fetch: TestRelay['fetch'], user: TestUser): Promise<TestDevice> {
  const keys = generateDevice(systemRng);
  const now = Date.now();
  const list = user.list ? withDeviceAdded(user.list, keys, 'pending', now) : newDeviceList(user.name, user.account.publicKey, keys, 'first', now);
  expect((await publishList(fetch, user, list)).status).toBe(200);
  return { user, keys, token: '', prekeys: new Map(), sessions: new Map(), nextPrekeyId: 1 };
}

describe.each(backends)('messages on $name', (backend) => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay(backend);
    globalFetch = relay.fetch;
  });
  afterAll(async () => relay?.close());

  test('fan-out: one payload, an envelope per device, everyone decrypts', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'), 2);
    const bob = await createUser(relay.fetch, uniqueName('bob'), 2);
    const r = await send(relay.fetch, alice.devices[0]!, [bob.name], utf8('hello bob'), 'm1');
    expect(r.status).toBe(200);
    expect(typeof r.body.messageId).toBe('number');
    for (const d of [...bob.devices, alice.devices[1]!]) {
      const { envelopes } = await inbox(relay, d);
      expect(envelopes).toHaveLength(1);
      const e = envelopes[0]!;
      expect(e.seq).toBe(1);
      expect(e.messageId).toBe(r.body.messageId);
      expect(e.sender).toEqual({ user: alice.name, device: b64(alice.devices[0]!.keys.deviceId) });
      expect(await open(relay.fetch, d, e)).toBe('hello bob');
    }
    // The payload is stored once.
    const rows = rowsOf<{ n: unknown }>(await relay.services.db.execute(sql`SELECT count(*) AS n FROM payloads WHERE id = ${r.body.messageId}::bigint`));
    expect(Number(rows[0]!.n)).toBe(1);
    // A reply over the established sessions.
    const back = await send(relay.fetch, bob.devices[1]!, [alice.name], utf8('hi alice'), 'r1');
    expect(back.status).toBe(200);
    const got = (await inbox(relay, alice.devices[0]!)).envelopes;
    expect(await open(relay.fetch, alice.devices[0]!, got[0]!)).toBe('hi alice');
  });

  test('409 device_mismatch names missing and extra devices per user', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'), 2);
    const bob = await createUser(relay.fetch, uniqueName('bob'), 2);
    const [a1, a2] = alice.devices as [TestDevice, TestDevice];
    const [b1, b2] = bob.devices as [TestDevice, TestDevice];
    // Missing bob's second device and alice's own other device.
    let r = await raw(a1, 'x1', [bob.name], [b1]);
    expect(r.status).toBe(409);
    expect(r.body.error).toBe('device_mismatch');
    expect(r.body.missing).toEqual(
      expect.arrayContaining([
        { user: bob.name, devices: [b64(b2.keys.deviceId)] },
        { user: alice.name, devices: [b64(a2.keys.deviceId)] },
      ]),
    );
    expect(r.body.extra).toEqual([]);
    // A removed device is extra; so is the sender itself.
    await removeDevice(relay.fetch, bob, b2);
    r = await raw(a1, 'x2', [bob.name], [b1, b2, a2, a1]);
    expect(r.status).toBe(409);
    expect(r.body.missing).toEqual([]);
    expect(r.body.extra).toEqual(
      expect.arrayContaining([
        { user: bob.name, devices: [b64(b2.keys.deviceId)] },
        { user: alice.name, devices: [b64(a1.keys.deviceId)] },
      ]),
    );
    // The right set goes through; a 409 stored nothing, so the same client id is still free.
    r = await raw(a1, 'x1', [bob.name], [b1, a2]);
    expect(r.status).toBe(200);
    expect((await raw(a1, 'x3', [uniqueName('nobody')], [b1])).body.error).toBe('unknown_user');
  });

  test('a recipient with no active device is a 404, not a message delivered to nobody', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'));
    const nolist = uniqueName('nolist');
    expect((await register(relay.fetch, nolist, 'correct horse battery')).status).toBe(201);
    const bob = await createUser(relay.fetch, uniqueName('bob'));
    const b1 = bob.devices[0]!;
    const two = {
      clientMessageId: 'to-two',
      to: [nolist, bob.name],
      payload: 'AQID',
      envelopes: [{ user: bob.name, device: b64(b1.keys.deviceId), body: 'AQID' }],
    };
    const r2 = await call(relay.fetch, 'POST', '/v1/messages', { token: alice.devices[0]!.token, body: two });
    expect(r2).toMatchObject({ status: 404, body: { error: 'no_device_list', users: [nolist] } });
    // And once every device of a user is removed (carol still has one, to send from).
    expect((await removeDevice(relay.fetch, bob, b1)).status).toBe(200);
    const carol = await createUser(relay.fetch, uniqueName('carol'), 2);
    const [c1, c2] = carol.devices;
    expect((await removeDevice(relay.fetch, carol, c2!)).status).toBe(200);
    const r4 = await call(relay.fetch, 'POST', '/v1/messages', {
      token: c1!.token,
      body: { clientMessageId: 'c-to-bob', to: [bob.name], payload: 'AQID', envelopes: [{ user: carol.name, device: b64(c2!.keys.deviceId), body: 'AQID' }] },
    });
    expect(r4).toMatchObject({ status: 404, body: { error: 'no_device_list', users: [bob.name] } });
  });

  test('a listed device with no prekeys yet is not required (its user can send and be sent to); once its keys are up it is', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'), 2);
    const bob = await createUser(relay.fetch, uniqueName('bob'));
    const [a1, a2] = alice.devices as [TestDevice, TestDevice];
    const b1 = bob.devices[0]!;
    const pending = await listPending(relay.fetch, alice); // an approved link code, never online
    const pendingId = b64(pending.keys.deviceId);
    // Exactly what bundles calls unavailable is what the submission check does not require.
    const bundles = await call(relay.fetch, 'GET', `/v1/users/${alice.name}/bundles`, { token: b1.token });
    expect(bundles.body.unavailable).toEqual([pendingId]);
    expect(bundles.body.bundles).toHaveLength(2);

    // To alice: her reachable devices only. From alice: bob's and her other reachable one.
    expect(await raw(b1, 'to-alice', [alice.name], [a1, a2])).toMatchObject({ status: 200 });
    expect(await raw(a1, 'from-alice', [bob.name], [b1, a2])).toMatchObject({ status: 200 });
    // Strict for reachable devices still.
    let r = await raw(b1, 'to-alice-short', [alice.name], [a1]);
    expect(r).toMatchObject({ status: 409, body: { error: 'device_mismatch', missing: [{ user: alice.name, devices: [b64(a2.keys.deviceId)] }], extra: [] } });
    const stranger: TestDevice = { ...pending, keys: generateDevice(systemRng) };
    r = await raw(b1, 'to-alice-stranger', [alice.name], [a1, a2, stranger]);
    expect(r).toMatchObject({ status: 409, body: { error: 'device_mismatch', missing: [], extra: [{ user: alice.name, devices: [b64(stranger.keys.deviceId)] }] } });
    // An envelope for the pending device is accepted (a sender may have seen its keys first) and kept for it.
    expect(await raw(b1, 'to-alice-all', [alice.name], [a1, a2, pending])).toMatchObject({ status: 200 });

    // It claims its token: still no keys, still not required; one-time keys alone do not make a bundle.
    const tok = await issueToken(relay.fetch, alice, pending.keys);
    expect(tok.status).toBe(200);
    pending.token = tok.body.token;
    expect((await uploadPrekeys(relay.fetch, pending, 2)).status).toBe(200);
    expect(await raw(b1, 'to-alice-claimed', [alice.name], [a1, a2])).toMatchObject({ status: 200 });
    // Its signed and last-resort keys go up: required from the next submission on (this process's
    // cache, just filled by the one above, is cleared by the upload), from others and from alice.
    expect((await uploadPrekeys(relay.fetch, pending, 2, true)).status).toBe(200);
    r = await raw(b1, 'to-alice-online', [alice.name], [a1, a2]);
    expect(r).toMatchObject({ status: 409, body: { error: 'device_mismatch', missing: [{ user: alice.name, devices: [pendingId] }], extra: [] } });
    r = await raw(a1, 'from-alice-online', [bob.name], [b1, a2]);
    expect(r).toMatchObject({ status: 409, body: { error: 'device_mismatch', missing: [{ user: alice.name, devices: [pendingId] }] } });
    expect(await raw(b1, 'to-alice-online', [alice.name], [a1, a2, pending])).toMatchObject({ status: 200 });
    const { envelopes } = await inbox(relay, pending);
    expect(envelopes.map((e) => e.messageId)).toHaveLength(2); // 'to-alice-all' and 'to-alice-online'
  });

  test('a recipient whose devices have none of them come online is refused (409 not_reachable), not sent nothing', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'), 2);
    const [a1, a2] = alice.devices as [TestDevice, TestDevice];
    // carol registered and listed her first device, whose first prekey upload never arrived.
    const carolName = uniqueName('carol');
    const reg = await register(relay.fetch, carolName, 'pw-carol');
    expect(reg.status).toBe(201);
    const carol: TestUser = { name: carolName, password: 'pw-carol', account: generateAccountKey(systemRng), session: reg.body.sessionToken, list: undefined, devices: [] };
    const c1 = await listPending(relay.fetch, carol);
    const r = await raw(a1, 'to-carol', [carol.name], [a2]);
    expect(r).toMatchObject({ status: 409, body: { error: 'not_reachable', users: [carol.name] } });
    // An envelope for her device is taken, as for any active device not reachable yet.
    expect(await raw(a1, 'to-carol-2', [carol.name], [a2, c1])).toMatchObject({ status: 200 });
  });

  test("another process's device list change is seen within a second; after that the stale list is served while it is read again", async () => {
    // A second relay process on the same database: services of its own (its own device cache),
    // with a clock the test moves.
    let t = Date.now();
    const other = await createServices({ database: relay.database, config: TEST_CONFIG, now: () => t });
    const otherApp = createApp(other);
    const viaOther = async (path: string, init?: RequestInit) => otherApp.request(path, init);
    try {
      const alice = await createUser(relay.fetch, uniqueName('alice'));
      const bob = await createUser(relay.fetch, uniqueName('bob'));
      const [a1, b1] = [alice.devices[0]!, bob.devices[0]!];
      expect(await raw(b1, 'c1', [alice.name], [a1], undefined, viaOther)).toMatchObject({ status: 200 }); // caches alice's devices

      const a2 = await addDevice(relay.fetch, alice); // through the first process: the other one's cache still has a1 alone
      t += 500;
      expect(await raw(b1, 'c2', [alice.name], [a1], undefined, viaOther)).toMatchObject({ status: 200 }); // fresh entry
      // Past a second the entry is stale: the submission is checked against it at once, not kept
      // waiting for a database read (under load every submission for the user queued behind it),
      // and the read starts in the background.
      t += 1000;
      expect(await raw(b1, 'c3', [alice.name], [a1], undefined, viaOther)).toMatchObject({ status: 200 });
      let r = await raw(b1, 'c4', [alice.name], [a1], undefined, viaOther);
      for (let i = 0; i < 100 && r.status === 200; i++) {
        await new Promise((res) => setTimeout(res, 10));
        r = await raw(b1, `c4-${i}`, [alice.name], [a1], undefined, viaOther);
      }
      expect(r).toMatchObject({ status: 409, body: { error: 'device_mismatch', missing: [{ user: alice.name, devices: [b64(a2.keys.deviceId)] }] } });

      // An entry past DEVICE_CACHE_STALE_MS is never served: the submission waits for the read.
      const a3 = await addDevice(relay.fetch, alice);
      t += 10_000;
      r = await raw(b1, 'c5', [alice.name], [a1, a2], undefined, viaOther);
      expect(r).toMatchObject({ status: 409, body: { error: 'device_mismatch', missing: [{ user: alice.name, devices: [b64(a3.keys.deviceId)] }] } });
      expect(await raw(b1, 'c6', [alice.name], [a1, a2, a3], undefined, viaOther)).toMatchObject({ status: 200 });
    } finally {
      await other.close();
    }
  });

  test('idempotent: a retry returns the same result and stores nothing new', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'));
    const bob = await createUser(relay.fetch, uniqueName('bob'));
    const b1 = bob.devices[0]!;
    const first = await raw(alice.devices[0]!, 'retry-me', [bob.name], [b1]);
    const again = await raw(alice.devices[0]!, 'retry-me', [bob.name], [b1]);
    expect(again).toEqual(first);
    // Concurrent duplicates too.
    const burst = await Promise.all(Array.from({ length: 8 }, () => raw(alice.devices[0]!, 'burst', [bob.name], [b1])));
    expect(new Set(burst.map((r) => JSON.stringify(r.body))).size).toBe(1);
    const { envelopes } = await inbox(relay, b1);
    expect(envelopes.map((e) => e.seq)).toEqual([1, 2]);
    // Another device may use the same client id: idempotency is per sender device.
    const a2 = await addDevice(relay.fetch, alice);
    const other = await raw(a2, 'retry-me', [bob.name], [b1, alice.devices[0]!]);
    expect(other.body.messageId).not.toBe(first.body.messageId);
  });

  test('seqs are gap-free and strictly increasing under concurrent submitters', async () => {
    const bob = await createUser(relay.fetch, uniqueName('bob'));
    const senders = await Promise.all(Array.from({ length: 6 }, () => createUser(relay.fetch, uniqueName('s'))));
    const b1 = bob.devices[0]!;
    const perSender = 25;
    const results = await Promise.all(
      senders.flatMap((s, i) => Array.from({ length: perSender }, (_, k) => raw(s.devices[0]!, `c${i}-${k}`, [bob.name], [b1], utf8(`${i}:${k}`)))),
    );
    for (const r of results) expect(r.status).toBe(200);
    const all: WireEnvelope[] = [];
    for (let after = 0; ; ) {
      const page = await inbox(relay, b1, after, 37);
      all.push(...page.envelopes);
      if (!page.more) break;
      after = page.envelopes.at(-1)!.seq;
    }
    expect(all.map((e) => e.seq)).toEqual(Array.from({ length: senders.length * perSender }, (_, i) => i + 1));
    // Each sender's messages keep their submission order relative to... at least all arrived once.
    expect(new Set(all.map((e) => e.messageId)).size).toBe(all.length);
  });

  test('an inbox page holds at most 1 MiB of envelopes and payloads (at least one), and says more', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'));
    const bob = await createUser(relay.fetch, uniqueName('bob'));
    const b1 = bob.devices[0]!;
    const big = new Uint8Array(250 * 1024).fill(9);
    for (let i = 0; i < 6; i++) expect((await raw(alice.devices[0]!, `big${i}`, [bob.name], [b1], big)).status).toBe(200);
    const bytes = (e: WireEnvelope) => Buffer.from(e.payload, 'base64url').length + Buffer.from(e.envelope, 'base64url').length;
    const sizes: number[] = [];
    const seqs: number[] = [];
    for (let after = 0; ; ) {
      const page = await inbox(relay, b1, after, 100);
      expect(page.envelopes.length).toBeGreaterThan(0);
      sizes.push(page.envelopes.reduce((n, e) => n + bytes(e), 0));
      seqs.push(...page.envelopes.map((e) => e.seq));
      if (!page.more) break;
      after = page.envelopes.at(-1)!.seq;
    }
    // Four 250 KB payloads fit in 1 MiB, a fifth does not.
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6]);
    expect(sizes).toHaveLength(2);
    for (const n of sizes) expect(n).toBeLessThanOrEqual(1024 * 1024);
    // The count still bounds a page, and `more` stays exact at the end.
    const two = await inbox(relay, b1, 0, 2);
    expect(two.envelopes.map((e) => e.seq)).toEqual([1, 2]);
    expect(two.more).toBe(true);
    const last = await inbox(relay, b1, 5, 100);
    expect(last.envelopes.map((e) => e.seq)).toEqual([6]);
    expect(last.more).toBe(false);
  });

  test('acknowledged envelopes are deleted, then unreferenced payloads', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'));
    const bob = await createUser(relay.fetch, uniqueName('bob'), 2);
    const [b1, b2] = bob.devices as [TestDevice, TestDevice];
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) ids.push((await raw(alice.devices[0]!, `a${i}`, [bob.name], [b1, b2])).body.messageId);
    const payloads = async () =>
      Number(rowsOf<{ n: unknown }>(await relay.services.db.execute(sql`SELECT count(*) AS n FROM payloads WHERE id IN (${sql.join(ids.map((i) => sql`${i}::bigint`), sql`, `)})`))[0]!.n);
    expect((await call(relay.fetch, 'POST', '/v1/inbox/ack', { token: b1.token, body: { seq: 2 } })).body).toEqual({ acked: 2 });
    expect((await inbox(relay, b1)).envelopes.map((e) => e.seq)).toEqual([3]);
    expect(await payloads()).toBe(3); // b2 still holds them
    await call(relay.fetch, 'POST', '/v1/inbox/ack', { token: b2.token, body: { seq: 3 } });
    expect(await payloads()).toBe(1);
    await call(relay.fetch, 'POST', '/v1/inbox/ack', { token: b1.token, body: { seq: 3 } });
    expect(await payloads()).toBe(0);
    // Bob's device cannot ack or read Alice's inbox: the token decides whose inbox it is.
    expect((await call(relay.fetch, 'POST', '/v1/inbox/ack', { body: { seq: 1 } })).status).toBe(401);
  });

  test('retention: the sweeper drops expired envelopes, their payloads and old idempotency records', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'));
    const bob = await createUser(relay.fetch, uniqueName('bob'));
    const b1 = bob.devices[0]!;
    const first = await raw(alice.devices[0]!, 'old', [bob.name], [b1]);
    const hour = 3600_000;
    await sweep(relay.services.db, { now: Date.now() + 2 * hour, inboxRetentionMs: hour, idempotencyRetentionMs: hour });
    expect((await inbox(relay, b1)).envelopes).toEqual([]);
    const left = rowsOf<{ n: unknown }>(await relay.services.db.execute(sql`SELECT count(*) AS n FROM payloads WHERE id = ${first.body.messageId}::bigint`));
    expect(Number(left[0]!.n)).toBe(0);
    // The idempotency record went too: the same client id now makes a new message.
    const again = await raw(alice.devices[0]!, 'old', [bob.name], [b1]);
    expect(again.body.messageId).not.toBe(first.body.messageId);
    expect((await inbox(relay, b1)).envelopes.map((e) => e.seq)).toEqual([2]);
  });

  test('message limits are enforced with 4xx', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'));
    const bob = await createUser(relay.fetch, uniqueName('bob'));
    const big = await raw(alice.devices[0]!, 'big', [bob.name], [bob.devices[0]!], new Uint8Array(300 * 1024));
    expect(big).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    const dup = await call(relay.fetch, 'POST', '/v1/messages', {
      token: alice.devices[0]!.token,
      body: {
        clientMessageId: 'dup',
        to: [bob.name],
        payload: 'AQID',
        envelopes: [0, 1].map(() => ({ user: bob.name, device: b64(bob.devices[0]!.keys.deviceId), body: 'AQID' })),
      },
    });
    expect(dup.body.error).toBe('invalid_envelope');
    const badId = await raw(alice.devices[0]!, 'has space', [bob.name], [bob.devices[0]!]);
    expect(badId.status).toBe(400);
  });
});

// Device lists (verification, rollback, removal), device tokens and cross-account attempts,
// and the key directory (upload checks, bundles, one-time keys never handed out twice).
import {
  decodeBundle,
  generateAccountKey,
  generateDevice,
  generatePrekey,
  encodePrekey,
  PrekeyKind,
  signDeviceList,
  systemRng,
  verifyBundle,
  withDeviceAdded,
} from '../../crypto/index.ts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createECDH, randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { rowsOf } from '../../relay/db/client.ts';
import { addDevice, b64, call, createUser, issueToken, login, publishList, removeDevice, unb64, uploadPrekeys } from './client.ts';
import { backends, startTestRelay, type TestRelay, uniqueName, withConfig } from './harness.ts';

describe.each(backends)('devices and keys on $name', (backend) => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay(backend);
  });
  afterAll(async () => relay?.close());

  test('a published list is served to anyone, exactly as signed', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'), 2);
    const r = await call(relay.fetch, 'GET', `/v1/users/${alice.name.toUpperCase()}/devices`);
    expect(r.status).toBe(200);
    expect(r.body.version).toBe(2);
    expect(unb64(r.body.list)).toEqual(signDeviceList(alice.list!, alice.account).bytes);
    expect((await call(relay.fetch, 'GET', `/v1/users/${uniqueName('nobody')}/devices`)).body.error).toBe('unknown_user');
  });

  test('bad signature, wrong user, foreign account key and rollback are refused', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'));
    const dev = generateDevice(systemRng);
    const next = withDeviceAdded(alice.list!, dev, 'new', Date.now());

    const signed = signDeviceList(next, alice.account).bytes;
    const tampered = signed.slice();
    tampered[tampered.length - 1]! ^= 1;
    let r = await call(relay.fetch, 'PUT', '/v1/account/devices', { token: alice.session, body: { list: b64(tampered) } });
    expect(r).toMatchObject({ status: 400, body: { error: 'invalid_device_list' } });

    r = await call(relay.fetch, 'PUT', '/v1/account/devices', { token: alice.session, body: { list: b64(new Uint8Array(10)) } });
    expect(r.body.error).toBe('invalid_device_list');

    // Signed by another account key: the pinned key does not match.
    const mallory = generateAccountKey(systemRng);
    r = await call(relay.fetch, 'PUT', '/v1/account/devices', {
      token: alice.session,
      body: { list: b64(signDeviceList({ ...next, accountKey: mallory.publicKey }, mallory).bytes) },
    });
    expect(r.body.error).toBe('invalid_device_list');

    // A list for another user id.
    const bob = await createUser(relay.fetch, uniqueName('bob'));
    r = await call(relay.fetch, 'PUT', '/v1/account/devices', { token: bob.session, body: { list: b64(signed) } });
    expect(r.body.error).toBe('invalid_device_list');

    expect((await publishList(relay.fetch, alice, next)).status).toBe(200);
    // Same version again: idempotent; older version: rollback.
    expect((await call(relay.fetch, 'PUT', '/v1/account/devices', { token: alice.session, body: { list: b64(signed) } })).status).toBe(200);
    const old = signDeviceList({ ...next, version: 1, devices: next.devices.slice(0, 1) }, alice.account).bytes;
    r = await call(relay.fetch, 'PUT', '/v1/account/devices', { token: alice.session, body: { list: b64(old) } });
    expect(r).toMatchObject({ status: 409, body: { error: 'device_list_rollback' } });
  });

  test('tokens only for listed devices, only for the owner; removal revokes at once', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'), 2);
    const bob = await createUser(relay.fetch, uniqueName('bob'));
    const stranger = generateDevice(systemRng);
    expect((await issueToken(relay.fetch, alice, stranger)).body.error).toBe('device_not_listed');
    // Bob (session or device) cannot get a token for Alice's device.
    const aliceDev = alice.devices[0]!;
    expect((await call(relay.fetch, 'POST', `/v1/account/devices/${b64(aliceDev.keys.deviceId)}/token`, { token: bob.session })).body.error).toBe(
      'device_not_listed',
    );
    expect((await call(relay.fetch, 'POST', `/v1/account/devices/${b64(aliceDev.keys.deviceId)}/token`, { token: bob.devices[0]!.token })).status).toBe(403);
    // Bob cannot publish Alice's list, nor read her inbox, nor use a device token as a session elsewhere.
    const signed = signDeviceList(alice.list!, alice.account).bytes;
    expect((await call(relay.fetch, 'PUT', '/v1/account/devices', { token: bob.session, body: { list: b64(signed) } })).status).toBe(400);
    // An account session token is not a device credential.
    expect((await call(relay.fetch, 'GET', '/v1/inbox', { token: alice.session })).status).toBe(401);

    // A new device joins through an existing device of the same account.
    const third = generateDevice(systemRng);
    const next = withDeviceAdded(alice.list!, third, 'laptop', Date.now());
    expect((await publishList(relay.fetch, alice, next, aliceDev.token)).status).toBe(200);
    const t = await issueToken(relay.fetch, alice, third, aliceDev.token);
    expect(t.body.token).toMatch(/^pd_/);
    expect((await call(relay.fetch, 'GET', '/v1/keys/count', { token: t.body.token })).status).toBe(200);

    // ...or after an OPAQUE login (the session proves the password).
    const l = await login(relay.fetch, alice.name, alice.password);
    const t2 = await issueToken(relay.fetch, alice, third, l.body.sessionToken);
    expect(t2.status).toBe(200);
    expect((await call(relay.fetch, 'GET', '/v1/keys/count', { token: t.body.token })).status).toBe(401); // replaced

    // Removal: the removed device's token stops working at once.
    const victim = alice.devices[1]!;
    expect((await call(relay.fetch, 'GET', '/v1/inbox', { token: victim.token })).status).toBe(200);
    expect((await removeDevice(relay.fetch, alice, victim)).status).toBe(200);
    expect((await call(relay.fetch, 'GET', '/v1/inbox', { token: victim.token })).status).toBe(401);
    expect((await issueToken(relay.fetch, alice, victim.keys)).body.error).toBe('device_not_listed');
  });

  test('prekey upload verifies signatures against the listed device key', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'), 2, 0);
    const [d1, d2] = alice.devices as [NonNullable<(typeof alice.devices)[0]>, NonNullable<(typeof alice.devices)[0]>];
    // A prekey signed by d2 uploaded as d1's: refused.
    const foreign = generatePrekey(d2.keys, PrekeyKind.oneTime, 77, systemRng);
    let r = await call(relay.fetch, 'PUT', '/v1/keys', { token: d1.token, body: { prekeys: [b64(encodePrekey(foreign.public))] } });
    expect(r).toMatchObject({ status: 400, body: { error: 'invalid_prekey' } });
    r = await call(relay.fetch, 'PUT', '/v1/keys', { token: d1.token, body: { prekeys: [b64(new Uint8Array([1, 2, 3]))] } });
    expect(r.body.error).toBe('invalid_prekey');
    r = await uploadPrekeys(relay.fetch, d1, 3);
    expect(r.body).toEqual({ signed: true, pqLastResort: true, oneTime: 3, pqOneTime: 3 });
    expect((await call(relay.fetch, 'GET', '/v1/keys/count', { token: d1.token })).body.oneTime).toBe(3);
  });

  test('concurrent uploads of one device take turns: the one-time cap holds, a signed prekey is replaced once', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'), 1, 0);
    const d = alice.devices[0]!;
    // 8 uploads of 100 + 100 at once against a cap of 500 per kind: 5 fit, 3 are refused.
    const replies = await Promise.all(Array.from({ length: 8 }, () => uploadPrekeys(relay.fetch, d, 100)));
    const ok = replies.filter((r) => r.status === 200);
    for (const r of replies.filter((r) => r.status !== 200)) expect([r.status, r.body.error]).toEqual([400, 'too_many_prekeys']);
    expect(ok).toHaveLength(5);
    expect((await call(relay.fetch, 'GET', '/v1/keys/count', { token: d.token })).body).toMatchObject({ oneTime: 500, pqOneTime: 500 });
    // The same signed and last-resort prekeys sent 6 times at once (a retry racing its original).
    const signed = generatePrekey(d.keys, PrekeyKind.signed, 9001, systemRng);
    const lastResort = generatePrekey(d.keys, PrekeyKind.pqLastResort, 9002, systemRng);
    const body = { prekeys: [b64(encodePrekey(signed.public)), b64(encodePrekey(lastResort.public))] };
    const again = await Promise.all(Array.from({ length: 6 }, () => call(relay.fetch, 'PUT', '/v1/keys', { token: d.token, body })));
    for (const r of again) expect(r.status).toBe(200);
    const kinds = rowsOf<{ kind: number; n: number }>(
      await relay.services.db.execute(sql`SELECT p.kind, count(*)::int AS n FROM prekeys p JOIN devices v ON v.id = p.device WHERE v.device_id = ${d.keys.deviceId} AND p.kind IN (1, 4) GROUP BY p.kind ORDER BY p.kind`),
    );
    expect(kinds).toEqual([{ kind: 1, n: 1 }, { kind: 4, n: 1 }]);
  }, 60_000);

  test('a removal racing the device’s own uploads leaves none of its prekeys or push subscription behind', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'), 1, 0);
    const endpoint = 'https://push.example/sub/race';
    const keys = { p256dh: Buffer.from(createECDH('prime256v1').generateKeys()).toString('base64url'), auth: randomBytes(16).toString('base64url') };
    for (let round = 0; round < 4; round++) {
      const d = await addDevice(relay.fetch, alice, 0);
      const replies = await Promise.all([
        ...Array.from({ length: 3 }, () => call(relay.fetch, 'PUT', '/v1/push/subscription', { token: d.token, body: { endpoint, keys } })),
        uploadPrekeys(relay.fetch, d, 5),
        removeDevice(relay.fetch, alice, d),
      ]);
      // Each upload either finished before the removal or was refused as from a removed device.
      for (const r of replies.slice(0, 4)) expect([200, 204, 401]).toContain(r.status);
      expect(replies[4]!.status).toBe(200);
    }
    const left = rowsOf<{ n: number }>(
      await relay.services.db.execute(sql`
        SELECT (SELECT count(*) FROM prekeys p JOIN devices v ON v.id = p.device WHERE NOT v.active)
             + (SELECT count(*) FROM push_subscriptions p JOIN devices v ON v.id = p.device WHERE NOT v.active) AS n`),
    );
    expect(Number(left[0]!.n)).toBe(0);
  }, 60_000);

  test('bundles: one per device, verified, falling back to the last-resort key', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'), 2, 1);
    const bob = await createUser(relay.fetch, uniqueName('bob'));
    const asker = bob.devices[0]!.token;
    const get = () => call(relay.fetch, 'GET', `/v1/users/${alice.name}/bundles`, { token: asker });
    const first = await get();
    expect(first.status).toBe(200);
    expect(first.body.bundles).toHaveLength(2);
    for (const { deviceId, bundle } of first.body.bundles) {
      const dev = alice.devices.find((d) => b64(d.keys.deviceId) === deviceId)!;
      const b = decodeBundle(unb64(bundle));
      verifyBundle(b, dev.keys);
      expect(b.oneTimePrekey).not.toBeNull();
      expect(b.pqPrekey.kind).toBe(PrekeyKind.pqOneTime);
    }
    const second = await get();
    for (const { bundle } of second.body.bundles) {
      const b = decodeBundle(unb64(bundle));
      expect(b.oneTimePrekey).toBeNull();
      expect(b.pqPrekey.kind).toBe(PrekeyKind.pqLastResort);
    }
    expect((await call(relay.fetch, 'GET', `/v1/users/${alice.name}/bundles`)).status).toBe(401);
  });

  test('concurrent bundle fetches never hand a one-time key out twice', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'), 1, 30);
    const askers = await Promise.all([0, 1, 2, 3].map(() => createUser(relay.fetch, uniqueName('bob'))));
    const replies = await Promise.all(
      Array.from({ length: 48 }, (_, i) => call(relay.fetch, 'GET', `/v1/users/${alice.name}/bundles`, { token: askers[i % 4]!.devices[0]!.token })),
    );
    const ot: number[] = [];
    const pq: number[] = [];
    let lastResort = 0;
    for (const r of replies) {
      expect(r.status).toBe(200);
      const b = decodeBundle(unb64(r.body.bundles[0].bundle));
      if (b.oneTimePrekey) ot.push(b.oneTimePrekey.id);
      if (b.pqPrekey.kind === PrekeyKind.pqOneTime) pq.push(b.pqPrekey.id);
      else lastResort++;
    }
    expect(new Set(ot).size).toBe(ot.length);
    expect(new Set(pq).size).toBe(pq.length);
    expect(ot).toHaveLength(30);
    expect(pq).toHaveLength(30);
    expect(lastResort).toBe(18);
    expect((await call(relay.fetch, 'GET', '/v1/keys/count', { token: alice.devices[0]!.token })).body).toMatchObject({ oneTime: 0, pqOneTime: 0 });
  });

  test('bundle fetches are rate-limited per requesting device', async () => {
    await withConfig(relay, { rateLimits: { bundlesPerDevice: { burst: 2, perMinute: 1 } } as never }, async (fetch) => {
      const alice = await createUser(fetch, uniqueName('alice'));
      const bob = await createUser(fetch, uniqueName('bob'));
      const codes = [];
      for (let i = 0; i < 3; i++) codes.push((await call(fetch, 'GET', `/v1/users/${alice.name}/bundles`, { token: bob.devices[0]!.token })).status);
      expect(codes).toEqual([200, 200, 429]);
    });
  });
});

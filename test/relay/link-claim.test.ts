// Linking: a device listed by an existing device claims its first token with a claim signed by
// its own device key (crypto/PROTOCOL.md §4.1) — once, within the clock window, for itself only.
import { generateDevice, signDeviceClaim, systemRng, withDeviceAdded } from '../../crypto/index.ts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { b64, call, createUser, publishList } from './client.ts';
import { backends, startTestRelay, type TestRelay, uniqueName } from './harness.ts';

describe.each(backends)('device claim on $name', (backend) => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay(backend);
  });
  afterAll(async () => relay?.close());

  const claim = (bytes: Uint8Array) => call(relay.fetch, 'POST', '/v1/devices/claim', { body: { claim: b64(bytes) } });

  test('a listed device claims its token once; the token works', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'));
    const linked = generateDevice(systemRng);
    // Until an existing device lists it, the new device's polls are answered "pending", not an error.
    expect(await claim(signDeviceClaim(linked, Date.now()))).toEqual({ status: 202, body: { status: 'pending' } });

    const existing = alice.devices[0]!;
    expect((await publishList(relay.fetch, alice, withDeviceAdded(alice.list!, linked, 'laptop', Date.now()), existing.token)).status).toBe(200);
    const r = await claim(signDeviceClaim(linked, Date.now()));
    expect(r.status).toBe(200);
    expect(r.body.username).toBe(alice.name);
    expect(r.body.token).toMatch(/^pd_/);
    expect((await call(relay.fetch, 'GET', '/v1/keys/count', { token: r.body.token })).status).toBe(200);

    // A replay (or a second claim) cannot mint another token.
    expect(await claim(signDeviceClaim(linked, Date.now()))).toMatchObject({ status: 409, body: { error: 'already_claimed' } });
  });

  test('another account cannot list a copy of a device, so the claim answers for the real one', async () => {
    const bob = await createUser(relay.fetch, uniqueName('bob'));
    const mallory = await createUser(relay.fetch, uniqueName('mallory'));
    const linked = generateDevice(systemRng);
    expect((await publishList(relay.fetch, bob, withDeviceAdded(bob.list!, linked, 'laptop', Date.now()), bob.devices[0]!.token)).status).toBe(200);
    // Mallory copies the new device's public keys from Bob's public list into hers.
    const copy = await publishList(relay.fetch, mallory, withDeviceAdded(mallory.list!, linked, 'laptop', Date.now()), mallory.devices[0]!.token);
    expect(copy).toMatchObject({ status: 409, body: { error: 'device_taken' } });
    // Her list is unchanged, and the device's claim yields Bob's account.
    expect((await call(relay.fetch, 'GET', `/v1/users/${mallory.name}/devices`)).body.version).toBe(mallory.list!.version);
    const r = await claim(signDeviceClaim(linked, Date.now()));
    expect(r).toMatchObject({ status: 200, body: { username: bob.name } });
  });

  test('a claim signed by another key and garbage are refused', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'));
    const linked = generateDevice(systemRng);
    await publishList(relay.fetch, alice, withDeviceAdded(alice.list!, linked, 'laptop', Date.now()), alice.devices[0]!.token);

    const forged = signDeviceClaim({ ...generateDevice(systemRng), deviceId: linked.deviceId }, Date.now());
    expect(await claim(forged)).toMatchObject({ status: 401, body: { error: 'invalid_claim' } });
    const bad = signDeviceClaim(linked, Date.now());
    bad[0] = 9;
    expect(await claim(bad)).toMatchObject({ status: 400, body: { error: 'invalid_claim' } });
    expect((await call(relay.fetch, 'POST', '/v1/devices/claim', { body: { claim: 'x' } })).status).toBe(400);
    // Still claimable by the real device afterwards.
    expect((await claim(signDeviceClaim(linked, Date.now()))).status).toBe(200);
  });

  test('a claim timed outside the 5-minute window is claim_expired and carries the relay clock, listed or not', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'));
    const linked = generateDevice(systemRng);
    const expired = async (offMs: number) => {
      const before = Date.now();
      const r = await claim(signDeviceClaim(linked, Date.now() + offMs));
      expect(r).toMatchObject({ status: 401, body: { error: 'claim_expired', windowMs: 300_000 } });
      expect(r.body.relayTime).toBeGreaterThanOrEqual(before);
      expect(r.body.relayTime).toBeLessThanOrEqual(Date.now());
      return r.body.message as string;
    };
    // Before any account lists it: the device hears about its clock on its first poll.
    expect(await expired(-10 * 60_000)).toMatch(/^the claim's time is 60\d s behind the relay's clock.*check the device's clock$/);
    await publishList(relay.fetch, alice, withDeviceAdded(alice.list!, linked, 'laptop', Date.now()), alice.devices[0]!.token);
    expect(await expired(-10 * 60_000)).toMatch(/behind/);
    expect(await expired(+10 * 60_000)).toMatch(/ahead of/);
    // A forged claim out of the window is told about the time too: the time is checked first.
    expect(await claim(signDeviceClaim({ ...generateDevice(systemRng), deviceId: linked.deviceId }, Date.now() - 10 * 60_000))).toMatchObject({ status: 401, body: { error: 'claim_expired' } });
    // Inside the window, a slow clock is fine; the refusals above did not use up the claim.
    expect(await claim(signDeviceClaim(linked, Date.now() - 4 * 60_000))).toMatchObject({ status: 200, body: { username: alice.name } });
  });
});

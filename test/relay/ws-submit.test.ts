// Submitting over the WebSocket: the same checks as POST /v1/messages, answered per `ref`.
import { describe, expect, test } from 'vitest';
import { EMPTY_DEVICE_SESSIONS, fanoutEncrypt, systemRng, toHex } from '../../crypto/index.ts';
import { b64, call, createUser, open, send, type TestDevice } from './client.ts';
import { backends, type Fetch, relayOnPort, TEST_CONFIG, uniqueName } from './harness.ts';
import { TestSocket } from './ws-client.ts';

describe.each(backends)('websocket submit on $name', (backend) => {
  const server = relayOnPort(backend, { config: TEST_CONFIG });
  const fetch: Fetch = (path, init) => server.fetch(path, init);

  /** A real sealed message from `from` to the device `to` (sessions start on first use). */
  const seal = (from: TestDevice, to: TestDevice, text: string, id: string) => {
    const addr = `${to.user.name}/${toHex(to.keys.deviceId)}`;
    const out = fanoutEncrypt(new TextEncoder().encode(text), [{ address: 0, record: from.sessions.get(addr) ?? EMPTY_DEVICE_SESSIONS }], systemRng);
    from.sessions.set(addr, out.messages[0]!.record);
    return { clientMessageId: id, to: [to.user.name], payload: b64(out.payload), envelopes: [{ user: to.user.name, device: b64(to.keys.deviceId), body: b64(out.messages[0]!.message) }] };
  };

  async function pair() {
    const alice = await createUser(fetch, uniqueName('alice'));
    const bob = await createUser(fetch, uniqueName('bob'));
    const [a, b] = [alice.devices[0]!, bob.devices[0]!];
    // Bob's session with Alice starts over HTTP (a prekey message), as a client would.
    expect((await send(fetch, a, [bob.name], new TextEncoder().encode('over http first'), 'h1')).status).toBe(200);
    return { alice, bob, a, b };
  }

  test('submitted once committed; a retry gets the same result and stores nothing', async () => {
    const { a, b } = await pair();
    const sock = await TestSocket.open(server.relay.url, a.token);
    const body = seal(a, b, 'over the socket', 'w1');
    sock.send({ type: 'submit', ref: 'r1', ...body });
    const ok = await sock.next((f) => f.ref === 'r1');
    expect(ok).toMatchObject({ type: 'submitted', messageId: expect.any(Number), timestamp: expect.any(Number) });
    sock.send({ type: 'submit', ref: 'r2', ...body });
    expect(await sock.next((f) => f.ref === 'r2')).toEqual({ ...ok, ref: 'r2' });

    const inbox = await TestSocket.open(server.relay.url, b.token);
    const got = await inbox.envelopes(2);
    expect(got.map((e) => e.seq)).toEqual([1, 2]);
    expect(await open(fetch, b, got[0])).toBe('over http first');
    expect(await open(fetch, b, got[1])).toBe('over the socket');
    expect(got[1].messageId).toBe(ok.messageId);
    await new Promise((r) => setTimeout(r, 200)); // no third envelope follows the retry
    expect(inbox.frames.filter((f) => f.type === 'envelopes')).toEqual([]);
    sock.close();
    inbox.close();
  });

  test('device_mismatch names the missing and the extra devices; unknown_user names the users', async () => {
    const alice = await createUser(fetch, uniqueName('alice'));
    const bob = await createUser(fetch, uniqueName('bob'), 2);
    const sock = await TestSocket.open(server.relay.url, alice.devices[0]!.token);
    const stranger = b64(new Uint8Array(16).fill(9));
    const envelope = (device: string) => ({ user: bob.name, device, body: b64(new Uint8Array([1, 2, 3])) });
    sock.send({
      type: 'submit',
      ref: 'm1',
      clientMessageId: 'm1',
      to: [bob.name],
      payload: b64(new Uint8Array([4])),
      envelopes: [envelope(b64(bob.devices[0]!.keys.deviceId)), envelope(stranger)],
    });
    expect(await sock.next((f) => f.ref === 'm1')).toMatchObject({
      type: 'submit_error',
      error: 'device_mismatch',
      missing: [{ user: bob.name, devices: [b64(bob.devices[1]!.keys.deviceId)] }],
      extra: [{ user: bob.name, devices: [stranger] }],
    });
    const nobody = uniqueName('nobody');
    sock.send({ type: 'submit', ref: 'm2', clientMessageId: 'm2', to: [nobody], payload: b64(new Uint8Array([4])), envelopes: [{ user: nobody, device: stranger, body: 'AQ' }] });
    expect(await sock.next((f) => f.ref === 'm2')).toMatchObject({ type: 'submit_error', error: 'unknown_user', users: [nobody] });
    // Nothing was stored for either.
    expect((await call(fetch, 'GET', '/v1/inbox', { token: bob.devices[0]!.token })).body.envelopes).toEqual([]);
    sock.close();
  });

  test('an invalid body is refused by ref and the socket stays; a frame without a ref closes it', async () => {
    const { a, b } = await pair();
    const sock = await TestSocket.open(server.relay.url, a.token);
    sock.send({ type: 'submit', ref: 'bad', ...seal(a, b, 'x', 'w3'), envelopes: [] });
    const refused = await sock.next((f) => f.ref === 'bad');
    expect(refused).toMatchObject({ type: 'submit_error', error: 'invalid_request' });
    expect(refused.message).toContain('envelopes');
    sock.send({ type: 'submit', ref: 'bad2', ...seal(a, b, 'x', 'w4'), payload: 'not base64url!' });
    expect(await sock.next((f) => f.ref === 'bad2')).toMatchObject({ type: 'submit_error', error: 'invalid_request' });
    sock.send({ type: 'submit', ref: 'good', ...seal(a, b, 'still open', 'w5') });
    expect(await sock.next((f) => f.ref === 'good')).toMatchObject({ type: 'submitted' });

    sock.send({ type: 'submit', ...seal(a, b, 'x', 'w6') }); // no ref to answer by
    await expect(sock.waitClosed()).resolves.toMatchObject({ code: 4400 });
  });

  test('a submit before auth closes the socket with 4401', async () => {
    const { a, b } = await pair();
    const unauth = await TestSocket.connect(server.relay.url);
    unauth.send({ type: 'submit', ref: 'r6', ...seal(a, b, 'x', 'w7') });
    await expect(unauth.waitClosed()).resolves.toMatchObject({ code: 4401 });
    expect((await call(fetch, 'GET', '/v1/inbox', { token: b.token })).body.envelopes).toHaveLength(1); // only the HTTP one
  });
});

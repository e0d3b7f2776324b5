// WebSocket delivery on a real port: catch-up then live, acks over the socket, auth failures,
// revocation cutting the socket, and the bounded send buffer.
import { describe, expect, test } from 'vitest';
import { b64, call, createUser, open, removeDevice, send, type TestDevice } from './client.ts';
import { backends, type Fetch, relayOnPort, TEST_CONFIG, uniqueName } from './harness.ts';
import { TestSocket } from './ws-client.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);

describe.each(backends)('websocket on $name', (backend) => {
  const server = relayOnPort(backend, { config: { ...TEST_CONFIG, wsMaxBufferedBytes: 256 * 1024 } });
  const fetch: Fetch = (path, init) => server.fetch(path, init);

  test('catch-up from the cursor, then live delivery, acks over the socket', async () => {
    const alice = await createUser(fetch, uniqueName('alice'));
    const bob = await createUser(fetch, uniqueName('bob'));
    const a1 = alice.devices[0]!;
    const b1 = bob.devices[0]!;
    for (let i = 0; i < 5; i++) expect((await send(fetch, a1, [bob.name], utf8(`offline ${i}`), `o${i}`)).status).toBe(200);

    // Resume after seq 2: gets 3..5, in order.
    const sock = await TestSocket.open(server.relay.url, b1.token, 2);
    const caught = await sock.envelopes(3);
    expect(caught.map((e) => e.seq)).toEqual([3, 4, 5]);
    // (1 and 2 were "already held" by the device; decrypt in order from the start over HTTP.)
    const all = (await call(fetch, 'GET', '/v1/inbox', { token: b1.token })).body.envelopes;
    for (let i = 0; i < 5; i++) expect(await open(fetch, b1, all[i])).toBe(`offline ${i}`);

    // Live.
    expect((await send(fetch, a1, [bob.name], utf8('live!'), 'live1')).status).toBe(200);
    const [live] = await sock.envelopes(1);
    expect(live.seq).toBe(6);
    expect(await open(fetch, b1, live)).toBe('live!');

    // An ack is answered only when it asks to be (confirm): the first one here is not, the
    // second is, and the answer carries the highest seq acknowledged.
    sock.send({ type: 'ack', seq: 5 });
    sock.send({ type: 'ack', seq: 6, confirm: true });
    expect(await sock.next()).toEqual({ type: 'acked', seq: 6 });
    expect((await call(fetch, 'GET', '/v1/inbox', { token: b1.token })).body.envelopes).toEqual([]);
    sock.close();
  });

  test('many live messages arrive once each, in order', async () => {
    const alice = await createUser(fetch, uniqueName('alice'));
    const bob = await createUser(fetch, uniqueName('bob'));
    const sock = await TestSocket.open(server.relay.url, bob.devices[0]!.token);
    const n = 60;
    const target = bob.devices[0]!;
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        call(fetch, 'POST', '/v1/messages', {
          token: alice.devices[0]!.token,
          body: { clientMessageId: `m${i}`, to: [bob.name], payload: 'AQID', envelopes: [{ user: bob.name, device: b64(target.keys.deviceId), body: 'AQID' }] },
        }),
      ),
    );
    const got = await sock.envelopes(n);
    expect(got.map((e) => e.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    sock.close();
  });

  test('bad token, bad frames and no auth are refused', async () => {
    const s1 = await TestSocket.connect(server.relay.url);
    s1.send({ type: 'auth', token: 'pd_' + 'A'.repeat(43) });
    expect((await s1.next()).error).toBe('unauthorized');
    expect((await s1.waitClosed()).code).toBe(4401);

    const s2 = await TestSocket.connect(server.relay.url);
    s2.ws.send('not json');
    expect((await s2.waitClosed()).code).toBe(4400);

    // A binary frame, even one holding a valid auth frame's JSON: the protocol is text frames.
    const s4 = await TestSocket.connect(server.relay.url);
    s4.ws.send(Buffer.from(JSON.stringify({ type: 'auth', token: 'pd_' + 'A'.repeat(43) })), { binary: true });
    expect((await s4.waitClosed()).code).toBe(4400);

    const s3 = await TestSocket.connect(server.relay.url);
    s3.send({ type: 'ack', seq: 1 });
    expect((await s3.waitClosed()).code).toBe(4401);

    // Plain HTTP on the socket endpoint.
    expect((await call(fetch, 'GET', '/v1/ws')).status).toBe(426);
  });

  test('any JSON value as a frame, before or after auth, closes that socket only', async () => {
    const bob = await createUser(fetch, uniqueName('bob'));
    for (const frame of ['null', '1', '"auth"', '[]', 'true', '{}', '{"type":null}']) {
      for (const authed of [false, true]) {
        const s = authed ? await TestSocket.open(server.relay.url, bob.devices[0]!.token) : await TestSocket.connect(server.relay.url);
        s.ws.send(frame);
        expect((await s.next()).error, frame).toBe('invalid_request');
        expect((await s.waitClosed()).code, frame).toBe(4400);
      }
    }
    // An `after` past any seq is a bad frame, not a failed catch-up.
    const s = await TestSocket.connect(server.relay.url);
    s.send({ type: 'auth', token: bob.devices[0]!.token, after: 1e300 });
    expect((await s.waitClosed()).code).toBe(4400);
    // The relay still serves.
    expect((await call(fetch, 'GET', '/v1/inbox', { token: bob.devices[0]!.token })).status).toBe(200);
  });

  test('frames sent right after auth, before ready, are handled once the token is checked', async () => {
    const alice = await createUser(fetch, uniqueName('alice'));
    const bob = await createUser(fetch, uniqueName('bob'));
    const a1 = alice.devices[0]!;
    const s = await TestSocket.connect(server.relay.url);
    s.send({ type: 'auth', token: a1.token });
    s.send({
      type: 'submit',
      ref: 'early',
      clientMessageId: 'early1',
      to: [bob.name],
      payload: 'AQID',
      envelopes: [{ user: bob.name, device: b64(bob.devices[0]!.keys.deviceId), body: 'AQID' }],
    });
    expect((await s.next()).type).toBe('ready');
    expect(await s.next()).toMatchObject({ type: 'submitted', ref: 'early' });
    s.close();
  });

  test('an ack past what the inbox holds is refused; over a socket it counts up to what was sent', async () => {
    const alice = await createUser(fetch, uniqueName('alice'));
    const bob = await createUser(fetch, uniqueName('bob'));
    const b1 = bob.devices[0]!;
    for (let i = 0; i < 3; i++) expect((await send(fetch, alice.devices[0]!, [bob.name], utf8(`m${i}`), `m${i}`)).status).toBe(200);

    // Over HTTP: past the last seq stored.
    const r = await call(fetch, 'POST', '/v1/inbox/ack', { token: b1.token, body: { seq: 9_007_199_254_740_991 } });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ error: 'invalid_ack', last: 3 });

    // Over the socket, an ack counts up to what this socket sent, at most: seq 4, stored after
    // the ack, is not deleted by it.
    const sock = await TestSocket.open(server.relay.url, b1.token, 0);
    expect((await sock.envelopes(3)).map((e) => e.seq)).toEqual([1, 2, 3]);
    sock.send({ type: 'ack', seq: 99, confirm: true });
    expect(await sock.next()).toEqual({ type: 'acked', seq: 3 });
    expect((await send(fetch, alice.devices[0]!, [bob.name], utf8('m3'), 'm3')).status).toBe(200);
    expect((await sock.envelopes(1))[0].seq).toBe(4);
    const left = (await call(fetch, 'GET', '/v1/inbox', { token: b1.token })).body.envelopes;
    expect(left.map((e: { seq: number }) => e.seq)).toEqual([4]);
    sock.close();
  });

  test('a cursor past the inbox’s end (a restored relay): what was stored since moves to follow it', async () => {
    const alice = await createUser(fetch, uniqueName('alice'));
    const bob = await createUser(fetch, uniqueName('bob'));
    const carol = await createUser(fetch, uniqueName('carol'));
    for (let i = 0; i < 2; i++) expect((await send(fetch, alice.devices[0]!, [bob.name], utf8(`m${i}`), `m${i}`)).status).toBe(200);
    const readAt = (await call(fetch, 'GET', '/v1/inbox', { token: bob.devices[0]!.token })).body.envelopes[1].timestamp as number;
    await new Promise((r) => setTimeout(r, 5));
    // Bob's device read up to seq 7 (the envelope at `readAt`) before the relay was restored to a
    // backup ending at seq 2; seq 3 was stored since, under a seq the device believes it has.
    expect((await send(fetch, alice.devices[0]!, [bob.name], utf8('m2'), 'm2')).status).toBe(200);
    const s = await TestSocket.connect(server.relay.url);
    s.send({ type: 'auth', token: bob.devices[0]!.token, after: 7, at: readAt });
    expect(await s.next()).toEqual({ type: 'ready', after: 7 });
    expect((await s.envelopes(1)).map((e) => [e.seq, e.messageId])).toEqual([[8, expect.any(Number)]]);
    // The numbering goes on from there, gap-free, live and over HTTP.
    expect((await send(fetch, alice.devices[0]!, [bob.name], utf8('m3'), 'm3')).status).toBe(200);
    expect((await s.envelopes(1)).map((e) => e.seq)).toEqual([9]);
    expect((await call(fetch, 'GET', '/v1/inbox?after=7', { token: bob.devices[0]!.token })).body.envelopes.map((e: { seq: number }) => e.seq)).toEqual([8, 9]);
    s.close();

    // Over HTTP, and without the timestamp (a client that does not send it): the counter moves, so
    // what comes next follows the cursor.
    for (let i = 0; i < 2; i++) expect((await send(fetch, alice.devices[0]!, [carol.name], utf8(`c${i}`), `c${i}`)).status).toBe(200);
    const c1 = carol.devices[0]!.token;
    expect((await call(fetch, 'GET', '/v1/inbox?after=5', { token: c1 })).body).toEqual({ envelopes: [], more: false });
    expect((await send(fetch, alice.devices[0]!, [carol.name], utf8('c2'), 'c2')).status).toBe(200);
    expect((await call(fetch, 'GET', '/v1/inbox?after=5', { token: c1 })).body.envelopes.map((e: { seq: number }) => e.seq)).toEqual([6]);
    expect((await call(fetch, 'GET', '/v1/inbox', { token: c1 })).body.envelopes.map((e: { seq: number }) => e.seq)).toEqual([1, 2, 6]);
  });

  test('removing a device cuts its socket', async () => {
    const bob = await createUser(fetch, uniqueName('bob'), 2);
    const victim = bob.devices[1]!;
    const sock = await TestSocket.open(server.relay.url, victim.token);
    expect((await removeDevice(fetch, bob, victim)).status).toBe(200);
    expect((await sock.waitClosed()).code).toBe(4403);
  });

  test('a consumer that stops reading is closed past the buffer limit', async () => {
    const alice = await createUser(fetch, uniqueName('alice'));
    const bob = await createUser(fetch, uniqueName('bob'));
    const b1: TestDevice = bob.devices[0]!;
    const sock = await TestSocket.open(server.relay.url, b1.token);
    (sock.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const payload = b64(new Uint8Array(200 * 1024));
    for (let i = 0; i < 80; i++) {
      const r = await call(fetch, 'POST', '/v1/messages', {
        token: alice.devices[0]!.token,
        body: { clientMessageId: `big${i}`, to: [bob.name], payload, envelopes: [{ user: bob.name, device: b64(b1.keys.deviceId), body: 'AQID' }] },
      });
      expect(r.status).toBe(200);
    }
    (sock.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    expect((await sock.waitClosed(20_000)).code).toBe(4008);
    // Nothing was lost: the device resyncs by seq.
    const again = await TestSocket.open(server.relay.url, b1.token);
    const got = await again.envelopes(80, 30_000);
    expect(got.map((e) => e.seq)).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
    again.close();
  });
});

// With the default send buffer (4 MB): the suite above shrinks it to 256 KB to reach its limit
// quickly, which a burst of 200 KB frames to a reader in this same process could cross, closing
// the socket (4008) before the frames' sizes are seen.
describe.each(backends)('websocket frames on $name', (backend) => {
  const big = relayOnPort(backend, { config: TEST_CONFIG });
  const bigFetch: Fetch = (path, init) => big.fetch(path, init);

  test('a frame holds at most 1 MiB of envelopes and payloads, in catch-up and in a live burst', async () => {
    const alice = await createUser(bigFetch, uniqueName('alice'));
    const bob = await createUser(bigFetch, uniqueName('bob'));
    const b1: TestDevice = bob.devices[0]!;
    const payload = b64(new Uint8Array(200 * 1024).fill(3));
    const submit = (id: string) =>
      call(bigFetch, 'POST', '/v1/messages', {
        token: alice.devices[0]!.token,
        body: { clientMessageId: id, to: [bob.name], payload, envelopes: [{ user: bob.name, device: b64(b1.keys.deviceId), body: 'AQID' }] },
      });
    for (let i = 0; i < 12; i++) expect((await submit(`off${i}`)).status).toBe(200);
    const sock = await TestSocket.open(big.relay.url, b1.token);
    const frameBytes = (f: { items: { payload: string; envelope: string }[] }) =>
      f.items.reduce((n, e) => n + Buffer.from(e.payload, 'base64url').length + Buffer.from(e.envelope, 'base64url').length, 0);
    const read = async (n: number) => {
      const frames: { items: { seq: number; payload: string; envelope: string }[] }[] = [];
      for (let got = 0; got < n; ) {
        const f = (await sock.next((x) => x.type === 'envelopes', 20_000)) as unknown as (typeof frames)[number];
        frames.push(f);
        got += f.items.length;
      }
      return frames;
    };
    const caught = await read(12);
    expect(caught.flatMap((f) => f.items.map((e) => e.seq))).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(caught.length).toBeGreaterThanOrEqual(3); // 5 of 200 KB fit in 1 MiB
    for (const f of caught) expect(frameBytes(f)).toBeLessThanOrEqual(1024 * 1024);
    // Live: submissions at once, so batches hand the socket several large records together.
    expect((await Promise.all(Array.from({ length: 12 }, (_, i) => submit(`live${i}`)))).every((r) => r.status === 200)).toBe(true);
    const live = await read(12);
    expect(live.flatMap((f) => f.items.map((e) => e.seq))).toEqual(Array.from({ length: 12 }, (_, i) => i + 13));
    for (const f of live) expect(frameBytes(f)).toBeLessThanOrEqual(1024 * 1024);
    sock.close();
  });
});

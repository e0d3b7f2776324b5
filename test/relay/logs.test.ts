// The relay's log lines (at debug level, over a real port) during a scripted conversation hold no
// token, password, key, ciphertext, plaintext or attachment id: registration, login, backup,
// device lists, device tokens, prekeys and bundles, messages over HTTP and over the socket, acks,
// attachments, a device removal that cuts its socket, and failures fed those same secrets.
import { describe, expect, test } from 'vitest';
import { toHex } from '../../crypto/index.ts';
import { jsonLogger } from '../../relay/log.ts';
import { addDevice, b64, call, createUser, login, open, removeDevice, send, type TestDevice, type TestUser, uploadPrekeys } from './client.ts';
import { backends, type Fetch, relayOnPort, TEST_CONFIG, uniqueName } from './harness.ts';
import { TestSocket } from './ws-client.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);

/** Every encoding a secret might be logged in: base64url, base64, hex (and the text itself). */
function forms(secret: string | Uint8Array): string[] {
  if (typeof secret === 'string') return [secret];
  const buf = Buffer.from(secret);
  return [buf.toString('base64url'), buf.toString('base64').replace(/=+$/, ''), toHex(secret)];
}

/**
 * The pieces a line must not contain: a short secret whole, a long one as 16-character windows
 * every 8 (any leaked run of 24 or more characters contains one; chance matches are impossible).
 */
function pieces(secret: string | Uint8Array): string[] {
  return forms(secret).flatMap((f) => (f.length <= 24 ? [f] : Array.from({ length: Math.ceil((f.length - 16) / 8) + 1 }, (_, i) => f.slice(Math.min(i * 8, f.length - 16), Math.min(i * 8, f.length - 16) + 16))));
}

function deviceSecrets(d: TestDevice): (string | Uint8Array)[] {
  return [d.token, d.keys.signingSecret, d.keys.dhSecret, d.keys.dhKey, d.keys.signingKey, ...[...d.prekeys.values()].flatMap((p) => [p.secretKey, p.publicKey])];
}

describe.each(backends)('relay logs on $name', (backend) => {
  const lines: string[] = [];
  const server = relayOnPort(backend, { config: TEST_CONFIG, log: jsonLogger('debug', (l) => lines.push(l)) });
  const fetch: Fetch = (path, init) => server.fetch(path, init);

  test('no secret in any line of a whole conversation', async () => {
    const secrets: (string | Uint8Array)[] = [];
    const alice: TestUser = await createUser(fetch, uniqueName('alice'), 2);
    const bob: TestUser = await createUser(fetch, uniqueName('bob'));
    const [a1, a2] = alice.devices as [TestDevice, TestDevice];
    const b1 = bob.devices[0]!;
    secrets.push(alice.password, bob.password, alice.session, bob.session, alice.account.secretKey, alice.account.publicKey, bob.account.secretKey);

    // Login, account-key backup, more prekeys.
    const logged = await login(fetch, alice.name, alice.password);
    expect(logged.status).toBe(200);
    secrets.push(logged.body.sessionToken, logged.exportKey!);
    const backup = crypto.getRandomValues(new Uint8Array(200));
    secrets.push(backup);
    expect((await call(fetch, 'PUT', '/v1/account/backup', { token: logged.body.sessionToken, body: { backup: b64(backup) } })).status).toBe(204);
    expect((await call(fetch, 'GET', '/v1/account/backup', { token: a1.token })).status).toBe(200);
    expect((await uploadPrekeys(fetch, b1, 3)).status).toBe(200);

    // Messages over HTTP, received over sockets and acknowledged there.
    const bobSock = await TestSocket.open(server.relay.url, b1.token);
    const a2Sock = await TestSocket.open(server.relay.url, a2.token);
    const texts = ['first words over http', 'second words over the socket'];
    expect((await send(fetch, a1, [bob.name], utf8(texts[0]!), 'c1')).status).toBe(200);
    const [e1] = await bobSock.envelopes(1);
    expect(await open(fetch, b1, e1)).toBe(texts[0]);
    bobSock.send({ type: 'ack', seq: e1.seq, confirm: true });
    await bobSock.next((f) => f.type === 'acked');
    secrets.push(e1.envelope, e1.payload, ...(await a2Sock.envelopes(1)).flatMap((e) => [e.envelope, e.payload]));

    // A reply submitted over the socket: the body send() would POST, captured and sent as a frame.
    let body: any;
    const capture: Fetch = async (path, init) => (path === '/v1/messages' ? ((body = JSON.parse(String(init!.body))), new Response('{}')) : fetch(path, init));
    await send(capture, b1, [alice.name], utf8(texts[1]!), 'c2');
    secrets.push(body.payload, ...body.envelopes.map((e: { body: string }) => e.body));
    bobSock.send({ type: 'submit', ref: 'r1', ...body });
    expect(await bobSock.next((f) => f.ref === 'r1')).toMatchObject({ type: 'submitted' });
    expect(await open(fetch, a2, (await a2Sock.envelopes(1))[0])).toBe(texts[1]);
    expect((await call(fetch, 'POST', '/v1/inbox/ack', { token: a2.token, body: { seq: 2 } })).status).toBe(200);

    // An attachment: its id is a capability, its bytes ciphertext.
    const blob = crypto.getRandomValues(new Uint8Array(300));
    const { id } = (await call(fetch, 'POST', '/v1/attachments', { token: a1.token, body: { size: blob.length } })).body;
    secrets.push(id, blob);
    expect((await fetch(`/v1/attachments/${id}/chunks/0`, { method: 'PUT', headers: { authorization: `Bearer ${a1.token}` }, body: blob })).status).toBe(204);
    expect((await call(fetch, 'POST', `/v1/attachments/${id}/complete`, { token: a1.token })).status).toBe(200);
    expect((await fetch(`/v1/attachments/${id}`, { headers: { authorization: `Bearer ${b1.token}` } })).status).toBe(200);

    // A device added and one removed while its socket is open (the relay closes it).
    const b2 = await addDevice(fetch, bob);
    expect((await removeDevice(fetch, alice, a2)).status).toBe(200);
    expect((await a2Sock.waitClosed()).code).toBe(4403);
    for (const d of [a1, a2, b1, b2]) secrets.push(...deviceSecrets(d));

    // Failures fed secrets: a revoked token, a guessed one, secrets inside bad bodies and frames.
    const guess = 'pd_' + 'Q'.repeat(43);
    secrets.push(guess);
    expect((await call(fetch, 'GET', '/v1/inbox', { token: a2.token })).status).toBe(401);
    expect((await call(fetch, 'POST', '/v1/messages', { token: guess, body: {} })).status).toBe(401);
    expect((await call(fetch, 'POST', '/v1/messages', { token: a1.token, body: { ...body, clientMessageId: a1.token.slice(0, 60) } })).status).toBeGreaterThanOrEqual(400);
    expect((await call(fetch, 'PUT', '/v1/account/backup', { token: a1.token, raw: `{"backup":"${alice.password}"` })).status).toBe(400);
    expect((await login(fetch, alice.name, `${alice.password}-wrong`)).status).not.toBe(200);
    secrets.push(`${alice.password}-wrong`);
    const stranger = await TestSocket.connect(server.relay.url);
    stranger.send({ type: 'auth', token: guess, after: 0 });
    await stranger.waitClosed();
    bobSock.send({ type: 'submit', ref: 'r2', ...body, envelopes: 'not a list', payload: bob.session });
    expect(await bobSock.next((f) => f.ref === 'r2')).toMatchObject({ type: 'submit_error' });
    bobSock.close();

    secrets.push(...texts);
    const needles = [...new Set(secrets.flatMap(pieces))];
    // The script was seen: event lines, and the debug access log (by route pattern) of each kind of request.
    for (const msg of ['account registered', 'device list stored', 'login', 'attachment created']) expect(lines.some((l) => JSON.parse(l).msg === msg), msg).toBe(true);
    for (const route of ['/v1/messages', '/v1/keys', '/v1/users/:username/bundles', '/v1/attachments/:id', '/v1/ws']) expect(lines.some((l) => JSON.parse(l).route === route), route).toBe(true);
    for (const l of lines) {
      expect(() => JSON.parse(l)).not.toThrow();
      const leak = needles.find((n) => l.includes(n));
      expect(leak, `log line leaks a secret: ${l.slice(0, 200)}`).toBeUndefined();
    }
  });
});

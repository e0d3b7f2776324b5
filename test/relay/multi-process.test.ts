// Two relay processes on one PostgreSQL (runs only with TEST_DATABASE_URL): a message accepted
// by one is delivered live to a socket held by the other (LISTEN/NOTIFY), a removal through one
// cuts the socket on the other, and seqs stay gap-free with both writing to one inbox.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { b64, call, createUser, open, removeDevice, send } from './client.ts';
import { backends, type Fetch, uniqueName } from './harness.ts';
import { TestSocket } from './ws-client.ts';

const pg = backends.find((b) => b.name === 'postgres');
const utf8 = (s: string) => new TextEncoder().encode(s);

interface Proc {
  child: ChildProcess;
  url: string;
  fetch: Fetch;
}

async function spawnRelay(databaseUrl: string): Promise<Proc> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'relay/server.ts'], {
    env: { ...process.env, DATABASE_URL: databaseUrl, PORT: '0', HOST: '127.0.0.1', PETREL_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      try {
        const j = JSON.parse(line);
        if (j.msg === 'listening') resolve(j.port);
      } catch {}
    });
    child.once('exit', (code) => reject(new Error(`relay exited ${code}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  return { child, url, fetch: (path, init) => globalThis.fetch(url + path, init) };
}

async function stop(p: Proc | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGTERM');
  await exited;
}

describe.skipIf(!pg)('two relay processes on one PostgreSQL', () => {
  let a: Proc | undefined;
  let b: Proc | undefined;
  let drop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const db = await pg!.create();
    drop = db.drop;
    [a, b] = await Promise.all([spawnRelay(db.url!), spawnRelay(db.url!)]);
  });
  afterAll(async () => {
    await Promise.all([stop(a), stop(b)]);
    await drop?.();
  });

  test('accepted by one process, delivered live by the other', async () => {
    const alice = await createUser(a!.fetch, uniqueName('alice'));
    const bob = await createUser(a!.fetch, uniqueName('bob'), 2);
    const onB = await TestSocket.open(b!.url, bob.devices[0]!.token);
    expect((await send(a!.fetch, alice.devices[0]!, [bob.name], utf8('across processes'), 'x1')).status).toBe(200);
    const [e] = await onB.envelopes(1);
    expect(e.seq).toBe(1);
    expect(await open(a!.fetch, bob.devices[0]!, e)).toBe('across processes');

    // Removing the device through process A closes its socket on process B.
    const victim = await TestSocket.open(b!.url, bob.devices[1]!.token);
    expect((await removeDevice(a!.fetch, bob, bob.devices[1]!)).status).toBe(200);
    expect((await victim.waitClosed()).code).toBe(4403);
    onB.close();
  });

  test('both processes writing to one inbox: gap-free seqs, all delivered live once', async () => {
    const alice = await createUser(a!.fetch, uniqueName('alice'));
    const carol = await createUser(b!.fetch, uniqueName('carol'));
    const bob = await createUser(a!.fetch, uniqueName('bob'));
    const target = bob.devices[0]!;
    const sock = await TestSocket.open(b!.url, target.token);
    const n = 40;
    const submit = (p: Proc, from: typeof alice, i: number) =>
      call(p.fetch, 'POST', '/v1/messages', {
        token: from.devices[0]!.token,
        body: { clientMessageId: `m${i}`, to: [bob.name], payload: 'AQID', envelopes: [{ user: bob.name, device: b64(target.keys.deviceId), body: 'AQID' }] },
      });
    const replies = await Promise.all(Array.from({ length: n }, (_, i) => (i % 2 ? submit(a!, alice, i) : submit(b!, carol, i))));
    for (const r of replies) expect(r.status).toBe(200);
    const got = await sock.envelopes(n);
    expect(got.map((e) => e.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    sock.close();
  });
});

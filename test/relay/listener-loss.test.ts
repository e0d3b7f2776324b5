// NOTIFY is not durable: when a relay's LISTEN connection drops, notifications sent meanwhile
// are lost to it. After postgres.js re-establishes LISTEN, every socket must re-check its token
// and catch up from the database. Runs only on PostgreSQL (PGlite's channel is in-process).
// The "lost" notifications are simulated exactly: rows written (and a token revoked) with plain
// SQL and no NOTIFY, then the relay's listening backend is terminated.
import { eq, sql } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { rowsOf } from '../../relay/db/client.ts';
import { devices } from '../../relay/db/schema.ts';
import { silentLogger } from '../../relay/log.ts';
import { type RunningRelay, startRelay } from '../../relay/server.ts';
import { createUser, send, type TestDevice } from './client.ts';
import { backends, type Fetch, TEST_CONFIG, uniqueName } from './harness.ts';
import { TestSocket } from './ws-client.ts';

const pg = backends.find((b) => b.name === 'postgres');
const utf8 = (s: string) => new TextEncoder().encode(s);

describe.skipIf(!pg)('losing the LISTEN connection', () => {
  let relay: RunningRelay;
  let fetch: Fetch;
  let drop: () => Promise<void>;
  let dbName: string;
  beforeAll(async () => {
    const db = await pg!.create();
    drop = db.drop;
    dbName = new URL(db.url!).pathname.slice(1);
    relay = await startRelay({ port: 0, hostname: '127.0.0.1', log: silentLogger, config: TEST_CONFIG, databaseUrl: db.url! });
    fetch = (path, init) => globalThis.fetch(relay.url + path, init);
  });
  afterAll(async () => {
    await relay?.close();
    await drop?.();
  });

  const db = () => relay.services.db;
  const rowId = async (d: TestDevice) => (await db().select({ id: devices.id }).from(devices).where(eq(devices.deviceId, d.keys.deviceId)))[0]!.id;

  const listeners = async () =>
    rowsOf<{ pid: unknown }>(
      await db().execute(sql`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'listen %' AND state = 'idle'`),
    ).map((r) => Number(r.pid));

  /** An envelope committed with no NOTIFY (as if another process's notification was lost). */
  const writeSilently = (deviceRow: number, from: TestDevice) =>
    db().execute(sql`
      WITH p AS (INSERT INTO payloads (id, data, created_at) VALUES (nextval('message_ids'), ${new Uint8Array([7])}, 0) RETURNING id),
           d AS (UPDATE devices SET next_seq = next_seq + 1 WHERE id = ${deviceRow}::bigint RETURNING next_seq)
      INSERT INTO inbox (device, seq, payload, sender_user, sender_device, envelope, created_at)
      SELECT ${deviceRow}::bigint, d.next_seq, p.id, ${from.user.name}, ${from.keys.deviceId}, ${new Uint8Array([8])}, 0 FROM p, d`);

  /** Terminates the relay's listening backend; resolves once postgres.js has listened again. */
  async function killListener(): Promise<void> {
    const before = await listeners();
    expect(before).toHaveLength(1);
    await db().execute(sql`SELECT pg_terminate_backend(${before[0]!}::int)`);
    for (let i = 0; i < 200; i++) {
      const now = await listeners();
      if (now.length === 1 && now[0] !== before[0]) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('LISTEN was not re-established');
  }

  test('envelopes written while notifications were lost are delivered, revocations applied', async () => {
    const alice = await createUser(fetch, uniqueName('alice'), 1, 1);
    const bob = await createUser(fetch, uniqueName('bob'), 1, 1);
    const b1 = bob.devices[0]!;
    const bobRow = await rowId(b1);
    const sock = await TestSocket.open(relay.url, b1.token);
    expect((await send(fetch, alice.devices[0]!, [bob.name], utf8('live'), 'm1')).status).toBe(200);
    expect((await sock.envelopes(1)).map((e) => e.seq)).toEqual([1]);

    await writeSilently(bobRow, alice.devices[0]!);
    await expect(sock.envelopes(1, 300)).rejects.toThrow(); // nothing wakes the socket...
    await killListener();
    expect((await sock.envelopes(1)).map((e) => e.seq)).toEqual([2]); // ...until LISTEN is back

    // A revocation with no NOTIFY: the socket is cut once LISTEN is back.
    await db().execute(sql`UPDATE devices SET token_hash = NULL WHERE id = ${bobRow}::bigint`);
    await killListener();
    expect((await sock.waitClosed()).code).toBe(4403);
  });

  // postgres.js keeps retrying the new listening connection while the server refuses it, and
  // LISTENs once it is accepted; the sockets then resync as above.
  test('the listener comes back after the server refused connections for a while', async () => {
    const alice = await createUser(fetch, uniqueName('alice'), 1, 1);
    const bob = await createUser(fetch, uniqueName('bob'), 1, 1);
    const b1 = bob.devices[0]!;
    const bobRow = await rowId(b1);
    const sock = await TestSocket.open(relay.url, b1.token);
    expect((await send(fetch, alice.devices[0]!, [bob.name], utf8('live'), 'm1')).status).toBe(200);
    expect((await sock.envelopes(1)).map((e) => e.seq)).toEqual([1]);

    const admin = postgres(process.env.TEST_DATABASE_URL!, { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`ALTER DATABASE ${dbName} WITH ALLOW_CONNECTIONS false`);
      const [pid] = await listeners();
      await db().execute(sql`SELECT pg_terminate_backend(${pid!}::int)`); // re-listening is refused for now
      await new Promise((r) => setTimeout(r, 600));
      expect(await listeners()).toHaveLength(0);
      await writeSilently(bobRow, alice.devices[0]!);
    } finally {
      await admin.unsafe(`ALTER DATABASE ${dbName} WITH ALLOW_CONNECTIONS true`);
      await admin.end();
    }
    expect((await sock.envelopes(1)).map((e) => e.seq)).toEqual([2]);
    expect(await listeners()).toHaveLength(1);
    // And live delivery through NOTIFY works again.
    expect((await send(fetch, alice.devices[0]!, [bob.name], utf8('again'), 'm2')).status).toBe(200);
    expect((await sock.envelopes(1)).map((e) => e.seq)).toEqual([3]);
    sock.close();
  });
});

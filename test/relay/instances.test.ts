// The registry of relay processes sharing a database (relay/notify/instances.ts), which decides
// whether the writer sends cross-process hints: a process is listed while it runs, a clean stop
// unlists it, rows without a heartbeat for STALE_MS go, and a process whose row lapsed lists
// itself again and has its sockets catch up (hints may have skipped it meanwhile).
import { sql } from 'drizzle-orm';
import { describe, expect, test } from 'vitest';
import { rowsOf } from '../../relay/db/client.ts';
import { STALE_MS } from '../../relay/notify/instances.ts';
import { createServices } from '../../relay/services.ts';
import { createUser, send, type TestDevice } from './client.ts';
import { backends, relayOnPort, TEST_CONFIG, uniqueName } from './harness.ts';
import { TestSocket } from './ws-client.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);

describe.each(backends)('relay instances on $name', (backend) => {
  const server = relayOnPort(backend);
  const db = () => server.relay.services.db;
  const listed = async () => rowsOf<{ instance: string }>(await db().execute(sql`SELECT instance FROM relay_instances ORDER BY instance`)).map((r) => r.instance);

  test('listed while running; a clean stop unlists; stale rows are deleted by a heartbeat', async () => {
    const me = server.relay.services.hub.instance;
    expect(await listed()).toContain(me);

    const other = await createServices({ database: server.relay.services.database, config: TEST_CONFIG });
    expect(await listed()).toContain(other.hub.instance);
    await other.close();
    expect(await listed()).not.toContain(other.hub.instance);

    // A process that died without unlisting, seen long ago by the database's clock, and one seen just now.
    await db().execute(sql`INSERT INTO relay_instances (instance, seen_at) VALUES
      ('died', (extract(epoch from clock_timestamp()) * 1000)::bigint - ${2 * STALE_MS}::bigint),
      ('alive', (extract(epoch from clock_timestamp()) * 1000)::bigint)`);
    await server.relay.services.hub.heartbeat();
    expect(await listed()).toEqual([me, 'alive'].sort());
    await db().execute(sql`DELETE FROM relay_instances WHERE instance = 'alive'`);
  });

  test('a process whose row lapsed lists itself again and its sockets catch up', async () => {
    const fetch = server.fetch;
    const alice = await createUser(fetch, uniqueName('alice'), 1, 1);
    const bob = await createUser(fetch, uniqueName('bob'), 1, 1);
    const b1 = bob.devices[0]!;
    const sock = await TestSocket.open(server.relay.url, b1.token);
    expect((await send(fetch, alice.devices[0]!, [bob.name], utf8('live'), 'm1')).status).toBe(200);
    expect((await sock.envelopes(1)).map((e) => e.seq)).toEqual([1]);

    // Deleted as stale (as after a long stall); meanwhile another process writes for bob and,
    // seeing no one else listed, sends no hint: written here with plain SQL and no NOTIFY.
    const me = server.relay.services.hub.instance;
    await db().execute(sql`DELETE FROM relay_instances WHERE instance = ${me}`);
    await writeSilently(b1, alice.devices[0]!);
    await expect(sock.envelopes(1, 300)).rejects.toThrow(); // nothing wakes the socket...
    await server.relay.services.hub.heartbeat();
    expect(await listed()).toContain(me);
    expect((await sock.envelopes(1)).map((e) => e.seq)).toEqual([2]); // ...until the heartbeat
    sock.close();
  });

  /** An envelope committed with no NOTIFY, for `to`'s device. */
  async function writeSilently(to: TestDevice, from: TestDevice) {
    await db().execute(sql`
      WITH t AS (SELECT id FROM devices WHERE device_id = ${to.keys.deviceId}),
           p AS (INSERT INTO payloads (id, data, created_at) VALUES (nextval('message_ids'), ${new Uint8Array([7])}, 0) RETURNING id),
           d AS (UPDATE devices SET next_seq = next_seq + 1 WHERE id = (SELECT id FROM t) RETURNING id, next_seq)
      INSERT INTO inbox (device, seq, payload, sender_user, sender_device, envelope, created_at)
      SELECT d.id, d.next_seq, p.id, ${from.user.name}, ${from.keys.deviceId}, ${new Uint8Array([8])}, 0 FROM p, d`);
  }
});

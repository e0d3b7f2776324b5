/**
 * Which relay processes share the database: each lists itself in `relay_instances` while it
 * runs, and the writer sends its "new envelopes" NOTIFY only while another process is listed
 * (the check is inside the write statement, see inbox/writer.ts). A relay running alone — every
 * PGlite relay, and a single process on PostgreSQL — then pays nothing per batch for a listener
 * that would only have ignored its own hint; measured on 2 cores, NOTIFY was about a tenth of the
 * database's work per message at 1 message in flight.
 *
 * Why a process that joins misses nothing: it LISTENs first, then registers in a transaction that
 * takes the table's ACCESS EXCLUSIVE lock. Every write statement reads the table, so it holds
 * ACCESS SHARE on it from before it takes its snapshot until it commits. The registration thus
 * waits for every write statement already running (their rows are committed before it, and the
 * new process reads them when its sockets catch up), and every later statement waits for the
 * registration and then sees the new row, so it notifies — and the new process is already
 * listening. Only then does the new process accept sockets (Hub.start resolves).
 *
 * Leaving: a process deletes its row when it stops. One that died leaves its row, which only
 * costs the others needless notifications until it is STALE_MS old by the database's clock
 * (several processes' clocks never compare), when the next heartbeat of any process deletes it.
 * A process whose own row went missing (it stalled past STALE_MS) registers again and has every
 * socket catch up from the database, since hints may have skipped it meanwhile.
 */
import { sql } from 'drizzle-orm';
import { type Db, rowsOf } from '../db/client.ts';

/** How often a process says it is alive, and how old a row may get before it is deleted. */
export const HEARTBEAT_MS = 10_000;
export const STALE_MS = 60_000;

const NOW_MS = sql`(extract(epoch from clock_timestamp()) * 1000)::bigint`;

/** Lists the instance; resolves once every write statement that could miss it has committed. */
export async function register(db: Db, instance: string): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.execute(sql`LOCK TABLE relay_instances IN ACCESS EXCLUSIVE MODE`);
    await tx.execute(sql`INSERT INTO relay_instances (instance, seen_at) VALUES (${instance}, ${NOW_MS})
      ON CONFLICT (instance) DO UPDATE SET seen_at = excluded.seen_at`);
  });
}

/**
 * Refreshes the instance's row and deletes stale ones. Returns false if the row was gone (deleted
 * as stale while this process stalled): the caller must register again and resynchronise.
 */
export async function heartbeat(db: Db, instance: string): Promise<boolean> {
  const rows = await db.execute(sql`UPDATE relay_instances SET seen_at = ${NOW_MS} WHERE instance = ${instance} RETURNING instance`);
  await db.execute(sql`DELETE FROM relay_instances WHERE seen_at < ${NOW_MS} - ${STALE_MS}::bigint`);
  return rowsOf(rows).length > 0;
}

export async function deregister(db: Db, instance: string): Promise<void> {
  await db.execute(sql`DELETE FROM relay_instances WHERE instance = ${instance}`);
}

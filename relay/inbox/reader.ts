/**
 * Reading and acknowledging a device's inbox, and the sweeper that enforces retention.
 *
 * Retention: an envelope is deleted when its device acknowledges it (ack up to a seq), or
 * `inboxRetentionMs` after it was stored if never acknowledged. A payload is deleted once no
 * inbox row references it: right after an acknowledgement when that was its last reference,
 * and otherwise by the sweeper (two recipients acknowledging at the same moment each still see
 * the other's row, so neither deletes the payload; the sweeper does). Idempotency records are
 * kept `idempotencyRetentionMs`; a client must not retry a submission older than that.
 */
import { sql } from 'drizzle-orm';
import { bytesOf, type Db, rowsOf } from '../db/client.ts';
import { toB64 } from '../encoding.ts';
import type { InboxRecord } from '../notify/hub.ts';

export async function readInbox(db: Db, device: number, after: number, limit: number): Promise<InboxRecord[]> {
  const rows = rowsOf<Record<string, unknown>>(
    await db.execute(sql`
      SELECT i.seq, i.payload, i.sender_user, i.sender_device, i.envelope, i.created_at, p.data
      FROM inbox i JOIN payloads p ON p.id = i.payload
      WHERE i.device = ${device}::bigint AND i.seq > ${after}::bigint
      ORDER BY i.seq
      LIMIT ${limit}::int`),
  );
  return rows.map((r) => ({
    seq: Number(r.seq),
    messageId: Number(r.payload),
    senderUser: String(r.sender_user),
    senderDevice: bytesOf(r.sender_device),
    timestamp: Number(r.created_at),
    envelope: bytesOf(r.envelope),
    payload: bytesOf(r.data),
  }));
}

/** Deletes the device's envelopes up to and including `upTo`; returns how many went. */
export async function ackInbox(db: Db, device: number, upTo: number): Promise<number> {
  return db.transaction(async (tx) => {
    const gone = rowsOf<{ payload: unknown }>(
      await tx.execute(sql`DELETE FROM inbox WHERE device = ${device}::bigint AND seq <= ${upTo}::bigint RETURNING payload`),
    );
    const ids = [...new Set(gone.map((r) => Number(r.payload)))];
    if (ids.length) {
      await tx.execute(sql`
        DELETE FROM payloads p WHERE p.id IN (${sql.join(ids.map((id) => sql`${id}::bigint`), sql`, `)})
        AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.payload = p.id)`);
    }
    return gone.length;
  });
}

export interface SweepOptions {
  readonly now: number;
  readonly inboxRetentionMs: number;
  readonly idempotencyRetentionMs: number;
}

/** Expired envelopes, orphaned payloads, old idempotency records, expired login state. */
export async function sweep(db: Db, o: SweepOptions): Promise<void> {
  await db.execute(sql`DELETE FROM inbox WHERE created_at < ${o.now - o.inboxRetentionMs}::bigint`);
  await db.execute(sql`DELETE FROM payloads p WHERE NOT EXISTS (SELECT 1 FROM inbox i WHERE i.payload = p.id)`);
  await db.execute(sql`DELETE FROM submissions WHERE created_at < ${o.now - o.idempotencyRetentionMs}::bigint`);
  await db.execute(sql`DELETE FROM opaque_logins WHERE expires_at < ${o.now}::bigint`);
  await db.execute(sql`DELETE FROM account_sessions WHERE expires_at < ${o.now}::bigint`);
}

/** How an envelope travels to its device, over HTTP and WebSocket alike. */
export function recordJson(r: InboxRecord) {
  return {
    seq: r.seq,
    messageId: r.messageId,
    sender: { user: r.senderUser, device: toB64(r.senderDevice) },
    timestamp: r.timestamp,
    envelope: toB64(r.envelope),
    payload: toB64(r.payload),
  };
}

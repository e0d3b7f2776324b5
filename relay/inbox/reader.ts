/**
 * Reading a device's inbox, and the sweeper that enforces retention (acknowledgements: acks.ts).
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

/**
 * A device whose cursor `after` is past its inbox's end: the relay was restored from a backup (or
 * its database replaced) and lost envelopes the device holds. Seqs never go back, so nothing else
 * does this — and the envelopes stored since the restore took seqs the device believes it has, and
 * would skip. They are moved to follow its cursor (the counter with them), so the device reads
 * them next and its numbering goes on unbroken. They are the ones newer than the last envelope the
 * device read (`at`, that envelope's timestamp): the backup's are older than it. Without `at` (a
 * client that does not send it) only the counter moves, so what comes next is not skipped.
 * Under the device's row lock, as the writer takes it: no batch writes to the inbox meanwhile.
 * Returns whether anything moved.
 */
export async function realignInbox(db: Db, device: number, after: number, at: number | undefined): Promise<boolean> {
  // The common case, a cursor within the inbox, takes no lock.
  const counter = sql`SELECT next_seq AS last FROM devices WHERE id = ${device}::bigint`;
  const [now] = rowsOf<{ last: unknown }>(await db.execute(counter));
  if (!now || after <= Number(now.last)) return false;
  return db.transaction(async (tx) => {
    const [row] = rowsOf<{ last: unknown }>(await tx.execute(sql`${counter} FOR UPDATE`));
    const last = Number(row?.last ?? after);
    if (after <= last) return false;
    const [first] = at === undefined ? [] : rowsOf<{ seq: unknown }>(await tx.execute(sql`SELECT min(seq) AS seq FROM inbox WHERE device = ${device}::bigint AND created_at > ${at}::bigint`));
    const from = first?.seq == null ? last : Math.min(Number(first.seq) - 1, last);
    const shift = after - from; // > last - from: the moved seqs clear every seq in place, at every row
    await tx.execute(sql`UPDATE inbox SET seq = seq + ${shift}::bigint WHERE device = ${device}::bigint AND seq > ${from}::bigint`);
    await tx.execute(sql`UPDATE devices SET next_seq = ${last + shift}::bigint WHERE id = ${device}::bigint`);
    return true;
  });
}

/** Bytes an envelope counts for in a page: its envelope and its payload, as stored. */
export const recordBytes = (r: InboxRecord) => r.envelope.byteLength + r.payload.byteLength;

/**
 * A device's envelopes after `after`, in seq order: at most `limit` of them, and at most `maxBytes`
 * of envelopes and payloads together — but always the first one, whatever its size. `more` says
 * whether envelopes were left out. (A count alone let 500 payloads of 256 KB make one page of
 * 170 MB of JSON, built on the event loop, and one WebSocket frame larger than clients accept.)
 * The sizes come from the row headers (octet_length does not read a TOASTed value); rows left out
 * are never read whole.
 */
export async function readInbox(db: Db, device: number, after: number, limit: number, maxBytes: number): Promise<{ records: InboxRecord[]; more: boolean }> {
  // LIMIT first, then the running total over those rows only (a window beside the LIMIT would be
  // computed over the whole inbox after `after`).
  const rows = rowsOf<Record<string, unknown>>(
    await db.execute(sql`
      SELECT seq, payload, sender_user, sender_device, envelope, created_at, data, n FROM (
        SELECT x.*, sum(size) OVER (ORDER BY seq) AS upto, row_number() OVER (ORDER BY seq) AS rn, count(*) OVER () AS n FROM (
          SELECT i.seq, i.payload, i.sender_user, i.sender_device, i.envelope, i.created_at, p.data,
                 octet_length(i.envelope) + octet_length(p.data) AS size
            FROM inbox i JOIN payloads p ON p.id = i.payload
           WHERE i.device = ${device}::bigint AND i.seq > ${after}::bigint
           ORDER BY i.seq
           LIMIT ${limit + 1}::int
        ) x
      ) y
      WHERE rn <= ${limit}::int AND (rn = 1 OR upto <= ${maxBytes}::bigint)
      ORDER BY seq`),
  );
  const records = rows.map((r) => ({
    seq: Number(r.seq),
    messageId: Number(r.payload),
    senderUser: String(r.sender_user),
    senderDevice: bytesOf(r.sender_device),
    timestamp: Number(r.created_at),
    envelope: bytesOf(r.envelope),
    payload: bytesOf(r.data),
  }));
  return { records, more: rows.length > 0 && Number(rows[0]!.n) > rows.length };
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
  // Expired attachments (and uploads never completed) go with their chunks (ON DELETE CASCADE).
  await db.execute(sql`DELETE FROM attachments WHERE expires_at < ${o.now}::bigint`);
}

/** How an envelope travels to its device, over HTTP and WebSocket alike. */
export function recordJson(r: InboxRecord) {
  return {
    seq: r.seq,
    messageId: r.messageId,
    sender: { user: r.senderUser, device: toB64(r.senderDevice) },
    timestamp: r.timestamp,
    envelope: toB64(r.envelope),
    payload: payloadB64(r.payload),
  };
}

/**
 * A group message's records share one payload (the writer hands every recipient the same bytes):
 * encode a large one once, not once per recipient device (100 devices x 256 KB was 100 encodings).
 */
const encoded = new WeakMap<Uint8Array, string>();
function payloadB64(p: Uint8Array): string {
  if (p.byteLength < 1024) return toB64(p); // cheaper than the lookup
  let s = encoded.get(p);
  if (s === undefined) encoded.set(p, (s = toB64(p)));
  return s;
}

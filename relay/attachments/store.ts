/**
 * Attachment storage: blobs of crypto/attachment.ts ciphertext kept as fixed-size chunk rows,
 * so no request ever holds more than one chunk. routes/attachments.ts maps these to HTTP.
 *
 * Chunk `i` of an attachment of `size` bytes covers bytes [i*C, min(size, (i+1)*C)) with C the
 * chunk size: its slot. A chunk may not be longer than its slot, so what an account stores is
 * bounded by the sizes it declared (the quota counts declared sizes; without the bound, declaring
 * 1 byte and sending a full chunk would store C bytes per byte of quota). Completion then only
 * has to see every slot filled exactly, and a byte range maps to chunk rows by arithmetic.
 * An upload is finished under the chunk size POST returned; changing attachmentChunkBytes fails
 * the completion of uploads in progress (clients start again), never a stored attachment.
 *
 * Locks: creating an upload takes the account row (NO KEY UPDATE: serialises this account's
 * quota checks, does not block foreign-key inserts elsewhere); a chunk upload holds the
 * attachment row FOR SHARE (uploads of one attachment run in parallel) and completion FOR UPDATE,
 * so completion waits for chunk writes in flight and no chunk changes after it.
 */
import { randomBytes } from 'node:crypto';
import { and, eq, gt, sql } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { rowsOf } from '../db/client.ts';
import { accounts, attachmentChunks, attachments } from '../db/schema.ts';
import { ApiError } from '../errors.ts';

export interface AttachmentLimits {
  readonly maxAttachmentBytes: number;
  readonly attachmentQuotaBytes: number;
  readonly attachmentChunkBytes: number;
  readonly attachmentRetentionMs: number;
  readonly attachmentUploadTtlMs: number;
}

/** A stranger learns nothing about which ids exist: unknown, expired and not-yours look alike. */
const notFound = () => new ApiError(404, 'not_found', 'no such attachment');

/** How many bytes chunk `idx` holds in an attachment of `size` bytes (0 = past the end). */
export function slotLength(size: number, chunkBytes: number, idx: number): number {
  return Math.max(0, Math.min(chunkBytes, size - idx * chunkBytes));
}

export function chunkCount(size: number, chunkBytes: number): number {
  return Math.ceil(size / chunkBytes);
}

/** Starts an upload of `size` bytes, if the account's unexpired attachments leave room for it. */
export async function createUpload(db: Db, lim: AttachmentLimits, accountId: number, size: number, now: number): Promise<{ id: string; expiresAt: number }> {
  if (size > lim.maxAttachmentBytes) throw new ApiError(413, 'attachment_too_large', `attachments are at most ${lim.maxAttachmentBytes} bytes`);
  const id = randomBytes(16).toString('base64url'); // 128 bits: the download capability
  const expiresAt = now + lim.attachmentUploadTtlMs;
  await db.transaction(async (tx) => {
    await tx.select({ id: accounts.id }).from(accounts).where(eq(accounts.id, accountId)).for('no key update');
    const [used] = rowsOf<{ total: string | number | null }>(
      await tx.execute(sql`SELECT COALESCE(SUM(size), 0) AS total FROM attachments WHERE account_id = ${accountId} AND expires_at > ${now}::bigint`),
    );
    if (Number(used?.total ?? 0) + size > lim.attachmentQuotaBytes) {
      throw new ApiError(413, 'quota_exceeded', `the account's attachment storage (${lim.attachmentQuotaBytes} bytes) is full; delete some or wait for old ones to expire`);
    }
    await tx.insert(attachments).values({ id, accountId, size, complete: false, createdAt: now, expiresAt });
  });
  return { id, expiresAt };
}

/** Stores chunk `idx` of the account's upload `id`; sending a chunk again replaces it (retries). */
export async function putChunk(db: Db, lim: AttachmentLimits, accountId: number, id: string, idx: number, data: Uint8Array, now: number): Promise<void> {
  await db.transaction(async (tx) => {
    const [row] = await tx.select().from(attachments).where(and(eq(attachments.id, id), gt(attachments.expiresAt, now))).for('share');
    if (!row || row.accountId !== accountId) throw notFound();
    if (row.complete) throw new ApiError(409, 'attachment_complete', 'the attachment is complete; chunks can no longer change');
    const slot = slotLength(row.size, lim.attachmentChunkBytes, idx);
    if (slot === 0) throw new ApiError(400, 'invalid_request', 'chunk index beyond the declared size');
    if (data.length === 0 || data.length > slot) throw new ApiError(400, 'invalid_request', `chunk ${idx} is 1..${slot} bytes`);
    await tx
      .insert(attachmentChunks)
      .values({ attachment: id, idx, data })
      .onConflictDoUpdate({ target: [attachmentChunks.attachment, attachmentChunks.idx], set: { data } });
  });
}

/**
 * Marks the upload complete once every slot holds exactly its bytes; from then on it is
 * downloadable and kept attachmentRetentionMs. Completing again answers the same (retries).
 */
export async function completeUpload(db: Db, lim: AttachmentLimits, accountId: number, id: string, now: number): Promise<{ id: string; size: number; expiresAt: number }> {
  return db.transaction(async (tx) => {
    const [row] = await tx.select().from(attachments).where(and(eq(attachments.id, id), gt(attachments.expiresAt, now))).for('update');
    if (!row || row.accountId !== accountId) throw notFound();
    if (row.complete) return { id, size: row.size, expiresAt: row.expiresAt };
    const chunks = rowsOf<{ idx: number; len: number | string }>(await tx.execute(sql`SELECT idx, length(data) AS len FROM attachment_chunks WHERE attachment = ${id} ORDER BY idx`));
    const n = chunkCount(row.size, lim.attachmentChunkBytes);
    const have = new Map(chunks.map((c) => [Number(c.idx), Number(c.len)]));
    const missing = Array.from({ length: n }, (_, i) => i).filter((i) => have.get(i) !== slotLength(row.size, lim.attachmentChunkBytes, i));
    if (missing.length) {
      const received = chunks.reduce((t, c) => t + Number(c.len), 0);
      throw new ApiError(409, 'attachment_incomplete', `received ${received} of ${row.size} bytes; chunks missing or short: ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ', ...' : ''}`, {
        missing: missing.slice(0, 1000),
      });
    }
    const expiresAt = now + lim.attachmentRetentionMs;
    await tx.update(attachments).set({ complete: true, expiresAt }).where(eq(attachments.id, id));
    return { id, size: row.size, expiresAt };
  });
}

/**
 * A complete, unexpired attachment (any device may read it: the id is the capability), with the
 * chunk size it was uploaded with: chunk 0's length (every slot but the last is full, and a
 * one-chunk blob maps every offset to chunk 0 anyway), so a later change of the configured
 * chunk size cannot garble downloads of what is already stored.
 */
export async function readable(db: Db, id: string, now: number): Promise<{ size: number; chunkBytes: number }> {
  const [row] = rowsOf<{ size: number | string; first: number | string | null }>(
    await db.execute(sql`SELECT a.size, (SELECT octet_length(c.data) FROM attachment_chunks c WHERE c.attachment = a.id AND c.idx = 0) AS first
      FROM attachments a WHERE a.id = ${id} AND a.complete AND a.expires_at > ${now}::bigint`),
  );
  if (!row || row.first === null) throw notFound();
  return { size: Number(row.size), chunkBytes: Number(row.first) };
}

/**
 * Bytes [first, last] of a complete attachment as a stream that reads one chunk row per pull
 * (highWaterMark 0: nothing is read ahead of the consumer, and a HEAD request reads nothing).
 */
export function byteStream(db: Db, chunkBytes: number, id: string, first: number, last: number): ReadableStream<Uint8Array> {
  let idx = Math.floor(first / chunkBytes);
  const end = Math.floor(last / chunkBytes);
  return new ReadableStream<Uint8Array>(
    {
      async pull(ctrl) {
        if (idx > end) return ctrl.close();
        const i = idx++;
        const [ch] = await db
          .select({ data: attachmentChunks.data })
          .from(attachmentChunks)
          .where(and(eq(attachmentChunks.attachment, id), eq(attachmentChunks.idx, i)));
        // Deleted or swept while being read: end the response short (the client's decryptor notices).
        if (!ch) return ctrl.error(new Error('attachment deleted during download'));
        const from = Math.max(0, first - i * chunkBytes);
        const to = Math.min(ch.data.length, last - i * chunkBytes + 1);
        ctrl.enqueue(ch.data.subarray(from, to));
      },
    },
    { highWaterMark: 0 },
  );
}

export async function deleteOwned(db: Db, accountId: number, id: string, now: number): Promise<void> {
  const gone = await db
    .delete(attachments)
    .where(and(eq(attachments.id, id), eq(attachments.accountId, accountId), gt(attachments.expiresAt, now)))
    .returning({ id: attachments.id });
  if (!gone.length) throw notFound();
}


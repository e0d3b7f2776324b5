/**
 * Attachments: encrypted blobs (crypto/attachment.ts secretstream ciphertext; keys travel only
 * inside end-to-end messages), uploaded in chunks so neither side needs a whole file in memory.
 *
 *   POST   /v1/attachments                 { size }  -> 201 { id, chunkSize, expiresAt }   (device)
 *   PUT    /v1/attachments/:id/chunks/:idx raw bytes -> 204                                 (owner)
 *   POST   /v1/attachments/:id/complete              -> { id, size, expiresAt }             (owner)
 *   GET    /v1/attachments/:id  [Range]              -> the bytes, streamed (200 or 206)    (any device)
 *   DELETE /v1/attachments/:id                       -> 204                                 (owner)
 *
 * The id is 128 random bits: knowing it (from a message) is what lets a device download, as
 * with Signal's CDN. `size` is declared up front and is what the account's quota counts; chunk
 * `idx` holds bytes [idx*chunkSize, ...) and may not outgrow that slot (attachments/store.ts).
 * Chunk bodies get their own size limit here; app.ts exempts this path from the JSON one.
 */
import { Hono } from 'hono';
import * as v from 'valibot';
import { parseRange } from '../attachments/range.ts';
import { byteStream, completeUpload, createUpload, deleteOwned, putChunk, readable } from '../attachments/store.ts';
import { ApiError } from '../errors.ts';
import { deviceAuth, type RelayEnv, requireDevice } from '../middleware/auth.ts';
import type { RelayServices } from '../services.ts';
import { limitBody, valid } from '../validate.ts';

const attachmentId = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{22}$/, 'an attachment id'));
const Id = v.object({ id: attachmentId });
const Chunk = v.object({ id: attachmentId, idx: v.pipe(v.string(), v.regex(/^\d{1,9}$/, 'a chunk index'), v.transform(Number)) });
const Create = v.object({ size: v.pipe(v.number(), v.safeInteger(), v.minValue(1)) });

export function attachmentRoutes(s: RelayServices) {
  const { db, config } = s;

  return new Hono<RelayEnv>()
    .post('/attachments', requireDevice(s), valid('json', Create), async (c) => {
      const { size } = c.req.valid('json');
      const me = deviceAuth(c);
      const { id, expiresAt } = await createUpload(db, config, me.accountId, size, s.now());
      s.log('info', 'attachment created', { account: me.accountId, size });
      return c.json({ id, chunkSize: config.attachmentChunkBytes, expiresAt }, 201);
    })
    .put('/attachments/:id/chunks/:idx', limitBody(config.attachmentChunkBytes), requireDevice(s), valid('param', Chunk), async (c) => {
      const { id, idx } = c.req.valid('param');
      // One chunk (at most attachmentChunkBytes, enforced above while reading) is all a request holds;
      // it is read before the transaction so a slow client never keeps a database connection busy.
      const data = new Uint8Array(await c.req.arrayBuffer());
      await putChunk(db, config, deviceAuth(c).accountId, id, idx, data, s.now());
      s.metrics.attachmentBytes.inc({}, data.length);
      return c.body(null, 204);
    })
    .post('/attachments/:id/complete', requireDevice(s), valid('param', Id), async (c) => {
      const { id } = c.req.valid('param');
      return c.json(await completeUpload(db, config, deviceAuth(c).accountId, id, s.now()));
    })
    .get('/attachments/:id', requireDevice(s), valid('param', Id), async (c) => {
      const { id } = c.req.valid('param');
      const row = await readable(db, id, s.now());
      const stream = (first: number, last: number) => byteStream(db, row.chunkBytes, id, first, last);
      const headers = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' };
      const range = parseRange(c.req.header('range'), row.size);
      if (range === 'unsatisfiable') {
        c.header('content-range', `bytes */${row.size}`);
        throw new ApiError(416, 'range_not_satisfiable', `the attachment is ${row.size} bytes`);
      }
      if (range === 'whole') {
        return c.body(stream(0, row.size - 1), 200, { ...headers, 'content-length': String(row.size) });
      }
      return c.body(stream(range.first, range.last), 206, {
        ...headers,
        'content-length': String(range.last - range.first + 1),
        'content-range': `bytes ${range.first}-${range.last}/${row.size}`,
      });
    })
    .delete('/attachments/:id', requireDevice(s), valid('param', Id), async (c) => {
      const { id } = c.req.valid('param');
      await deleteOwned(db, deviceAuth(c).accountId, id, s.now());
      return c.body(null, 204);
    });
}

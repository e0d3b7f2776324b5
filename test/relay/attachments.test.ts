// Attachments: chunked upload of crypto/'s ciphertext and streamed download decrypted as it
// arrives, byte ranges, slots and completeness, ownership, quotas under concurrency, and expiry
// swept by server.ts's sweeper.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createAttachmentDecryptor, encryptAttachment, systemRng } from '../../crypto/index.ts';
import { STREAM_ABYTES } from '../../crypto/sodium.ts';
import { rowsOf } from '../../relay/db/client.ts';
import { silentLogger } from '../../relay/log.ts';
import { startRelay } from '../../relay/server.ts';
import { call, createUser, type TestUser } from './client.ts';
import { backends, type Fetch, startTestRelay, TEST_CONFIG, type TestRelay, uniqueName, withConfig } from './harness.ts';

const CHUNK = 1000;
const LIMITS = { attachmentChunkBytes: CHUNK, maxAttachmentBytes: 10_000, attachmentQuotaBytes: 20_000 };

const put = (fetch: Fetch, token: string, id: string, idx: number, bytes: Uint8Array) =>
  fetch(`/v1/attachments/${id}/chunks/${idx}`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body: bytes as Uint8Array<ArrayBuffer> });
const get = (fetch: Fetch, token: string, id: string, range?: string) => fetch(`/v1/attachments/${id}`, { headers: { authorization: `Bearer ${token}`, ...(range ? { range } : {}) } });
const slices = (bytes: Uint8Array) => Array.from({ length: Math.ceil(bytes.length / CHUNK) }, (_, i) => bytes.subarray(i * CHUNK, (i + 1) * CHUNK));
const tokenOf = (u: TestUser, i = 0) => u.devices[i]!.token;

/** Uploads `bytes` in relay chunks (in `order`, default ascending) and completes it. */
async function upload(fetch: Fetch, token: string, bytes: Uint8Array, order?: number[]): Promise<string> {
  const made = await call(fetch, 'POST', '/v1/attachments', { token, body: { size: bytes.length } });
  expect(made.status).toBe(201);
  const parts = slices(bytes);
  for (const i of order ?? parts.map((_, i) => i)) expect((await put(fetch, token, made.body.id, i, parts[i]!)).status).toBe(204);
  expect((await call(fetch, 'POST', `/v1/attachments/${made.body.id}/complete`, { token })).status).toBe(200);
  return made.body.id;
}

const chunkRows = async (relay: { services: { db: TestRelay['services']['db'] } }, id: string) =>
  Number(rowsOf<{ n: number | string }>(await relay.services.db.execute(sql`SELECT count(*) AS n FROM attachment_chunks WHERE attachment = ${id}`))[0]!.n);

describe.each(backends)('attachments on $name', (backend) => {
  let relay: TestRelay;
  let alice: TestUser;
  let bob: TestUser;
  beforeAll(async () => {
    relay = await startTestRelay(backend, LIMITS);
    alice = await createUser(relay.fetch, uniqueName('alice'), 2);
    bob = await createUser(relay.fetch, uniqueName('bob'));
  });
  afterAll(async () => relay?.close());

  test('2.5 chunks of ciphertext, sent out of order and twice, stream back and decrypt as they arrive', async () => {
    const plain = new Uint8Array(2400).map((_, i) => (i * 7) % 251);
    const { ciphertext, pointer } = encryptAttachment(plain, systemRng, 512); // 2,485 bytes: chunks of 1000, 1000, 485
    const made = await call(relay.fetch, 'POST', '/v1/attachments', { token: tokenOf(alice), body: { size: ciphertext.length } });
    expect(made).toMatchObject({ status: 201, body: { chunkSize: CHUNK } });
    expect(made.body.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const { id } = made.body;
    const parts = slices(ciphertext);
    expect((await put(relay.fetch, tokenOf(alice), id, 1, new Uint8Array(CHUNK))).status).toBe(204); // replaced below
    for (const i of [2, 0, 1, 0]) expect((await put(relay.fetch, tokenOf(alice, 1), id, i, parts[i]!)).status).toBe(204);
    expect((await get(relay.fetch, tokenOf(alice), id)).status).toBe(404); // not until complete, not even for the owner
    expect((await call(relay.fetch, 'POST', `/v1/attachments/${id}/complete`, { token: tokenOf(alice) })).body).toMatchObject({ id, size: ciphertext.length });
    // A retried completion answers the same; chunks are frozen from now on.
    expect((await call(relay.fetch, 'POST', `/v1/attachments/${id}/complete`, { token: tokenOf(alice) })).status).toBe(200);
    expect(await put(relay.fetch, tokenOf(alice), id, 0, parts[0]!).then((r) => r.json())).toMatchObject({ error: 'attachment_complete' });

    const res = await get(relay.fetch, tokenOf(bob), id); // any device holding the id
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-length')).toBe(String(ciphertext.length));
    // Decrypt secretstream chunk by secretstream chunk as the bytes arrive (never the whole blob).
    const dec = createAttachmentDecryptor(pointer);
    const step = pointer.chunkSize + STREAM_ABYTES;
    const out: number[] = [];
    let pending = new Uint8Array(0);
    for await (const piece of res.body! as unknown as AsyncIterable<Uint8Array>) {
      pending = Uint8Array.from([...pending, ...piece]);
      while (pending.length > step) {
        out.push(...dec.pull(pending.subarray(0, step)));
        pending = pending.subarray(step);
      }
    }
    out.push(...dec.pull(pending));
    dec.finish();
    expect(Uint8Array.from(out)).toEqual(plain);
  });

  test('byte ranges: within and across chunks, open-ended, suffix, unsatisfiable, ignored forms', async () => {
    const blob = new Uint8Array(2500).map((_, i) => i % 256);
    const id = await upload(relay.fetch, tokenOf(alice), blob, [1, 2, 0]);
    const cases: [string, number, number][] = [
      ['bytes=990-1010', 990, 1010],
      ['bytes=0-0', 0, 0],
      ['bytes=2000-', 2000, 2499],
      ['bytes=-10', 2490, 2499],
      ['bytes=-9999', 0, 2499],
      ['bytes=1500-999999', 1500, 2499],
    ];
    for (const [range, first, last] of cases) {
      const res = await get(relay.fetch, tokenOf(bob), id, range);
      expect(res.status, range).toBe(206);
      expect(res.headers.get('content-range'), range).toBe(`bytes ${first}-${last}/2500`);
      expect(res.headers.get('content-length'), range).toBe(String(last - first + 1));
      expect(new Uint8Array(await res.arrayBuffer()), range).toEqual(blob.subarray(first, last + 1));
    }
    for (const range of ['bytes=2500-', 'bytes=-0']) {
      const res = await get(relay.fetch, tokenOf(bob), id, range);
      expect(res.status, range).toBe(416);
      expect(res.headers.get('content-range')).toBe('bytes */2500');
      expect((await res.json()).error).toBe('range_not_satisfiable');
    }
    for (const range of ['bytes=5-2', 'bytes=0-1,5-6', 'items=0-1', 'bytes=x-y', 'bytes=-']) {
      const res = await get(relay.fetch, tokenOf(bob), id, range);
      expect(res.status, range).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBe(2500);
    }
  });

  test('slots: a chunk fits its place in the declared size; completion needs every slot full', async () => {
    const a = tokenOf(alice);
    const { id } = (await call(relay.fetch, 'POST', '/v1/attachments', { token: a, body: { size: 2500 } })).body;
    const status = async (idx: number, n: number) => (await put(relay.fetch, a, id, idx, new Uint8Array(n))).status;
    expect(await status(3, 10)).toBe(400); // beyond the declared size
    expect(await status(2, 501)).toBe(400); // the last slot holds 500
    expect(await status(1, CHUNK + 1)).toBe(413); // over the chunk size: refused while reading the body
    expect(await status(0, 0)).toBe(400);
    expect(await status(0, 1000)).toBe(204);
    expect(await status(2, 500)).toBe(204);
    const missing = await call(relay.fetch, 'POST', `/v1/attachments/${id}/complete`, { token: a });
    expect(missing).toMatchObject({ status: 409, body: { error: 'attachment_incomplete', missing: [1] } });
    expect(await status(1, 999)).toBe(204); // short: still incomplete
    expect(await call(relay.fetch, 'POST', `/v1/attachments/${id}/complete`, { token: a })).toMatchObject({ status: 409, body: { missing: [1] } });
    expect(await status(1, 1000)).toBe(204);
    expect((await call(relay.fetch, 'POST', `/v1/attachments/${id}/complete`, { token: a })).status).toBe(200);
  });

  test('chunks sent in parallel with a completion racing them: never a partial blob', async () => {
    const erin = await createUser(relay.fetch, uniqueName('erin'), 2);
    for (let round = 0; round < 3; round++) {
      const blob = crypto.getRandomValues(new Uint8Array(4500));
      const a = tokenOf(erin, round % 2);
      const made = await call(relay.fetch, 'POST', '/v1/attachments', { token: a, body: { size: blob.length } });
      expect(made.status).toBe(201);
      const { id } = made.body;
      const parts = slices(blob);
      const [early, ...puts] = await Promise.all([
        call(relay.fetch, 'POST', `/v1/attachments/${id}/complete`, { token: a }),
        ...parts.map((p, i) => put(relay.fetch, a, id, i, p)),
      ]);
      expect(puts.map((r) => r.status)).toEqual(parts.map(() => 204));
      expect([200, 409]).toContain(early!.status);
      if (early!.status === 409) expect((await call(relay.fetch, 'POST', `/v1/attachments/${id}/complete`, { token: a })).status).toBe(200);
      expect(new Uint8Array(await (await get(relay.fetch, tokenOf(bob), id)).arrayBuffer())).toEqual(blob);
    }
  });

  test('only the owner account uploads, completes and deletes; tokens are required', async () => {
    const eve = await createUser(relay.fetch, uniqueName('eve'));
    const { id } = (await call(relay.fetch, 'POST', '/v1/attachments', { token: tokenOf(alice), body: { size: 10 } })).body;
    expect((await put(relay.fetch, tokenOf(eve), id, 0, new Uint8Array(10))).status).toBe(404);
    expect((await put(relay.fetch, tokenOf(alice, 1), id, 0, new Uint8Array(10))).status).toBe(204); // the account's other device
    expect((await call(relay.fetch, 'POST', `/v1/attachments/${id}/complete`, { token: tokenOf(eve) })).status).toBe(404);
    expect((await call(relay.fetch, 'DELETE', `/v1/attachments/${id}`, { token: tokenOf(eve) })).status).toBe(404);
    expect((await call(relay.fetch, 'POST', `/v1/attachments/${id}/complete`, { token: tokenOf(alice) })).status).toBe(200);
    expect((await get(relay.fetch, tokenOf(eve), id)).status).toBe(200); // knowing the id is the capability
    for (const token of [undefined, alice.session, 'pd_' + 'A'.repeat(43)]) {
      const auth = token ? { token } : {};
      expect((await call(relay.fetch, 'POST', '/v1/attachments', { ...auth, body: { size: 10 } })).status).toBe(401);
      expect((await put(relay.fetch, token ?? '', id, 0, new Uint8Array(10))).status).toBe(401);
      expect((await call(relay.fetch, 'POST', `/v1/attachments/${id}/complete`, auth)).status).toBe(401);
      expect((await call(relay.fetch, 'GET', `/v1/attachments/${id}`, auth)).status).toBe(401);
      expect((await call(relay.fetch, 'DELETE', `/v1/attachments/${id}`, auth)).status).toBe(401);
    }
    expect((await call(relay.fetch, 'DELETE', `/v1/attachments/${id}`, { token: tokenOf(alice) })).status).toBe(204);
    expect((await get(relay.fetch, tokenOf(bob), id)).status).toBe(404);
    expect(await chunkRows(relay, id)).toBe(0);
    expect((await call(relay.fetch, 'DELETE', `/v1/attachments/${id}`, { token: tokenOf(alice) })).status).toBe(404);
  });

  test('size limit; a per-account quota that concurrent uploads from two devices cannot overshoot', async () => {
    const carol = await createUser(relay.fetch, uniqueName('carol'), 2);
    expect(await call(relay.fetch, 'POST', '/v1/attachments', { token: tokenOf(carol), body: { size: 10_001 } })).toMatchObject({ status: 413, body: { error: 'attachment_too_large' } });
    const tries = await Promise.all(Array.from({ length: 8 }, (_, i) => call(relay.fetch, 'POST', '/v1/attachments', { token: tokenOf(carol, i % 2), body: { size: 6000 } })));
    const made = tries.filter((r) => r.status === 201);
    expect(made.length).toBe(3); // 3 x 6,000 <= 20,000 < 4 x 6,000
    expect(tries.filter((r) => r.status !== 201).every((r) => r.status === 413 && r.body.error === 'quota_exceeded')).toBe(true);
    expect((await call(relay.fetch, 'POST', '/v1/attachments', { token: tokenOf(carol), body: { size: 2001 } })).status).toBe(413);
    expect((await call(relay.fetch, 'POST', '/v1/attachments', { token: tokenOf(carol), body: { size: 2000 } })).status).toBe(201);
    // Deleting frees room; other accounts have their own quota.
    expect((await call(relay.fetch, 'DELETE', `/v1/attachments/${made[0]!.body.id}`, { token: tokenOf(carol, 1) })).status).toBe(204);
    expect((await call(relay.fetch, 'POST', '/v1/attachments', { token: tokenOf(carol), body: { size: 6000 } })).status).toBe(201);
    expect((await call(relay.fetch, 'POST', '/v1/attachments', { token: tokenOf(bob), body: { size: 10_000 } })).status).toBe(201);
  });

  test('an expired upload frees its quota at once and is not served', async () => {
    const dave = await createUser(relay.fetch, uniqueName('dave'));
    const stale = await withConfig(relay, { ...LIMITS, attachmentUploadTtlMs: 1 }, async (fetch) => {
      const r = await call(fetch, 'POST', '/v1/attachments', { token: tokenOf(dave), body: { size: 10_000 } });
      expect(r.status).toBe(201);
      return r.body.id as string;
    });
    await new Promise((r) => setTimeout(r, 5));
    expect((await put(relay.fetch, tokenOf(dave), stale, 0, new Uint8Array(10))).status).toBe(404);
    for (let i = 0; i < 2; i++) expect((await call(relay.fetch, 'POST', '/v1/attachments', { token: tokenOf(dave), body: { size: 10_000 } })).status).toBe(201);
  });
});

describe.each(backends)('attachment expiry on $name', (backend) => {
  test("server.ts's sweeper deletes expired attachments and unfinished uploads with their chunks", async () => {
    const db = await backend.create();
    const relay = await startRelay({
      port: 0,
      hostname: '127.0.0.1',
      log: silentLogger,
      sweepIntervalMs: 50,
      config: { ...TEST_CONFIG, ...LIMITS, attachmentUploadTtlMs: 1500, attachmentRetentionMs: 1500 },
      ...(db.url ? { databaseUrl: db.url } : {}),
    });
    try {
      const fetch: Fetch = (path, init) => globalThis.fetch(relay.url + path, init);
      const alice = await createUser(fetch, uniqueName('alice'));
      const done = await upload(fetch, tokenOf(alice), new Uint8Array(1500));
      const { id: unfinished } = (await call(fetch, 'POST', '/v1/attachments', { token: tokenOf(alice), body: { size: 1500 } })).body;
      expect((await put(fetch, tokenOf(alice), unfinished, 0, new Uint8Array(1000))).status).toBe(204);
      expect(await chunkRows(relay, done)).toBe(2);
      expect(await chunkRows(relay, unfinished)).toBe(1);
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && (await chunkRows(relay, done)) + (await chunkRows(relay, unfinished)) > 0) await new Promise((r) => setTimeout(r, 50));
      expect(await chunkRows(relay, done)).toBe(0);
      expect(await chunkRows(relay, unfinished)).toBe(0);
      expect((await get(fetch, tokenOf(alice), done)).status).toBe(404);
    } finally {
      await relay.close();
      await db.drop();
    }
  });
});

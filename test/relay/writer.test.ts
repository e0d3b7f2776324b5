// The inbox writer's one-statement batch, on the real database: a batch mixing new submissions,
// a retry and a removed device; seqs ranked in submission order and gap-free; the records handed
// to local sockets equal the stored rows; NOTIFY hints split under PostgreSQL's payload limit,
// sent only while another relay process is registered.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { rowsOf } from '../../relay/db/client.ts';
import { InboxWriter, type SubmitJob } from '../../relay/inbox/writer.ts';
import { silentLogger } from '../../relay/log.ts';
import { type InboxRecord, NOTIFY_CHANNEL, type Subscriber } from '../../relay/notify/hub.ts';
import { deregister, register } from '../../relay/notify/instances.ts';
import { backends, startTestRelay, type TestRelay, uniqueName } from './harness.ts';

const bytes = (...b: number[]) => new Uint8Array(b);

describe.each(backends)('inbox writer on $name', (backend) => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay(backend);
  });
  afterAll(async () => relay?.close());

  /** An account with `n` active device rows (the writer needs only the rows, not keys or lists). */
  async function deviceRows(n: number): Promise<number[]> {
    const rows = rowsOf<{ id: unknown }>(
      await relay.services.db.execute(sql`
        WITH a AS (INSERT INTO accounts (username, opaque_record, created_at) VALUES (${uniqueName('w')}, 'x', 0) RETURNING id)
        INSERT INTO devices (account_id, device_id, signing_key, dh_key, active, created_at)
        SELECT a.id, decode(md5(a.id || ':' || g), 'hex'), '\\x00', '\\x00', true, 0 FROM a, generate_series(1, ${n}::int) g
        RETURNING id`),
    );
    return rows.map((r) => Number(r.id)).sort((a, b) => a - b);
  }

  const stored = async (device: number) =>
    rowsOf<{ seq: unknown; payload: unknown; envelope: Uint8Array }>(
      await relay.services.db.execute(sql`SELECT seq, payload, envelope FROM inbox WHERE device = ${device}::bigint ORDER BY seq`),
    ).map((r) => ({ seq: Number(r.seq), messageId: Number(r.payload), envelope: [...r.envelope] }));

  test('one batch: new, retried, two to one inbox, a removed device', async () => {
    const [sender, a, b, gone] = await deviceRows(4);
    await relay.services.db.execute(sql`UPDATE devices SET active = false WHERE id = ${gone!}::bigint`);
    // A writer of its own with one transaction at a time: what is queued behind the first
    // submission is written together, as one batch.
    const writer = new InboxWriter(relay.database, relay.services.hub, silentLogger, { maxBatch: 256, concurrency: 1, lingerMs: 0, now: () => 1000 });
    const job = (clientId: string, targets: [number, number][]): SubmitJob => ({
      senderDevice: sender!,
      senderUser: 'sender',
      senderDeviceId: bytes(7),
      clientId,
      payload: bytes(1, 2, 3),
      targets: targets.map(([device, e]) => ({ device, envelope: bytes(e) })),
    });
    const got = new Map<number, InboxRecord[]>();
    const sink = (device: number): Subscriber => ({
      records: (rs) => got.set(device, [...(got.get(device) ?? []), ...rs]),
      hint: () => {},
      revoked: () => {},
      resync: () => {},
    });
    const unsub = [a!, b!].map((d) => relay.services.hub.subscribe(d, sink(d)));

    const first = writer.submit(job('c1', [[a!, 1]]));
    const batch = [
      writer.submit(job('c2', [[a!, 2], [b!, 3], [gone!, 4]])),
      writer.submit(job('c1', [[a!, 5]])), // a retry of c1: the stored result, nothing stored
      writer.submit(job('c3', [[b!, 6], [a!, 7]])),
    ];
    const r1 = await first;
    const [r2, retry, r3] = await Promise.all(batch);
    await writer.drain(); // records reach local sockets after the answers (InboxWriter.deliver)
    unsub.forEach((u) => u());
    expect(retry).toEqual({ ...r1, stored: false }); // the first result, and it says nothing was stored
    expect(r1.stored).toBe(true);
    expect(new Set([r1.messageId, r2!.messageId, r3!.messageId]).size).toBe(3);

    expect(await stored(a!)).toEqual([
      { seq: 1, messageId: r1.messageId, envelope: [1] },
      { seq: 2, messageId: r2!.messageId, envelope: [2] },
      { seq: 3, messageId: r3!.messageId, envelope: [7] },
    ]);
    expect(await stored(b!)).toEqual([
      { seq: 1, messageId: r2!.messageId, envelope: [3] },
      { seq: 2, messageId: r3!.messageId, envelope: [6] },
    ]);
    expect(await stored(gone!)).toEqual([]);
    const counters = rowsOf<{ id: unknown; next_seq: unknown }>(
      await relay.services.db.execute(sql`SELECT id, next_seq FROM devices WHERE id IN (${a!}::bigint, ${b!}::bigint, ${gone!}::bigint) ORDER BY id`),
    );
    expect(counters.map((r) => Number(r.next_seq))).toEqual([3, 2, 0]);
    // What local sockets were handed is what was stored.
    for (const d of [a!, b!]) {
      expect((got.get(d) ?? []).map((r) => ({ seq: r.seq, messageId: r.messageId, envelope: [...r.envelope] }))).toEqual(await stored(d));
    }
  });

  test('a batch waits (up to lingerMs) for as many submissions as the last one took, never for a lone sender', async () => {
    const [sender, target] = await deviceRows(2);
    const LINGER = 1000;
    const writer = new InboxWriter(relay.database, relay.services.hub, silentLogger, { maxBatch: 256, concurrency: 1, lingerMs: LINGER, now: Date.now });
    const sizes: number[] = [];
    writer.onBatch = (n) => sizes.push(n);
    let k = 0;
    const submit = () =>
      writer.submit({ senderDevice: sender!, senderUser: 's', senderDeviceId: bytes(7), clientId: `l${k++}`, payload: bytes(1), targets: [{ device: target!, envelope: bytes(2) }] });

    // (Each step waits for the writer to be idle again: its batch ends a tick after its callers resume.)
    const idle = () => new Promise((r) => setTimeout(r, 10));
    await submit(); // alone: at once
    await idle();
    await Promise.all([submit(), submit(), submit()]); // the first goes at once, the two behind it together
    await idle();
    expect(sizes).toEqual([1, 1, 2]);

    // One arrives after a batch of two: it waits for a second, which starts the batch at once.
    let t0 = performance.now();
    const first = submit();
    await new Promise((r) => setTimeout(r, 50));
    await Promise.all([first, submit()]);
    expect(sizes).toEqual([1, 1, 2, 2]);
    expect(performance.now() - t0).toBeLessThan(LINGER);
    await idle();

    // None follows: it goes after lingerMs, and the next lone one (last batch: 1) goes at once.
    t0 = performance.now();
    await submit();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(LINGER - 5);
    await idle();
    t0 = performance.now();
    await submit();
    expect(performance.now() - t0).toBeLessThan(LINGER);
    expect(sizes).toEqual([1, 1, 2, 2, 1, 1]);
  });

  test('the next batch goes to the database before this one is answered', async () => {
    const [sender, target] = await deviceRows(2);
    // The real database, with its writer statements counted (their client ids, per batch).
    const statements: string[][] = [];
    const database = {
      ...relay.database,
      queryOwn: <T,>(text: string, params: readonly unknown[]) => {
        statements.push(params[1] as string[]);
        return relay.database.queryOwn<T>(text, params);
      },
    };
    const writer = new InboxWriter(database, relay.services.hub, silentLogger, { maxBatch: 256, concurrency: 1, lingerMs: 0, now: Date.now });
    const submit = (clientId: string) =>
      writer.submit({ senderDevice: sender!, senderUser: 's', senderDeviceId: bytes(7), clientId, payload: bytes(1), targets: [{ device: target!, envelope: bytes(2) }] });
    const first = submit('e1');
    const behind = [submit('e2'), submit('e3')];
    await first;
    // By the time the first submitter hears back, the two queued behind it are being written.
    expect(statements).toEqual([['e1'], ['e2', 'e3']]);
    const [r2, r3] = await Promise.all(behind);
    expect(r3!.messageId).toBe(r2!.messageId + 1);
    expect((await stored(target!)).map((r) => r.seq)).toEqual([1, 2, 3]);
  });

  test('answers go out before the records; pipelined batches reach sockets in commit order', async () => {
    const [sender, target] = await deviceRows(2);
    const writer = new InboxWriter(relay.database, relay.services.hub, silentLogger, { maxBatch: 4, concurrency: 2, lingerMs: 0, now: Date.now });
    const answered = new Set<number>();
    const seen: { seq: number; answered: boolean }[] = [];
    const unsub = relay.services.hub.subscribe(target!, {
      records: (rs) => rs.forEach((r) => seen.push({ seq: r.seq, answered: answered.has(r.messageId) })),
      hint: () => {},
      revoked: () => {},
      resync: () => {},
    });
    try {
      const all = Array.from({ length: 24 }, (_, i) =>
        writer
          .submit({ senderDevice: sender!, senderUser: 's', senderDeviceId: bytes(7), clientId: `o${i}`, payload: bytes(1), targets: [{ device: target!, envelope: bytes(i) }] })
          .then((r) => answered.add(r.messageId)),
      );
      await Promise.all(all);
      await writer.drain();
    } finally {
      unsub();
    }
    expect(seen.map((r) => r.seq)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1)); // every one, in order, once
    expect(seen.every((r) => r.answered)).toBe(true); // each submitter heard back before its receiver did
  });

  test('a batch to 400 devices: NOTIFY hints split under the payload limit, each device once', async () => {
    const targets = await deviceRows(400);
    const notes: string[] = [];
    const unlisten = await relay.database.listen(NOTIFY_CHANNEL, (p) => notes.push(p));
    const submit = (clientId: string) =>
      relay.services.writer.submit({
        senderDevice: targets[0]!,
        senderUser: 'sender',
        senderDeviceId: bytes(7),
        clientId,
        payload: bytes(1),
        targets: targets.slice(1).map((device) => ({ device, envelope: bytes(2) })),
      });
    const mine = () => notes.filter((n) => n.startsWith(relay.services.hub.envelopeNoticePrefix + ' '));
    try {
      // Alone on the database: no other process to hint, so no notification at all.
      await submit('alone');
      await new Promise((r) => setTimeout(r, 200));
      expect(mine()).toEqual([]);

      // Once another process is registered, every batch hints it.
      await register(relay.services.db, 'another-process');
      try {
        await submit('wide');
        for (let i = 0; i < 100 && mine().length < 3; i++) await new Promise((r) => setTimeout(r, 20));
      } finally {
        await deregister(relay.services.db, 'another-process');
      }
    } finally {
      await unlisten();
    }
    expect(mine().length).toBe(3); // 399 devices, at most 150 per notification
    for (const n of mine()) expect(new TextEncoder().encode(n).length).toBeLessThan(8000);
    const pairs = mine().flatMap((n) => n.split(' ').slice(2));
    expect(pairs.sort()).toEqual(targets.slice(1).map((d) => `${d}:2`).sort()); // seq 1 was 'alone'
  });
});

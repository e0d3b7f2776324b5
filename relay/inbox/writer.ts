/**
 * Stores submitted messages: the payload once, one envelope per recipient device, each in that
 * device's inbox under the next sequence number.
 *
 * Group commit: submissions waiting at the same moment share one transaction (up to
 * `maxBatch` of them, `concurrency` transactions at once), with set-based statements, so the
 * cost per message is a few rows rather than a commit. Each caller's promise resolves only
 * after the transaction committed: an acknowledged message is durable.
 *
 * Per batch, in one transaction:
 *   1. claim   INSERT INTO submissions ... ON CONFLICT DO NOTHING RETURNING: the rows not
 *              returned are retries (committed earlier or by a concurrent transaction, whose
 *              outcome PostgreSQL waits for); they get the stored result and create nothing.
 *   2. payloads, one row per claimed message, id = message id.
 *   3. counters: lock the recipients' device rows in id order (no deadlock between batches),
 *              then UPDATE devices SET next_seq = next_seq + n ... RETURNING next_seq. The row
 *              lock is held until commit, so another transaction writing to the same inbox
 *              waits and commits after us: sequence numbers are gap-free (a rolled-back batch
 *              rolls back its counter too) and become visible in order.
 *   4. inbox rows, 5. pg_notify hints for other relay processes (delivered on commit).
 * If a batch fails, its submissions are retried one by one so one bad submission cannot fail
 * the others.
 */
import { type SQL, sql } from 'drizzle-orm';
import { type Db, rowsOf, type Tx } from '../db/client.ts';
import { errorFields, type Logger } from '../log.ts';
import { type Hub, type InboxRecord, NOTIFY_CHANNEL } from '../notify/hub.ts';

export interface SubmitJob {
  readonly senderDevice: number;
  readonly senderUser: string;
  readonly senderDeviceId: Uint8Array;
  readonly clientId: string;
  readonly payload: Uint8Array;
  readonly targets: readonly { readonly device: number; readonly envelope: Uint8Array }[];
}

export interface SubmitResult {
  readonly messageId: number;
  readonly timestamp: number;
}

interface Pending {
  readonly job: SubmitJob;
  readonly resolve: (r: SubmitResult) => void;
  readonly reject: (e: unknown) => void;
}

/** Rows per INSERT stay far below PostgreSQL's 65,535 parameters (7 per inbox row). */
const MAX_ROWS_PER_BATCH = 4000;

export class InboxWriter {
  private readonly queue: Pending[] = [];
  private running = 0;

  constructor(
    private readonly db: Db,
    private readonly hub: Hub,
    private readonly log: Logger,
    private readonly opts: { maxBatch: number; concurrency: number; now: () => number },
  ) {}

  submit(job: SubmitJob): Promise<SubmitResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.pump();
    });
  }

  /** Resolves once every queued submission has been written (or failed). */
  async drain(): Promise<void> {
    while (this.queue.length || this.running) await new Promise((r) => setTimeout(r, 5));
  }

  private pump(): void {
    while (this.running < this.opts.concurrency && this.queue.length) {
      const batch = this.take();
      this.running++;
      void this.run(batch).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  /** The next batch: queue order, and a (sender device, client id) at most once per batch. */
  private take(): Pending[] {
    const batch: Pending[] = [];
    const keys = new Set<string>();
    let rows = 0;
    for (let i = 0; i < this.queue.length && batch.length < this.opts.maxBatch; ) {
      const p = this.queue[i]!;
      const key = `${p.job.senderDevice}/${p.job.clientId}`;
      const n = p.job.targets.length;
      if (batch.length > 0 && rows + n > MAX_ROWS_PER_BATCH) break; // keep queue order
      if (keys.has(key)) {
        i++; // a retry racing its original: next batch, where it finds the stored result
        continue;
      }
      keys.add(key);
      rows += n;
      batch.push(p);
      this.queue.splice(i, 1);
    }
    return batch;
  }

  private async run(batch: Pending[]): Promise<void> {
    try {
      const { results, delivered } = await this.db.transaction((tx) => this.write(tx, batch.map((p) => p.job)));
      batch.forEach((p, i) => p.resolve(results[i]!));
      this.hub.deliverLocal(delivered);
    } catch (e) {
      if (batch.length === 1) {
        this.log('error', 'message write failed', errorFields(e));
        batch[0]!.reject(e);
        return;
      }
      // Retry one by one: only the submission at fault fails.
      await Promise.all(batch.map((p) => this.run([p])));
    }
  }

  private async write(tx: Tx, jobs: readonly SubmitJob[]) {
    const now = this.opts.now();
    const claimed = rowsOf<{ sender_device: unknown; client_id: string; message_id: unknown }>(
      await tx.execute(sql`
        INSERT INTO submissions (sender_device, client_id, message_id, created_at)
        VALUES ${list(jobs.map((j) => sql`(${j.senderDevice}, ${j.clientId}, nextval('message_ids'), ${now})`))}
        ON CONFLICT DO NOTHING
        RETURNING sender_device, client_id, message_id`),
    );
    const ids = new Map(claimed.map((r) => [`${Number(r.sender_device)}/${r.client_id}`, Number(r.message_id)]));
    const results: SubmitResult[] = new Array(jobs.length);
    const fresh: { job: SubmitJob; messageId: number }[] = [];
    const retried: number[] = [];
    jobs.forEach((job, i) => {
      const id = ids.get(`${job.senderDevice}/${job.clientId}`);
      if (id === undefined) retried.push(i);
      else {
        fresh.push({ job, messageId: id });
        results[i] = { messageId: id, timestamp: now };
      }
    });
    if (retried.length) await this.fillStoredResults(tx, jobs, retried, results);

    const delivered = new Map<number, InboxRecord[]>();
    if (fresh.length === 0) return { results, delivered };
    await tx.execute(sql`
      INSERT INTO payloads (id, data, created_at)
      VALUES ${list(fresh.map((f) => sql`(${f.messageId}, ${f.job.payload}, ${now})`))}`);

    const next = await this.reserveSeqs(tx, fresh);
    const rows: SQL[] = [];
    for (const { job, messageId } of fresh) {
      for (const t of job.targets) {
        const seq = next.get(t.device);
        if (seq === undefined) continue; // removed since the route checked the envelope set
        next.set(t.device, seq + 1);
        rows.push(sql`(${t.device}, ${seq}, ${messageId}, ${job.senderUser}, ${job.senderDeviceId}, ${t.envelope}, ${now})`);
        const rec: InboxRecord = {
          seq,
          messageId,
          senderUser: job.senderUser,
          senderDevice: job.senderDeviceId,
          timestamp: now,
          envelope: t.envelope,
          payload: job.payload,
        };
        const arr = delivered.get(t.device);
        if (arr) arr.push(rec);
        else delivered.set(t.device, [rec]);
      }
    }
    if (rows.length) {
      await tx.execute(sql`
        INSERT INTO inbox (device, seq, payload, sender_user, sender_device, envelope, created_at)
        VALUES ${list(rows)}`);
    }
    const highest = new Map([...next].map(([d, s]) => [d, s - 1]));
    for (const text of this.hub.newEnvelopeNotices(highest)) {
      await tx.execute(sql`SELECT pg_notify(${NOTIFY_CHANNEL}, ${text})`);
    }
    return { results, delivered };
  }

  /**
   * Locks the devices' counter rows in id order and reserves seqs; returns each device's first
   * new seq. Only devices still active get one: a device-list update that removed a target
   * after the route checked the envelope set holds (or waits for) the same row lock, so the
   * removal is either seen here or drops this inbox's rows when it commits after us.
   */
  private async reserveSeqs(tx: Tx, fresh: readonly { job: SubmitJob }[]): Promise<Map<number, number>> {
    const wanted = new Map<number, number>();
    for (const { job } of fresh) for (const t of job.targets) wanted.set(t.device, (wanted.get(t.device) ?? 0) + 1);
    const next = new Map<number, number>();
    if (wanted.size === 0) return next;
    const locked = rowsOf<{ id: unknown }>(
      await tx.execute(
        sql`SELECT id FROM devices WHERE id IN ${inList([...wanted.keys()].map((id) => sql`${id}::bigint`))} AND active ORDER BY id FOR UPDATE`,
      ),
    );
    const ids = locked.map((r) => Number(r.id));
    if (ids.length === 0) return next;
    const counts = new Map(ids.map((id) => [id, wanted.get(id)!]));
    const updated = rowsOf<{ id: unknown; next_seq: unknown }>(
      await tx.execute(sql`
        UPDATE devices d SET next_seq = d.next_seq + v.n
        FROM (VALUES ${list(ids.map((id) => sql`(${id}::bigint, ${counts.get(id)!}::bigint)`))}) AS v(id, n)
        WHERE d.id = v.id
        RETURNING d.id, d.next_seq`),
    );
    if (updated.length !== ids.length) throw new Error('a recipient device row is missing');
    for (const r of updated) {
      const id = Number(r.id);
      next.set(id, Number(r.next_seq) - counts.get(id)! + 1);
    }
    return next;
  }

  private async fillStoredResults(tx: Tx, jobs: readonly SubmitJob[], idx: readonly number[], results: SubmitResult[]) {
    const stored = rowsOf<{ sender_device: unknown; client_id: string; message_id: unknown; created_at: unknown }>(
      await tx.execute(sql`
        SELECT sender_device, client_id, message_id, created_at FROM submissions
        WHERE (sender_device, client_id) IN ${inList(idx.map((i) => sql`(${jobs[i]!.senderDevice}::bigint, ${jobs[i]!.clientId}::text)`))}`),
    );
    const byKey = new Map(stored.map((r) => [`${Number(r.sender_device)}/${r.client_id}`, r]));
    for (const i of idx) {
      const r = byKey.get(`${jobs[i]!.senderDevice}/${jobs[i]!.clientId}`);
      if (!r) throw new Error('submission conflict without a stored row');
      results[i] = { messageId: Number(r.message_id), timestamp: Number(r.created_at) };
    }
  }
}

/** `(a), (b), ...` for VALUES and IN lists. */
export function list(items: readonly SQL[]): SQL {
  return sql`${sql.join([...items], sql`, `)}`;
}

/** `(a, b, ...)` */
export function inList(items: readonly SQL[]): SQL {
  return sql`(${sql.join([...items], sql`, `)})`;
}

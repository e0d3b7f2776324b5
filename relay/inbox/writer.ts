/**
 * Stores submitted messages: the payload once, one envelope per recipient device, each in that
 * device's inbox under the next sequence number.
 *
 * Group commit: submissions waiting at the same moment share one transaction (up to
 * `maxBatch` of them), so the cost per message is a few rows rather than a commit. Batches go
 * to the database's own writer connection (Database.queryOwn), `concurrency` of them
 * outstanding at once: more than one are pipelined there, run one after another without a
 * round trip in between. Each caller's promise resolves only after the transaction
 * committed: an acknowledged message is durable.
 *
 * A batch is ONE statement (WRITE_BATCH), which PostgreSQL runs as its own transaction: one
 * round trip instead of BEGIN, a statement per step and COMMIT, and prepared once per
 * connection, since the batch travels as arrays (unnest) and the text never changes. Its steps:
 *   claimed   the (sender device, client id) keys, INSERT INTO submissions. The first attempt
 *             (WRITE_BATCH) is a plain INSERT: a retried submission makes it fail with a unique
 *             violation, and the batch is then written again by WRITE_BATCH_RETRIES, whose
 *             INSERT ... ON CONFLICT DO NOTHING RETURNING leaves out the keys stored already
 *             (committed earlier, or by a concurrent batch whose outcome PostgreSQL waits for):
 *             those store nothing and get the stored result afterwards. Retries are rare, and
 *             ON CONFLICT's speculative insertion and the join back to the batch cost 8-15% of the
 *             database CPU of an 8-message statement (measured in alternating blocks on one
 *             connection): the common case does without them.
 *   stored    the payloads of the claimed messages, id = message id.
 *   locked    the recipients' device rows, FOR UPDATE in id order (no deadlock between
 *             batches), active ones only: a device removed after the route checked the envelope
 *             set is either seen removed here, or its removal (which takes the same row lock)
 *             commits after us and drops the inbox rows with the device.
 *   bumped    UPDATE devices SET next_seq = next_seq + n RETURNING. The row lock is held until
 *             commit, so another batch writing to the same inbox waits and commits after this
 *             one: seqs are gap-free (a failed statement rolls its counters back with it) and
 *             become visible in order.
 *   inboxed   one row per (claimed message, active target): seq = the old counter + the row's
 *             rank among this batch's rows for that device, in submission order.
 *   notified  pg_notify hints for other relay processes, sent by PostgreSQL on commit, only
 *             while another process is registered in relay_instances (notify/instances.ts:
 *             reading that table here is what makes a process that joins miss nothing).
 * The statement returns the claimed message ids and each device's old counter; the records
 * handed to local sockets are rebuilt from those with the same ranking rule.
 * If a batch fails, its submissions are retried one by one so one bad submission cannot fail
 * the others.
 */
import { type Database, isUniqueViolation } from '../db/client.ts';
import { errorFields, type Logger } from '../log.ts';
import { type Hub, type InboxRecord, NOTICE_MAX_PAIRS, NOTIFY_CHANNEL } from '../notify/hub.ts';

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
  /** False for a retry answered with the stored result: this write stored nothing. */
  readonly stored: boolean;
}

interface Pending {
  readonly job: SubmitJob;
  readonly resolve: (r: SubmitResult) => void;
  readonly reject: (e: unknown) => void;
}

/**
 * Bytes travel to PostgreSQL as base64 text, decoded by the statement: postgres.js sends a
 * bytea[] as hex text (twice the bytes, each element quoted), and writing the statement to
 * the socket was the relay's largest cost under load.
 */
const b64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

/** Inbox rows per statement: bounds its memory and duration (one batch holds its inboxes' locks). */
const MAX_ROWS_PER_BATCH = 4000;

// $1..$5 one element per submission, $6..$8 one per envelope. A device's envelopes are ranked
// by their place in the arrays, which is submission order. Joins between two CTEs are avoided
// (the planner cannot know their sizes, guesses 1 row and nests loops: quadratic in the batch);
// a device's rows travel as arrays from `wanted` to `inboxed` instead.
const JOB = `
WITH job AS (
  SELECT j.sender_device, j.client_id, decode(j.data, 'base64') AS data, j.sender_user, decode(j.sender_id, 'base64') AS sender_id, j.ord
    FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])
    WITH ORDINALITY AS j(sender_device, client_id, data, sender_user, sender_id, ord)
)`;
/** Every submission of the batch is new (`fresh` is materialised once: nextval runs once per row). */
const CLAIM_ALL = `, fresh AS (
  SELECT j.ord, nextval('message_ids') AS message_id, j.data, j.sender_user, j.sender_id, j.sender_device, j.client_id FROM job j
), claimed AS (
  INSERT INTO submissions (sender_device, client_id, message_id, created_at)
  SELECT sender_device, client_id, message_id, $9 FROM fresh
)`;
/** Some may be retries: only the keys claimed here are fresh. */
const CLAIM_NEW = `, claimed AS (
  INSERT INTO submissions (sender_device, client_id, message_id, created_at)
  SELECT sender_device, client_id, nextval('message_ids'), $9 FROM job
  ON CONFLICT DO NOTHING
  RETURNING sender_device, client_id, message_id
), fresh AS (
  SELECT j.ord, c.message_id, j.data, j.sender_user, j.sender_id
    FROM job j JOIN claimed c ON c.sender_device = j.sender_device AND c.client_id = j.client_id
)`;
const STORE = `, stored AS (
  INSERT INTO payloads (id, data, created_at) SELECT message_id, data, $9 FROM fresh
), wanted AS (
  SELECT t.device, count(*) AS n, array_agg(f.message_id ORDER BY t.ord) AS message_ids,
         array_agg(f.sender_user ORDER BY t.ord) AS sender_users, array_agg(f.sender_id ORDER BY t.ord) AS sender_ids,
         array_agg(decode(t.envelope, 'base64') ORDER BY t.ord) AS envelopes
    FROM unnest($6::bigint[], $7::bigint[], $8::text[]) WITH ORDINALITY AS t(job, device, envelope, ord)
    JOIN fresh f ON f.ord = t.job
   GROUP BY t.device
), locked AS (
  SELECT d.id, d.next_seq AS before, w.n, w.message_ids, w.sender_users, w.sender_ids, w.envelopes
    FROM wanted w JOIN devices d ON d.id = w.device
   WHERE d.active
   ORDER BY d.id FOR UPDATE OF d
), bumped AS (
  UPDATE devices d SET next_seq = d.next_seq + l.n FROM locked l WHERE d.id = l.id
), inboxed AS (
  INSERT INTO inbox (device, seq, payload, sender_user, sender_device, envelope, created_at)
  SELECT l.id, l.before + r.rank, r.message_id, r.sender_user, r.sender_id, r.envelope, $9
    FROM locked l, unnest(l.message_ids, l.sender_users, l.sender_ids, l.envelopes)
      WITH ORDINALITY AS r(message_id, sender_user, sender_id, envelope, rank)
), notified AS (
  SELECT pg_notify($10, $11 || string_agg(' ' || id || ':' || (before + n), '' ORDER BY id))
    FROM (SELECT id, before, n, (row_number() OVER (ORDER BY id) - 1) / $12 AS part FROM locked
           WHERE EXISTS (SELECT 1 FROM relay_instances r WHERE r.instance <> $13)) b
   GROUP BY part
)
SELECT 'm' AS kind, ord AS key, message_id AS value FROM fresh
UNION ALL SELECT 'd', id, before FROM locked
UNION ALL SELECT 'n', count(*), 0 FROM notified`;
const WRITE_BATCH = JOB + CLAIM_ALL + STORE;
const WRITE_BATCH_RETRIES = JOB + CLAIM_NEW + STORE;


/** The stored result of submissions that were retries. */
const STORED_RESULTS = `
SELECT s.sender_device, s.client_id, s.message_id, s.created_at
  FROM submissions s JOIN unnest($1::bigint[], $2::text[]) AS k(sender_device, client_id)
    ON s.sender_device = k.sender_device AND s.client_id = k.client_id`;

export class InboxWriter {
  private queue: Pending[] = [];
  /** Committed batches' records not yet handed to local sockets, in commit order. */
  private deliveries: Map<number, InboxRecord[]>[] = [];
  private running = 0;

  constructor(
    private readonly database: Database,
    private readonly hub: Hub,
    private readonly log: Logger,
    private readonly opts: { maxBatch: number; concurrency: number; lingerMs: number; now: () => number },
  ) {}

  /** Called with the size of each batch written (the metrics hook in). */
  onBatch: ((messages: number) => void) | undefined;

  submit(job: SubmitJob): Promise<SubmitResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.pump();
    });
  }

  /** Resolves once every queued submission has been written (or failed) and handed to local sockets. */
  async drain(): Promise<void> {
    while (this.queue.length || this.running || this.deliveries.length) await new Promise((r) => setTimeout(r, 5));
  }

  /** Size of the batch started last. */
  private lastBatch = 0;
  private lingerTimer: NodeJS.Timeout | undefined;

  /**
   * Starts batches while fewer than `concurrency` run.
   *
   * When none runs and fewer submissions wait than the last batch took, more are likely on their
   * way (the senders just answered are sending their next ones): the batch waits up to `lingerMs`
   * for as many to gather. A batch's fixed cost — the statement, the commit, waking the database
   * server and being woken by it, about 200 µs apiece on the 2-core machine measured — is then paid
   * once per round of senders instead of two or three times (+10% at 1 message in flight per
   * sender, paired runs). A lone sender (last batch of one) never waits; after a wait the next
   * batch starts at once whatever its size.
   *
   * A further batch starts beside a running one only once at least as many submissions wait as the
   * last batch took: they are sent at once (pipelined) instead of waiting a whole batch for their
   * turn, yet a batch is never started for the one or two that arrived first.
   */
  private pump(): void {
    const { lingerMs } = this.opts;
    if (lingerMs > 0 && this.running === 0 && this.queue.length > 0 && this.queue.length < this.lastBatch) {
      this.lingerTimer ??= setTimeout(() => {
        this.lingerTimer = undefined;
        this.lastBatch = 0;
        this.pump();
      }, lingerMs);
      return;
    }
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    while (this.running < this.opts.concurrency && this.queue.length) {
      if (this.running > 0 && this.queue.length < this.lastBatch) break;
      const batch = this.take();
      this.lastBatch = batch.length;
      this.running++;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        this.running--;
        this.pump();
      };
      void this.run(batch, release).finally(release);
    }
  }

  /** The next batch: queue order, and a (sender device, client id) at most once per batch. */
  private take(): Pending[] {
    const batch: Pending[] = [];
    const left: Pending[] = []; // skipped retries, then the rest: rebuilt once, not spliced per item
    const keys = new Set<string>();
    let rows = 0;
    let i = 0;
    for (; i < this.queue.length && batch.length < this.opts.maxBatch; i++) {
      const p = this.queue[i]!;
      const key = `${p.job.senderDevice}/${p.job.clientId}`;
      const n = p.job.targets.length;
      if (batch.length > 0 && rows + n > MAX_ROWS_PER_BATCH) break; // keep queue order
      if (keys.has(key)) {
        left.push(p); // a retry racing its original: next batch, where it finds the stored result
        continue;
      }
      keys.add(key);
      rows += n;
      batch.push(p);
    }
    this.queue = left.length ? left.concat(this.queue.slice(i)) : this.queue.slice(i);
    return batch;
  }

  /**
   * Writes a batch, then answers its submitters and hands its records to local sockets. `release`
   * frees the batch's slot: it is called as soon as the batch committed, before the answers go
   * out, so the next batch (whose submissions gathered meanwhile) is already on its way to the
   * database while this process writes the frames for this one. (Releasing after them left the
   * database idle for that time: a third of each round at 1 message in flight per sender.)
   * Records reach the sockets in commit order (see deliver). (A batch written again after a unique
   * violation commits after the batch pipelined behind it, and so takes later seqs than it.)
   */
  private async run(batch: Pending[], release: () => void): Promise<void> {
    try {
      const { results, delivered } = await this.write(batch.map((p) => p.job));
      release();
      this.onBatch?.(batch.length);
      batch.forEach((p, i) => p.resolve(results[i]!));
      this.deliver(delivered);
    } catch (e) {
      if (batch.length === 1) {
        this.log('error', 'message write failed', errorFields(e));
        batch[0]!.reject(e);
        return;
      }
      // Retry one by one: only the submission at fault fails.
      await Promise.all(batch.map((p) => this.run([p], () => {})));
    }
  }

  /**
   * Hands a committed batch's records to local sockets once its submitters' answers are out: an
   * answer is what lets a sender send its next message, so at 1 message in flight per sender the
   * answers are the round's critical path, and writing the receivers' frames first (a system call
   * each) held every answer back by all of them (paired runs at 1 in flight: +14% msgs/s, 6
   * rounds of 8; +5.6%, 9 of 10). The answers are written in the microtasks the resolved promises run; the records
   * follow in the same turn of the event loop (setImmediate). One queue, flushed in order, so a
   * later batch's records never overtake an earlier one's.
   */
  private deliver(records: Map<number, InboxRecord[]>): void {
    this.deliveries.push(records);
    if (this.deliveries.length > 1) return;
    setImmediate(() => {
      const all = this.deliveries;
      this.deliveries = [];
      for (const d of all) this.hub.deliverLocal(d);
    });
  }

  private async write(jobs: readonly SubmitJob[]) {
    const now = this.opts.now();
    const targets = jobs.flatMap((j, i) => j.targets.map((t) => ({ job: i + 1, ...t })));
    const params = [
      jobs.map((j) => j.senderDevice),
      jobs.map((j) => j.clientId),
      jobs.map((j) => b64(j.payload)),
      jobs.map((j) => j.senderUser),
      jobs.map((j) => b64(j.senderDeviceId)),
      targets.map((t) => t.job),
      targets.map((t) => t.device),
      targets.map((t) => b64(t.envelope)),
      now,
      NOTIFY_CHANNEL,
      this.hub.envelopeNoticePrefix,
      NOTICE_MAX_PAIRS,
      this.hub.instance,
    ];
    type Row = { kind: string; key: unknown; value: unknown };
    const rows = await this.database.queryOwn<Row>(WRITE_BATCH, params).catch((e: unknown) => {
      if (!isUniqueViolation(e)) throw e; // in WRITE_BATCH: a submission stored already
      return this.database.queryOwn<Row>(WRITE_BATCH_RETRIES, params);
    });
    const messageIds = new Map<number, number>(); // job ordinal (1-based) -> message id
    const before = new Map<number, number>(); // device -> its counter before this batch
    for (const r of rows) {
      if (r.kind === 'm') messageIds.set(Number(r.key), Number(r.value));
      else if (r.kind === 'd') before.set(Number(r.key), Number(r.value));
    }

    const results: SubmitResult[] = new Array(jobs.length);
    const retried: number[] = [];
    jobs.forEach((_, i) => {
      const id = messageIds.get(i + 1);
      if (id === undefined) retried.push(i);
      else results[i] = { messageId: id, timestamp: now, stored: true };
    });
    if (retried.length) await this.fillStoredResults(jobs, retried, results);

    // The records as stored: the same ranking as the statement's row_number().
    const delivered = new Map<number, InboxRecord[]>();
    for (const t of targets) {
      const messageId = messageIds.get(t.job);
      const last = before.get(t.device);
      if (messageId === undefined || last === undefined) continue; // a retry, or a removed device
      before.set(t.device, last + 1);
      const job = jobs[t.job - 1]!;
      const rec: InboxRecord = {
        seq: last + 1,
        messageId,
        senderUser: job.senderUser,
        senderDevice: job.senderDeviceId,
        timestamp: now,
        envelope: t.envelope,
        payload: job.payload,
      };
      const list = delivered.get(t.device);
      if (list) list.push(rec);
      else delivered.set(t.device, [rec]);
    }
    return { results, delivered };
  }

  private async fillStoredResults(jobs: readonly SubmitJob[], idx: readonly number[], results: SubmitResult[]) {
    // The conflicting rows are committed (ON CONFLICT waited for them), so a new statement sees them.
    const stored = await this.database.queryOwn<{ sender_device: unknown; client_id: string; message_id: unknown; created_at: unknown }>(STORED_RESULTS, [
      idx.map((i) => jobs[i]!.senderDevice),
      idx.map((i) => jobs[i]!.clientId),
    ]);
    const byKey = new Map(stored.map((r) => [`${Number(r.sender_device)}/${r.client_id}`, r]));
    for (const i of idx) {
      const r = byKey.get(`${jobs[i]!.senderDevice}/${jobs[i]!.clientId}`);
      if (!r) throw new Error('submission conflict without a stored row');
      results[i] = { messageId: Number(r.message_id), timestamp: Number(r.created_at), stored: false };
    }
  }
}

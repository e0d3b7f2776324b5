// bench:relay's storage baselines: raw PostgreSQL writes of the rows a message costs, with no
// relay in between, on copies of the relay's own tables (same columns and indexes, no foreign
// keys, nothing a socket could read). They bound what any relay on this database can commit.
import postgres from 'postgres';
import { cpuSeconds } from './relay-load.ts';

export interface StorageBaselines {
  /** Inbox rows/s, one row per transaction (autocommit), 20 connections. */
  readonly singleRowCommits: number;
  /** Inbox rows/s, 100 rows per statement, 4 connections. */
  readonly batchedRows: number;
  /** Messages/s: a message's submission, payload and inbox rows and its counter bump, 100 messages per statement, 4 connections. */
  readonly batchedMessages: number;
  /**
   * The same statement with 20 messages, one connection, one statement at a time: at 1 in flight
   * per pair the 20 senders never have more than 20 messages waiting, so no relay can commit more
   * per statement. Messages/s, and the PostgreSQL backend's CPU per message (µs).
   */
  readonly roundOf20: { readonly rate: number; readonly dbUs: number };
}

const SECONDS = 2.5;

/** Runs `workers` loops for SECONDS; each iteration returns how many units it wrote. */
async function rate(workers: number, body: (worker: number, i: number) => Promise<number>): Promise<number> {
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; performance.now() < end; i++) {
        const k = await body(w, i); // not `n += await ...`: that reads n before the await and loses the others' counts
        n += k;
      }
    }),
  );
  return n / SECONDS;
}

// One statement per 100 messages, like the relay's writer minus what makes it correct under
// concurrency and retries (claim conflicts, row locks, ranking, NOTIFY).
const MESSAGES = `
WITH m AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS m(id, device, seq)),
s AS (INSERT INTO bench_submissions (sender_device, client_id, message_id, created_at) SELECT 1, 'c' || id, id, $5 FROM m),
p AS (INSERT INTO bench_payloads (id, data, created_at) SELECT id, $4, $5 FROM m),
c AS (UPDATE bench_devices d SET next_seq = d.next_seq + k.n FROM (SELECT device, count(*) AS n FROM m GROUP BY device) k WHERE d.id = k.device)
INSERT INTO bench_inbox (device, seq, payload, sender_user, sender_device, envelope, created_at)
SELECT device, seq, id, 'sender', $4, $4, $5 FROM m`;

export async function storageBaselines(url: string, devices: number): Promise<StorageBaselines> {
  const sql = postgres(url, { max: 20, onnotice: () => {} });
  try {
    for (const t of ['inbox', 'payloads', 'submissions']) await sql.unsafe(`CREATE TABLE bench_${t} (LIKE ${t} INCLUDING ALL)`);
    await sql.unsafe(`CREATE TABLE bench_devices (id bigint PRIMARY KEY, next_seq bigint NOT NULL DEFAULT 0)`);
    await sql.unsafe(`INSERT INTO bench_devices (id) SELECT generate_series(0, ${4 * devices - 1})`);
    const bytes = Buffer.alloc(100, 7);
    const row = (device: number, seq: number) => ({ device, seq, payload: 0, sender_user: 'sender', sender_device: bytes, envelope: bytes, created_at: Date.now() });

    const singleRowCommits = await rate(20, async (w, i) => {
      await sql`INSERT INTO bench_inbox ${sql(row(w, i))}`;
      return 1;
    });
    const batchedRows = await rate(4, async (w, i) => {
      await sql`INSERT INTO bench_inbox ${sql(Array.from({ length: 100 }, (_, k) => row(1000 + w, i * 100 + k)))}`;
      return 100;
    });
    let id = 0;
    const batchedMessages = await rate(4, async (w) => {
      const ids = Array.from({ length: 100 }, () => ++id);
      // Each worker writes to inboxes of its own (no lock waits, no deadlock between workers);
      // `id` is unique, so seqs never collide with anything else in bench_inbox.
      await sql.unsafe(MESSAGES, [ids, ids.map((x) => w * devices + (x % devices)), ids.map((x) => 10_000_000 + x), bytes, Date.now()] as never[], { prepare: true });
      return 100;
    });
    const one = await sql.reserve();
    let roundOf20: StorageBaselines['roundOf20'];
    try {
      const [{ pid }] = (await one`SELECT pg_backend_pid() AS pid`) as unknown as [{ pid: number }];
      const cpu0 = cpuSeconds(pid);
      const t0 = performance.now();
      const rate20 = await rate(1, async () => {
        const ids = Array.from({ length: 20 }, () => ++id);
        await one.unsafe(MESSAGES, [ids, ids.map((x) => x % devices), ids.map((x) => 10_000_000 + x), bytes, Date.now()] as never[], { prepare: true });
        return 20;
      });
      const n = (rate20 * (performance.now() - t0)) / 1000;
      roundOf20 = { rate: rate20, dbUs: ((cpuSeconds(pid) - cpu0) / n) * 1e6 };
    } finally {
      one.release();
    }
    return { singleRowCommits, batchedRows, batchedMessages, roundOf20 };
  } finally {
    await sql.end();
  }
}

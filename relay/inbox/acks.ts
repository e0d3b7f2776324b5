/**
 * Acknowledgements, grouped: a device acknowledging up to seq N lets the relay delete its
 * envelopes up to N. Acks waiting at the same moment (from every socket and HTTP caller) are
 * applied in one transaction — per device only the highest seq counts — instead of one
 * transaction each, which under load cost as much as storing the messages did. A batch waits
 * `lingerMs` for acks to gather (at most one statement per window). Each caller's promise
 * resolves once its ack is committed.
 *
 * The commit is asynchronous (synchronous_commit off for this statement only): a crash of the
 * database within a fraction of a second may undo the deletion, which re-delivers envelopes the
 * device already has — it skips them by seq. Nothing stored is ever at risk, and the ack no
 * longer waits for a WAL flush that adds nothing to its meaning.
 *
 * A batch is one prepared statement (its own transaction). It deletes only above the highest seq
 * this process already deleted for the device (`floors`): the index entries of deleted envelopes
 * stay until vacuum, and a DELETE of "seq <= N" walked all of them — every envelope the device
 * ever acknowledged — so the cost of an ack grew with the device's traffic. Every envelope up to
 * a deleted seq is gone: seqs become visible in order, so that DELETE saw all the lower ones.
 */
import type { Database } from '../db/client.ts';
import { errorFields, type Logger } from '../log.ts';

// Envelopes go; a payload goes with its last envelope (two batches acknowledging the last two
// references at once each still see the other's row: the sweeper removes those).
const ACK = `
WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)),
v AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS v(device, floor, upto)),
gone AS (
  DELETE FROM inbox i USING v WHERE i.device = v.device AND i.seq > v.floor AND i.seq <= v.upto
  RETURNING i.device, i.seq, i.payload
), orphans AS (
  DELETE FROM payloads p WHERE p.id IN (SELECT payload FROM gone)
    AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.payload = p.id AND NOT EXISTS (
      SELECT 1 FROM v w WHERE i.device = w.device AND i.seq <= w.upto))
)
SELECT device, max(seq) AS seq FROM gone, relaxed GROUP BY device`;

/** Devices whose floor is remembered; past it the map starts over (a hint, not state). */
const MAX_FLOORS = 100_000;

interface Waiting {
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

export class AckBatcher {
  private queued = new Map<number, number>(); // device -> highest seq
  private waiting: Waiting[] = [];
  private running = false;
  private readonly floors = new Map<number, number>(); // device -> highest seq deleted here

  constructor(
    private readonly database: Database,
    private readonly log: Logger,
    private readonly lingerMs = 0,
  ) {}

  ack(device: number, upTo: number): Promise<void> {
    this.queued.set(device, Math.max(upTo, this.queued.get(device) ?? 0));
    const p = new Promise<void>((resolve, reject) => this.waiting.push({ resolve, reject }));
    if (!this.running) {
      this.running = true;
      void this.flush();
    }
    return p;
  }

  async drain(): Promise<void> {
    while (this.running || this.queued.size) await new Promise((r) => setTimeout(r, 5));
  }

  private async flush(): Promise<void> {
    while (this.queued.size) {
      if (this.lingerMs > 0) await new Promise((r) => setTimeout(r, this.lingerMs));
      const batch = this.queued;
      const waiting = this.waiting;
      this.queued = new Map();
      this.waiting = [];
      try {
        await this.apply(batch);
        for (const w of waiting) w.resolve();
      } catch (e) {
        this.log('error', 'ack batch failed', errorFields(e));
        for (const w of waiting) w.reject(e);
      }
    }
    this.running = false;
  }

  private async apply(batch: ReadonlyMap<number, number>): Promise<void> {
    const devices = [...batch.keys()];
    const floors = devices.map((d) => this.floors.get(d) ?? 0);
    const gone = await this.database.query<{ device: unknown; seq: unknown }>(ACK, [devices, floors, [...batch.values()]]);
    if (this.floors.size > MAX_FLOORS) this.floors.clear();
    for (const r of gone) this.floors.set(Number(r.device), Math.max(Number(r.seq), this.floors.get(Number(r.device)) ?? 0));
  }
}

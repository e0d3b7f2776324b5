/**
 * The Node implementation of the engine's Store (web/core/store/schema.ts): every table in
 * memory with sorted indexes (tables.ts), made durable by an append-only journal and compacted
 * into a snapshot (store-files.ts), one process per profile (profile-lock.ts).
 *
 * A write transaction runs its callback against staged changes (file-tx.ts). When it returns,
 * its ops are encoded as ONE journal record and applied to the in-memory tables in one
 * synchronous step; the promise resolves once the record is on disk (write + fdatasync). While
 * one batch of records is being synced, the next transactions run and queue theirs, and the
 * whole queue goes out with the next single fdatasync (group commit): many small transactions
 * share one disk flush, and the event loop never blocks on the disk.
 *
 * Durability and what readers see: a transaction may start on state whose record is still
 * being synced, which is safe because records reach the disk in commit order. A read sees a
 * snapshot as of its start and resolves only once everything it could see is on disk, so no
 * caller can act on (or acknowledge to the relay) a write a crash could still take back.
 *
 * If the disk fails (EIO, ENOSPC) the store stops: the pending and every later operation reject,
 * because memory now holds changes the disk may not. Reopening recovers what was made durable.
 */
import { mkdirSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { ReadTx, Store, TableName, WriteTx } from '../core/store/schema.ts';
import { decodeRecord, frame } from './codec.ts';
import { Head, type Op, ReadView, WriteView } from './file-tx.ts';
import { lockProfile } from './profile-lock.ts';
import { openJournal, recover, removeJournalsBefore, writeAll, writeSnapshot } from './store-files.ts';

export { ProfileLockedError } from './profile-lock.ts';

export interface FileStoreOptions {
  /**
   * Compact once the journal is larger than this and than the snapshot. The second condition
   * keeps compaction's cost proportional to what was written: rewriting a 200 MB snapshot after
   * every 16 MB of journal would not be.
   */
  readonly journalMax?: number;
}

const JOURNAL_MAX = 16 * 1024 * 1024;

export async function openFileStore(dir: string, opts: FileStoreOptions = {}): Promise<Store> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const unlock = lockProfile(dir);
  try {
    const head = new Head();
    const found = recover(dir, head);
    const fh = await openJournal(dir, found.gen);
    return new FileStore(dir, head, fh, found, opts.journalMax ?? JOURNAL_MAX, unlock);
  } catch (e) {
    unlock();
    throw e;
  }
}

interface Waiter {
  readonly seq: number;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

class FileStore implements Store {
  private gen: number;
  private journalBytes: number;
  private snapshotBytes: number;
  /** Serialises write callbacks: each starts after the previous one's ops were applied. */
  private writeTail: Promise<unknown> = Promise.resolve();
  /** Transactions applied to memory / known to be on disk, counted in commit order. */
  private applied = 0;
  private durable = 0;
  /** Records applied to memory and not yet handed to the disk. */
  private pending: Buffer[] = [];
  private waiters: Waiter[] = [];
  private flushing: Promise<void> | null = null;
  /** The append in progress (compaction waits for it before closing the old journal). */
  private appending: Promise<void> | null = null;
  private compacting: Promise<void> | null = null;
  private failed: Error | null = null;
  private closed = false;

  constructor(
    private readonly dir: string,
    private readonly head: Head,
    private fh: FileHandle,
    found: { gen: number; journalBytes: number; snapshotBytes: number },
    private readonly journalMax: number,
    private readonly unlock: () => void,
  ) {
    this.gen = found.gen;
    this.journalBytes = found.journalBytes;
    this.snapshotBytes = found.snapshotBytes;
  }

  private usable(): void {
    if (this.failed) throw new Error(`the store stopped after a disk error (${this.failed.message}); reopen it`);
    if (this.closed) throw new Error('the store is closed');
  }

  async read<R>(tables: readonly TableName[], fn: (tx: ReadTx) => Promise<R>): Promise<R> {
    this.usable();
    const view = new ReadView(this.head, new Set(tables));
    const seen = this.applied;
    this.head.readers.add(view);
    let result: R;
    try {
      result = await fn(view);
    } finally {
      view.finish();
      this.head.readers.delete(view);
    }
    await this.until(seen);
    return result;
  }

  write<R>(tables: readonly TableName[], fn: (tx: WriteTx) => Promise<R>): Promise<R> {
    try {
      this.usable();
    } catch (e) {
      return Promise.reject(e);
    }
    const turn = this.writeTail.then(() => this.commit(tables, fn));
    this.writeTail = turn.catch(() => undefined);
    return turn.then(async ({ result, seq }) => {
      await this.until(seq);
      return result;
    });
  }

  private async commit<R>(tables: readonly TableName[], fn: (tx: WriteTx) => Promise<R>): Promise<{ result: R; seq: number }> {
    if (this.failed) this.usable();
    const tx = new WriteView(this.head, new Set(tables));
    let result: R;
    try {
      result = await fn(tx);
    } finally {
      tx.finish();
    }
    if (!tx.ops.length) return { result, seq: this.applied };
    if (this.failed) this.usable();
    // Encoding throws on a value the store cannot keep (a function, a class with private
    // state): then nothing is applied. Memory gets the decoded copy, so it holds exactly what a
    // restart would read back, and no caller keeps a reference into the stored rows.
    const record = frame(tx.ops);
    this.head.apply(decodeRecord(record) as Op[]);
    this.pending.push(record);
    const seq = ++this.applied;
    if (!this.flushing) this.flushing = this.flush();
    return { result, seq };
  }

  private until(seq: number): Promise<void> {
    if (seq <= this.durable) return Promise.resolve();
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => this.waiters.push({ seq, resolve, reject }));
  }

  /** Appends queued records, one write + fdatasync per batch, until the queue is empty. */
  private async flush(): Promise<void> {
    try {
      // No await between the loop's last check and `flushing = null`: a record queued after
      // that check finds `flushing` null and starts a new flush.
      while (this.pending.length) {
        const batch = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
        this.pending = [];
        const upTo = this.applied;
        const fh = this.fh;
        this.appending = writeAll(fh, batch).then(() => fh.datasync());
        await this.appending;
        if (fh === this.fh) this.journalBytes += batch.length;
        this.durable = upTo;
        while (this.waiters.length && this.waiters[0]!.seq <= upTo) this.waiters.shift()!.resolve();
        if (!this.compacting && this.journalBytes > Math.max(this.journalMax, this.snapshotBytes)) {
          this.compacting = this.compact()
            .catch(() => {}) // the previous snapshot and every journal since still recover; retried at the next threshold
            .finally(() => (this.compacting = null));
        }
      }
    } catch (e) {
      this.failed = e instanceof Error ? e : new Error(String(e));
      for (const w of this.waiters.splice(0)) w.reject(this.failed);
    } finally {
      this.appending = null;
      this.flushing = null;
    }
  }

  private async compact(): Promise<void> {
    const gen = this.gen + 1;
    const fh = await openJournal(this.dir, gen);
    // From here to the switch nothing awaits: the rows captured are exactly the state that
    // journal `gen` continues from (records applied but not yet appended go to the new journal).
    const rows = this.head.capture();
    const old = this.fh;
    const oldAppend = this.appending;
    this.fh = fh;
    this.gen = gen;
    this.journalBytes = 0;
    let installed = false;
    try {
      this.snapshotBytes = await writeSnapshot(this.dir, gen, rows);
      installed = true;
    } finally {
      await oldAppend?.catch(() => {});
      await old.close();
    }
    if (installed) removeJournalsBefore(this.dir, gen);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writeTail;
    while (this.flushing) await this.flushing;
    while (this.compacting) await this.compacting;
    await this.fh.close();
    this.unlock();
  }
}

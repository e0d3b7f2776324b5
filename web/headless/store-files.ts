/**
 * The file store's files and how they are recovered. In DIR:
 *
 *   store.snapshot      every row as of some moment: "PETRELS1" || u32 gen || u32 0, then
 *                       records (codec.ts) of { table, rows } chunks, then { end: rowCount }
 *   store.journal.<g>   one record per write transaction: the ops, in commit order
 *
 * A snapshot of generation g continues with journals g, g+1, ... in order. Compaction creates
 * journal g+1 and switches appends to it at the same instant it captures the rows, writes the
 * snapshot (gen g+1) to a temporary file, fsyncs it, renames it into place and fsyncs the
 * directory, and only then deletes journal g. A crash at any point leaves either the old
 * snapshot with journals g and g+1 (complete history), or the new one with journal g+1, which
 * holds exactly what came after the captured moment. Appends are serial, so a journal is only
 * ever torn at its end, and only the last journal: replay stops at the tear and truncates it.
 */
import { existsSync, fsyncSync, openSync, closeSync, readdirSync, readFileSync, rmSync, truncateSync, unlinkSync } from 'node:fs';
import { type FileHandle, open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { TableName } from '../core/store/schema.ts';
import { frame, readRecords } from './codec.ts';
import type { Head, Op } from './file-tx.ts';

const SNAPSHOT = 'store.snapshot';
const MAGIC = Buffer.from('PETRELS1', 'latin1');
const SNAPSHOT_HEADER = 16;
/** Rows per snapshot record, and bytes gathered before each write call. */
const CHUNK_ROWS = 512;
const WRITE_BYTES = 1 << 20;

export const journalPath = (dir: string, gen: number) => join(dir, `store.journal.${gen}`);

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export interface Recovered {
  /** The journal to append to. */
  readonly gen: number;
  readonly journalBytes: number;
  readonly snapshotBytes: number;
}

function loadSnapshot(dir: string, head: Head): { gen: number; bytes: number } {
  const path = join(dir, SNAPSHOT);
  if (!existsSync(path)) return { gen: 1, bytes: 0 };
  const buf = readFileSync(path);
  if (buf.length < SNAPSHOT_HEADER || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error(`${path} is not a snapshot this build can read`);
  let rows = 0;
  let end: number | null = null;
  const used = readRecords(buf.subarray(SNAPSHOT_HEADER), (v) => {
    const chunk = v as { table?: TableName; rows?: unknown[]; end?: number };
    if (end !== null) throw new Error(`${path}: records after its end`);
    if (chunk.end !== undefined) end = chunk.end;
    else {
      head.apply(chunk.rows!.map((row): Op => ['p', chunk.table!, row]));
      rows += chunk.rows!.length;
    }
  });
  // Snapshots are renamed into place only once complete and fsync'ed: a short one is damage.
  if (end !== rows || used !== buf.length - SNAPSHOT_HEADER) throw new Error(`${path} is damaged`);
  return { gen: buf.readUInt32LE(MAGIC.length), bytes: buf.length };
}

/** Loads the snapshot and replays the journals into `head`; cuts off a torn tail. */
export function recover(dir: string, head: Head): Recovered {
  if (existsSync(join(dir, 'store.journal'))) throw new Error(`${dir} was written by an older build of the file store (store.journal); export it with that build`);
  rmSync(join(dir, SNAPSHOT + '.tmp'), { force: true }); // an interrupted compaction
  const snapshot = loadSnapshot(dir, head);
  const gens = readdirSync(dir)
    .map((f) => /^store\.journal\.(\d+)$/.exec(f)?.[1])
    .filter((g): g is string => g !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  let gen = snapshot.gen;
  let expected = snapshot.gen;
  let journalBytes = 0;
  let torn = false;
  for (const g of gens) {
    const path = journalPath(dir, g);
    if (g < snapshot.gen) {
      unlinkSync(path); // its history is in the snapshot: compaction was interrupted before deleting it
      continue;
    }
    const buf = readFileSync(path);
    if (torn) {
      // Nothing is appended to journal g+1 before journal g's last append completed.
      if (buf.length) throw new Error(`${path} follows a torn journal: the store is damaged`);
      unlinkSync(path);
      continue;
    }
    if (g !== expected) throw new Error(`journal ${expected} of ${dir} is missing: the store is damaged`);
    const used = readRecords(buf, (ops) => head.apply(ops as Op[]));
    if (used < buf.length) {
      truncateSync(path, used); // the append a crash interrupted: its transaction never resolved
      const fd = openSync(path, 'r+');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      torn = true;
    }
    gen = g;
    expected = g + 1;
    journalBytes = used;
  }
  return { gen, journalBytes, snapshotBytes: snapshot.bytes };
}

/** Opens (creating, durably) journal `gen` for appending. */
export async function openJournal(dir: string, gen: number): Promise<FileHandle> {
  const path = journalPath(dir, gen);
  const created = !existsSync(path);
  const fh = await open(path, 'a', 0o600);
  // A new file's name is in the directory: without this, a crash could lose the whole file
  // and the records fsync'ed into it.
  if (created) fsyncDir(dir);
  return fh;
}

export async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length; ) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
}

/** Writes and installs a snapshot of `tables` continuing with journal `gen`; returns its size. */
export async function writeSnapshot(dir: string, gen: number, tables: readonly [TableName, unknown[]][]): Promise<number> {
  const tmp = join(dir, SNAPSHOT + '.tmp');
  const fh = await open(tmp, 'w', 0o600);
  let size = 0;
  try {
    const header = Buffer.alloc(SNAPSHOT_HEADER);
    MAGIC.copy(header);
    header.writeUInt32LE(gen, MAGIC.length);
    let parts: Buffer[] = [header];
    let gathered = header.length;
    const put = async (b: Buffer, last = false) => {
      parts.push(b);
      gathered += b.length;
      if (gathered < WRITE_BYTES && !last) return;
      const all = Buffer.concat(parts);
      await writeAll(fh, all); // each await lets the store keep committing meanwhile
      size += all.length;
      parts = [];
      gathered = 0;
    };
    let total = 0;
    for (const [table, rows] of tables) {
      for (let i = 0; i < rows.length; i += CHUNK_ROWS) await put(frame({ table, rows: rows.slice(i, i + CHUNK_ROWS) }));
      total += rows.length;
    }
    await put(frame({ end: total }), true);
    await fh.datasync();
  } catch (e) {
    await fh.close().catch(() => {});
    rmSync(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await rename(tmp, join(dir, SNAPSHOT));
  fsyncDir(dir);
  return size;
}

export function removeJournalsBefore(dir: string, gen: number): void {
  for (const f of readdirSync(dir)) {
    const g = /^store\.journal\.(\d+)$/.exec(f)?.[1];
    if (g !== undefined && Number(g) < gen) rmSync(join(dir, f), { force: true });
  }
}

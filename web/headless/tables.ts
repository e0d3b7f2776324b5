/**
 * The file store's tables in memory: rows by primary key, and the primary key and every index
 * as a sorted array of entries, so a range query costs a binary search plus the rows it
 * returns (the engine pages 50 messages of a conversation out of 100,000s).
 *
 * Index maintenance is lazy: puts and deletes append to a buffer and flag the replaced entry
 * dead; the next query settles the buffer, splicing when it is small and sorting and merging
 * when it is large. A catch-up that stores 10,000 messages and then queries once pays for one
 * sort, not 10,000 array insertions.
 *
 * An Overlay is a set of changes seen on top of a table: a write transaction's own staged puts
 * and deletes (read-your-writes), or a reader's preserved old rows (its snapshot, see
 * file-store.ts). `query` merges a table with an overlay in key order without copying either.
 */
import { compareKeys, type Key, keyOf, type QueryOptions, type TableName, type TableSpec, TABLES } from '../core/store/schema.ts';

/** A Map key per IndexedDB key: numbers and strings kept apart, -0 folded into 0 as IndexedDB does. */
export function keyId(k: Key): string {
  if (typeof k === 'string') return 's' + k;
  if (typeof k === 'number') return 'n' + (k === 0 ? 0 : k);
  return 'a' + JSON.stringify(k.map(keyId));
}

/** IndexedDB's valid keys within the schema's model: non-NaN numbers, strings, arrays of keys. */
export function validKey(k: unknown): k is Key {
  if (typeof k === 'string') return true;
  if (typeof k === 'number') return !Number.isNaN(k);
  return Array.isArray(k) && k.every(validKey);
}

/** Removed rows in an overlay. */
export const GONE = Symbol('gone');

export class Overlay {
  readonly rows = new Map<string, unknown>();
  /** The table underneath is hidden entirely (a staged clear). */
  cleared = false;
}

interface Entry {
  readonly k: Key;
  readonly pk: Key;
  readonly id: string;
  live: boolean;
}

const order = (a: { k: Key; pk: Key }, b: { k: Key; pk: Key }) => compareKeys(a.k, b.k) || compareKeys(a.pk, b.pk);
/** Up to this many buffered changes are spliced in; beyond, the index is re-sorted and merged. */
const SPLICE_MAX = 32;

class SortedIndex {
  private sorted: Entry[] = [];
  private added: Entry[] = [];
  private dead: Entry[] = [];
  private readonly current = new Map<string, Entry>();

  constructor(private readonly path: string | readonly string[] | null) {}

  set(id: string, pk: Key, row: unknown): void {
    this.remove(id);
    const k = this.path === null ? pk : keyOf(row, this.path);
    if (!validKey(k)) return; // like IndexedDB: a row without a valid index key is not in the index
    const e: Entry = { k, pk, id, live: true };
    this.current.set(id, e);
    this.added.push(e);
  }

  remove(id: string): void {
    const e = this.current.get(id);
    if (!e) return;
    e.live = false;
    this.current.delete(id);
    this.dead.push(e);
  }

  /** Entries [lo, hi) of `entries` have keys within the inclusive bounds. */
  range(lower: Key | undefined, upper: Key | undefined): { entries: readonly Entry[]; lo: number; hi: number } {
    this.settle();
    const a = this.sorted;
    const lo = lower === undefined ? 0 : this.search((e) => compareKeys(e.k, lower) >= 0);
    const hi = upper === undefined ? a.length : this.search((e) => compareKeys(e.k, upper) > 0);
    return { entries: a, lo, hi: Math.max(lo, hi) };
  }

  /** The first position whose entry satisfies `after` (which is monotone over the array). */
  private search(after: (e: Entry) => boolean): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (after(this.sorted[mid]!)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  private settle(): void {
    if (!this.added.length && !this.dead.length) return;
    if (this.added.length + this.dead.length <= SPLICE_MAX) {
      for (const e of this.dead) {
        const i = this.search((x) => order(x, e) >= 0);
        if (this.sorted[i] === e) this.sorted.splice(i, 1); // else it was still in `added`
      }
      for (const e of this.added) if (e.live) this.sorted.splice(this.search((x) => order(x, e) > 0), 0, e);
    } else {
      const fresh = this.added.filter((e) => e.live).sort(order);
      this.sorted = merge(this.sorted.filter((e) => e.live), fresh);
    }
    this.added = [];
    this.dead = [];
  }
}

function merge(a: Entry[], b: Entry[]): Entry[] {
  if (!b.length) return a;
  const out: Entry[] = new Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let o = 0;
  while (i < a.length && j < b.length) out[o++] = order(a[i]!, b[j]!) <= 0 ? a[i++]! : b[j++]!;
  while (i < a.length) out[o++] = a[i++]!;
  while (j < b.length) out[o++] = b[j++]!;
  return out;
}

export class MemTable {
  readonly rows = new Map<string, unknown>();
  private readonly spec: TableSpec;
  private readonly primary: SortedIndex;
  private readonly indexes = new Map<string, SortedIndex>();

  constructor(readonly name: TableName) {
    this.spec = TABLES[name];
    this.primary = new SortedIndex(null);
    for (const [index, path] of Object.entries(this.spec.indexes)) this.indexes.set(index, new SortedIndex(path));
  }

  /** The row's primary key; throws (as IndexedDB's put does) when it has none. */
  keyOf(row: unknown): Key {
    const pk = row && typeof row === 'object' ? keyOf(row, this.spec.keyPath) : undefined;
    if (!validKey(pk)) throw new Error(`a ${this.name} row needs a valid key at ${String(this.spec.keyPath)}`);
    return pk;
  }

  put(row: unknown): void {
    const pk = this.keyOf(row);
    const id = keyId(pk);
    this.rows.set(id, row);
    this.primary.set(id, pk, row);
    for (const index of this.indexes.values()) index.set(id, pk, row);
  }

  delete(id: string): void {
    if (!this.rows.delete(id)) return;
    this.primary.remove(id);
    for (const index of this.indexes.values()) index.remove(id);
  }

  index(name: string | undefined): SortedIndex {
    if (name === undefined) return this.primary;
    const index = this.indexes.get(name);
    if (!index) throw new Error(`no index ${name} on ${this.name}`);
    return index;
  }

  indexKey(row: unknown, index: string | undefined): Key | undefined {
    const k = index === undefined ? this.keyOf(row) : keyOf(row, (this.spec.indexes as Record<string, string | readonly string[]>)[index]!);
    return validKey(k) ? k : undefined;
  }
}

function checkQuery(q: QueryOptions): void {
  if (q.lower !== undefined && !validKey(q.lower)) throw new Error('query: lower is not a valid key');
  if (q.upper !== undefined && !validKey(q.upper)) throw new Error('query: upper is not a valid key');
  if (q.limit !== undefined && !(Number.isInteger(q.limit) && q.limit >= 0)) throw new Error('query: limit must be a non-negative integer');
}

/** Rows of `table` as changed by `overlay`, in index order (primary key breaking ties). */
export function query(table: MemTable, overlay: Overlay | undefined, q: QueryOptions = {}): unknown[] {
  checkQuery(q);
  const { entries, lo, hi } = table.index(q.index).range(q.lower, q.upper);
  const limit = q.limit ?? Infinity;
  const step = q.reverse ? -1 : 1;
  const out: unknown[] = [];
  if (!overlay || (!overlay.cleared && !overlay.rows.size)) {
    for (let i = q.reverse ? hi - 1 : lo; i >= lo && i < hi && out.length < limit; i += step) out.push(table.rows.get(entries[i]!.id));
    return out;
  }
  // The overlay's rows within the range, sorted the same way, merged with the table's entries
  // (minus those the overlay replaces or removes).
  const extra: { k: Key; pk: Key; row: unknown }[] = [];
  for (const row of overlay.rows.values()) {
    if (row === GONE) continue;
    const k = table.indexKey(row, q.index);
    if (k === undefined || (q.lower !== undefined && compareKeys(k, q.lower) < 0) || (q.upper !== undefined && compareKeys(k, q.upper) > 0)) continue;
    extra.push({ k, pk: table.keyOf(row), row });
  }
  extra.sort((a, b) => order(a, b) * step);
  let i = q.reverse ? hi - 1 : lo;
  let j = 0;
  const base = () => {
    if (overlay.cleared) return undefined;
    while (i >= lo && i < hi && overlay.rows.has(entries[i]!.id)) i += step;
    return i >= lo && i < hi ? entries[i]! : undefined;
  };
  while (out.length < limit) {
    const b = base();
    const x = extra[j];
    if (!b && !x) break;
    if (b && (!x || order(b, x) * step < 0)) {
      out.push(table.rows.get(b.id));
      i += step;
    } else {
      out.push(x!.row);
      j++;
    }
  }
  return out;
}

/** How many rows `query` would return without a limit. */
export function count(table: MemTable, overlay: Overlay | undefined, q: QueryOptions = {}): number {
  checkQuery(q);
  if (!overlay || (!overlay.cleared && !overlay.rows.size)) {
    const { lo, hi } = table.index(q.index).range(q.lower, q.upper);
    return hi - lo;
  }
  return query(table, overlay, { ...q, limit: undefined }).length;
}

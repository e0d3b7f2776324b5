/**
 * An in-memory Store: the reference implementation of the transaction semantics (staged writes,
 * read-your-writes, all-or-nothing commit), used by unit tests and as the in-memory half of the
 * Node file store. Rows are kept as given; callers must not mutate rows after put (the engine
 * never does: its rows are immutable values).
 */
import { compareKeys, type Key, keyOf, type QueryOptions, type ReadTx, type Rows, type Store, type TableName, TABLES, type WriteTx } from './schema.ts';

type Table = Map<string, unknown>;
const DELETED = Symbol('deleted');

/** Map keys: a canonical string per key (JSON keeps numbers and strings apart). */
export const keyString = (k: Key) => JSON.stringify(k);

export class MemoryTables {
  readonly tables = new Map<TableName, Table>();
  constructor() {
    for (const name of Object.keys(TABLES) as TableName[]) this.tables.set(name, new Map());
  }
  table(name: TableName): Table {
    const t = this.tables.get(name);
    if (!t) throw new Error(`unknown table ${name}`);
    return t;
  }
}

export type Op = { readonly t: 'put'; readonly table: TableName; readonly row: unknown } | { readonly t: 'del'; readonly table: TableName; readonly key: Key } | { readonly t: 'clear'; readonly table: TableName };

export function applyOps(data: MemoryTables, ops: readonly Op[]): void {
  for (const op of ops) {
    const t = data.table(op.table);
    if (op.t === 'put') t.set(keyString(keyOf(op.row, TABLES[op.table].keyPath)), op.row);
    else if (op.t === 'del') t.delete(keyString(op.key));
    else t.clear();
  }
}

function inRange(k: Key, q: QueryOptions): boolean {
  if (q.lower !== undefined && compareKeys(k, q.lower) < 0) return false;
  if (q.upper !== undefined && compareKeys(k, q.upper) > 0) return false;
  return true;
}

export function query(rows: Iterable<unknown>, table: TableName, q: QueryOptions = {}): unknown[] {
  const spec = TABLES[table];
  const path = q.index ? (spec.indexes as Record<string, string | readonly string[]>)[q.index] : spec.keyPath;
  if (!path) throw new Error(`no index ${q.index} on ${table}`);
  const primary = spec.keyPath;
  const hits: { k: Key; p: Key; row: unknown }[] = [];
  for (const row of rows) {
    const k = keyOf(row, path);
    if (Array.isArray(k) ? k.some((x) => x === undefined) : k === undefined) continue; // like IndexedDB: no key, not indexed
    if (inRange(k, q)) hits.push({ k, p: keyOf(row, primary), row });
  }
  hits.sort((a, b) => compareKeys(a.k, b.k) || compareKeys(a.p, b.p));
  if (q.reverse) hits.reverse();
  return (q.limit !== undefined ? hits.slice(0, q.limit) : hits).map((h) => h.row);
}

class Tx implements WriteTx {
  readonly ops: Op[] = [];
  private readonly staged = new Map<TableName, Map<string, unknown>>();
  private readonly cleared = new Set<TableName>();

  constructor(
    private readonly data: MemoryTables,
    private readonly allowed: ReadonlySet<TableName>,
    private readonly writable: boolean,
  ) {}

  private check(table: TableName, write = false): void {
    if (!this.allowed.has(table)) throw new Error(`table ${table} is not part of this transaction`);
    if (write && !this.writable) throw new Error('read-only transaction');
  }

  private view(table: TableName): Map<string, unknown> {
    const base = this.cleared.has(table) ? new Map<string, unknown>() : this.data.table(table);
    const staged = this.staged.get(table);
    if (!staged) return base;
    const merged = new Map(base);
    for (const [k, v] of staged) if (v === DELETED) merged.delete(k);
    else merged.set(k, v);
    return merged;
  }

  async get<T extends TableName>(table: T, key: Key): Promise<Rows[T] | undefined> {
    this.check(table);
    const k = keyString(key);
    const s = this.staged.get(table);
    if (s?.has(k)) {
      const v = s.get(k);
      return v === DELETED ? undefined : (v as Rows[T]);
    }
    if (this.cleared.has(table)) return undefined;
    return this.data.table(table).get(k) as Rows[T] | undefined;
  }

  async getAll<T extends TableName>(table: T, q?: QueryOptions): Promise<Rows[T][]> {
    this.check(table);
    return query(this.view(table).values(), table, q) as Rows[T][];
  }

  async count<T extends TableName>(table: T, q?: QueryOptions): Promise<number> {
    this.check(table);
    if (!q) return this.view(table).size;
    return query(this.view(table).values(), table, { ...q, limit: undefined as unknown as number }).length;
  }

  private stage(table: TableName): Map<string, unknown> {
    let s = this.staged.get(table);
    if (!s) this.staged.set(table, (s = new Map()));
    return s;
  }

  async put<T extends TableName>(table: T, row: Rows[T]): Promise<void> {
    this.check(table, true);
    this.stage(table).set(keyString(keyOf(row, TABLES[table].keyPath)), row);
    this.ops.push({ t: 'put', table, row });
  }

  async delete<T extends TableName>(table: T, key: Key): Promise<void> {
    this.check(table, true);
    this.stage(table).set(keyString(key), DELETED);
    this.ops.push({ t: 'del', table, key });
  }

  async clear<T extends TableName>(table: T): Promise<void> {
    this.check(table, true);
    this.cleared.add(table);
    this.staged.delete(table);
    this.ops.push({ t: 'clear', table });
  }
}

/**
 * Runs write transactions one at a time; `persist` (the file store's journal) makes a
 * transaction's ops durable before they are applied to memory and the promise resolves.
 */
export class MemoryStore implements Store {
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    readonly data = new MemoryTables(),
    private readonly persist: (ops: readonly Op[]) => Promise<void> = async () => {},
    private readonly onClose: () => Promise<void> = async () => {},
  ) {}

  async read<R>(tables: readonly TableName[], fn: (tx: ReadTx) => Promise<R>): Promise<R> {
    if (this.closed) throw new Error('store is closed');
    // Reads see committed state only; a write in progress is invisible until it commits.
    return fn(new Tx(this.data, new Set(tables), false));
  }

  write<R>(tables: readonly TableName[], fn: (tx: WriteTx) => Promise<R>): Promise<R> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    const run = async () => {
      const tx = new Tx(this.data, new Set(tables), true);
      const result = await fn(tx);
      if (tx.ops.length) {
        await this.persist(tx.ops);
        applyOps(this.data, tx.ops);
      }
      return result;
    };
    const p = this.tail.then(run, run);
    this.tail = p.catch(() => undefined);
    return p;
  }

  async close(): Promise<void> {
    await this.tail;
    this.closed = true;
    await this.onClose();
  }
}

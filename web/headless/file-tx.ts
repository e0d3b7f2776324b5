/**
 * Transactions of the file store over its live tables (the Head).
 *
 * A write transaction stages its puts and deletes in an Overlay over the Head (it reads its own
 * writes; nobody else sees them) and records them as ops; the store commits the ops as one
 * journal record and applies them to the Head in one synchronous step, so no reader ever sees
 * part of a transaction.
 *
 * A read transaction sees the Head as it was when the read began, like an IndexedDB readonly
 * transaction, without making writers wait: when a commit changes a row of a table a reader
 * holds, the Head first hands the reader the row's old value (its snapshot Overlay). A clear
 * swaps in a fresh table object instead, so readers holding the old one are untouched.
 */
import { type Key, type QueryOptions, type ReadTx, type Rows, type TableName, TABLES, type WriteTx } from '../core/store/schema.ts';
import { count, GONE, keyId, MemTable, Overlay, query, validKey } from './tables.ts';

/** A journal op: put a row, delete a key, clear a table. */
export type Op = readonly ['p', TableName, unknown] | readonly ['d', TableName, Key] | readonly ['c', TableName];

export class Head {
  private readonly tables = new Map<TableName, MemTable>();
  readonly readers = new Set<ReadView>();

  constructor() {
    for (const name of Object.keys(TABLES) as TableName[]) this.tables.set(name, new MemTable(name));
  }

  table(name: TableName): MemTable {
    const t = this.tables.get(name);
    if (!t) throw new Error(`unknown table ${name}`);
    return t;
  }

  apply(ops: readonly Op[]): void {
    for (const op of ops) {
      if (op[0] === 'c') {
        this.table(op[1]); // an unknown name throws
        this.tables.set(op[1], new MemTable(op[1]));
        continue;
      }
      const t = this.table(op[1]);
      const id = keyId(op[0] === 'p' ? t.keyOf(op[2]) : op[2]);
      for (const r of this.readers) r.preserve(op[1], t, id);
      if (op[0] === 'p') t.put(op[2]);
      else t.delete(id);
    }
  }

  /** Every row, by table: the content of a snapshot. Rows are immutable, so references suffice. */
  capture(): [TableName, unknown[]][] {
    return [...this.tables].map(([name, t]) => [name, [...t.rows.values()]]);
  }
}

abstract class View implements ReadTx {
  private finished = false;

  constructor(private readonly scope: ReadonlySet<TableName>) {}

  protected abstract table(name: TableName): MemTable;
  protected abstract overlay(name: TableName): Overlay | undefined;

  /** After the callback returns, the transaction is over: later use is a bug, and says so. */
  finish(): void {
    this.finished = true;
  }

  protected check(name: TableName): void {
    if (this.finished) throw new Error('the transaction has finished');
    if (!this.scope.has(name)) throw new Error(`table ${name} is not part of this transaction`);
  }

  async get<T extends TableName>(name: T, key: Key): Promise<Rows[T] | undefined> {
    this.check(name);
    if (!validKey(key)) throw new Error(`get from ${name}: not a valid key`);
    const id = keyId(key);
    const o = this.overlay(name);
    if (o?.rows.has(id)) {
      const row = o.rows.get(id);
      return row === GONE ? undefined : (row as Rows[T]);
    }
    return o?.cleared ? undefined : (this.table(name).rows.get(id) as Rows[T] | undefined);
  }

  async getAll<T extends TableName>(name: T, q?: QueryOptions): Promise<Rows[T][]> {
    this.check(name);
    return query(this.table(name), this.overlay(name), q) as Rows[T][];
  }

  async count<T extends TableName>(name: T, q?: QueryOptions): Promise<number> {
    this.check(name);
    return count(this.table(name), this.overlay(name), q);
  }
}

export class ReadView extends View {
  private readonly held = new Map<TableName, MemTable>();
  private readonly old = new Map<TableName, Overlay>();

  constructor(head: Head, scope: ReadonlySet<TableName>) {
    super(scope);
    for (const name of scope) this.held.set(name, head.table(name));
  }

  protected table(name: TableName): MemTable {
    return this.held.get(name)!;
  }

  protected overlay(name: TableName): Overlay | undefined {
    return this.old.get(name);
  }

  /** Called before the Head changes row `id` of `t`: keep its current value for this reader. */
  preserve(name: TableName, t: MemTable, id: string): void {
    if (this.held.get(name) !== t) return;
    let o = this.old.get(name);
    if (!o) this.old.set(name, (o = new Overlay()));
    if (!o.rows.has(id)) o.rows.set(id, t.rows.has(id) ? t.rows.get(id) : GONE);
  }
}

export class WriteView extends View implements WriteTx {
  readonly ops: Op[] = [];
  private readonly staged = new Map<TableName, Overlay>();

  constructor(
    private readonly head: Head,
    scope: ReadonlySet<TableName>,
  ) {
    super(scope);
    for (const name of scope) head.table(name); // an unknown name throws now, not at commit
  }

  protected table(name: TableName): MemTable {
    return this.head.table(name);
  }

  protected overlay(name: TableName): Overlay | undefined {
    return this.staged.get(name);
  }

  private stage(name: TableName): Overlay {
    let o = this.staged.get(name);
    if (!o) this.staged.set(name, (o = new Overlay()));
    return o;
  }

  async put<T extends TableName>(name: T, row: Rows[T]): Promise<void> {
    this.check(name);
    const pk = this.head.table(name).keyOf(row);
    this.stage(name).rows.set(keyId(pk), row);
    this.ops.push(['p', name, row]);
  }

  async delete<T extends TableName>(name: T, key: Key): Promise<void> {
    this.check(name);
    if (!validKey(key)) throw new Error(`delete from ${name}: not a valid key`);
    this.stage(name).rows.set(keyId(key), GONE);
    this.ops.push(['d', name, key]);
  }

  async clear<T extends TableName>(name: T): Promise<void> {
    this.check(name);
    const o = this.stage(name);
    o.rows.clear();
    o.cleared = true;
    this.ops.push(['c', name]);
  }
}

/**
 * The browser implementation of the engine's Store, on IndexedDB through `idb`: one object
 * store per table (TABLES in web/core/store/schema.ts), migrations as `if (oldVersion < N)`.
 *
 * Keys at rest are wrapped: the secret rows — this device's identity and keys, prekey secrets
 * and session records — are encrypted with AES-GCM under a non-extractable WebCrypto key that
 * lives in IndexedDB itself (a CryptoKey is stored as an opaque handle: script can use it but
 * never read its bytes, so an XSS or a copied profile folder does not hand over raw keys).
 *
 * IndexedDB transactions close when the event loop turns over, and WebCrypto is async, so a
 * write transaction cannot encrypt inside IndexedDB's own transaction. Instead: the callback
 * runs against a staging layer (reads go to IndexedDB, writes are staged, a transaction reads
 * its own writes), then the staged secret rows are encrypted, then everything is written in ONE
 * readwrite IndexedDB transaction with durability 'strict' — all or nothing, durable once the
 * promise resolves. Writers are serialised in this context; the engine's lock (Web Locks)
 * serialises them across tabs and the service worker.
 */
import { type IDBPDatabase, openDB } from 'idb';
import { applyOps, keyString, MemoryTables, type Op, query } from '../core/store/memory-store.ts';
import { type Key, keyOf, type QueryOptions, type ReadTx, type Rows, SCHEMA_VERSION, type Store, type TableName, TABLES, type WriteTx } from '../core/store/schema.ts';

const KEY_STORE = 'wrapping-keys';
const SEALED = '$sealed';

/** Which rows hold secrets, and so are stored encrypted. */
function isSecret(table: TableName, row: any): boolean {
  return table === 'prekeys' || table === 'sessions' || (table === 'meta' && (row.key === 'identity' || row.key === 'pendingLink'));
}

async function wrappingKey(db: IDBPDatabase): Promise<CryptoKey> {
  const existing = (await db.get(KEY_STORE, 'aes')) as CryptoKey | undefined;
  if (existing) return existing;
  const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
  const tx = db.transaction(KEY_STORE, 'readwrite');
  // Another context may have created one meanwhile: keep the first.
  const raced = (await tx.store.get('aes')) as CryptoKey | undefined;
  if (!raced) await tx.store.put(key, 'aes');
  await tx.done;
  return raced ?? key;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const replacer = (_k: string, v: unknown) => (v instanceof Uint8Array ? { $u8: Array.from(v) } : v);
const reviver = (_k: string, v: any) => (v && typeof v === 'object' && Array.isArray(v.$u8) && Object.keys(v).length === 1 ? new Uint8Array(v.$u8) : v);

async function seal(key: CryptoKey, table: TableName, row: any): Promise<any> {
  if (!isSecret(table, row)) return row;
  const path = TABLES[table].keyPath as string;
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ad = enc.encode(`${table}/${String(row[path])}`); // a sealed row cannot be moved to another key
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: ad }, key, enc.encode(JSON.stringify(row, replacer))));
  return { [path]: row[path], [SEALED]: { iv, ct } };
}

async function open_(key: CryptoKey, table: TableName, row: any): Promise<any> {
  if (!row || !row[SEALED]) return row;
  const path = TABLES[table].keyPath as string;
  const ad = enc.encode(`${table}/${String(row[path])}`);
  const pt = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: row[SEALED].iv, additionalData: ad }, key, row[SEALED].ct);
  return JSON.parse(dec.decode(pt), reviver);
}

function range(q: QueryOptions): IDBKeyRange | undefined {
  const lo = q.lower as IDBValidKey | undefined;
  const hi = q.upper as IDBValidKey | undefined;
  if (lo !== undefined && hi !== undefined) return IDBKeyRange.bound(lo, hi);
  if (lo !== undefined) return IDBKeyRange.lowerBound(lo);
  if (hi !== undefined) return IDBKeyRange.upperBound(hi);
  return undefined;
}

export async function openIdbStore(name: string): Promise<Store> {
  const db = await openDB(name, SCHEMA_VERSION, {
    upgrade(db, oldVersion) {
      if (oldVersion < 1) {
        for (const [table, spec] of Object.entries(TABLES)) {
          const os = db.createObjectStore(table, { keyPath: spec.keyPath as string | string[] });
          for (const [index, path] of Object.entries(spec.indexes)) os.createIndex(index, path as string | string[]);
        }
        db.createObjectStore(KEY_STORE);
      }
    },
    blocking() {
      db.close(); // a newer version in another tab wants to upgrade: let it
    },
  });
  const key = await wrappingKey(db);

  const read = {
    async get(table: TableName, k: Key) {
      return open_(key, table, await db.get(table, k as IDBValidKey));
    },
    async getAll(table: TableName, q: QueryOptions = {}) {
      const tx = db.transaction(table, 'readonly');
      const source = q.index ? tx.store.index(q.index) : tx.store;
      let rows: unknown[];
      if (!q.reverse) rows = await source.getAll(range(q), q.limit);
      else {
        rows = [];
        for (let c = await source.openCursor(range(q), 'prev'); c && (q.limit === undefined || rows.length < q.limit); c = await c.continue()) rows.push(c.value);
      }
      await tx.done;
      return Promise.all(rows.map((r) => open_(key, table, r)));
    },
    async count(table: TableName, q: QueryOptions = {}) {
      const tx = db.transaction(table, 'readonly');
      const n = await (q.index ? tx.store.index(q.index) : tx.store).count(range(q));
      await tx.done;
      return n;
    },
  };

  let tail: Promise<unknown> = Promise.resolve();

  return {
    async read<R>(_tables: readonly TableName[], fn: (tx: ReadTx) => Promise<R>): Promise<R> {
      return fn(read as unknown as ReadTx);
    },
    write<R>(tables: readonly TableName[], fn: (tx: WriteTx) => Promise<R>): Promise<R> {
      const run = async () => {
        const staged = new Map<TableName, Map<string, unknown>>();
        const cleared = new Set<TableName>();
        const ops: Op[] = [];
        const DELETED = Symbol();
        const layer = (t: TableName) => staged.get(t) ?? (staged.set(t, new Map()), staged.get(t)!);
        const tx: WriteTx = {
          async get(t, k) {
            const s = staged.get(t)?.get(keyString(k));
            if (s !== undefined) return s === DELETED ? undefined : (s as never);
            return cleared.has(t) ? undefined : read.get(t, k);
          },
          async getAll(t, q = {}) {
            const base = cleared.has(t) ? [] : await read.getAll(t, { ...q, limit: undefined as unknown as number });
            const merged = new MemoryTables();
            applyOps(merged, base.map((row) => ({ t: 'put' as const, table: t, row })));
            for (const [k, v] of staged.get(t) ?? []) {
              if (v === DELETED) merged.table(t).delete(k);
              else merged.table(t).set(k, v);
            }
            return query(merged.table(t).values(), t, q) as never;
          },
          async count(t, q) {
            return (await this.getAll(t, q)).length;
          },
          async put(t, row) {
            layer(t).set(keyString(keyOf(row, TABLES[t].keyPath)), row);
            ops.push({ t: 'put', table: t, row });
          },
          async delete(t, k) {
            layer(t).set(keyString(k), DELETED);
            ops.push({ t: 'del', table: t, key: k });
          },
          async clear(t) {
            cleared.add(t);
            staged.delete(t);
            ops.push({ t: 'clear', table: t });
          },
        };
        const result = await fn(tx);
        if (!ops.length) return result;
        const sealed = await Promise.all(ops.map(async (op) => (op.t === 'put' ? { ...op, row: await seal(key, op.table, op.row) } : op)));
        const names = [...new Set([...tables, ...ops.map((o) => o.table)])];
        const itx = db.transaction(names, 'readwrite', { durability: 'strict' });
        for (const op of sealed) {
          const store = itx.objectStore(op.table);
          if (op.t === 'put') void store.put(op.row);
          else if (op.t === 'del') void store.delete(op.key as IDBValidKey);
          else void store.clear();
        }
        await itx.done;
        return result;
      };
      const p = tail.then(run, run);
      tail = p.catch(() => undefined);
      return p;
    },
    async close() {
      await tail;
      db.close();
    },
  };
}

export type { Rows };

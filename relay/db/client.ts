/**
 * Opens the relay's database: an embedded PGlite (in memory, or persisted in a data directory)
 * or a real PostgreSQL server through postgres.js. Both get the same drizzle schema, the same
 * migrations (applied here, on open) and the same LISTEN/NOTIFY interface. PGlite's
 * notifications stay inside the process (its data directory cannot be shared by two
 * processes anyway); PostgreSQL's reach every relay process connected to the server.
 */
import { mkdirSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { lockDataDir } from './lock.ts';
import { schema, type Schema } from './schema.ts';

export type Db = PgDatabase<PgQueryResultHKT, Schema>;
/** A transaction handle; it has the same query API as Db. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

export interface Database {
  readonly db: Db;
  readonly kind: 'pglite' | 'postgres';
  /**
   * Subscribes to a channel; resolves once listening. Returns an unsubscribe function.
   * `onRelisten` runs each time the listening connection was lost and LISTEN re-issued on a new
   * one: notifications sent in between are lost, so the caller must resynchronise from the
   * database. (PGlite's in-process channel is never lost.)
   */
  listen(channel: string, onMessage: (payload: string) => void, onRelisten?: () => void): Promise<() => Promise<void>>;
  notify(channel: string, payload: string): Promise<void>;
  /**
   * One parameterised statement outside drizzle, for hot paths: on PostgreSQL it is prepared once
   * per connection (drizzle's `execute` parses and plans every time) and runs as its own
   * transaction. Arrays are passed as PostgreSQL arrays (`$1::bigint[]`, `$2::bytea[]`, ...).
   */
  query<T>(text: string, params: readonly unknown[]): Promise<T[]>;
  /**
   * As `query`, on a connection of its own that nothing else uses (PostgreSQL; PGlite has one
   * connection anyway): for the inbox writer, whose statements follow each other back to back.
   * On the shared pool they went round its connections, each time waking a different server
   * process with the statement's plan cache and data cold; one connection stays warm.
   */
  queryOwn<T>(text: string, params: readonly unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** postgres://... — a real PostgreSQL server. Takes precedence over dataDir. */
  readonly url?: string;
  /** PGlite data directory (created if missing, locked against a second opener); omitted (and no url) means in memory. */
  readonly dataDir?: string;
  /** postgres.js pool size (default 10). */
  readonly poolSize?: number;
  /**
   * In-memory PGlite only: start from this dump of a data directory (PGlite's dumpDataDir), e.g.
   * a pre-migrated template that saves tests the initdb. Migrations still run (a no-op if applied).
   */
  readonly loadDataDir?: Blob;
}

export const MIGRATIONS = fileURLToPath(new URL('./migrations', import.meta.url));
/** Advisory lock key serialising migrations when several relay processes start at once. */
const MIGRATION_LOCK = 0x70657472; // "petr"
/** PostgreSQL's type oid of bytea (postgres.js maps it to bytea[] for an array parameter). */
const BYTEA = 17;

export async function openDatabase(opts: OpenOptions = {}): Promise<Database> {
  return opts.url ? openPostgres(opts.url, opts.poolSize ?? 10) : openPglite(opts.dataDir, opts.loadDataDir);
}

async function openPglite(dataDir: string | undefined, loadDataDir: Blob | undefined): Promise<Database> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const unlock = dataDir ? lockDataDir(dataDir) : () => {};
  let client: PGlite;
  let db: ReturnType<typeof drizzlePglite<Schema>>;
  try {
    client = dataDir ? new PGlite(dataDir) : new PGlite(loadDataDir ? { loadDataDir } : {});
    await client.waitReady;
    db = drizzlePglite(client, { schema });
    await migratePglite(db, { migrationsFolder: MIGRATIONS });
  } catch (e) {
    unlock();
    throw e;
  }
  // PGlite waits for an open transaction to end before running a standalone query. It has one
  // connection, so the writer's own is that one too.
  const query = async <T>(text: string, params: readonly unknown[]) => (await client.query<T>(text, [...params])).rows;
  return {
    db: db as unknown as Db,
    kind: 'pglite',
    listen: async (channel, onMessage) => {
      const unsubscribe = await client.listen(channel, onMessage);
      return async () => unsubscribe();
    },
    notify: async (channel, payload) => {
      await client.query('SELECT pg_notify($1, $2)', [channel, payload]);
    },
    query,
    queryOwn: query,
    close: async () => {
      try {
        await client.close();
      } finally {
        unlock();
      }
    },
  };
}

async function openPostgres(url: string, poolSize: number): Promise<Database> {
  const options = { onnotice: () => {}, connection: { application_name: 'petrel-relay' }, socket: noDelaySocket };
  const sql = postgres(url, { ...options, max: poolSize });
  // A pool of one rather than a reserved connection: postgres.js reconnects it when it drops.
  const own = postgres(url, { ...options, max: 1 });
  const db = drizzlePostgres(sql, { schema });
  const lock = await sql.reserve();
  try {
    await lock`SELECT pg_advisory_lock(${MIGRATION_LOCK})`;
    await migratePostgres(db, { migrationsFolder: MIGRATIONS });
  } finally {
    await lock`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`.catch(() => {});
    lock.release();
  }
  return {
    db: db as unknown as Db,
    kind: 'postgres',
    listen: async (channel, onMessage, onRelisten) => {
      // postgres.js re-issues LISTEN on a new connection after losing one, calling onlisten again.
      let first = true;
      const sub = await sql.listen(channel, onMessage, () => {
        if (first) first = false;
        else onRelisten?.();
      });
      return () => sub.unlisten();
    },
    notify: async (channel, payload) => {
      await sql.notify(channel, payload);
    },
    query: (text, params) => prepared(sql, text, params),
    queryOwn: (text, params) => prepared(own, text, params),
    close: async () => {
      await Promise.all([sql.end({ timeout: 5 }), own.end({ timeout: 5 })]);
    },
  };
}

/**
 * postgres.js opens its TCP connections with Nagle's algorithm on (libpq turns it off). A
 * statement written while an earlier one is unanswered may then be held back until the server
 * acknowledges the earlier bytes, which it does with that statement's answer: the inbox writer's
 * pipelined batch would set off only once the batch ahead of it is done. So the relay connects
 * the socket itself, with TCP_NODELAY, trying the URL's hosts in order; postgres.js still does
 * TLS and the protocol on it. Measured through a proxy adding 1 ms each way: two statements
 * pipelined as the writer does took 9.8 ms with Nagle's algorithm, 7.3 ms without. (On loopback,
 * as in bench:relay, the answer carries the acknowledgement at once: no difference beyond noise.)
 */
async function noDelaySocket(o: { host: string[]; port: number[]; path?: string | false; connect_timeout?: number }): Promise<Socket> {
  const timeoutMs = (o.connect_timeout ?? 30) * 1000;
  const attempt = (target: { path: string } | { host: string; port: number }) =>
    new Promise<Socket>((resolve, reject) => {
      const sock = 'path' in target ? netConnect(target.path) : netConnect({ ...target, noDelay: true });
      const timer = setTimeout(() => sock.destroy(Object.assign(new Error('connect timeout'), { code: 'CONNECT_TIMEOUT' })), timeoutMs);
      const failed = (e: Error) => {
        clearTimeout(timer);
        reject(e);
      };
      sock.once('error', failed);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeListener('error', failed);
        resolve(sock);
      });
    });
  if (o.path) return attempt({ path: o.path });
  let last: unknown;
  for (let i = 0; i < o.host.length; i++) {
    try {
      return await attempt({ host: o.host[i]!, port: o.port[i] ?? o.port[0]! });
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

async function prepared<T>(sql: postgres.Sql, text: string, params: readonly unknown[]): Promise<T[]> {
  // postgres.js types an array by its first element, which makes a bytea[] a bytea: say so.
  const typed = params.map((p) => (Array.isArray(p) && p[0] instanceof Uint8Array ? sql.array(p as Uint8Array[] as never, BYTEA) : p));
  return rowsOf<T>(await sql.unsafe(text, typed as never[], { prepare: true }));
}

/**
 * PostgreSQL's unique_violation (23505), as postgres.js and PGlite raise it or as drizzle wraps it
 * (the driver's error is then its `cause`).
 */
export function isUniqueViolation(e: unknown): boolean {
  for (let x = e, depth = 0; typeof x === 'object' && x !== null && depth < 3; x = (x as { cause?: unknown }).cause, depth++) {
    if ((x as { code?: unknown }).code === '23505') return true;
  }
  return false;
}

/** Rows of a raw `db.execute(sql...)` result: postgres.js returns an array, PGlite `{ rows }`. */
export function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[];
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}

/** bytea from a raw query: Buffer (postgres.js) or Uint8Array (PGlite), as a plain Uint8Array. */
export function bytesOf(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v.constructor === Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError('expected bytea');
}

// Relay test harness: a fresh database per suite (PGlite always; the real PostgreSQL too when
// TEST_DATABASE_URL is set, in a database petrel_test_<random> created and dropped here),
// the real services and app, and an HTTP caller that works on app.request or a real port.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import postgres from 'postgres';
import { createApp, type RelayApp } from '../../relay/app.ts';
import type { RelayConfig } from '../../relay/config.ts';
import { type Database, MIGRATIONS, openDatabase } from '../../relay/db/client.ts';
import { type Logger, silentLogger } from '../../relay/log.ts';
import { type RunningRelay, startRelay } from '../../relay/server.ts';
import { createServices, type RelayServices } from '../../relay/services.ts';
import { afterAll, beforeAll } from 'vitest';

export interface Backend {
  readonly name: 'pglite' | 'postgres';
  /** A new empty database; `drop` closes nothing, call it after closing every user of the url. */
  create(): Promise<{ url?: string; loadDataDir?: Blob; drop(): Promise<void> }>;
}

/**
 * A freshly migrated PGlite data directory, dumped once per machine and migration set into the
 * temp directory (keyed by a hash of the migrations and the PGlite version): each suite then
 * loads it (~0.5 s) instead of running initdb and the migrations (~1.5 s). data-dir.test.ts
 * still migrates a fresh directory on every run.
 */
const PGLITE_VERSION = String(
  (JSON.parse(readFileSync(new URL('../../node_modules/@electric-sql/pglite/package.json', import.meta.url), 'utf8')) as { version: string }).version,
);
let template: Promise<Blob> | undefined;
function pgliteTemplate(): Promise<Blob> {
  return (template ??= (async () => {
    const h = createHash('sha256').update(PGLITE_VERSION);
    for (const f of readdirSync(MIGRATIONS, { recursive: true, encoding: 'utf8' }).sort()) {
      const path = join(MIGRATIONS, f);
      if (statSync(path).isFile()) h.update(f).update(readFileSync(path));
    }
    const file = join(tmpdir(), `petrel-pglite-${h.digest('hex').slice(0, 16)}.tar.gz`);
    if (existsSync(file)) return new Blob([readFileSync(file)]);
    const pg = new PGlite();
    await migrate(drizzle(pg), { migrationsFolder: MIGRATIONS });
    const dump = await pg.dumpDataDir('gzip');
    await pg.close();
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, new Uint8Array(await dump.arrayBuffer()));
    renameSync(tmp, file); // atomic: concurrent workers each write a valid file
    return dump;
  })());
}

const PG = process.env.TEST_DATABASE_URL;

export const backends: Backend[] = [
  { name: 'pglite', create: async () => ({ loadDataDir: await pgliteTemplate(), drop: async () => {} }) },
  ...(PG
    ? [
        {
          name: 'postgres' as const,
          async create() {
            const dbName = `petrel_test_${randomBytes(6).toString('hex')}`;
            const admin = postgres(PG, { max: 1, onnotice: () => {} });
            await admin.unsafe(`CREATE DATABASE ${dbName}`);
            await admin.end();
            const url = new URL(PG);
            url.pathname = `/${dbName}`;
            return {
              url: url.toString(),
              async drop() {
                const a = postgres(PG, { max: 1, onnotice: () => {} });
                await a.unsafe(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
                await a.end();
              },
            };
          },
        },
      ]
    : []),
];

export type Fetch = (path: string, init?: RequestInit) => Promise<Response>;

export interface TestRelay {
  readonly app: RelayApp;
  readonly services: RelayServices;
  readonly database: Database;
  readonly fetch: Fetch;
  close(): Promise<void>;
}

/** Fast OPAQUE-free limits for tests: generous rate limits unless a test asks otherwise. */
export const TEST_CONFIG: Partial<RelayConfig> = {
  rateLimits: {
    registerPerIp: { burst: 10_000, perMinute: 10_000 },
    registerPerUser: { burst: 10_000, perMinute: 10_000 },
    loginPerIp: { burst: 10_000, perMinute: 10_000 },
    loginPerUser: { burst: 10_000, perMinute: 10_000 },
    bundlesPerDevice: { burst: 10_000, perMinute: 10_000 },
    bundlesPerTarget: { burst: 10_000, perMinute: 10_000 },
  },
};

export async function startTestRelay(backend: Backend, config: Partial<RelayConfig> = {}): Promise<TestRelay> {
  const created = await backend.create();
  const database = await openDatabase(created.url ? { url: created.url } : created.loadDataDir ? { loadDataDir: created.loadDataDir } : {});
  const services = await createServices({
    database,
    config: { ...TEST_CONFIG, ...config, rateLimits: { ...TEST_CONFIG.rateLimits!, ...config.rateLimits } },
  });
  const app = createApp(services);
  return {
    app,
    services,
    database,
    fetch: async (path, init) => app.request(path, init),
    async close() {
      await services.close();
      await database.close();
      await created.drop();
    },
  };
}

/**
 * For a suite: relay/server.ts's startRelay on a real port over a fresh database of `backend`,
 * started before the suite's tests and stopped (its database dropped) after them.
 */
export function relayOnPort(backend: Backend, opts: { config?: Partial<RelayConfig>; log?: Logger } = {}): { relay: RunningRelay; fetch: Fetch } {
  const live = {} as { relay: RunningRelay; fetch: Fetch };
  let drop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const db = await backend.create();
    drop = db.drop;
    live.relay = await startRelay({ port: 0, hostname: '127.0.0.1', log: opts.log ?? silentLogger, config: opts.config ?? TEST_CONFIG, ...(db.url ? { databaseUrl: db.url } : {}) });
    live.fetch = (path, init) => globalThis.fetch(live.relay.url + path, init);
  });
  afterAll(async () => {
    await live.relay?.close();
    await drop?.();
  });
  return live;
}

/**
 * Another relay instance (own services, limits and app) over `relay`'s database: for tests that
 * need a different configuration without paying for a new database.
 */
export async function withConfig<T>(relay: TestRelay, config: Partial<RelayConfig>, f: (fetch: Fetch, app: RelayApp) => Promise<T>): Promise<T> {
  const services = await createServices({
    database: relay.database,
    config: { ...TEST_CONFIG, ...config, rateLimits: { ...TEST_CONFIG.rateLimits!, ...config.rateLimits } },
  });
  const app = createApp(services);
  try {
    return await f(async (path, init) => app.request(path, init), app);
  } finally {
    await services.close();
  }
}

export function uniqueName(prefix = 'u'): string {
  return `${prefix}${randomBytes(5).toString('hex')}`;
}

/**
 * The only file that binds a port. `npm start` runs it; tests call startRelay().
 *
 * Environment (documented in relay/README.md):
 *   PORT                      default 8787 (0 picks a free port; the "listening" log line has it)
 *   HOST                      default 0.0.0.0
 *   DATABASE_URL              postgres://... uses that PostgreSQL server (several processes may share it)
 *   PETREL_DATA_DIR           default ./data: embedded PGlite persisted there (when no DATABASE_URL)
 *   PETREL_DB_POOL            postgres.js pool size, default 10
 *   PETREL_TRUST_PROXY        1: take the client address from X-Forwarded-For (behind a load balancer)
 *   PETREL_INBOX_RETENTION_DAYS  unacknowledged envelopes kept this long, default 30
 *   PETREL_LOG_LEVEL          debug | info | warn | error, default info
 *   PETREL_WEB_ROOT           static files to serve (the built PWA), default web/dist when it exists
 */
import { existsSync, mkdirSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { serve } from '@hono/node-server';
import type { Context } from 'hono';
import { WebSocketServer } from 'ws';
import { createApp } from './app.ts';
import { DEFAULT_CONFIG, type RelayConfig } from './config.ts';
import { openDatabase } from './db/client.ts';
import { sweep } from './inbox/reader.ts';
import { DataDirLockedError } from './db/lock.ts';
import { errorFields, jsonLogger, LOG_LEVELS, type Logger, type LogLevel } from './log.ts';
import { createServices, type RelayServices, socketAddress } from './services.ts';

export interface StartOptions {
  readonly port?: number;
  readonly hostname?: string;
  readonly databaseUrl?: string;
  /** PGlite directory; undefined with no databaseUrl = in memory. */
  readonly dataDir?: string;
  /** postgres.js pool size per process. */
  readonly poolSize?: number;
  readonly config?: Partial<RelayConfig>;
  readonly log?: Logger;
  readonly trustProxy?: boolean;
  readonly sweepIntervalMs?: number;
  /** Directory of static files served outside /v1 (the built PWA); none when undefined. */
  readonly webRoot?: string;
}

/** web/dist of this checkout: what `vite build` produces. */
const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../web/dist', import.meta.url));

export interface RunningRelay {
  readonly port: number;
  readonly url: string;
  readonly services: RelayServices;
  close(): Promise<void>;
}

/** Largest WebSocket frame a client may send (auth and ack frames are tiny). */
const WS_MAX_FRAME = 2 * 1024 * 1024 + 1024; // a submit frame carries a message body (maxMessageBodyBytes)

export async function startRelay(o: StartOptions = {}): Promise<RunningRelay> {
  const log = o.log ?? jsonLogger();
  if (o.dataDir && !o.databaseUrl) mkdirSync(o.dataDir, { recursive: true });
  const database = await openDatabase({
    ...(o.databaseUrl ? { url: o.databaseUrl } : {}),
    ...(o.dataDir ? { dataDir: o.dataDir } : {}),
    ...(o.poolSize ? { poolSize: o.poolSize } : {}),
  });
  const services = await createServices({
    database,
    log,
    ...(o.config ? { config: o.config } : {}),
    clientIp: o.trustProxy ? forwardedFor : socketAddress,
  });
  const app = createApp(services, o.webRoot ? { webRoot: o.webRoot } : {});
  const wss = new WebSocketServer({ noServer: true, maxPayload: WS_MAX_FRAME });
  // While stopping, every response ends its connection: a keep-alive client would otherwise keep
  // the process alive by sending request after request on a connection opened before the stop.
  let closing = false;
  const fetch = async (req: Request, env: unknown) => {
    const res = await app.fetch(req, env as never);
    if (closing && res.status !== 101) {
      try {
        res.headers.set('connection', 'close');
      } catch {
        // an immutable Response (Response.redirect): Node's own close below ends the connection
      }
    }
    return res;
  };
  const server = serve({ fetch, port: o.port ?? 8787, ...(o.hostname ? { hostname: o.hostname } : {}), websocket: { server: wss } });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const sweeper = setInterval(() => {
    const c = services.config;
    sweep(services.db, { now: Date.now(), inboxRetentionMs: c.inboxRetentionMs, idempotencyRetentionMs: c.idempotencyRetentionMs }).catch((e) =>
      log('warn', 'sweep failed', errorFields(e)),
    );
  }, o.sweepIntervalMs ?? 10 * 60_000);
  sweeper.unref();
  log('info', 'listening', { port, database: database.kind, web: o.webRoot ?? null });

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    services,
    /**
     * Stops taking work, then lets what is under way finish: no new connections; keep-alive
     * connections end after the request they are in (idle ones at once, busy ones are told
     * `Connection: close`); sockets get close code 1001 (going away), so clients reconnect to
     * another process at once; after `graceMs` whatever is left is cut. Then the writer drains and
     * the database closes: every acknowledged message was committed.
     */
    async close(graceMs = 10_000) {
      clearInterval(sweeper);
      closing = true;
      for (const client of wss.clients) client.close(1001, 'relay stopping');
      const http = server as HttpServer; // serve() without TLS or HTTP/2 options
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeIdleConnections();
      const cut = setTimeout(() => {
        http.closeAllConnections();
        for (const client of wss.clients) client.terminate();
      }, graceMs);
      await closed;
      clearTimeout(cut);
      await services.close();
      await database.close();
    },
  };
}

/**
 * Behind one trusted proxy, the client is the address that proxy appended: the LAST entry of
 * X-Forwarded-For. Earlier entries are whatever the client sent, so keying rate limits on the
 * first one let a client pick its own bucket.
 */
function forwardedFor(c: Context): string {
  const xff = c.req.header('x-forwarded-for');
  return xff?.split(',').at(-1)?.trim() || socketAddress(c);
}

/** Runs the relay as configured by the environment (what `npm start` does). */
export async function main(): Promise<void> {
  const env = process.env;
  const level = env.PETREL_LOG_LEVEL ?? 'info';
  if (!LOG_LEVELS.includes(level as LogLevel)) throw new Error(`PETREL_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  const log = jsonLogger(level as LogLevel);
  const days = env.PETREL_INBOX_RETENTION_DAYS ? positive(env, 'PETREL_INBOX_RETENTION_DAYS') : 30;
  const port = env.PORT ? Number(env.PORT) : 8787;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error('PORT must be a whole number from 0 (any free port) to 65535');
  const webRoot = env.PETREL_WEB_ROOT ?? (existsSync(DEFAULT_WEB_ROOT) ? DEFAULT_WEB_ROOT : undefined);
  if (env.PETREL_METRICS_TOKEN === '') throw new Error('PETREL_METRICS_TOKEN is set but empty: give it a value, or unset it to leave /metrics public');
  // A misspelt name would otherwise be ignored in silence (other tools' variables are not ours to judge).
  for (const name of Object.keys(env)) {
    if (name.startsWith('PETREL_') && !RELAY_VARIABLES.has(name) && !OTHER_TOOLS.test(name)) log('warn', `${name} is not a relay setting (misspelt?); ignored`);
  }
  const relay = await startRelay({
    port,
    hostname: env.HOST ?? '0.0.0.0',
    ...(env.DATABASE_URL ? { databaseUrl: env.DATABASE_URL } : { dataDir: env.PETREL_DATA_DIR ?? './data' }),
    trustProxy: flag(env, 'PETREL_TRUST_PROXY'),
    ...(env.PETREL_DB_POOL ? { poolSize: count(env, 'PETREL_DB_POOL') } : {}),
    log,
    ...(webRoot ? { webRoot } : {}),
    config: {
      inboxRetentionMs: days * 24 * 3600_000,
      ...(env.PETREL_VAPID_SUBJECT ? { vapidSubject: env.PETREL_VAPID_SUBJECT } : {}),
      pushAllowInsecureEndpoints: flag(env, 'PETREL_PUSH_ALLOW_HTTP'),
      ...(env.PETREL_METRICS_TOKEN ? { metricsToken: env.PETREL_METRICS_TOKEN } : {}),
      ...(env.PETREL_WRITER_BATCH ? { writerMaxBatch: count(env, 'PETREL_WRITER_BATCH') } : {}),
      ...(env.PETREL_WRITER_CONCURRENCY ? { writerConcurrency: count(env, 'PETREL_WRITER_CONCURRENCY') } : {}),
      ...(env.PETREL_WRITER_LINGER_MS ? { writerLingerMs: nonNegative(env, 'PETREL_WRITER_LINGER_MS') } : {}),
      ...(env.PETREL_PUSH_GRACE_MS ? { pushGraceMs: nonNegative(env, 'PETREL_PUSH_GRACE_MS') } : {}),
      ...(env.PETREL_RATE_LIMIT_SCALE ? { rateLimits: scaledLimits(positive(env, 'PETREL_RATE_LIMIT_SCALE')) } : {}),
      ...(env.PETREL_ATTACHMENT_MAX_MB ? { maxAttachmentBytes: positive(env, 'PETREL_ATTACHMENT_MAX_MB') * 1024 * 1024 } : {}),
      ...(env.PETREL_ATTACHMENT_QUOTA_MB ? { attachmentQuotaBytes: positive(env, 'PETREL_ATTACHMENT_QUOTA_MB') * 1024 * 1024 } : {}),
      ...(env.PETREL_ATTACHMENT_RETENTION_DAYS ? { attachmentRetentionMs: positive(env, 'PETREL_ATTACHMENT_RETENTION_DAYS') * 24 * 3600_000 } : {}),
    },
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log('info', 'stopping', { signal });
    relay.close().then(
      () => process.exit(0),
      (e) => {
        log('error', 'stop failed', errorFields(e));
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/**
 * A start that failed, as one log line an operator can act on: what went wrong and what to change
 * (the variable, the port, the data directory), without a stack trace.
 */
export function startFailure(e: unknown, env: NodeJS.ProcessEnv = process.env): { error: string; hint?: string } {
  const code = (e as { code?: unknown } | undefined)?.code;
  const message = e instanceof Error ? e.message : String(e);
  const db = env.DATABASE_URL ? `the PostgreSQL server in DATABASE_URL` : undefined;
  if (e instanceof DataDirLockedError) return { error: message, hint: 'stop the other relay, or set PETREL_DATA_DIR to another directory' };
  if (code === 'EADDRINUSE') return { error: message, hint: `port ${env.PORT ?? 8787} is taken (another relay?): stop it or set PORT` };
  if (code === 'EACCES' && /listen/.test(message)) return { error: message, hint: 'this user may not bind that port: set PORT to 1024 or above' };
  if (db && (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ETIMEDOUT' || code === 'CONNECT_TIMEOUT')) {
    return { error: message, hint: `cannot reach ${db}: check its host and port, and that the server runs` };
  }
  if (db && e instanceof TypeError && /Invalid URL/i.test(message)) return { error: 'DATABASE_URL is not a valid URL', hint: 'use postgres://user:password@host:5432/database' };
  if (db && code === '3D000') return { error: message, hint: 'create that database first (createdb <name>), or point DATABASE_URL at one that exists' };
  if (db && (code === '28000' || code === '28P01')) return { error: message, hint: 'check the user and password in DATABASE_URL' };
  return { error: message };
}

/** main() as a command: a failed start prints startFailure's line and exits 1. */
export function runMain(): void {
  main().catch((e) => {
    process.stderr.write(JSON.stringify({ t: new Date().toISOString(), level: 'error', msg: 'relay failed to start', ...startFailure(e) }) + '\n');
    process.exit(1);
  });
}


/** The relay's own variables (README's configuration table). */
const RELAY_VARIABLES = new Set(
  'DATA_DIR DB_POOL TRUST_PROXY INBOX_RETENTION_DAYS LOG_LEVEL WEB_ROOT VAPID_SUBJECT PUSH_ALLOW_HTTP PUSH_GRACE_MS METRICS_TOKEN ATTACHMENT_MAX_MB ATTACHMENT_QUOTA_MB ATTACHMENT_RETENTION_DAYS WRITER_BATCH WRITER_LINGER_MS WRITER_CONCURRENCY RATE_LIMIT_SCALE'
    .split(' ')
    .map((n) => `PETREL_${n}`),
);
/** Variables of the CLI, the benchmarks and the tests, which share a shell with the relay. */
const OTHER_TOOLS = /^PETREL_(RELAY|PROFILE|RELAY_NODE_ARGS|GROUP_SEEDS|BENCH_.*|AB_.*|TEST_.*)$/;

/** On/off: 1, true, yes, on or 0, false, no, off (any case); unset or empty is off; anything else stops the start. */
function flag(env: NodeJS.ProcessEnv, name: string): boolean {
  const v = env[name]?.trim().toLowerCase();
  if (v === undefined || v === '' || v === '0' || v === 'false' || v === 'no' || v === 'off') return false;
  if (v === '1' || v === 'true' || v === 'yes' || v === 'on') return true;
  throw new Error(`${name} must be 1 or 0 (or true/false, yes/no, on/off)`);
}

/** A positive number from the environment; a typo stops the start rather than becoming NaN limits. */
function count(env: NodeJS.ProcessEnv, name: string): number {
  const n = Number(env[name]);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a whole number >= 1`);
  return n;
}

function nonNegative(env: NodeJS.ProcessEnv, name: string): number {
  const n = Number(env[name]);
  if (!(n >= 0) || !Number.isFinite(n)) throw new Error(`${name} must be a number >= 0`);
  return n;
}

function positive(env: NodeJS.ProcessEnv, name: string): number {
  const n = Number(env[name]);
  if (!(n > 0) || !Number.isFinite(n)) throw new Error(`${name} must be a positive number`);
  return n;
}

/** PETREL_RATE_LIMIT_SCALE multiplies every bucket (e.g. for load tests from one address). */
function scaledLimits(k: number) {
  if (!(k > 0)) throw new Error('PETREL_RATE_LIMIT_SCALE must be a positive number');
  return Object.fromEntries(Object.entries(DEFAULT_CONFIG.rateLimits).map(([n, b]) => [n, { burst: b.burst * k, perMinute: b.perMinute * k }])) as unknown as RelayConfig['rateLimits'];
}

// Last, so that every declaration above is initialised before main() reads it.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) runMain();

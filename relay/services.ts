/**
 * Everything the routes share, built once per process: database, configuration, the
 * notification hub, the batched inbox writer and the rate limiters. Tests build it on a
 * fresh database and pass it to createApp.
 */
import type { Context } from 'hono';
import { ready as cryptoReady } from '../crypto/index.ts';
import { type RelayConfig, resolveConfig } from './config.ts';
import type { Database, Db } from './db/client.ts';
import { AckBatcher } from './inbox/acks.ts';
import { InboxWriter } from './inbox/writer.ts';
import { type Logger, silentLogger } from './log.ts';
import { Hub } from './notify/hub.ts';
import { RateLimiter } from './rate-limit.ts';
import { Metrics } from './metrics.ts';
import { PushSender } from './push/sender.ts';
import { type VapidKeys, vapidKeys } from './push/vapid.ts';
import { opaqueServerSetup } from './secrets.ts';

export interface Limiters {
  readonly registerPerIp: RateLimiter;
  readonly registerPerUser: RateLimiter;
  readonly loginPerIp: RateLimiter;
  readonly loginPerUser: RateLimiter;
  readonly bundlesPerDevice: RateLimiter;
  readonly bundlesPerTarget: RateLimiter;
}

export interface RelayServices {
  readonly database: Database;
  readonly db: Db;
  readonly config: RelayConfig;
  readonly opaqueSetup: string;
  readonly hub: Hub;
  readonly writer: InboxWriter;
  readonly acks: AckBatcher;
  readonly limits: Limiters;
  readonly vapid: VapidKeys;
  readonly push: PushSender;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly now: () => number;
  /** The client's address for rate limits; behind a proxy, server.ts passes one that reads X-Forwarded-For. */
  readonly clientIp: (c: Context) => string;
  close(): Promise<void>;
}

export interface ServicesOptions {
  readonly database: Database;
  readonly config?: Partial<RelayConfig>;
  readonly log?: Logger;
  readonly now?: () => number;
  readonly clientIp?: (c: Context) => string;
}

export async function createServices(o: ServicesOptions): Promise<RelayServices> {
  await cryptoReady();
  const config = resolveConfig(o.config);
  const log = o.log ?? silentLogger;
  const now = o.now ?? Date.now;
  const db = o.database.db;
  const opaqueSetup = await opaqueServerSetup(db);
  const hub = new Hub(o.database, log);
  await hub.start();
  const writer = new InboxWriter(o.database, hub, log, {
    maxBatch: config.writerMaxBatch,
    concurrency: o.database.kind === 'pglite' ? 1 : config.writerConcurrency,
    lingerMs: config.writerLingerMs,
    now,
  });
  const vapid = await vapidKeys(db);
  const push = new PushSender(db, vapid, config, log, (d) => hub.hasLocal(d), now);
  hub.onCommitted = (devices) => push.committed(devices);
  const metrics = new Metrics({ connections: () => hub.connections });
  push.onResult = (result) => metrics.push.inc({ result });
  writer.onBatch = (n) => metrics.writerBatch.observe(n);
  const acks = new AckBatcher(o.database, log, config.ackLingerMs);
  const r = config.rateLimits;
  const limits: Limiters = {
    registerPerIp: new RateLimiter(r.registerPerIp, now),
    registerPerUser: new RateLimiter(r.registerPerUser, now),
    loginPerIp: new RateLimiter(r.loginPerIp, now),
    loginPerUser: new RateLimiter(r.loginPerUser, now),
    bundlesPerDevice: new RateLimiter(r.bundlesPerDevice, now),
    bundlesPerTarget: new RateLimiter(r.bundlesPerTarget, now),
  };
  return {
    database: o.database,
    db,
    config,
    opaqueSetup,
    hub,
    writer,
    acks,
    limits,
    vapid,
    push,
    metrics,
    log,
    now,
    clientIp: o.clientIp ?? socketAddress,
    async close() {
      await writer.drain();
      await push.close(); // after the last commit: runs its pending push checks instead of dropping them
      await acks.drain();
      await hub.stop();
    },
  };
}

/** The TCP peer address when served by @hono/node-server; "local" for app.request in tests. */
export function socketAddress(c: Context): string {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress ?? 'local';
}

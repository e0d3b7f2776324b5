/**
 * Wakes sleeping devices with Web Push. After a batch commits, each recipient device that has
 * no socket in this process is checked again after a short grace period (pushGraceMs): if it
 * still has unacknowledged envelopes — a connected device, in any process, acknowledges within
 * milliseconds — and a push subscription, one push is claimed with
 *
 *   UPDATE push_subscriptions SET last_push_at = now
 *    WHERE device = $1 AND (last_push_at IS NULL OR last_push_at <= now - pushCoalesceMs)
 *   RETURNING endpoint, p256dh, auth
 *
 * so a burst — and several relay processes — wake a device once per coalescing window, not once
 * per message. The push carries no message content, only `{"v":1,"type":"sync"}`: the service
 * worker syncs and decrypts from the relay. 404/410 from the push service means the
 * subscription is gone: it is deleted. Requests are built by `web-push` (VAPID JWT, aes128gcm
 * payload encryption, TTL, urgency) and sent under a timeout, a few at a time, by node:https
 * (node:http for a local push service the operator allowed, as in tests) with a DNS lookup that
 * refuses non-public addresses (endpoint.ts) — not webpush.sendNotification, which has neither.
 *
 * Only the process that committed a batch schedules its checks (the hub calls `committed` for
 * local commits, not for other processes' NOTIFY), so N processes do not schedule N checks per
 * message; the claim UPDATE settles races that remain (two processes committing for one device).
 */
import { sql } from 'drizzle-orm';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import webpush from 'web-push';
import { type Db, rowsOf } from '../db/client.ts';
import { errorFields, type Logger } from '../log.ts';
import { endpointProblem, publicLookup } from './endpoint.ts';
import type { VapidKeys } from './vapid.ts';

export interface PushConfig {
  /** Also http:, any port, any address (a local push service); see endpoint.ts. */
  readonly pushAllowInsecureEndpoints: boolean;
  readonly pushGraceMs: number;
  readonly pushCoalesceMs: number;
  readonly pushTtlSeconds: number;
  readonly vapidSubject: string;
  readonly pushTimeoutMs: number;
}

export type PushResult = 'sent' | 'gone' | 'failed';

/** All a push says: "something is waiting, sync". No sender, no count, no content. */
export const PUSH_PAYLOAD = JSON.stringify({ v: 1, type: 'sync' });
/** Outgoing pushes at once: a burst to many sleeping devices must not open hundreds of sockets. */
export const MAX_PUSHES_IN_FLIGHT = 8;

interface Claimed {
  readonly endpoint: string;
  readonly p256dh: string;
  readonly auth: string;
}

export class PushSender {
  /** One pending check per device: a burst of envelopes schedules one timer. */
  private readonly timers = new Map<number, ReturnType<typeof setTimeout>>();
  /** Checks and sends under way, awaited by close() so none touches a closed database. */
  private readonly running = new Set<Promise<void>>();
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private closed = false;
  /** Results since start (also reported through onResult to the metrics registry). */
  readonly counts: Record<PushResult, number> = { sent: 0, gone: 0, failed: 0 };
  onResult: (r: PushResult) => void = () => {};

  constructor(
    private readonly db: Db,
    private readonly vapid: VapidKeys,
    private readonly config: PushConfig,
    private readonly log: Logger,
    private readonly hasLocalSocket: (device: number) => boolean,
    private readonly now: () => number,
  ) {}

  /** Devices that just got envelopes committed by this process. */
  committed(devices: Iterable<number>): void {
    if (this.closed) return;
    for (const d of devices) {
      if (this.timers.has(d) || this.hasLocalSocket(d)) continue;
      const timer = setTimeout(() => {
        this.timers.delete(d);
        this.track(this.check(d));
      }, this.config.pushGraceMs);
      this.timers.set(d, timer);
    }
  }

  private track(p: Promise<void>): void {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  private async check(device: number): Promise<void> {
    if (this.hasLocalSocket(device)) return;
    let sub: Claimed | undefined;
    try {
      sub = await this.claim(device);
    } catch (e) {
      this.log('warn', 'push claim failed', { device, ...errorFields(e) });
      return;
    }
    if (sub) await this.send(device, sub);
  }

  /**
   * Takes the device's push for this window, if it still needs one: envelopes still
   * unacknowledged (a device connected anywhere would have acknowledged them by now) and no push
   * in the last pushCoalesceMs. One statement, so two processes racing cannot both win.
   */
  private async claim(device: number): Promise<Claimed | undefined> {
    const now = this.now();
    const [row] = rowsOf<Claimed>(
      await this.db.execute(sql`
        UPDATE push_subscriptions SET last_push_at = ${now}::bigint
         WHERE device = ${device}
           AND (last_push_at IS NULL OR last_push_at <= ${now - this.config.pushCoalesceMs}::bigint)
           AND EXISTS (SELECT 1 FROM inbox WHERE inbox.device = ${device})
        RETURNING endpoint, p256dh, auth`),
    );
    return row;
  }

  private async send(device: number, sub: Claimed): Promise<void> {
    await this.acquire();
    let result: PushResult = 'failed';
    let status = 0;
    let error: Record<string, unknown> = {};
    try {
      const req = webpush.generateRequestDetails({ endpoint: sub.endpoint, keys: { p256dh: sub.p256dh, auth: sub.auth } }, PUSH_PAYLOAD, {
        vapidDetails: { subject: this.config.vapidSubject, publicKey: this.vapid.publicKey, privateKey: this.vapid.privateKey },
        TTL: this.config.pushTtlSeconds,
        urgency: 'high',
        contentEncoding: 'aes128gcm',
      });
      // A redirect is not followed (a push service does not redirect; following one would undo
      // the endpoint checks): it counts as a failure.
      status = await post(req.endpoint, req.method, req.headers as Record<string, string | number>, req.body, this.config.pushTimeoutMs, this.config.pushAllowInsecureEndpoints);
      if (status >= 200 && status < 300) result = 'sent';
      else if (status === 404 || status === 410) {
        // RFC 8030 §7.3: the subscription expired or was unsubscribed; it will never work again.
        result = 'gone';
        await this.db.execute(sql`DELETE FROM push_subscriptions WHERE device = ${device} AND endpoint = ${sub.endpoint}`);
      }
    } catch (e) {
      error = errorFields(e); // a timeout, a refused connection, a key web-push cannot use
    } finally {
      this.release();
    }
    this.counts[result]++;
    this.onResult(result);
    // The endpoint's path is a capability (anyone holding it can push): log only its origin.
    this.log(result === 'failed' ? 'warn' : 'debug', 'push', { device, result, status, service: safeOrigin(sub.endpoint), ...error });
  }

  /** A slot among MAX_PUSHES_IN_FLIGHT; a released slot passes straight to the next waiter. */
  private acquire(): Promise<void> {
    if (this.inFlight < MAX_PUSHES_IN_FLIGHT) {
      this.inFlight++;
      return Promise.resolve();
    }
    return new Promise((r) => this.waiting.push(r));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.inFlight--;
  }

  /**
   * Runs the scheduled checks now instead of dropping them (a process stopping for a deploy must
   * not leave a sleeping device unwoken; an early push is harmless), and waits for every check and
   * push under way, each bounded by pushTimeoutMs. Call it after the writer's last commit.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const [device, timer] of this.timers) {
      clearTimeout(timer);
      this.track(this.check(device));
    }
    this.timers.clear();
    await Promise.allSettled([...this.running]);
  }
}

/** POSTs a push; resolves with the response status (the body is discarded). */
function post(endpoint: string, method: string, headers: Record<string, string | number>, body: Buffer | null, timeoutMs: number, allowLocal: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const url = new URL(endpoint);
    const problem = endpointProblem(url, allowLocal);
    if (problem) return reject(new Error(problem));
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(url, { method, headers, signal: AbortSignal.timeout(timeoutMs), ...(allowLocal ? {} : { lookup: publicLookup as never }) }, (res) => {
      res.resume(); // drain: nothing in a push service's answer is needed beyond its status
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body ?? undefined);
  });
}

function safeOrigin(u: string): string {
  try {
    return new URL(u).origin;
  } catch {
    return 'invalid';
  }
}

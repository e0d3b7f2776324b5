/**
 * Routes "new envelopes for device X" and "device X was revoked" to the sockets that care,
 * in this process and in every other relay process on the same PostgreSQL.
 *
 * - In this process, the writer hands the committed envelopes straight to local subscribers
 *   (no database read on the hot path).
 * - For other processes, the writer's transaction runs pg_notify on one channel; the payload
 *   is only a hint ("device:seq" pairs, the highest seq committed per device), and each
 *   process's sockets read their inbox from the database after their own cursor. NOTIFY is
 *   delivered on commit, so the hint never arrives before the rows are visible.
 *
 * Payload format (one channel, `petrel_relay`), at most ~7,900 bytes per notification:
 *   "i <instance> <device>:<seq> <device>:<seq> ..."   new envelopes
 *   "r <instance> <device> <device> ..."               revoked devices: close their sockets
 * A process ignores its own notifications (it already delivered locally), and the writer sends
 * "new envelopes" ones only while another process is registered (instances.ts).
 *
 * NOTIFY is not durable: one sent while a process's listening connection is down is lost to that
 * process. postgres.js reconnects and re-issues LISTEN; the hub then has every local socket
 * re-check its token and read its inbox after its cursor, so nothing stays undelivered or unrevoked.
 */
import { randomBytes } from 'node:crypto';
import type { Database } from '../db/client.ts';
import { errorFields, type Logger } from '../log.ts';
import { deregister, heartbeat, HEARTBEAT_MS, register } from './instances.ts';

export const NOTIFY_CHANNEL = 'petrel_relay';
const MAX_NOTIFY_BYTES = 7900;
/** Pairs per notification: a pair is at most 40 bytes (two 19-digit numbers), 150 stay under MAX_NOTIFY_BYTES. */
export const NOTICE_MAX_PAIRS = 150;

/** One stored envelope as devices receive it. */
export interface InboxRecord {
  readonly seq: number;
  readonly messageId: number;
  readonly senderUser: string;
  readonly senderDevice: Uint8Array;
  readonly timestamp: number;
  readonly envelope: Uint8Array;
  readonly payload: Uint8Array;
}

export interface Subscriber {
  /** Envelopes committed by this process, in seq order. */
  records(records: readonly InboxRecord[]): void;
  /** Another process committed envelopes up to `seq`. */
  hint(seq: number): void;
  /** The device was removed or its token replaced. */
  revoked(): void;
  /** Notifications may have been lost: re-check the credential and read the inbox again. */
  resync(): void;
}

export class Hub {
  readonly instance = randomBytes(6).toString('base64url');
  private readonly subs = new Map<number, Set<Subscriber>>();
  private unlisten: (() => Promise<void>) | undefined;
  private beat: NodeJS.Timeout | undefined;

  constructor(
    private readonly database: Database,
    private readonly log: Logger,
  ) {}

  /** Listens, then registers this process (in that order: see instances.ts); sockets may subscribe once it resolves. */
  async start(): Promise<void> {
    this.unlisten = await this.database.listen(
      NOTIFY_CHANNEL,
      (p) => this.onNotify(p),
      () => this.resyncAll('notification listener reconnected'),
    );
    await register(this.database.db, this.instance);
    this.beat = setInterval(() => void this.heartbeat(), HEARTBEAT_MS);
    this.beat.unref();
  }

  /** Every HEARTBEAT_MS: keeps this process registered (tests call it directly). */
  async heartbeat(): Promise<void> {
    try {
      if (await heartbeat(this.database.db, this.instance)) return;
      // Deleted as stale while this process stalled: others may have skipped its hints since.
      await register(this.database.db, this.instance);
      this.resyncAll('registration lapsed');
    } catch (e) {
      this.log('warn', 'relay heartbeat failed', errorFields(e));
    }
  }

  /** After notifications may have been lost: every local socket catches up from the database. */
  private resyncAll(reason: string): void {
    this.log('warn', `${reason}; resyncing sockets`, { sockets: this.connections });
    for (const set of this.subs.values()) for (const s of [...set]) s.resync();
  }

  async stop(): Promise<void> {
    clearInterval(this.beat);
    await deregister(this.database.db, this.instance).catch((e) => this.log('warn', 'relay deregistration failed', errorFields(e)));
    await this.unlisten?.().catch(() => {});
    this.unlisten = undefined;
  }

  get connections(): number {
    let n = 0;
    for (const s of this.subs.values()) n += s.size;
    return n;
  }

  subscribe(device: number, sub: Subscriber): () => void {
    let set = this.subs.get(device);
    if (!set) this.subs.set(device, (set = new Set()));
    set.add(sub);
    return () => {
      set.delete(sub);
      if (set.size === 0 && this.subs.get(device) === set) this.subs.delete(device);
    };
  }

  /** Local fast path: called by the writer after its transaction committed. */
  deliverLocal(byDevice: ReadonlyMap<number, readonly InboxRecord[]>): void {
    for (const [device, records] of byDevice) {
      const set = this.subs.get(device);
      if (set) for (const s of [...set]) s.records(records);
    }
    this.onCommitted?.(byDevice.keys());
  }

  /** Called with the devices of every batch this process commits (Web Push hooks in here). */
  onCommitted: ((devices: Iterable<number>) => void) | undefined;

  /** A socket for this device is open in this process. */
  hasLocal(device: number): boolean {
    return (this.subs.get(device)?.size ?? 0) > 0;
  }

  /**
   * The start of this process's "new envelopes" notification: the writer appends the
   * " <device>:<seq>" pairs in SQL, at most NOTICE_MAX_PAIRS per notification.
   */
  get envelopeNoticePrefix(): string {
    return `i ${this.instance}`;
  }

  /** Closes the devices' sockets here and in every other process. */
  async revoke(devices: readonly number[]): Promise<void> {
    if (devices.length === 0) return;
    this.revokeLocal(devices);
    for (const text of chunk(`r ${this.instance}`, devices.map(String))) {
      await this.database.notify(NOTIFY_CHANNEL, text).catch((e) => this.log('warn', 'notify failed', errorFields(e)));
    }
  }

  private revokeLocal(devices: readonly number[]): void {
    for (const d of devices) {
      const set = this.subs.get(d);
      if (set) for (const s of [...set]) s.revoked();
    }
  }

  private onNotify(payload: string): void {
    const parts = payload.split(' ');
    const [type, instance] = parts;
    if (instance === this.instance) return;
    if (type === 'i') {
      for (const p of parts.slice(2)) {
        const [d, s] = p.split(':').map(Number);
        const set = d === undefined ? undefined : this.subs.get(d);
        if (set && s !== undefined && Number.isSafeInteger(s)) for (const sub of [...set]) sub.hint(s);
      }
    } else if (type === 'r') {
      this.revokeLocal(parts.slice(2).map(Number));
    }
  }
}

function chunk(prefix: string, items: readonly string[]): string[] {
  const out: string[] = [];
  let cur = prefix;
  for (const it of items) {
    if (cur.length + 1 + it.length > MAX_NOTIFY_BYTES) {
      out.push(cur);
      cur = prefix;
    }
    cur += ' ' + it;
  }
  if (cur !== prefix) out.push(cur);
  return out;
}

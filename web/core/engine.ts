/**
 * The client engine: everything a user does goes through here. DOM-free; the page, the
 * service worker and the headless CLI each create one over their own store (web/core/README.md).
 */
import { activeDevices, decodeBundle, encodeDeviceSessions, equalBytes, findDevice, ready, type Rng, safetyNumber, startSession, systemRng, toHex, verifyBundle } from '../../crypto/index.ts';
import * as account from './account.ts';
import { applyAfter } from './after.ts';
import { downloadAttachment, type Progress, uploadAttachment } from './attachments.ts';
import { fromB64, toB64 } from './b64.ts';
import { Ctx, type IdentityRecord, type Lock, mutex } from './context.ts';
import { shortDeviceId } from './device-id.ts';
import { deviceList, lookUp, putVerified } from './directory.ts';
import { positionOf, processBatch } from './inbox.ts';
import { type Fetch, RelayApi, RelayError, revokedError, type WireEnvelope } from './net/api.ts';
import { LiveSocket, type WsCtor } from './net/socket.ts';
import { pendingRows, sendOne, writtenByUser } from './outbox.ts';
import * as refusal from './refusal.ts';
import * as groups from './groups.ts';
import { uploadHistory } from './history.ts';
import { type Body, type ConvRef, encodeContent, MAX_TEXT, newId } from './protocol/content.ts';
import * as changes from './changes.ts';
import type { ChangeKind, ConversationRow, MessageRow, Store } from './store/schema.ts';
import { type ConnectionState, type ContactView, type DeviceView, EngineError, type EngineEvent, type MessageView, type SafetyNumberView } from './types.ts';
import { currentPreview, messageView, newConversation, newMessageRow, preview, refreshStalePreviews } from './views.ts';

/** A change to the conversation row `id` as it is when the change commits. */
export interface ConversationUpdate {
  readonly id: string;
  readonly update: (current: ConversationRow) => ConversationRow;
}

export interface EngineOptions {
  readonly store: Store;
  /** The relay's origin, e.g. http://localhost:8787; '' in the page means same origin. */
  readonly relayUrl: string;
  readonly fetch: Fetch;
  /** Omitted (service worker): no live socket, only sync(). */
  readonly WebSocket?: WsCtor;
  readonly rng?: Rng;
  readonly now?: () => number;
  /** Exclusive access across engines sharing one store (Web Locks in the browser); each turn rereads sessions. */
  readonly lock?: Lock;
  /**
   * What this device calls itself in the account's device list when it registers or logs in
   * (and keeps in its identity when linked; the approving device names it in the list then). A
   * function is given the device's short id (device-id.ts) once its keys exist, so that a name
   * guessed from the browser can tell two alike browsers apart ("Chromium on Linux · K7QF").
   */
  readonly deviceName?: string | ((shortId: string) => string);
  /** Poll interval while the socket is down. */
  readonly pollMs?: number;
  /** How far back the history sent to a newly added device reaches (ms); default: all of it. */
  readonly historySpanMs?: number;
}

const PAGE = 500;
/** Messages a catch-up before a send stored, kept for the next sync() to return; the newest this many. */
const MAX_UNREPORTED = 1_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** The part of an AbortSignal the engine uses (web/core compiles without the DOM lib). */
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** Resolves after `ms`, or at once when `signal` aborts (the caller checks which). */
function abortableSleep(ms: number, signal?: CancelSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** The contact's key changed since the digits were shown (or while they were compared). */
const keyChangedError = (user: string) => new EngineError('key_changed', `${user}'s safety number changed. Compare the new number before marking them verified.`);

export class Engine {
  readonly ctx: Ctx;
  #live: LiveSocket | null = null;
  #pollTimer: ReturnType<typeof setTimeout> | null = null;
  #outboxTimer: ReturnType<typeof setTimeout> | null = null;
  #draining: Promise<void> | null = null;
  #redrain = false;
  #running = false;
  /** start() was called and stop() was not: signing in again resumes. */
  #started = false;
  #connection: ConnectionState = 'offline';
  /** The device-list check after a refused token, while one runs (see onTokenRefused). */
  #checking: Promise<refusal.Verdict> | null = null;
  /** Strictly increasing send times in this process, so the outbox and receivers keep our order. */
  #lastAt = 0;
  #lastRefillCheck = 0;

  private constructor(private readonly o: EngineOptions) {
    const api = new RelayApi(o.relayUrl, o.fetch);
    // A lock shared with other engines (another tab, the service worker) means they may have
    // advanced a session since we cached it: sending on a stale one reuses message keys, and the
    // receiver drops those messages. So each turn starts from what the store holds.
    const lock = o.lock;
    this.ctx = new Ctx(o.store, api, o.rng ?? systemRng, o.now ?? Date.now, lock ? (fn) => lock(() => (this.ctx.sessions.clear(), this.ctx.sentLogs.clear(), fn())) : mutex());
    api.onRevoked = () => void this.#onTokenRefused();
  }

  static async open(o: EngineOptions): Promise<Engine> {
    await ready();
    const e = new Engine(o);
    const id = (await o.store.read(['meta'], (tx) => tx.get('meta', 'identity')))?.value as IdentityRecord | undefined;
    e.ctx.setIdentity(id ?? null);
    await e.ctx.loadKeys();
    // Previews stored by older code may still show text since edited or deleted: fixed once here.
    // Not before there is an identity: an empty store holds no conversations, and must stay empty
    // (a failed register or link leaves nothing behind).
    if (id) await refreshStalePreviews(o.store);
    // Known removed or signed out (by the page or the service worker, earlier): start in that
    // state, offline included, and never send the dead token again.
    const [removed, signedOut] = id ? await o.store.read(['meta'], async (tx) => [await tx.get('meta', refusal.REMOVED), await tx.get('meta', refusal.SIGNED_OUT)]) : [];
    if (removed) {
      e.ctx.api.revoked = true;
      e.ctx.api.revokedCode = 'device_removed';
      e.#connection = 'removed';
    } else if (signedOut) {
      e.ctx.api.revoked = true;
      // Not checked yet (the list could not be fetched): 'offline', and start() or sync() checks.
      if ((signedOut.value as refusal.SignedOutRecord).listed) e.#connection = 'signed_out';
    }
    return e;
  }

  on(fn: (e: EngineEvent) => void): () => void {
    return this.ctx.on(fn);
  }

  state(): { username: string; deviceId: string; hasAccountKey: boolean } | null {
    const me = this.ctx.me;
    return me ? { username: me.username, deviceId: me.deviceB64, hasAccountKey: me.account !== null } : null;
  }

  get connectionState(): ConnectionState {
    return this.#connection;
  }

  /** This device was removed from the account (the device list says so), or logged out. Final. */
  get removed(): boolean {
    return this.#connection === 'removed';
  }

  /** The relay refused this device's token but the account still lists it: signIn() brings it back. */
  get signedOut(): boolean {
    return this.#connection === 'signed_out';
  }

  /** The relay refused this device's token: removed, signed out, or not yet known which (see refusal.ts). */
  get tokenRefused(): boolean {
    return this.ctx.api.revoked;
  }

  /** Stops everything that talks to the relay with the token: socket, polling, outbox. */
  #halt(): void {
    this.#running = false;
    this.#live?.stop();
    this.#live = null;
    if (this.#pollTimer) clearTimeout(this.#pollTimer);
    if (this.#outboxTimer) clearTimeout(this.#outboxTimer);
    this.#pollTimer = this.#outboxTimer = null;
  }

  /**
   * The relay refused the token (HTTP 401, or the socket's 4403/4401): nothing more goes out with
   * it, and the account's device list says whether the device was removed or only signed out.
   * Idempotent: the socket's close and the HTTP 401 racing it share one check.
   */
  #onTokenRefused(): Promise<refusal.Verdict> {
    if (this.#connection === 'removed' || this.#connection === 'signed_out') return Promise.resolve(this.#connection);
    this.ctx.api.revoked = true;
    this.ctx.api.revokedCode = 'signed_out';
    this.#live?.stop();
    this.#live = null;
    if (this.#outboxTimer) clearTimeout(this.#outboxTimer);
    this.#outboxTimer = null;
    return this.#checkRefusal();
  }

  /**
   * Asks the device list what the refusal means, enters that state and stores it, so a restart
   * makes no request with the token (one cut short before this stored anything meets the 401
   * again, and asks again). Still listed: 'signed_out', everything stopped as when removed
   * (but the outbox waits for signIn). Out of reach ('unknown'): 'offline', polling goes on
   * without the token, and the next poll, wake() or sync() asks again.
   */
  #checkRefusal(): Promise<refusal.Verdict> {
    this.#checking ??= (async () => {
      try {
        const v = await refusal.verdict(this.ctx);
        if (!this.ctx.api.revoked) return v; // signed in again meanwhile
        if (v === 'removed') {
          await this.#enterRemoved();
          return v;
        }
        const listed = v === 'signed_out';
        if (listed) this.#halt();
        this.#setConnection(listed ? 'signed_out' : 'offline');
        const value: refusal.SignedOutRecord = { at: this.ctx.now(), listed };
        await this.ctx.store.write(['meta'], (tx) => tx.put('meta', { key: refusal.SIGNED_OUT, value })).catch(() => {});
        return v;
      } finally {
        this.#checking = null;
      }
    })();
    return this.#checking;
  }

  /**
   * This device was removed (the device list says so, or we removed it): stop everything that
   * talks to the relay — socket, polling, outbox — remember it across restarts, and tell the app.
   */
  async #enterRemoved(): Promise<void> {
    this.ctx.api.revoked = true;
    this.ctx.api.revokedCode = 'device_removed';
    this.#halt();
    this.#setConnection('removed');
    if (this.ctx.me) await this.ctx.store.write(['meta'], (tx) => tx.put('meta', { key: refusal.REMOVED, value: this.ctx.now() })).catch(() => {});
  }

  /** What a call that needs the token throws once it was refused; an unsettled refusal is checked first. */
  async #requireToken(): Promise<void> {
    if (!this.ctx.api.revoked) return;
    if (this.#connection !== 'removed' && this.#connection !== 'signed_out') await this.#checkRefusal();
    if (this.removed || this.signedOut) throw revokedError(this.ctx.api.revokedCode);
    throw new RelayError(0, 'network', 'the device list is out of reach');
  }

  /**
   * Signs this device in again with the account password (OPAQUE, as login) after the relay
   * refused its token while the account still lists it ('signed_out', or not yet checked): a
   * new token for this device, stored first; then it resumes (started: catch-up, socket,
   * outbox) with its history and outbox as they were. Also works on a device whose token
   * has not been refused yet (a relay restored from a backup it has not noticed): the new token
   * replaces the old. `login_failed` for a wrong password and `offline` leave everything as it
   * was; a device the list shows removed enters 'removed' (`device_removed`).
   */
  async signIn(password: string): Promise<void> {
    this.ctx.requireMe();
    await this.#checking?.catch(() => {}); // a check under way must not land after the new token
    if (this.removed || (await refusal.signIn(this.ctx, password)) === 'removed') {
      await this.#enterRemoved();
      throw revokedError('device_removed');
    }
    // The old socket and polls used the old token: start afresh with the new one.
    this.#halt();
    this.ctx.api.revoked = false;
    this.#lastRefillCheck = 0; // a relay restored from a backup may have lost our prekeys
    this.#setConnection('offline', true);
    if (this.#started) await this.start();
  }

  // ---- account ------------------------------------------------------------------------

  /** This device's name for itself (EngineOptions.deviceName), now that its id is known. */
  #nameFor(deviceId: Uint8Array, fallback: string): string {
    const n = this.o.deviceName;
    return account.deviceNameOrDefault(typeof n === 'function' ? n(shortDeviceId(deviceId)) : n, fallback);
  }

  register(username: string, password: string): Promise<void> {
    return account.register(this.ctx, username, password, (id) => this.#nameFor(id, 'First device'));
  }

  async login(username: string, password: string): Promise<void> {
    const name = await account.login(this.ctx, username, password, (id) => this.#nameFor(id, 'New device'));
    await this.sendControl([], { type: 'device-added', device: this.ctx.requireMe().deviceB64, name });
  }

  /**
   * New device: shows `code`; `done` resolves once approved, claimed and given the account key.
   * `onReach` hears after each request whether the relay answered (false: out of reach, and the
   * polls go on until it answers or the time is up), so a page can say so while it waits.
   */
  async startLink(opts: { timeoutMs?: number; pollMs?: number; onReach?: (reached: boolean) => void } = {}): Promise<{ code: string; done: Promise<void> }> {
    const link = await account.startLink(this.ctx);
    const timeoutMs = opts.timeoutMs ?? 10 * 60_000;
    const done = (async () => {
      await account.claimLinkedDevice(this.ctx, link, this.#nameFor(link.device.deviceId, 'Linked device'), { timeoutMs, pollMs: opts.pollMs ?? 1000, sleep, onReach: opts.onReach });
      // Claimed and stored: this device belongs to the account now, and nothing from here on may
      // undo that. A relay out of reach is waited out; if it outlasts the link, the next start
      // (or sync) goes on where this stopped.
      const deadline = this.ctx.now() + timeoutMs;
      let prekeys = false;
      let lastError: RelayError | null = null;
      for (;;) {
        try {
          // First the prekeys: the approving device sends the account key once it can reach us.
          if (!prekeys) await this.#refillPrekeys(true);
          prekeys = true;
          await this.sync();
          opts.onReach?.(true);
        } catch (e) {
          if (!(e instanceof RelayError && e.transient)) throw e;
          lastError = e;
          opts.onReach?.(false);
        }
        if (this.ctx.me?.account) return;
        if (this.ctx.now() > deadline) {
          if (!prekeys) {
            const why = lastError ? ` (${lastError.message})` : '';
            throw new EngineError('link_unfinished', `This device is now one of ${this.ctx.requireMe().username}’s devices, but it could not finish setting up${why}. Keep Petrel open while online: it finishes by itself once the relay answers.`);
          }
          throw new EngineError('link_timeout', 'The approving device did not send the account key in time. Enter this device’s link code on it again.');
        }
        await sleep(opts.pollMs ?? 1000);
      }
    })();
    return { code: link.code, done };
  }

  /**
   * Existing device: approve the device showing `code`; sends it the account key and history.
   * `opts.name` names it in the device list ("Device N" without one); `onApproved` hears which
   * device was listed before the wait for it begins, so a page can show (and cancel) that wait.
   *
   * The wait asks the relay for the device's bundle with backoff, from `pollMs` (1 s) growing to
   * `maxPollMs` (15 s): a new device usually comes online within seconds, and one that does not
   * must not spend the account's bundle-request allowance (the relay rate-limits those per
   * device and per account, so fast polling for 10 minutes got the other devices 429s too). It
   * stops with `link_cancelled` when `signal` aborts (an AbortSignal) and with `link_removed` once the device is
   * no longer active on the account's list (removed here or on another device): nothing is left
   * to wait for then, and the caller need not tell anyone.
   */
  async approveLink(
    code: string,
    opts: {
      timeoutMs?: number;
      pollMs?: number;
      maxPollMs?: number;
      name?: string;
      signal?: CancelSignal;
      onApproved?: (d: { deviceId: string; name: string }) => void;
      /** Tests: a fake clock (with `now` in EngineOptions). */
      sleep?: (ms: number, signal?: CancelSignal) => Promise<void>;
    } = {},
  ): Promise<{ deviceId: string; name: string }> {
    const cancelled = () => new EngineError('link_cancelled', 'Stopped waiting for the new device.');
    if (opts.signal?.aborted) throw cancelled();
    const { device, name } = await account.approveLink(this.ctx, code, opts.name);
    const me = this.ctx.requireMe();
    const deviceId = toB64(device.deviceId);
    opts.onApproved?.({ deviceId, name });
    const removed = () => new EngineError('link_removed', `${name} was removed from this account, so Petrel stopped waiting for it.`);
    const pause = opts.sleep ?? abortableSleep;
    const maxPollMs = opts.maxPollMs ?? 15_000;
    let delay = opts.pollMs ?? 1000;
    // The new device can be reached once it has claimed its token and uploaded prekeys.
    const deadline = this.ctx.now() + (opts.timeoutMs ?? 10 * 60_000);
    for (;;) {
      if (opts.signal?.aborted) throw cancelled();
      // Removed here (removeDevice refreshes the cached list): no request needed to know.
      const cached = this.ctx.lists.get(me.username)?.list;
      const entry = cached && findDevice(cached, device.deviceId);
      if (entry && entry.removedAt !== 0) throw removed();
      const counts = await this.ctx.api.bundles(me.username, [device.deviceId]).catch(() => null);
      if (opts.signal?.aborted) throw cancelled();
      if (counts?.bundles.length) {
        await this.ctx.lock(async () => {
          const bundle = decodeBundle(counts.bundles[0]!.bundle);
          verifyBundle(bundle, device);
          const addr = `${me.username}/${toHex(device.deviceId)}`;
          const rec = startSession(await this.ctx.session(addr), me.device, device, bundle, this.ctx.rng);
          await this.ctx.store.write(['sessions'], (tx) => tx.put('sessions', { address: addr, record: encodeDeviceSessions(rec) }));
          this.ctx.sessions.set(addr, rec);
        });
        break;
      }
      // The relay answers for active devices only: one it lists neither with a bundle nor as
      // unavailable is no longer active (removed on another device).
      if (counts && !counts.unavailable.includes(deviceId)) throw removed();
      if (this.ctx.now() > deadline) throw new EngineError('link_timeout', `${name} did not come online in time. It stays approved: enter its code again once it is online to finish.`);
      await pause(Math.min(delay, Math.max(0, deadline - this.ctx.now()) + 1), opts.signal);
      delay = Math.min(maxPollMs, delay * 1.5);
    }
    await this.sendControl([], { type: 'link', for: deviceId, accountSecret: toB64(me.account!.secretKey), approver: me.deviceB64 });
    try {
      await this.sendHistory(deviceId);
    } catch (e) {
      // The device is linked either way; without history it starts empty.
      this.ctx.emit({ type: 'error', code: 'history_failed', message: `The history could not be sent to the new device (${e instanceof Error ? e.message : String(e)}).` });
    }
    return { deviceId, name };
  }

  async sendHistory(forDevice: string, sinceMs = this.o.historySpanMs ? this.ctx.now() - this.o.historySpanMs : 0): Promise<void> {
    const attachment = await uploadHistory(this.ctx, sinceMs);
    await this.sendControl([], { type: 'history', for: forDevice, attachment });
  }

  async devices(): Promise<DeviceView[]> {
    const me = this.ctx.requireMe();
    const list = await deviceList(this.ctx, me.username, { refresh: true });
    return activeDevices(list).map((d) => ({ deviceId: toB64(d.deviceId), shortId: shortDeviceId(d.deviceId), name: d.name, addedAt: d.addedAt, current: equalBytes(d.deviceId, me.device.deviceId) }));
  }

  removeDevice(deviceId: string): Promise<void> {
    return account.removeDevice(this.ctx, deviceId);
  }

  /**
   * Log out: remove this device from the account — a new device list without it, signed with
   * the account key, exactly as removing another device — so the relay stops its token and the
   * other devices stop encrypting to it. The caller then erases the local data. Already removed:
   * nothing left to tell the relay.
   */
  async logOut(): Promise<void> {
    if (!this.removed) await account.removeDevice(this.ctx, this.ctx.requireMe().deviceB64, { self: true });
    await this.#enterRemoved();
  }

  // ---- receiving ----------------------------------------------------------------------

  /** Handles one batch of envelopes (socket or page); returns the cursor to acknowledge. */
  async #receive(items: readonly WireEnvelope[], collect?: MessageView[]): Promise<number> {
    const r = await processBatch(this.ctx, items);
    const views = r.added.map(messageView);
    collect?.push(...views);
    const byConv = new Map<string, MessageView[]>();
    for (const v of views) byConv.set(v.conversation, [...(byConv.get(v.conversation) ?? []), v]);
    for (const [conversation, messages] of byConv) this.ctx.emit({ type: 'messages', conversation, messages });
    if (r.touched.size) this.ctx.emit({ type: 'conversations' });
    for (const t of r.touched) if (!byConv.has(t)) this.ctx.emit({ type: 'message-updated', conversation: t, id: '' });
    await applyAfter(this, r.after, r.failures);
    return r.cursor;
  }

  /**
   * One catch-up pass: every envelope after our cursor. With waitMs, waits that long for more.
   * Returns what arrived, including what a catch-up before a group send or change stored since
   * the last sync (so the CLI's `sync` still prints it).
   */
  async sync(opts: { waitMs?: number } = {}): Promise<MessageView[]> {
    this.ctx.requireMe();
    await this.#requireToken();
    try {
      const fresh: MessageView[] = [];
      await this.#pull(fresh, opts.waitMs ?? 0);
      const out = [...(await this.#takeUnreported()), ...fresh];
      await this.drainOutbox();
      await this.#refillPrekeys().catch(() => {});
      return out;
    } catch (e) {
      // Refused during this pass: say what it means (the device list decides), not a bare 401.
      if (this.ctx.api.revoked) await this.#requireToken();
      throw e;
    }
  }

  /**
   * Others consume our one-time prekeys by fetching bundles: top the relay up before it runs out.
   * Checked at most once a minute once a check went through; after a failure, at the next call
   * (a device whose first upload failed cannot be reached until one succeeds); `force`: now.
   */
  async #refillPrekeys(force = false): Promise<void> {
    if (!force && this.ctx.now() - this.#lastRefillCheck <= 60_000) return;
    await account.refillPrekeys(this.ctx);
    this.#lastRefillCheck = this.ctx.now();
  }

  async #pull(out: MessageView[], waitMs: number): Promise<void> {
    const end = this.ctx.now() + waitMs;
    // An ack goes out beside the next page's request, not before it: the relay gathers acks for a
    // moment before it applies them (relay/inbox/acks.ts), and waiting for each one put that
    // moment between every two pages of a catch-up (10,000 messages: 20 pages, ~0.5 s). An ack
    // only lets the relay delete what we already hold; they are waited for at the end.
    const acks: Promise<unknown>[] = [];
    try {
      for (;;) {
        const { after, at } = await positionOf(this.ctx);
        const page = await this.ctx.api.inbox(after, PAGE, at);
        if (page.envelopes.length) acks.push(this.ctx.api.ack(await this.#receive(page.envelopes, out)).catch(() => {}));
        if (page.more) continue;
        if (this.ctx.now() >= end) break;
        await sleep(Math.min(500, end - this.ctx.now()));
      }
    } finally {
      await Promise.all(acks);
    }
  }

  /**
   * Before a group send or change: read the inbox, so the message goes to the group as it now
   * stands (a send from a stale view misses members added meanwhile). One request when nothing
   * waits; skipped while the live socket delivers. Offline is no error: the outbox sends later,
   * and a change made on a stale view is merged by every member (group-state.ts).
   */
  async catchUp(): Promise<void> {
    if (this.#live?.connected) return;
    const got: MessageView[] = [];
    try {
      await this.#pull(got, 0);
    } catch {
      return;
    }
    if (!got.length) return;
    await this.ctx.store.write(['meta'], async (tx) => {
      const had = ((await tx.get('meta', 'unreported'))?.value as string[] | undefined) ?? [];
      await tx.put('meta', { key: 'unreported', value: [...had, ...got.map((m) => m.key)].slice(-MAX_UNREPORTED) });
    });
  }

  async #takeUnreported(): Promise<MessageView[]> {
    const rows = await this.ctx.store.write(['meta', 'messages'], async (tx) => {
      const keys = ((await tx.get('meta', 'unreported'))?.value as string[] | undefined) ?? [];
      if (!keys.length) return [];
      await tx.delete('meta', 'unreported');
      const found: MessageRow[] = [];
      for (const k of keys) {
        const m = await tx.get('messages', k);
        if (m) found.push(m);
      }
      return found;
    });
    return rows.map(messageView);
  }

  /** Catch up, then stay live over the WebSocket (polling while it is down). */
  async start(): Promise<void> {
    if (this.#running || !this.ctx.me) return;
    this.#started = true;
    if (this.removed || this.signedOut) {
      this.ctx.emit({ type: 'connection', state: this.#connection });
      return;
    }
    this.#running = true;
    this.#setConnection('connecting');
    // Say what waits in the outbox before anything touches the network: started offline, the sync
    // below fails and the count would otherwise not be told until the network is back.
    this.ctx.emit({ type: 'outbox', pending: (await pendingRows(this.ctx)).filter(writtenByUser).length });
    try {
      await this.sync();
    } catch {
      this.#setConnection('offline');
    }
    // The token was refused meanwhile (or before, and the list could not be checked): no socket
    // with it; polling checks the list again while running.
    if (!this.#running || this.ctx.api.revoked) return this.#schedulePoll();
    void this.#refillPrekeys().catch(() => {});
    if (this.o.WebSocket) {
      const wsUrl = this.#wsUrl();
      this.#live = new LiveSocket(wsUrl, () => this.ctx.api.token, this.o.WebSocket, {
        cursor: () => positionOf(this.ctx),
        onEnvelopes: (items) => this.#receive(items),
        onState: (s) => {
          this.#setConnection(s);
          if (s === 'online') void this.drainOutbox();
        },
        onRevoked: () => void this.#onTokenRefused(),
      });
      this.#live.start();
    }
    this.#schedulePoll();
  }

  /**
   * The network is back (the page's `online` event): retry the outbox now rather than after its
   * backoff, reconnect the socket, and catch up.
   */
  async wake(): Promise<void> {
    if (!this.ctx.me || this.removed || this.signedOut) return;
    await this.ctx.store.write(['outbox'], async (tx) => {
      for (const r of await tx.getAll('outbox')) if (r.nextAttemptAt > 0) await tx.put('outbox', { ...r, nextAttemptAt: 0 });
    });
    this.#live?.kick();
    await this.sync().catch(() => this.drainOutbox());
  }

  async stop(): Promise<void> {
    this.#started = false;
    this.#halt();
    await this.#draining;
    // A refused token's check stores its outcome: let it, before the store closes.
    await this.#checking?.catch(() => {});
  }

  #wsUrl(): string {
    const base = this.o.relayUrl || (globalThis as { location?: { origin: string } }).location?.origin || '';
    return base.replace(/^http/, 'ws') + '/v1/ws';
  }

  /** `force`: leave 'signed_out' (signIn, or the list now showing removal); nothing leaves 'removed'. */
  #setConnection(s: ConnectionState, force = false): void {
    // 'removed' is final and 'signed_out' waits for signIn: a socket or poll finishing late must
    // not report 'offline' over either.
    if (s === this.#connection || this.#connection === 'removed') return;
    if (this.#connection === 'signed_out' && !force && s !== 'removed') return;
    this.#connection = s;
    this.ctx.emit({ type: 'connection', state: s });
  }

  #schedulePoll(): void {
    if (!this.#running) return;
    this.#pollTimer = setTimeout(async () => {
      if (!this.#live?.connected) {
        try {
          await this.sync();
          if (!this.o.WebSocket) this.#setConnection('online');
        } catch {
          this.#setConnection('offline');
        }
      }
      this.#schedulePoll();
    }, this.o.pollMs ?? 5000);
  }

  // ---- sending ------------------------------------------------------------------------

  /** Drains the outbox once (concurrent callers share the pass). */
  drainOutbox(): Promise<void> {
    if (this.ctx.api.revoked) return Promise.resolve(); // nothing can be sent with a dead token
    if (this.#draining) {
      this.#redrain = true;
      return this.#draining;
    }
    this.#draining = (async () => {
      try {
        do {
          this.#redrain = false;
          const rows = await pendingRows(this.ctx);
          this.ctx.emit({ type: 'outbox', pending: rows.filter(writtenByUser).length });
          let blocked = false;
          for (const listed of rows) {
            // As it is now: a failure earlier in this pass may have handed its undo to this row (changes.ts).
            const row = await this.ctx.store.read(['outbox'], (tx) => tx.get('outbox', listed.id));
            if (!row) continue;
            if (row.nextAttemptAt > this.ctx.now()) {
              blocked = true;
              break;
            }
            if ((await sendOne(this.ctx, row)) === 'retry') {
              blocked = true;
              break;
            }
          }
          const left = await pendingRows(this.ctx);
          this.ctx.emit({ type: 'outbox', pending: left.filter(writtenByUser).length });
          if (blocked && left.length && this.#running) {
            if (this.#outboxTimer) clearTimeout(this.#outboxTimer);
            const wait = Math.max(250, Math.min(...left.map((r) => r.nextAttemptAt)) - this.ctx.now());
            this.#outboxTimer = setTimeout(() => void this.drainOutbox(), wait);
          }
          if (blocked) break;
        } while (this.#redrain);
      } finally {
        this.#draining = null;
      }
    })();
    return this.#draining;
  }

  /**
   * Queues content for `to` (usernames; our other devices always get it too). Returns its id.
   * `conversation` is the row to store with it, or an update of the row as it is inside the
   * transaction (so a change committed meanwhile, such as a merged group state, is not lost).
   */
  async enqueue(
    to: readonly string[],
    conv: ConvRef | null,
    body: Body,
    message?: (id: string, at: number) => MessageRow | null,
    conversation?: ConversationRow | ConversationUpdate,
  ): Promise<string> {
    const me = this.ctx.requireMe();
    const id = newId(this.ctx.rng);
    const at = this.#nextAt();
    const content = encodeContent({ v: 1, id, at, conv, body });
    const row = message?.(id, at) ?? null;
    await this.ctx.store.write(['outbox', 'messages', 'conversations', 'seen'], async (tx) => {
      await tx.put('outbox', { id, createdAt: at, to: [...new Set(to.length ? to : [me.username])], content, attempts: 0, nextAttemptAt: 0, lastError: null, sealed: null });
      await tx.put('seen', { key: `${me.username}/${id}`, at });
      if (row) await tx.put('messages', row);
      if (conversation && 'update' in conversation) {
        const cur = await tx.get('conversations', conversation.id);
        if (cur) await tx.put('conversations', conversation.update(cur));
      } else if (conversation) await tx.put('conversations', conversation);
    });
    if (row) this.ctx.emit({ type: 'messages', conversation: row.conversation, messages: [messageView(row)] });
    if (conversation) this.ctx.emit({ type: 'conversations' });
    return id;
  }

  sendControl(to: readonly string[], body: Body, conv: ConvRef | null = null): Promise<string> {
    return this.enqueue(to, conv, body).then(async (id) => {
      await this.drainOutbox();
      return id;
    });
  }

  /** The conversation's recipients and how it is named on the wire. */
  async route(conversationId: string): Promise<{ conv: ConversationRow; to: string[]; ref: ConvRef }> {
    const conv = await this.ctx.store.read(['conversations'], (tx) => tx.get('conversations', conversationId));
    if (!conv) throw new EngineError('unknown_conversation', 'That conversation does not exist.');
    if (conv.left) throw new EngineError('left_group', 'You are no longer a member of this group.');
    if (conv.kind === 'group') return { conv, to: [...conv.members], ref: { t: 'group', id: conv.id.slice(6), ver: conv.groupVersion } };
    return { conv, to: [conv.title], ref: { t: 'dm', to: conv.title } };
  }

  /** route(), after catching up for a group, so a group message reaches the members as they now are. */
  async #routeFresh(conversationId: string): ReturnType<Engine['route']> {
    if (conversationId.startsWith('group:')) await this.catchUp();
    return this.route(conversationId);
  }

  async openDirect(username: string): Promise<string> {
    const me = this.ctx.requireMe();
    const list = await lookUp(this.ctx, username);
    const name = list.userId;
    if (name === me.username) throw new EngineError('invalid_request', 'That is you. Pick someone else to talk to.');
    const id = `dm:${name}`;
    await this.ctx.store.write(['conversations'], async (tx) => {
      if (!(await tx.get('conversations', id))) await tx.put('conversations', newConversation(id, 'direct', name, [name], this.ctx.now()));
    });
    this.ctx.emit({ type: 'conversations' });
    return id;
  }

  /** Resolves 'username' or 'group:ID' (as the CLI takes them) to a conversation id. */
  async resolve(target: string): Promise<string> {
    if (target.startsWith('group:') || target.startsWith('dm:')) return target;
    return this.openDirect(target);
  }

  async send(conversationId: string, text: string, opts: { replyTo?: string } = {}): Promise<{ id: string; status: MessageRow['status'] }> {
    const me = this.ctx.requireMe();
    checkLength(text); // before routeFresh's catch-up: a refused text costs no request
    const { to, ref } = await this.#routeFresh(conversationId);
    if (!text.trim()) throw new EngineError('empty_message', 'Type a message first.');
    const body: Body = { type: 'text', text, ...(opts.replyTo ? { replyTo: opts.replyTo } : {}) };
    const id = await this.enqueue(to, ref, body, (mid, at) => ownRow(me.username, me.deviceB64, conversationId, mid, at, text, opts.replyTo ?? null, null), {
      id: conversationId,
      update: (cur) => ({ ...cur, lastActivity: this.ctx.now(), lastPreview: preview({ text, attachment: null, deleted: false }), unread: 0 }),
    });
    await this.drainOutbox();
    const row = await this.ctx.store.read(['messages'], (tx) => tx.get('messages', `${me.username}/${id}`));
    return { id, status: row?.status ?? 'pending' };
  }

  async sendAttachment(conversationId: string, file: { name: string; mime: string; bytes: Uint8Array }, text = '', onProgress?: Progress): Promise<{ id: string; status: MessageRow['status'] }> {
    const me = this.ctx.requireMe();
    checkLength(text);
    const { to, ref } = await this.#routeFresh(conversationId);
    const attachment = await uploadAttachment(this.ctx, file, onProgress);
    const ref2 = { id: attachment.id, pointer: fromB64(attachment.pointer), name: attachment.name, mime: attachment.mime, size: attachment.size };
    const id = await this.enqueue(to, ref, { type: 'attachment', text, attachment }, (mid, at) => ownRow(me.username, me.deviceB64, conversationId, mid, at, text, null, ref2), {
      id: conversationId,
      update: (cur) => ({ ...cur, lastActivity: this.ctx.now(), lastPreview: preview({ text, attachment: ref2, deleted: false }), unread: 0 }),
    });
    await this.drainOutbox();
    const row = await this.ctx.store.read(['messages'], (tx) => tx.get('messages', `${me.username}/${id}`));
    return { id, status: row?.status ?? 'pending' };
  }

  /**
   * Sends a message that failed (status 'failed') again: the same id, time and content, so the
   * relay's idempotency and every receiver's de-duplication (apply.ts's `seen`) treat it as the
   * one message it is, even if a copy got through before. Anything else is left as it is.
   */
  async retry(conversationId: string, messageKey: string): Promise<void> {
    const me = this.ctx.requireMe();
    const { to, ref } = await this.#routeFresh(conversationId);
    const m = await this.ctx.store.read(['messages'], (tx) => tx.get('messages', messageKey));
    if (!m || m.conversation !== conversationId || m.sender !== me.username || m.system) throw new EngineError('not_found', 'That message is not one of yours in this conversation.');
    if (m.status !== 'failed' || m.deleted) return;
    const reply = m.replyTo ? { replyTo: m.replyTo } : {};
    const body: Body = m.attachment
      ? { type: 'attachment', text: m.text, attachment: { id: m.attachment.id, pointer: toB64(m.attachment.pointer), name: m.attachment.name, mime: m.attachment.mime, size: m.attachment.size }, ...reply }
      : { type: 'text', text: m.text, ...reply };
    const content = encodeContent({ v: 1, id: m.id, at: m.sentAt, conv: ref, body });
    // Queued behind what waits already (the outbox drains oldest first), under the message's own id.
    const queuedAt = this.#nextAt();
    const queued = await this.ctx.store.write(['outbox', 'messages'], async (tx) => {
      const cur = await tx.get('messages', messageKey);
      if (cur?.status !== 'failed' || (await tx.get('outbox', m.id))) return false;
      await tx.put('outbox', { id: m.id, createdAt: queuedAt, to: [...new Set(to.length ? to : [me.username])], content, attempts: 0, nextAttemptAt: 0, lastError: null, sealed: null });
      await tx.put('messages', { ...cur, status: 'pending', failedCode: undefined });
      return true;
    });
    if (!queued) return;
    this.ctx.emit({ type: 'message-updated', conversation: conversationId, id: m.id });
    await this.drainOutbox();
  }

  async attachmentBytes(messageKey: string): Promise<{ name: string; mime: string; bytes: Uint8Array }> {
    const m = await this.ctx.store.read(['messages'], (tx) => tx.get('messages', messageKey));
    if (!m?.attachment) throw new EngineError('not_found', 'That message has no attachment.');
    return { name: m.attachment.name, mime: m.attachment.mime, bytes: await downloadAttachment(this.ctx, m.attachment.id, m.attachment.pointer) };
  }

  /** Reaction ('' removes ours), edit and delete of a message by its key (`sender/id`). */
  async react(conversationId: string, messageKey: string, emoji: string): Promise<void> {
    await this.#mutate(conversationId, messageKey, { type: 'reaction', target: messageKey, emoji }, (m, me) => {
      const reactions = { ...m.reactions };
      if (emoji) reactions[me] = emoji;
      else delete reactions[me];
      return { ...m, reactions };
    });
  }

  async edit(conversationId: string, messageKey: string, text: string): Promise<void> {
    checkLength(text);
    await this.#mutate(conversationId, messageKey, { type: 'edit', target: messageKey, text }, (m, me) => (m.sender === me ? { ...m, text, editedAt: this.ctx.now() } : null));
  }

  async deleteForEveryone(conversationId: string, messageKey: string): Promise<void> {
    await this.#mutate(conversationId, messageKey, { type: 'delete', target: messageKey }, (m, me) => (m.sender === me ? { ...m, text: '', attachment: null, deleted: true } : null));
  }

  /**
   * Applies a reaction, edit or delete here and queues it, in one transaction, with what the
   * others see of the message until it goes through (changes.ts: kept to be put back should it
   * fail for good and be discarded). A failed change of the same kind it replaces is dropped.
   */
  async #mutate(conversationId: string, key: string, body: Extract<Body, { type: ChangeKind }>, change: (m: MessageRow, me: string) => MessageRow | null): Promise<void> {
    const me = this.ctx.requireMe();
    const { to, ref } = await this.route(conversationId);
    const id = newId(this.ctx.rng);
    const at = this.#nextAt();
    const content = encodeContent({ v: 1, id, at, conv: ref, body });
    const m = await this.ctx.store.write(['messages', 'conversations', 'outbox', 'seen'], async (tx) => {
      const m = await tx.get('messages', key);
      if (!m || m.conversation !== conversationId) throw new EngineError('not_found', 'That message is not in this conversation.');
      const next = change(m, me.username);
      if (!next) throw new EngineError('forbidden', 'Only the sender can change this message.');
      const { row, undo } = changes.supersede(m, next, body.type, me.username);
      await tx.put('messages', row);
      await tx.put('outbox', { id, createdAt: at, to: [...new Set(to.length ? to : [me.username])], content, attempts: 0, nextAttemptAt: 0, lastError: null, sealed: null, undo });
      await tx.put('seen', { key: `${me.username}/${id}`, at });
      if (body.type === 'reaction') return m;
      // An edit or a delete changes what the chat list previews (and searches): never keep the old text.
      const conv = await tx.get('conversations', conversationId);
      if (conv) await tx.put('conversations', { ...conv, lastPreview: await currentPreview(tx, conversationId) });
      return m;
    });
    this.ctx.emit({ type: 'message-updated', conversation: conversationId, id: m.id });
    if (body.type !== 'reaction') this.ctx.emit({ type: 'conversations' });
    await this.drainOutbox();
  }

  /**
   * Queues again a reaction, edit or delete of ours that failed for good (MessageView's
   * failedChanges, by its id): under its own id, time and body, so it is applied once at most
   * anywhere (changes.ts). Nothing happens if it was retried, discarded or replaced already.
   */
  async retryChange(conversationId: string, messageKey: string, changeId: string): Promise<void> {
    const route = await this.#routeFresh(conversationId);
    // Queued behind what waits already (the outbox drains oldest first).
    if (!(await changes.retryChange(this.ctx, conversationId, messageKey, changeId, route, this.#nextAt()))) return;
    this.ctx.emit({ type: 'message-updated', conversation: conversationId, id: messageKey.slice(messageKey.indexOf('/') + 1) });
    await this.drainOutbox();
  }

  /**
   * Gives up a reaction, edit or delete of ours that failed for good: the message shows again what
   * the others see (the earlier text, the message itself, or our earlier reaction).
   */
  async discardChange(conversationId: string, messageKey: string, changeId: string): Promise<void> {
    const r = await changes.discardChange(this.ctx, conversationId, messageKey, changeId);
    if (!r.changed) return;
    this.ctx.emit({ type: 'message-updated', conversation: conversationId, id: messageKey.slice(messageKey.indexOf('/') + 1) });
    if (r.textChanged) this.ctx.emit({ type: 'conversations' });
  }

  /** Strictly increasing send times in this process, so the outbox and receivers keep our order. */
  #nextAt(): number {
    return (this.#lastAt = Math.max(this.ctx.now(), this.#lastAt + 1));
  }

  /** Marks the conversation read here, tells the senders (read receipts) and our other devices. */
  async markRead(conversationId: string): Promise<void> {
    const me = this.ctx.requireMe();
    const { conv, to, ref } = await this.route(conversationId);
    const unreadRows = (await this.messages(conversationId, { limit: Math.max(conv.unread, 1) + 50 })).filter((m) => m.from !== me.username && !m.system);
    await this.ctx.store.write(['conversations'], async (tx) => {
      const cur = await tx.get('conversations', conversationId);
      if (cur) await tx.put('conversations', { ...cur, unread: 0 });
    });
    this.ctx.emit({ type: 'conversations' });
    if (!conv.unread || !unreadRows.length) return;
    await this.sendControl(to, { type: 'receipt', kind: 'read', targets: unreadRows.map((m) => `${m.from}/${m.id}`) }, ref);
  }

  typing(conversationId: string, on: boolean): void {
    void this.route(conversationId)
      .then(({ to, ref }) => this.sendControl(to, { type: 'typing', on }, ref))
      .catch(() => {});
  }

  // ---- reading ------------------------------------------------------------------------

  async conversations(): Promise<ConversationRow[]> {
    return this.ctx.store.read(['conversations'], (tx) => tx.getAll('conversations', { index: 'byActivity', reverse: true }));
  }

  /**
   * The history is still on its way to this device from another of the account's devices (after
   * a password login or a link) until its package has been imported (history.ts).
   */
  async historyDue(): Promise<boolean> {
    return !!(await this.ctx.store.read(['meta'], (tx) => tx.get('meta', 'historyDue')));
  }

  /** Everyone whose key is pinned here, with whether it is verified (refreshed with conversations). */
  async contacts(): Promise<ContactView[]> {
    const rows = await this.ctx.store.read(['contacts'], (tx) => tx.getAll('contacts'));
    return rows.map((c) => ({ username: c.username, verified: c.verified, keyChanged: c.keyChangedAt !== null }));
  }

  /**
   * Messages oldest first, one page at a time (a long conversation is never loaded whole):
   * the newest `limit`, or those just `before` / just `after` an order value.
   */
  async messages(conversationId: string, opts: { before?: number; after?: number; limit?: number } = {}): Promise<MessageView[]> {
    const limit = opts.limit ?? 50;
    if (opts.after !== undefined) {
      const rows = await this.ctx.store.read(['messages'], (tx) =>
        tx.getAll('messages', { index: 'byConversation', lower: [conversationId, opts.after! + 1], upper: [conversationId, Number.MAX_SAFE_INTEGER], limit }),
      );
      return rows.map(messageView);
    }
    const rows = await this.ctx.store.read(['messages'], (tx) =>
      tx.getAll('messages', { index: 'byConversation', lower: [conversationId, 0], upper: [conversationId, opts.before !== undefined ? opts.before - 1 : Number.MAX_SAFE_INTEGER], reverse: true, limit }),
    );
    return rows.reverse().map(messageView);
  }

  // ---- groups -------------------------------------------------------------------------

  createGroup(name: string, members: readonly string[]): Promise<string> {
    return groups.createGroup(this, name, members);
  }
  addMember(groupId: string, username: string): Promise<void> {
    return groups.changeGroup(this, groupId, 'add', username);
  }
  removeMember(groupId: string, username: string): Promise<void> {
    return groups.changeGroup(this, groupId, 'remove', username);
  }
  renameGroup(groupId: string, name: string): Promise<void> {
    return groups.changeGroup(this, groupId, 'rename', name);
  }
  leaveGroup(groupId: string): Promise<void> {
    return groups.changeGroup(this, groupId, 'leave', this.ctx.requireMe().username);
  }

  /**
   * Removes a group we are no longer in from this device: its row and its messages. Only a left
   * group: nothing more arrives for it (apply.ts takes nothing for a group we are not in), while
   * a conversation still going would come back with its next message, its earlier ones gone.
   * Being added again brings it back, as a new group would come. Other devices keep theirs.
   */
  async removeConversation(conversationId: string): Promise<void> {
    await this.ctx.store.write(['conversations', 'messages'], async (tx) => {
      const conv = await tx.get('conversations', conversationId);
      if (!conv) return;
      if (!conv.left) throw new EngineError('still_member', 'Leave the group before removing it from your chats.');
      const rows = await tx.getAll('messages', { index: 'byConversation', lower: [conversationId, 0], upper: [conversationId, Number.MAX_SAFE_INTEGER] });
      for (const r of rows) await tx.delete('messages', r.key);
      await tx.delete('conversations', conversationId);
    });
    this.ctx.emit({ type: 'conversations' });
  }

  // ---- trust --------------------------------------------------------------------------

  async safetyNumber(username: string): Promise<SafetyNumberView> {
    const me = this.ctx.requireMe();
    if (!me.account) throw new EngineError('not_ready', 'This device has not received the account key yet.');
    const list = await lookUp(this.ctx, username);
    const contact = await this.ctx.store.read(['contacts'], (tx) => tx.get('contacts', list.userId));
    const sn = safetyNumber(me.username, me.account.publicKey, list.userId, list.accountKey);
    return { digits: sn.digits, qr: toB64(sn.qr), verified: !!contact?.verified, keyChanged: !!contact?.keyChangedAt };
  }

  /**
   * Marks `username` verified (or not) for the account key we hold for them. Pass the digits the
   * person compared: if the key changed since they were shown, nothing is marked (they compared
   * a number that no longer applies).
   */
  async markVerified(username: string, verified = true, comparedDigits?: string): Promise<void> {
    const me = this.ctx.requireMe();
    const known = await this.ctx.store.read(['contacts'], (tx) => tx.get('contacts', username));
    if (!known) throw new EngineError('unknown_user', 'Look this user up first.');
    if (verified && comparedDigits !== undefined) {
      if (!me.account) throw new EngineError('not_ready', 'This device has not received the account key yet.');
      if (safetyNumber(me.username, me.account.publicKey, username, known.accountKey).digits !== comparedDigits) {
        throw keyChangedError(username);
      }
    }
    await this.ctx.store.write(['contacts', 'conversations'], async (tx) => {
      const c = (await tx.get('contacts', username))!;
      // The key compared above is the one marked: a change committed meanwhile wins (and has
      // already cleared the mark, so un-marking needs nothing more).
      if (!equalBytes(c.accountKey, known.accountKey)) {
        if (!verified) return;
        throw keyChangedError(username);
      }
      await putVerified(tx, c, verified);
    });
    this.ctx.emit({ type: 'conversations' });
    // Our other devices take it too, for this key only (queued if offline, like any message).
    await this.sendControl([], { type: 'verified', user: username, accountKey: toB64(known.accountKey), verified });
  }

  async acknowledgeKeyChange(conversationId: string): Promise<void> {
    await this.ctx.store.write(['conversations'], async (tx) => {
      const c = await tx.get('conversations', conversationId);
      if (c) await tx.put('conversations', { ...c, keyWarning: false });
    });
    this.ctx.emit({ type: 'conversations' });
  }

  /** The relay's VAPID key and a push subscription for this device. */
  async vapidKey(): Promise<string> {
    return (await this.ctx.api.vapidKey()).publicKey;
  }
  async setPushSubscription(sub: { endpoint: string; keys: { p256dh: string; auth: string } } | null): Promise<void> {
    if (sub) await this.ctx.api.putPushSubscription(sub);
    else await this.ctx.api.deletePushSubscription().catch((e) => {
      if (!(e instanceof RelayError && e.status === 404)) throw e;
    });
  }
}

function ownRow(me: string, device: string, conversation: string, id: string, at: number, text: string, replyTo: string | null, attachment: MessageRow['attachment']): MessageRow {
  return newMessageRow({ id, conversation, sender: me, senderDevice: device, sentAt: at, receivedAt: at, text, replyTo, attachment, status: 'pending' });
}

/**
 * Receivers refuse a text over MAX_TEXT (protocol/content.ts) as undecodable: sent anyway, it would
 * show as sent here and never appear anywhere else. Refuse it before it is queued.
 */
function checkLength(text: string): void {
  if (text.length > MAX_TEXT) {
    throw new EngineError('message_too_long', `A message holds at most ${MAX_TEXT.toLocaleString('en')} characters; this one has ${text.length.toLocaleString('en')}. Split it, or send it as a file.`);
  }
}

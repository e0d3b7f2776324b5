/**
 * Live delivery: GET /v1/ws (WebSocket, through @hono/node-server's upgradeWebSocket).
 *
 * Protocol (JSON text frames):
 *   client -> { type: "auth", token, after?, at? }   first frame, within wsAuthTimeoutMs; the
 *                                               token stays out of the URL (and so out of access
 *                                               logs); `after` = the last seq the device has
 *                                               (default 0), `at` = that envelope's timestamp
 *                                               (after a restore from a backup: realignInbox)
 *   server -> { type: "ready", after }
 *   server -> { type: "envelopes", items: [envelope] }   catch-up pages, then live, in seq order
 *   client -> { type: "ack", seq, confirm? }    deletes the device's envelopes up to seq
 *   server -> { type: "acked", seq }            only if an ack asked (confirm: true), once
 *                                               applied; acks applied together get one answer,
 *                                               carrying the highest seq acknowledged. A device
 *                                               needs none: after a lost ack the envelopes come
 *                                               again and it skips them by seq. (Answering every
 *                                               ack was a frame per ack window per socket.)
 *   client -> { type: "submit", ref, clientMessageId, to, payload, envelopes }   as POST /v1/messages
 *   server -> { type: "submitted", ref, messageId, timestamp }   once committed
 *   server -> { type: "submit_error", ref, error, message, ...details }   what the route would answer
 *   server -> { type: "error", error, message } then close
 * Close codes: 4400 bad frame, 4401 not authenticated, 4403 device removed or token replaced,
 * 4008 too far behind (send buffer over wsMaxBufferedBytes): reconnect and resume by seq.
 *
 * Catch-up reads pages from the database and waits for the send buffer to drain between
 * pages; live envelopes committed by this process come straight from the writer, those
 * committed by another process arrive as a NOTIFY hint and are read from the database. A gap
 * (seq not next after the last one sent) is always filled from the database, so a socket
 * never skips or reorders. If this process's LISTEN connection drops, the hub has every socket
 * re-check its token and catch up from the database once LISTEN is re-established.
 */
import type { Socket } from 'node:net';
import type { WebSocketLike } from '@hono/node-server';
import type { WSContext } from 'hono/ws';
import * as v from 'valibot';
import { readInbox, realignInbox, recordBytes, recordJson } from '../inbox/reader.ts';
import { errorFields } from '../log.ts';
import { authenticateDevice, type DeviceAuth } from '../middleware/auth.ts';
import type { InboxRecord, Subscriber } from '../notify/hub.ts';
import type { RelayServices } from '../services.ts';
import { ApiError } from '../errors.ts';
import { type SubmitBody, submitMessage, submitSchema } from './messages.ts';
import { describe } from '../validate.ts';

/** Frames a client may send after `auth` without waiting for `ready`. */
const MAX_EARLY_FRAMES = 64;

export const WS_CLOSE = { badFrame: 4400, unauthorized: 4401, revoked: 4403, resync: 4008 } as const;

const frameSchema = (config: RelayServices['config']) =>
  v.variant('type', [
    v.object({
      type: v.literal('auth'),
      token: v.pipe(v.string(), v.maxLength(200)),
      after: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER))),
      at: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER))),
    }),
    v.object({ type: v.literal('ack'), seq: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER)), confirm: v.optional(v.boolean()) }),
    // A submission over the socket: the same body and checks as POST /v1/messages, answered by
    // `submitted` or `submit_error` carrying the client's `ref`.
    v.object({ ...submitSchema(config).entries, type: v.literal('submit'), ref: v.pipe(v.string(), v.maxLength(64)) }),
  ]);
let Frame: ReturnType<typeof frameSchema> | undefined;

type Ws = WSContext<WebSocketLike>;

export class DeviceSocket implements Subscriber {
  private auth: DeviceAuth | undefined;
  /** Kept for re-checks after lost notifications (see resync); never logged or sent. */
  private token = '';
  private authenticating = false;
  /** Frames that arrived while the token was being checked, handled once it is. */
  private readonly early: unknown[] = [];
  private sent = 0;
  private pumping = false;
  private dirty = false;
  private closed = false;
  /** A frame was written this turn of the event loop; the socket, while later ones are held in it (see pace). */
  private wroteThisTurn = false;
  private corked: Socket | undefined;
  /** Acks sent by the device and not yet applied; the highest seq it acknowledged. */
  private acking = 0;
  private ackedUpTo = 0;
  private confirmAcks = false;
  private unsubscribe: (() => void) | undefined;
  private readonly authTimer: NodeJS.Timeout;

  constructor(
    private readonly s: RelayServices,
    private readonly ws: Ws,
  ) {
    this.authTimer = setTimeout(() => this.fail(WS_CLOSE.unauthorized, 'unauthorized', 'no auth frame in time'), s.config.wsAuthTimeoutMs);
  }

  private get buffered(): number {
    return (this.ws.raw as unknown as { bufferedAmount?: number } | undefined)?.bufferedAmount ?? 0;
  }

  onMessage(data: unknown): void {
    if (this.closed) return;
    if (this.authenticating && !this.auth) {
      // A client may send its first frames without waiting for `ready`: they wait for the token check.
      if (this.early.length >= MAX_EARLY_FRAMES) return this.fail(WS_CLOSE.badFrame, 'invalid_request', 'too many frames before ready');
      this.early.push(data);
      return;
    }
    let frame: v.InferOutput<ReturnType<typeof frameSchema>>;
    let json: unknown;
    try {
      if (typeof data !== 'string' || data.length > this.s.config.maxMessageBodyBytes) throw new Error('frame');
      json = JSON.parse(data);
      frame = v.parse((Frame ??= frameSchema(this.s.config)), json);
    } catch (e) {
      // A submission whose body fails validation is refused like POST /v1/messages' 400, by its
      // ref; the socket (and the other submissions in flight on it) stays.
      // `json` may be any JSON value here (null, a number, an array...), not only an object.
      const fields = typeof json === 'object' && json !== null ? (json as { type?: unknown; ref?: unknown }) : {};
      const ref = fields.ref;
      if (this.auth && e instanceof v.ValiError && fields.type === 'submit' && typeof ref === 'string' && ref.length <= 64) {
        return this.send({ type: 'submit_error', ref, error: 'invalid_request', message: describe('json', e.issues) });
      }
      return this.fail(WS_CLOSE.badFrame, 'invalid_request', 'bad frame');
    }
    if (frame.type === 'auth') void this.authenticate(frame.token, frame.after ?? 0, frame.at);
    else if (!this.auth) this.fail(WS_CLOSE.unauthorized, 'unauthorized', 'authenticate first');
    // An ack over a socket covers at most what the socket sent: past it, it would delete envelopes
    // the device may never have received. (Not a bad frame: a device that also synced over HTTP
    // may hold more; those are acknowledged once the socket has sent them too.)
    else if (frame.type === 'ack') void this.ack(Math.min(frame.seq, this.sent), frame.confirm === true);
    else void this.submit(frame);
  }

  /** A frame handler threw (a bug): log it and close this socket, not the process. */
  crashed(e: unknown): void {
    this.s.log('error', 'socket frame handler failed', errorFields(e));
    this.fail(1011, 'internal', 'internal error');
  }

  onClose(): void {
    this.closed = true;
    clearTimeout(this.authTimer);
    this.unsubscribe?.();
  }

  private async authenticate(token: string, after: number, at: number | undefined): Promise<void> {
    if (this.auth || this.authenticating) return this.fail(WS_CLOSE.badFrame, 'invalid_request', 'already authenticated');
    this.authenticating = true;
    try {
      const auth = await authenticateDevice(this.s.db, token);
      if (!auth) return this.fail(WS_CLOSE.unauthorized, 'unauthorized', 'invalid device token');
      if (this.closed) return;
      clearTimeout(this.authTimer);
      // A cursor past the inbox's end (the relay was restored from a backup): what was stored
      // since is moved to follow it (realignInbox).
      if (after > 0 && (await realignInbox(this.s.db, auth.device, after, at))) {
        this.s.log('warn', 'device cursor past its inbox end: envelopes renumbered after it (relay restored from a backup?)', { device: auth.device, after });
      }
      if (this.closed) return;
      this.auth = auth;
      this.token = token;
      this.sent = after;
      this.unsubscribe = this.s.hub.subscribe(auth.device, this);
      // A revocation between the lookup and the subscription would be missed: look again.
      if (!(await authenticateDevice(this.s.db, token))) return this.revoked();
      this.send({ type: 'ready', after });
      for (const d of this.early.splice(0)) this.onMessage(d);
      await this.pump();
    } catch (e) {
      this.s.log('error', 'socket auth failed', errorFields(e));
      this.fail(1011, 'internal', 'internal error');
    }
  }

  private async submit(frame: SubmitBody & { ref: string }): Promise<void> {
    const { ref, type: _type, ...body } = frame as SubmitBody & { ref: string; type: string };
    try {
      const r = await submitMessage(this.s, this.auth!, body);
      this.send({ type: 'submitted', ref, ...r });
    } catch (e) {
      if (e instanceof ApiError) return this.send({ type: 'submit_error', ref, ...e.body() });
      this.s.log('error', 'socket submit failed', errorFields(e));
      this.send({ type: 'submit_error', ref, error: 'internal', message: 'internal error' });
    }
  }

  private async ack(seq: number, confirm: boolean): Promise<void> {
    this.acking++;
    this.ackedUpTo = Math.max(this.ackedUpTo, seq);
    this.confirmAcks ||= confirm;
    try {
      await this.s.acks.ack(this.auth!.device, seq);
      // Acks applied together are answered once, with the highest seq: a frame per ack was as
      // many frames as envelopes.
      if (--this.acking === 0 && this.confirmAcks) {
        this.confirmAcks = false;
        this.send({ type: 'acked', seq: this.ackedUpTo });
      }
    } catch (e) {
      this.s.log('error', 'socket ack failed', errorFields(e));
      this.fail(1011, 'internal', 'internal error');
    }
  }

  records(records: readonly InboxRecord[]): void {
    if (this.closed || !this.auth) return;
    if (this.pumping) {
      this.dirty = true;
      return;
    }
    const fresh = records.filter((r) => r.seq > this.sent);
    if (fresh.length === 0) return;
    if (fresh[0]!.seq !== this.sent + 1) return void this.pump();
    // More than a page (a burst of large payloads in one batch): read it in pages, paced by the
    // send buffer, as a catch-up would, rather than as one frame of any size.
    if (fresh.length > 1 && fresh.reduce((n, r) => n + recordBytes(r), 0) > this.s.config.inboxPageMaxBytes) return void this.pump();
    this.sendRecords(fresh);
  }

  hint(seq: number): void {
    if (!this.closed && this.auth && seq > this.sent) void this.pump();
  }

  revoked(): void {
    this.fail(WS_CLOSE.revoked, 'unauthorized', 'device removed or token replaced');
  }

  resync(): void {
    if (this.closed || !this.auth) return;
    authenticateDevice(this.s.db, this.token).then(
      (still) => {
        if (!still) this.revoked();
        else void this.pump();
      },
      (e) => this.s.log('warn', 'socket resync failed', errorFields(e)),
    );
  }

  /** Reads from the database after the last sent seq until caught up (coalescing wake-ups). */
  private async pump(): Promise<void> {
    if (this.pumping) {
      this.dirty = true;
      return;
    }
    this.pumping = true;
    const { inboxPageMax, inboxPageMaxBytes } = this.s.config;
    try {
      do {
        this.dirty = false;
        for (;;) {
          const { records, more } = await readInbox(this.s.db, this.auth!.device, this.sent, inboxPageMax, inboxPageMaxBytes);
          if (this.closed) return;
          if (records.length) this.sendRecords(records);
          if (!more || this.closed) break;
          await this.drained();
          if (this.closed) return;
        }
      } while (this.dirty && !this.closed);
    } catch (e) {
      this.s.log('error', 'socket catch-up failed', errorFields(e));
      this.fail(1011, 'internal', 'internal error');
    } finally {
      this.pumping = false;
    }
  }

  /** Waits until the send buffer is below half its limit (catch-up pacing). */
  private async drained(): Promise<void> {
    const low = this.s.config.wsMaxBufferedBytes / 2;
    while (!this.closed && this.buffered > low) await new Promise((r) => setTimeout(r, 5));
  }

  private sendRecords(recs: readonly InboxRecord[]): void {
    if (this.buffered > this.s.config.wsMaxBufferedBytes) {
      return this.fail(WS_CLOSE.resync, 'rate_limited', 'too far behind; reconnect and resume by seq');
    }
    this.sent = recs[recs.length - 1]!.seq;
    this.s.metrics.envelopesDelivered.inc({}, recs.length);
    this.send({ type: 'envelopes', items: recs.map(recordJson) });
  }

  private send(msg: unknown): void {
    if (this.closed) return;
    this.pace();
    this.ws.send(JSON.stringify(msg));
  }

  /**
   * The first frame of a turn of the event loop goes out at once; from the second on, frames are
   * held in the socket and written in one system call after the turn. A committed batch answers
   * many submissions of one sender at once, and each frame written alone cost a write(2) — under
   * load the largest single cost of the relay process. Holding the first one too delayed every
   * answer by whatever else the turn did (at 16 in flight, paired runs: p99 37 ms instead of 42).
   * (`ws` corks around each frame itself; corking nests. `_socket` is ws's net.Socket.)
   */
  private pace(): void {
    if (this.corked) return;
    if (!this.wroteThisTurn) {
      this.wroteThisTurn = true;
      setImmediate(() => {
        this.wroteThisTurn = false;
        const sock = this.corked;
        this.corked = undefined;
        sock?.uncork();
      });
      return;
    }
    const sock = (this.ws.raw as unknown as { _socket?: Socket } | undefined)?._socket;
    if (!sock || sock.destroyed) return;
    this.corked = sock;
    sock.cork();
  }

  private fail(code: number, error: string, message: string): void {
    if (this.closed) return;
    this.send({ type: 'error', error, message });
    this.onClose();
    this.ws.close(code, message);
  }
}

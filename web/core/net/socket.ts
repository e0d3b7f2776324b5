/**
 * The live connection: authenticates with the device token in the first frame, catches up
 * from our cursor and then streams envelopes as they are stored. It reconnects with backoff;
 * while it is down the engine polls instead. Envelopes are handed to `onEnvelopes` one frame
 * at a time and the next frame waits until that promise settles, so processing stays in order.
 *
 * Acks are cumulative and sent at most every ACK_DELAY_MS, carrying the highest seq stored:
 * an ack only lets the relay delete what we already hold (we resume from our own cursor, and
 * envelopes sent again after a lost ack are skipped by seq), so one per frame was a frame up
 * and a relay wake-up per message in a live conversation for nothing.
 */
import type { WireEnvelope } from './api.ts';

export interface WsLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code?: number }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number): void;
  readonly readyState: number;
}
export type WsCtor = new (url: string) => WsLike;

export interface SocketHandlers {
  /** Current cursor (last committed seq) and the timestamp of its envelope. */
  cursor(): Promise<{ after: number; at?: number | undefined }>;
  onEnvelopes(items: WireEnvelope[]): Promise<number>;
  onState(state: 'connecting' | 'online' | 'offline'): void;
  /** The relay closed us for good (device removed / token replaced). */
  onRevoked(): void;
}

/** How long an ack waits for later frames to be acknowledged with it. */
export const ACK_DELAY_MS = 50;

export class LiveSocket {
  #ws: WsLike | null = null;
  #ackSeq = 0;
  #ackTimer: ReturnType<typeof setTimeout> | null = null;
  #stopped = false;
  #attempt = 0;
  #chain: Promise<unknown> = Promise.resolve();
  #timer: ReturnType<typeof setTimeout> | null = null;

  readonly #url: string;
  readonly #token: () => string | null;
  readonly #Ctor: WsCtor;
  readonly #h: SocketHandlers;

  constructor(url: string, token: () => string | null, Ctor: WsCtor, h: SocketHandlers) {
    this.#url = url;
    this.#token = token;
    this.#Ctor = Ctor;
    this.#h = h;
  }

  get connected(): boolean {
    return this.#ws?.readyState === 1;
  }

  start(): void {
    this.#stopped = false;
    void this.#connect();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#flushAck();
    this.#ws?.close(1000);
    this.#ws = null;
  }

  /** The network is back: reconnect now instead of waiting out the backoff. */
  kick(): void {
    if (this.#stopped || this.#ws) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#attempt = 0;
    void this.#connect();
  }

  send(frame: unknown): void {
    if (this.#ws?.readyState === 1) this.#ws.send(JSON.stringify(frame));
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    const token = this.#token();
    if (!token) return;
    this.#h.onState('connecting');
    const position = await this.#h.cursor();
    let ws: WsLike;
    try {
      ws = new this.#Ctor(this.#url);
    } catch {
      return this.#retry();
    }
    this.#ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token, ...position }));
    ws.onerror = () => {};
    ws.onmessage = (ev) => {
      let frame: any;
      try {
        frame = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      if (frame.type === 'ready') {
        this.#attempt = 0;
        this.#h.onState('online');
      } else if (frame.type === 'envelopes' && Array.isArray(frame.items)) {
        this.#chain = this.#chain
          .then(() => this.#h.onEnvelopes(frame.items))
          .then((seq) => this.#ackLater(seq))
          .catch(() => ws.close(4000)); // processing failed: reconnect and resume from the cursor
      }
    };
    ws.onclose = (ev) => {
      if (this.#ws === ws) this.#ws = null;
      if (ev.code === 4403 || ev.code === 4401) {
        this.#h.onState('offline');
        this.#h.onRevoked();
        return;
      }
      this.#retry();
    };
  }

  #ackLater(seq: number): void {
    this.#ackSeq = Math.max(this.#ackSeq, seq);
    this.#ackTimer ??= setTimeout(() => this.#flushAck(), ACK_DELAY_MS);
  }

  #flushAck(): void {
    if (this.#ackTimer) clearTimeout(this.#ackTimer);
    this.#ackTimer = null;
    if (this.#ackSeq > 0) this.send({ type: 'ack', seq: this.#ackSeq }); // dropped while closed: the next ack covers it
  }

  #retry(): void {
    if (this.#stopped) return;
    this.#h.onState('offline');
    const delay = Math.min(30_000, 500 * 2 ** Math.min(this.#attempt++, 6));
    this.#timer = setTimeout(() => void this.#connect(), delay);
  }
}

// A WebSocket test client (the `ws` package: Node 20 has no global WebSocket) that queues
// frames so tests can await the next one matching a predicate.
import WebSocket from 'ws';

export interface Frame {
  type: string;
  [k: string]: any;
}

export class TestSocket {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | undefined;
  private waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(String(data)));
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: String(reason) };
      this.wake();
    });
  }

  static async connect(baseUrl: string): Promise<TestSocket> {
    const ws = new WebSocket(baseUrl.replace(/^http/, 'ws') + '/v1/ws');
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new TestSocket(ws);
  }

  static async open(baseUrl: string, token: string, after = 0): Promise<TestSocket> {
    const s = await TestSocket.connect(baseUrl);
    s.send({ type: 'auth', token, after });
    await s.next((f) => f.type === 'ready');
    return s;
  }

  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Removes and returns the first queued frame matching `pred`, waiting up to `ms`. */
  async next(pred: (f: Frame) => boolean = () => true, ms = 10_000): Promise<Frame> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0]!;
      if (this.closed) throw new Error(`socket closed ${this.closed.code} ${this.closed.reason}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a frame');
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Collects envelope items until `count` have arrived. */
  async envelopes(count: number, ms = 10_000): Promise<any[]> {
    const out: any[] = [];
    while (out.length < count) out.push(...(await this.next((f) => f.type === 'envelopes', ms)).items);
    return out;
  }

  async waitClosed(ms = 10_000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('socket not closed');
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.closed;
  }

  close(): void {
    this.ws.terminate();
  }
}

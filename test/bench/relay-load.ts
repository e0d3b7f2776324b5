// bench:relay's load generator: sender/receiver pairs over WebSocket with N submissions in
// flight per sender, and the CPU each process spent in the timed window (read from /proc), so
// the report can say what bounds a figure on a machine whose 2 cores are shared by all of them.
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { ACK_DELAY_MS } from '../../web/core/net/socket.ts';

export interface Pair {
  readonly from: { readonly user: string; readonly token: string };
  readonly to: { readonly user: string; readonly token: string; readonly device: string };
}

export interface Conn {
  readonly ws: WebSocket;
  onFrame: (f: any) => void;
}

/** Opens a socket, authenticates (`after` = cursor) and resolves on `ready`. */
export function connect(url: string, token: string, onFrame: (f: any) => void, after = 0): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const c: Conn = { ws, onFrame };
    ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', token, after })));
    ws.on('error', reject);
    ws.on('message', (d) => {
      const f = JSON.parse(String(d));
      if (f.type === 'ready') resolve(c);
      else c.onFrame(f);
    });
  });
}

export const pct = (xs: readonly number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]! : NaN);
export const median = (xs: readonly number[]) => pct(xs, 0.5);

/** CPU seconds a process has used (user + system), 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // fields 14, 15 in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

/** Busy and total CPU seconds of the whole machine (every core, every process). */
function machine(): { busy: number; total: number } {
  const t = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = t[3]! + t[4]!;
  const total = t.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / 100, total: total / 100 };
}

export interface CpuSplit {
  /** CPU seconds per delivered message, in microseconds. */
  readonly serverUs: number;
  readonly dbUs: number;
  readonly loadgenUs: number;
  /** Share of the machine's cores busy during the window (anyone's work). */
  readonly machineBusy: number;
}

export interface RunOptions {
  readonly url: string;
  readonly pairs: readonly Pair[];
  readonly inFlight: number;
  /** Sender and receiver credentials of a pair on this server. */
  readonly tokens: (p: Pair) => [string, string];
  readonly warmMs: number;
  readonly runMs: number;
  readonly serverPid: number;
  /** The server's database backends (PostgreSQL), whose CPU counts as the server's storage. */
  readonly dbPids: () => Promise<number[]>;
}

export interface RunResult {
  /** Envelopes delivered per second in the window. */
  readonly rate: number;
  /** End-to-end latencies (ms, send -> receiver's frame) of the window's deliveries. */
  readonly lat: number[];
  readonly cpu: CpuSplit;
  /** `submitted` answers received (each one a committed message). */
  readonly acked: number;
}

/** One timed run: every sender keeps `inFlight` submissions outstanding; receivers ack each frame. */
export async function run(o: RunOptions): Promise<RunResult> {
  const sentAt = new Map<string, number>(); // ref -> t
  const idToRef = new Map<number, string>();
  const arrivals: { id: number; t: number }[] = [];
  const conns: Conn[] = [];
  const starts: (() => void)[] = [];
  const tag = Math.random().toString(36).slice(2, 8);
  let stop = false;
  let refN = 0;
  let acked = 0;
  const payload = Buffer.alloc(100, 7).toString('base64url');
  for (const p of o.pairs) {
    const [st, rt] = o.tokens(p);
    // Receivers ack as the engine does (web/core/net/socket.ts): the highest seq, at most every ACK_DELAY_MS.
    let ackSeq = 0;
    let ackTimer: NodeJS.Timeout | undefined;
    const recv = await connect(o.url, rt, (f) => {
      if (f.type !== 'envelopes') return;
      const t = performance.now();
      for (const e of f.items) arrivals.push({ id: e.messageId, t });
      ackSeq = f.items[f.items.length - 1].seq;
      ackTimer ??= setTimeout(() => {
        ackTimer = undefined;
        if (recv.ws.readyState === WebSocket.OPEN) recv.ws.send(JSON.stringify({ type: 'ack', seq: ackSeq }));
      }, ACK_DELAY_MS);
    });
    const envelopes = [{ user: p.to.user, device: p.to.device, body: payload }];
    const next = () => {
      const ref = `${tag}-${refN++}`;
      sentAt.set(ref, performance.now());
      send.ws.send(JSON.stringify({ type: 'submit', ref, clientMessageId: ref, to: [p.to.user], payload, envelopes }));
    };
    const send = await connect(o.url, st, (f) => {
      if (f.type === 'submitted') {
        acked++;
        idToRef.set(f.messageId, f.ref);
        if (!stop) next();
      } else if (f.type === 'submit_error') throw new Error(`submit_error ${f.error}: ${f.message}`);
    });
    conns.push(recv, send);
    starts.push(() => {
      for (let i = 0; i < o.inFlight; i++) next();
    });
  }
  const sample = async () => {
    const db = await o.dbPids();
    return { server: cpuSeconds(o.serverPid), db: db.reduce((a, pid) => a + cpuSeconds(pid), 0), me: process.cpuUsage(), machine: machine() };
  };
  for (const s of starts) s();
  await new Promise((r) => setTimeout(r, o.warmMs));
  const from = performance.now();
  const c0 = await sample();
  await new Promise((r) => setTimeout(r, o.runMs));
  const to = performance.now();
  const c1 = await sample();
  stop = true;
  await new Promise((r) => setTimeout(r, 300)); // let the last answers arrive before closing
  for (const c of conns) c.ws.close();

  const inWindow = arrivals.filter((a) => a.t >= from && a.t < to);
  const lat: number[] = [];
  for (const a of inWindow) {
    const ref = idToRef.get(a.id);
    const s = ref && sentAt.get(ref);
    if (s) lat.push(a.t - s);
  }
  const n = Math.max(1, inWindow.length);
  const me = process.cpuUsage(c0.me); // microseconds
  return {
    rate: inWindow.length / ((to - from) / 1000),
    lat,
    acked,
    cpu: {
      serverUs: ((c1.server - c0.server) / n) * 1e6,
      dbUs: ((c1.db - c0.db) / n) * 1e6,
      loadgenUs: (me.user + me.system) / n,
      machineBusy: (c1.machine.busy - c0.machine.busy) / (c1.machine.total - c0.machine.total),
    },
  };
}

// npm run bench:relay — the relay under load, as deployed: relay/server.ts in its own process
// on PostgreSQL (TEST_DATABASE_URL / DATABASE_URL, or the local server at 127.0.0.1:5432, in a
// database of its own, dropped at the end; PGlite when none answers), and this process as the
// load generator, on the same cores. About 100 s.
//
//   throughput: 20 sender/receiver pairs over WebSocket, 100-byte envelopes (and 100-byte
//     payloads), 1 and 16 submissions in flight per sender; delivered msgs/s and end-to-end
//     latency (sender's send -> receiver's frame) p50/p99. The relay answers a submission only
//     after its transaction committed. Envelopes are random bytes: the relay never decrypts, so
//     client-side crypto would only measure the load generator. Receivers ack as the engine
//     does: the highest seq, at most every 50 ms (web/core/net/socket.ts ACK_DELAY_MS).
//   baselines in the same run: a bare `ws` forwarder (relay-forwarder.ts: same frames, no
//     storage) and raw PostgreSQL writes of the same rows (relay-baselines.ts).
//   Each round runs every case once (relay and forwarder interleaved), so a burst of other load
//     on the machine spoils one round of several cases — which the median of 3 drops.
//   CPU per delivered message of the server, its PostgreSQL backends and the load generator
//     (from /proc), and how busy the whole machine was: what bounds each figure.
//   catch-up: 10,000 queued envelopes read by one device over its socket (auth -> last frame);
//   memory: server RSS growth per idle authenticated WebSocket (2,000 of them), before the runs,
//     each side of it measured after a full garbage collection (through the relay's inspector).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import postgres from 'postgres';
import WebSocket from 'ws';
import { createUser } from '../relay/client.ts';
import type { Fetch } from '../relay/harness.ts';
import { spawnRelay } from '../support/relay-process.ts';
import { type StorageBaselines, storageBaselines } from './relay-baselines.ts';
import { type Conn, connect, type CpuSplit, median, type Pair, pct, run } from './relay-load.ts';

const log = (s: string) => process.stderr.write(s + '\n');
const PAIRS = 20;
// PETREL_BENCH_QUICK=1: one round of the relay cases only, no report (a tuning aid, not figures).
const QUICK = process.env.PETREL_BENCH_QUICK === '1';
const ROUNDS = QUICK ? 1 : 3;
const TIMING = { warmMs: 1000, runMs: 4000 };
const CATCH_UP = 10_000;
const IDLE = 2000;
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const load0 = loadavg()[0]!;

// ---- database ----------------------------------------------------------------------------
const base = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `petrel_bench_${randomBytes(4).toString('hex')}`;
let admin: postgres.Sql | undefined = postgres(base, { max: 1, connect_timeout: 2, onnotice: () => {} });
let dbUrl: string | undefined;
try {
  await admin.unsafe(`CREATE DATABASE ${dbName}`);
  const u = new URL(base);
  u.pathname = `/${dbName}`;
  dbUrl = u.toString();
} catch {
  log('no PostgreSQL reachable: using PGlite');
  await admin.end().catch(() => {});
  admin = undefined;
}
// The relay's own connections: autovacuum workers (cleaning up after earlier runs, whichever
// case happens to be running) are left out of the per-message split.
const dbPids = async () =>
  admin && dbUrl ? (await admin`SELECT pid FROM pg_stat_activity WHERE datname = ${dbName} AND backend_type = 'client backend'`).map((r) => Number(r.pid)) : [];

// Every message leaves dead rows (inbox, payloads, counter versions) that autovacuum cleans up in a
// deployment. Where it is off (this machine's shared server), they pile up over the ~300,000
// messages of a run and each round would pay for the earlier ones: vacuum between runs instead.
const relayDb = dbUrl ? postgres(dbUrl, { max: 1, onnotice: () => {} }) : undefined;
const vacuum = relayDb && (await relayDb`SHOW autovacuum`)[0]!.autovacuum === 'off' ? () => relayDb.unsafe('VACUUM devices, inbox, payloads, submissions') : undefined;
if (vacuum) log('autovacuum is off: vacuuming between runs');

// The inspector (loopback, a free port) is only for the full collections of the memory figure;
// its session is closed before the throughput runs.
const relay = await spawnRelay({ ...(dbUrl ? { databaseUrl: dbUrl } : {}), nodeArgs: QUICK ? [] : ['--inspect=127.0.0.1:0'], env: { PETREL_RATE_LIMIT_SCALE: '10000', PETREL_PUSH_GRACE_MS: '3600000' } });
const relayPid = relay.child.pid!;
const fetch: Fetch = (path, init) => globalThis.fetch(relay.url + path, init);
const wsUrl = relay.url.replace('http', 'ws') + '/v1/ws';
log(`relay pid ${relayPid} on ${relay.url} (${dbUrl ? 'PostgreSQL' : 'PGlite'})`);
const fwd = spawn(process.execPath, ['--import', 'tsx', 'test/bench/relay-forwarder.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
const fwdUrl = `ws://127.0.0.1:${await new Promise<number>((r) => createInterface({ input: fwd.stdout! }).once('line', (l) => r(JSON.parse(l).port)))}`;
async function cleanUp(): Promise<void> {
  fwd.kill();
  await relayDb?.end();
  await relay.close();
  if (admin) {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}
// A failure anywhere below still stops both servers and drops the database.
process.once('uncaughtException', (e) => {
  log(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  void cleanUp().finally(() => process.exit(1));
});

log(`registering ${PAIRS} pairs...`);
const pairs: Pair[] = [];
for (let i = 0; i < PAIRS; i++) {
  const s = await createUser(fetch, `bs${i}${randomBytes(3).toString('hex')}`, 1, 0);
  const r = await createUser(fetch, `br${i}${randomBytes(3).toString('hex')}`, 1, 0);
  pairs.push({ from: { user: s.name, token: s.devices[0]!.token }, to: { user: r.name, token: r.devices[0]!.token, device: b64(r.devices[0]!.keys.deviceId) } });
}

/** The relay's write-statement histogram (sum of messages, statements) from its /metrics. */
async function batches(): Promise<{ sum: number; count: number }> {
  const text = await (await fetch('/metrics')).text();
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { sum: read('petrel_writer_batch_messages_sum'), count: read('petrel_writer_batch_messages_count') };
}

// ---- memory per idle socket ----------------------------------------------------------------
// Measured before the throughput runs, which leave the heap full of their garbage. RSS is read
// after a full garbage collection on both sides: without one, a collection that happened to run
// while the sockets opened made the growth come out anywhere from -10 to +20 KB per socket. A first
// round of sockets, opened and closed, lets the process reach its working size before the baseline.
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${relayPid}/status`, 'utf8'))![1]) * 1024;
async function openIdle(n: number): Promise<Conn[]> {
  const idle: Conn[] = [];
  for (let i = 0; i < n; i += 100) idle.push(...(await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, k) => connect(wsUrl, pairs[(i + k) % PAIRS]!.to.token, () => {}, 1e12)))));
  return idle;
}
/** A session on the relay's inspector: full collections and the JS heap's size. */
async function inspector() {
  const url = /Debugger listening on (ws:\/\/\S+)/.exec(relay.logs.join(''))?.[1];
  if (!url) throw new Error('the relay printed no inspector address');
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  let id = 0;
  const call = (method: string, params: object = {}) =>
    new Promise<{ result?: { value?: string } }>((resolve) => {
      const n = ++id;
      const on = (d: WebSocket.RawData) => {
        const m = JSON.parse(String(d));
        if (m.id !== n) return;
        ws.off('message', on);
        resolve(m.result);
      };
      ws.on('message', on);
      ws.send(JSON.stringify({ id: n, method, params }));
    });
  return {
    /** Collects garbage, then reads RSS and what the process holds: JS heap in use + memory outside it (buffers). */
    async settled() {
      await call('HeapProfiler.collectGarbage');
      const r = await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
      const m = JSON.parse(r.result!.value!) as NodeJS.MemoryUsage;
      return { rss: rss(), held: m.heapUsed + m.external };
    },
    close: () => ws.close(),
  };
}
let perSocket = NaN;
let rssPerSocket = NaN;
if (!QUICK) {
  log(`memory: ${IDLE} idle sockets...`);
  const inspect = await inspector();
  for (const c of await openIdle(IDLE / 4)) c.ws.close();
  await new Promise((r) => setTimeout(r, 1500));
  const before = await inspect.settled();
  const idle = await openIdle(IDLE);
  await new Promise((r) => setTimeout(r, 1000));
  const after = await inspect.settled();
  perSocket = (after.held - before.held) / IDLE;
  rssPerSocket = (after.rss - before.rss) / IDLE;
  inspect.close();
  for (const c of idle) c.ws.close();
  await new Promise((r) => setTimeout(r, 500));
}

// ---- throughput ----------------------------------------------------------------------------
interface Series {
  /** Messages per write statement (relay cases): from the relay's own /metrics around the run. */
  batch: number[];
  rate: number[];
  p50: number[];
  p99: number[];
  cpu: CpuSplit[];
  acked: number;
}
const cases = [
  { id: 'relay1', url: wsUrl, inFlight: 1, pid: relayPid, tokens: (p: Pair): [string, string] => [p.from.token, p.to.token] },
  { id: 'fwd1', url: fwdUrl, inFlight: 1, pid: fwd.pid!, tokens: (p: Pair): [string, string] => [p.from.user, p.to.user] },
  { id: 'relay16', url: wsUrl, inFlight: 16, pid: relayPid, tokens: (p: Pair): [string, string] => [p.from.token, p.to.token] },
  { id: 'fwd16', url: fwdUrl, inFlight: 16, pid: fwd.pid!, tokens: (p: Pair): [string, string] => [p.from.user, p.to.user] },
];
const results = new Map<string, Series>(cases.map((c) => [c.id, { batch: [], rate: [], p50: [], p99: [], cpu: [], acked: 0 }]));
for (let round = 1; round <= ROUNDS; round++) {
  for (const c of cases) {
    if (QUICK && !process.env.PETREL_BENCH_CASE && !c.id.startsWith('relay')) continue;
    if (process.env.PETREL_BENCH_CASE && c.id !== process.env.PETREL_BENCH_CASE) continue;
    const isRelay = c.id.startsWith('relay');
    if (isRelay) await vacuum?.();
    const b0 = isRelay ? await batches() : undefined;
    const r = await run({ ...TIMING, url: c.url, pairs, inFlight: c.inFlight, tokens: c.tokens, serverPid: c.pid, dbPids: isRelay ? dbPids : async () => [] });
    const s = results.get(c.id)!;
    s.rate.push(r.rate);
    s.p50.push(pct(r.lat, 0.5));
    s.p99.push(pct(r.lat, 0.99));
    s.cpu.push(r.cpu);
    s.acked += r.acked;
    if (b0) {
      const b1 = await batches();
      s.batch.push((b1.sum - b0.sum) / Math.max(1, b1.count - b0.count));
    }
    log(`  round ${round} ${c.id.padEnd(7)} ${Math.round(r.rate)} msgs/s, p50 ${pct(r.lat, 0.5).toFixed(2)} ms, p99 ${pct(r.lat, 0.99).toFixed(2)} ms,${b0 ? ` ${s.batch.at(-1)!.toFixed(1)} msgs/batch,` : ''} cpu µs/msg server ${r.cpu.serverUs.toFixed(0)} db ${r.cpu.dbUs.toFixed(0)} loadgen ${r.cpu.loadgenUs.toFixed(0)}, machine ${(r.cpu.machineBusy * 100).toFixed(0)}% busy`);
  }
}

if (QUICK) {
  await cleanUp();
  process.exit(0);
}

// ---- raw PostgreSQL ------------------------------------------------------------------------
let raw: StorageBaselines | undefined;
if (dbUrl) {
  log('raw PostgreSQL writes...');
  raw = await storageBaselines(dbUrl, PAIRS);
}

// ---- catch-up of 10,000 --------------------------------------------------------------------
log(`catch-up: queueing ${CATCH_UP} envelopes...`);
const cu = pairs[0]!;
const envelope = b64(randomBytes(100));
const frame = (ref: string) =>
  JSON.stringify({ type: 'submit', ref, clientMessageId: ref, to: [cu.to.user], payload: envelope, envelopes: [{ user: cu.to.user, device: cu.to.device, body: envelope }] });
await new Promise<void>((resolve) => {
  let sent = 0;
  let done = 0;
  let sender: Conn;
  void connect(wsUrl, cu.from.token, (f) => {
    if (f.type !== 'submitted') return;
    if (++done === CATCH_UP) resolve();
    else if (sent < CATCH_UP) sender.ws.send(frame(`cu-${sent++}`));
  }).then((c) => {
    sender = c;
    for (let i = 0; i < 32; i++) c.ws.send(frame(`cu-${sent++}`));
  });
});
// The receiver's cursor: everything before the queue was acknowledged in the runs above.
const first = (await (await fetch('/v1/inbox?after=0&limit=1', { headers: { authorization: `Bearer ${cu.to.token}` } })).json()) as { envelopes: { seq: number }[] };
const after = first.envelopes[0] ? first.envelopes[0].seq - 1 : 0;
const catchUps: number[] = [];
for (let round = 0; round < 3; round++) {
  let got = 0;
  let conn: Conn | undefined;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    void connect(wsUrl, cu.to.token, (f) => {
      if (f.type === 'envelopes' && (got += f.items.length) >= CATCH_UP) resolve();
    }, after).then((c) => (conn = c));
  });
  catchUps.push((performance.now() - t0) / 1000);
  conn?.ws.close();
  log(`  catch-up round ${round + 1}: ${catchUps.at(-1)!.toFixed(3)} s`);
}


// Every acknowledged submission has its row: the relay answers after COMMIT (a submission still in
// flight when a run stopped is stored without its answer having been counted).
const stored = relayDb ? Number((await relayDb`SELECT count(*) AS n FROM submissions`)[0]!.n) : NaN;

await cleanUp();
report();
process.exit(0);

function report(): void {
  const fmt = (n: number) => Math.round(n).toLocaleString('en');
  const mark = (ok: boolean) => (ok ? 'PASS' : 'MISS');
  const m = (id: string) => {
    const s = results.get(id)!;
    const cpu = (k: keyof CpuSplit) => median(s.cpu.map((c) => c[k]));
    return { rate: median(s.rate), p50: median(s.p50), p99: median(s.p99), batch: median(s.batch), server: cpu('serverUs'), db: cpu('dbUs'), gen: cpu('loadgenUs'), busy: cpu('machineBusy') };
  };
  const [r1, f1, r16, f16] = ['relay1', 'fwd1', 'relay16', 'fwd16'].map(m) as [ReturnType<typeof m>, ReturnType<typeof m>, ReturnType<typeof m>, ReturnType<typeof m>];
  const row = (mk: string, label: string, x: ReturnType<typeof m>, target: string) =>
    console.log(`${mk.padEnd(4)} ${label.padEnd(34)} ${fmt(x.rate).padStart(7)}  ${x.p50.toFixed(2).padStart(6)}  ${x.p99.toFixed(2).padStart(6)}   ${target}`);
  console.log(`\nPetrel relay benchmark — ${dbUrl ? 'PostgreSQL' : 'PGlite'}, ${PAIRS} pairs over WebSocket, 100-byte envelopes, medians of ${ROUNDS} runs of ${TIMING.runMs / 1000} s`);
  console.log(`load average ${load0.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after (${availableParallelism()} cores shared by relay, database and load generator)`);
  console.log(vacuum ? 'autovacuum is off on this server: the relay tables were vacuumed before each relay run\n' : '');
  console.log(`${''.padEnd(4)} ${''.padEnd(34)} ${'msgs/s'.padStart(7)}  ${'p50 ms'.padStart(6)}  ${'p99 ms'.padStart(6)}   target`);
  row(mark(r1.rate >= 10_000 && r1.p99 <= 10), 'relay, 1 in flight per pair', r1, '>= 10,000 msgs/s, p99 <= 10 ms');
  row(mark(r16.rate >= 20_000 && r16.p99 <= 40), 'relay, 16 in flight per pair', r16, '>= 20,000 msgs/s, p99 <= 40 ms');
  row('', 'bare ws forwarder, 1 in flight', f1, 'baseline (issue: ~31,000)');
  row('', 'bare ws forwarder, 16 in flight', f16, 'baseline (issue: ~63,000)');
  // The issue's targets are a third of its forwarder figures (10,000 of ~31,000; 20,000 of ~63,000):
  // the same share of this run's forwarder says how the relay fares on a machine of another speed.
  const share = (r: number, f: number, t: number) => `${((100 * r) / f).toFixed(0)}% of the forwarder (the issue's target is ${(100 * t).toFixed(0)}% of its: ${fmt(f * t)} msgs/s here)`;
  console.log(`     relay / forwarder, 1 in flight:  ${share(r1.rate, f1.rate, 10_000 / 31_000)}`);
  console.log(`     relay / forwarder, 16 in flight: ${share(r16.rate, f16.rate, 20_000 / 63_000)}`);
  if (raw) {
    console.log(`     raw PostgreSQL, inbox rows, one commit each, 20 connections   ${fmt(raw.singleRowCommits).padStart(7)} rows/s (issue: ~7,300)`);
    console.log(`     raw PostgreSQL, inbox rows, 100 per statement, 4 connections   ${fmt(raw.batchedRows).padStart(7)} rows/s (issue: ~94,000)`);
    console.log(`     raw PostgreSQL, a message's rows, 100 per statement            ${fmt(raw.batchedMessages).padStart(7)} msgs/s (storage floor)`);
    console.log(`     raw PostgreSQL, a message's rows, 20 per statement, 1 at a time ${fmt(raw.roundOf20.rate).padStart(7)} msgs/s, ${raw.roundOf20.dbUs.toFixed(0)} µs database CPU per message`);
    // At 1 in flight any relay does at least what the forwarder does (the same frames in and out)
    // and has the database store every message, at most 20 per commit (all 20 pairs' messages).
    // Their CPU together bounds what this machine can deliver, whatever the relay's design.
    const floor = f1.server + f1.gen + raw.roundOf20.dbUs;
    const cores = availableParallelism();
    console.log(
      `     ceiling at 1 in flight for any relay that commits before answering: forwarder ${(f1.server + f1.gen).toFixed(0)} µs + database ${raw.roundOf20.dbUs.toFixed(0)} µs = ${floor.toFixed(0)} µs of CPU per message -> at most ~${fmt((cores * 1e6) / floor)} msgs/s on ${cores} cores, with both cores 100% busy`,
    );
  }
  console.log(`${mark(median(catchUps) <= 0.5).padEnd(4)} catch-up of ${fmt(CATCH_UP)} envelopes by one device: ${median(catchUps).toFixed(3)} s (target <= 0.5 s)`);
  // Held = JS heap + buffers, after full collections: steady to 0.1 KB. RSS moves by ±10 KB per
  // socket with what the allocator and V8 keep or give back, so it only counts when it is larger.
  console.log(`${mark(Math.max(perSocket, rssPerSocket) <= 50 * 1024).padEnd(4)} server memory per idle WebSocket: ${(perSocket / 1024).toFixed(1)} KB held (JS heap + buffers; RSS growth ${(rssPerSocket / 1024).toFixed(1)} KB) (target <= 50 KB)`);
  const acked = results.get('relay1')!.acked + results.get('relay16')!.acked + CATCH_UP;
  if (dbUrl) console.log(`${mark(stored >= acked).padEnd(4)} committed before acknowledged: ${fmt(acked)} submissions acknowledged, ${fmt(stored)} stored`);
  console.log('\nCPU per delivered message (µs; relay process, its PostgreSQL connections, load generator) and machine busy:');
  for (const [label, x] of [['relay, 1 in flight', r1], ['relay, 16 in flight', r16], ['forwarder, 1 in flight', f1], ['forwarder, 16 in flight', f16]] as const) {
    const total = x.server + x.db + x.gen;
    const batch = Number.isFinite(x.batch) ? `; ${x.batch.toFixed(1)} msgs per write statement` : '';
    console.log(`  ${label.padEnd(24)} server ${x.server.toFixed(0).padStart(4)}  db ${x.db.toFixed(0).padStart(4)}  loadgen ${x.gen.toFixed(0).padStart(4)}  = ${total.toFixed(0).padStart(4)} µs -> at most ~${fmt((availableParallelism() * 1e6) / total)} msgs/s on ${availableParallelism()} cores; machine ${(x.busy * 100).toFixed(0)}% busy${batch}`);
  }
}

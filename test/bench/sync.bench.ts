// npm run bench:sync — the client engine's sync figures (issue: web/core), on this machine:
//   1. catch-up: a device downloads, decrypts and stores 10,000 queued messages (target <= 1.5 s)
//   2. group send: one message to a group of 50 users with 2 devices each, sessions established (<= 50 ms)
//   3. history import: a 10,000-message history bundle decrypted and imported (<= 2 s)
// The relay runs in this process behind a real HTTP port, on PostgreSQL when one is reachable
// (TEST_DATABASE_URL / DATABASE_URL, or 127.0.0.1:5432) else PGlite. Each figure is the median
// of several runs, each on fresh state. Progress goes to stderr; the table to stdout.
import { serve } from '@hono/node-server';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { encryptAttachment, decryptAttachment, fanoutEncrypt, publicPart, activeDevices, equalBytes, systemRng } from '../../crypto/index.ts';
import { createApp } from '../../relay/app.ts';
import { openDatabase } from '../../relay/db/client.ts';
import { createServices } from '../../relay/services.ts';
import { address } from '../../web/core/context.ts';
import { deviceList } from '../../web/core/directory.ts';
import { Engine } from '../../web/core/engine.ts';
import { exportHistory, importHistory } from '../../web/core/history.ts';
import type { Fetch } from '../../web/core/net/api.ts';
import { encodeContent, newId } from '../../web/core/protocol/content.ts';
import type { Store } from '../../web/core/store/schema.ts';
import { MemoryStore } from '../../web/core/store/memory-store.ts';
import { TEST_CONFIG } from '../relay/harness.ts';

const log = (s: string) => process.stderr.write(s + '\n');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

let storeKind = 'memory';
let makeStore: () => Promise<Store> = async () => new MemoryStore();
try {
  const fs = await import('../../web/headless/file-store.ts');
  const dirs: string[] = [];
  makeStore = async () => {
    const d = mkdtempSync(join(tmpdir(), 'petrel-bench-store-'));
    dirs.push(d);
    return fs.openFileStore(d);
  };
  storeKind = 'file (web/headless/file-store.ts)';
  process.on('exit', () => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
} catch {
  // The file store is optional here; the figures then say "memory".
}

async function pgUrl(): Promise<string | null> {
  const base = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const sql = postgres(base, { max: 1, connect_timeout: 2, onnotice: () => {} });
  try {
    const name = `petrel_bench_${randomBytes(4).toString('hex')}`;
    await sql.unsafe(`CREATE DATABASE ${name}`);
    const u = new URL(base);
    u.pathname = `/${name}`;
    process.on('exit', () => {});
    dropLater.push(async () => {
      const s = postgres(base, { max: 1, onnotice: () => {} });
      await s.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await s.end();
    });
    return u.toString();
  } catch {
    return null;
  } finally {
    await sql.end();
  }
}
const dropLater: (() => Promise<void>)[] = [];

const url = await pgUrl();
const database = await openDatabase(url ? { url, poolSize: 10 } : {});
const services = await createServices({ database, config: { ...TEST_CONFIG, inboxPageMax: 1000 } });
const app = createApp(services);
const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
await new Promise((r) => server.once('listening', r));
const port = (server.address() as { port: number }).port;
const relayUrl = `http://127.0.0.1:${port}`;
log(`relay on ${relayUrl} (${database.kind}), client store: ${storeKind}`);

const engine = async (store?: Store) => Engine.open({ store: store ?? (await makeStore()), relayUrl, fetch: globalThis.fetch as unknown as Fetch });
const name = (p: string) => `${p}${randomBytes(4).toString('hex')}`;

/** Queues n messages from `from` to `to` quickly: encrypt in order, submit 32 at a time. */
async function fill(from: Engine, toUser: string, n: number): Promise<void> {
  const ctx = from.ctx;
  const me = ctx.requireMe();
  const list = await deviceList(ctx, toUser, { refresh: true });
  const targets = activeDevices(list).map((d) => ({ user: toUser, device: publicPart(d) }));
  const own = activeDevices(await deviceList(ctx, me.username, { refresh: true })).filter((d) => !equalBytes(d.deviceId, me.device.deviceId));
  targets.push(...own.map((d) => ({ user: me.username, device: publicPart(d) })));
  const subs: Parameters<typeof ctx.api.submit>[0][] = [];
  for (let i = 0; i < n; i++) {
    const content = encodeContent({ v: 1, id: newId(ctx.rng), at: Date.now() + i, conv: { t: 'dm', to: toUser }, body: { type: 'text', text: `catch-up message number ${i} with some ordinary length text` } });
    const out = fanoutEncrypt(content, await Promise.all(targets.map(async (t) => ({ address: t, record: await ctx.session(address(t.user, t.device.deviceId)) }))), ctx.rng);
    for (const m of out.messages) ctx.sessions.set(address(m.address.user, m.address.device.deviceId), m.record);
    subs.push({ clientMessageId: newId(ctx.rng), to: [toUser], payload: out.payload, envelopes: out.messages.map((m) => ({ user: m.address.user, device: m.address.device.deviceId, body: m.message })) });
  }
  for (let i = 0; i < subs.length; i += 32) await Promise.all(subs.slice(i, i + 32).map((s) => ctx.api.submit(s)));
}

// ---- 1. catch-up ------------------------------------------------------------------------
const N = 10_000;
const catchUp: number[] = [];
let bundleSource: Engine | null = null;
for (let run = 0; run < 3; run++) {
  const [s, r] = [await engine(), await engine()];
  const [sn, rn] = [name('sender'), name('receiver')];
  await s.register(sn, 'bench');
  await r.register(rn, 'bench');
  await s.send(await s.openDirect(rn), 'hello'); // establishes the session
  await r.sync();
  log(`catch-up run ${run + 1}: queueing ${N} messages...`);
  await fill(s, rn, N);
  const t0 = performance.now();
  const got = await r.sync();
  const ms = performance.now() - t0;
  if (got.length !== N) throw new Error(`caught up ${got.length} of ${N}`);
  catchUp.push(ms);
  log(`  ${N} messages in ${ms.toFixed(0)} ms (${Math.round(N / (ms / 1000))} msgs/s)`);
  bundleSource = r;
}

// ---- 2. group send ----------------------------------------------------------------------
log('group: registering 50 users with 2 devices each...');
const owner = await engine();
await owner.register(name('owner'), 'bench');
const members: string[] = [];
for (let i = 0; i < 50; i++) {
  const e = await engine(new MemoryStore());
  const n = name('m');
  await e.register(n, 'bench');
  const second = await engine(new MemoryStore());
  await second.login(n, 'bench');
  members.push(n);
}
const group = await owner.createGroup('bench group', members);
await owner.send(group, 'warm-up'); // sessions with all 100 devices now exist
const groupSend: number[] = [];
for (let i = 0; i < 15; i++) {
  const t0 = performance.now();
  const r = await owner.send(group, `group message ${i}`);
  groupSend.push(performance.now() - t0);
  if (r.status !== 'sent') throw new Error(`group send status ${r.status}`);
}
log(`group send to 100 devices: median ${median(groupSend).toFixed(1)} ms`);

// ---- 3. history import ------------------------------------------------------------------
const bundle = await exportHistory(bundleSource!.ctx);
const { ciphertext, pointer } = encryptAttachment(bundle, systemRng);
const imports: number[] = [];
for (let run = 0; run < 3; run++) {
  // A registered device, as one receiving its history is (the import files what it takes as its own).
  const fresh = await engine();
  await fresh.register(name('importer'), 'bench');
  const t0 = performance.now();
  const n = await importHistory(fresh.ctx, decryptAttachment(ciphertext, pointer));
  imports.push(performance.now() - t0);
  if (n < N) throw new Error(`imported ${n}`);
  log(`history import run ${run + 1}: ${n} messages in ${imports.at(-1)!.toFixed(0)} ms`);
}

const rows: [string, string, string, boolean][] = [
  ['catch-up of 10,000 messages (download, decrypt, store)', `${(median(catchUp) / 1000).toFixed(2)} s = ${Math.round(N / (median(catchUp) / 1000)).toLocaleString('en')} msgs/s`, '<= 1.5 s (>= 6,700 msgs/s)', median(catchUp) <= 1500],
  ['send one message to a group of 50 users x 2 devices', `${median(groupSend).toFixed(1)} ms`, '<= 50 ms', median(groupSend) <= 50],
  [`import a 10,000-message history bundle (${(bundle.length / 1e6).toFixed(1)} MB)`, `${(median(imports) / 1000).toFixed(2)} s`, '<= 2 s', median(imports) <= 2000],
];
console.log(`\nPetrel sync benchmark — relay: ${database.kind}, client store: ${storeKind}; medians (catch-up and import of 3 runs, group send of 15)\n`);
for (const [what, value, target, ok] of rows) console.log(`${ok ? 'PASS' : 'MISS'}  ${what.padEnd(62)} ${value.padEnd(28)} target ${target}`);

server.close();
await services.close();
await database.close();
for (const d of dropLater) await d();
process.exit(0);

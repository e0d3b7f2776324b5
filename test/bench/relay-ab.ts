// npm run bench:relay:ab — a paired comparison of two relays, for judging a change on a machine
// whose speed drifts by ±10% or more between runs of bench:relay.
//
// Two relay processes, A and B, each on its own PostgreSQL database (on TEST_DATABASE_URL,
// DATABASE_URL or 127.0.0.1:5432; dropped at the end), take the same load as bench:relay's
// throughput case (20 pairs over WebSocket, 100-byte envelopes), alternating every few seconds and
// swapping order each round, so drift hits both alike. Prints each round and the median of B/A.
//
//   PETREL_AB_A="K=V ..." / PETREL_AB_B="K=V ..."  environment for relay A / B (e.g. a tuning variable)
//   PETREL_AB_A_DIR=/path                           run relay A from another checkout of this repository
//                                                   (a `git worktree` of the commit to compare against,
//                                                   with node_modules linked in)
//   PETREL_AB_IN_FLIGHT (1), PETREL_AB_ROUNDS (10), PETREL_AB_RUN_MS (2500)
//
// A median ratio is worth believing only when most rounds agree with it (the "wins" count).
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { createUser } from '../relay/client.ts';
import { spawnRelay } from '../support/relay-process.ts';
import { median, type Pair, pct, run } from './relay-load.ts';

const PAIRS = 20;
const env = process.env;
const inFlight = Number(env.PETREL_AB_IN_FLIGHT ?? 1);
const rounds = Number(env.PETREL_AB_ROUNDS ?? 10);
const runMs = Number(env.PETREL_AB_RUN_MS ?? 2500);
const base = env.TEST_DATABASE_URL ?? env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const settings = (s: string | undefined) => Object.fromEntries((s ?? '').split(' ').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

interface Side {
  readonly name: 'A' | 'B';
  readonly relay: Awaited<ReturnType<typeof spawnRelay>>;
  readonly pairs: Pair[];
  readonly db: string;
  readonly sql: postgres.Sql;
  readonly rates: number[];
  readonly p99: number[];
}

const admin = postgres(base, { max: 1, onnotice: () => {} });
const sides: Side[] = [];
try {
  for (const name of ['A', 'B'] as const) {
    const db = `petrel_ab_${randomBytes(4).toString('hex')}`;
    await admin.unsafe(`CREATE DATABASE ${db}`);
    const url = new URL(base);
    url.pathname = `/${db}`;
    // spawnRelay starts relay/server.ts from the working directory: A may come from another checkout.
    const home = process.cwd();
    const dir = name === 'A' ? env.PETREL_AB_A_DIR : undefined;
    if (dir) process.chdir(dir);
    const relay = await spawnRelay({ databaseUrl: url.toString(), env: { PETREL_RATE_LIMIT_SCALE: '10000', PETREL_PUSH_GRACE_MS: '3600000', ...settings(env[`PETREL_AB_${name}`]) } }).finally(() => process.chdir(home));
    const fetch = (path: string, init?: RequestInit) => globalThis.fetch(relay.url + path, init);
    const pairs: Pair[] = [];
    for (let i = 0; i < PAIRS; i++) {
      const s = await createUser(fetch, `as${i}${randomBytes(3).toString('hex')}`, 1, 0);
      const r = await createUser(fetch, `ar${i}${randomBytes(3).toString('hex')}`, 1, 0);
      pairs.push({ from: { user: s.name, token: s.devices[0]!.token }, to: { user: r.name, token: r.devices[0]!.token, device: Buffer.from(r.devices[0]!.keys.deviceId).toString('base64url') } });
    }
    sides.push({ name, relay, pairs, db, sql: postgres(url.toString(), { max: 1, onnotice: () => {} }), rates: [], p99: [] });
    console.error(`relay ${name}${dir ? ` from ${dir}` : ''} ${env[`PETREL_AB_${name}`] ?? ''}: ready`);
  }
  const dbPids = (db: string) => async () => (await admin`SELECT pid FROM pg_stat_activity WHERE datname = ${db} AND backend_type = 'client backend'`).map((r) => Number(r.pid));
  for (let r = 0; r < rounds; r++) {
    const line: string[] = [];
    for (const s of r % 2 ? [...sides].reverse() : sides) {
      await s.sql.unsafe('VACUUM devices, inbox, payloads, submissions'); // as bench:relay does between runs
      const res = await run({ warmMs: 500, runMs, url: s.relay.url.replace('http', 'ws') + '/v1/ws', pairs: s.pairs, inFlight, tokens: (p) => [p.from.token, p.to.token], serverPid: s.relay.child.pid!, dbPids: dbPids(s.db) });
      s.rates.push(res.rate);
      s.p99.push(pct(res.lat, 0.99));
      const cpu = res.cpu.serverUs + res.cpu.dbUs + res.cpu.loadgenUs;
      line.push(`${s.name} ${Math.round(res.rate)} msgs/s, p99 ${pct(res.lat, 0.99).toFixed(1)} ms, ${cpu.toFixed(0)} µs/msg`);
    }
    console.log(`round ${r + 1}: ${line.join(' | ')}`);
  }
  const [a, b] = sides as [Side, Side];
  const ratios = a.rates.map((x, i) => b.rates[i]! / x);
  const summary = (s: Side) => `${Math.round(median(s.rates))} msgs/s, p99 ${median(s.p99).toFixed(1)} ms`;
  console.log(`\n${inFlight} in flight: A ${summary(a)}; B ${summary(b)}; B/A median ${median(ratios).toFixed(3)} (B faster in ${ratios.filter((x) => x > 1).length} of ${ratios.length} rounds)`);
} finally {
  for (const s of sides) {
    await s.sql.end();
    await s.relay.close();
  }
  for (const s of sides) await admin.unsafe(`DROP DATABASE IF EXISTS ${s.db} WITH (FORCE)`);
  await admin.end();
}
process.exit(0);

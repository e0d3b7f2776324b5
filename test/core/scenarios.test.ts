// Headless multi-device scenarios: engines in Node (real fetch, real WebSocket via `ws`, the
// crash-safe file store)
// against a real relay process — PGlite in a data directory, and PostgreSQL when
// TEST_DATABASE_URL is set. Alice has two devices (the second linked with a code), Bob two
// (the second by password), Carol one.
import { sql } from 'drizzle-orm';
import { allMessages } from '../../web/core/views.ts';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openDatabase, rowsOf } from '../../relay/db/client.ts';
import { startLink } from '../../web/core/account.ts';
import { Engine } from '../../web/core/engine.ts';
import type { Fetch } from '../../web/core/net/api.ts';
import type { WsCtor } from '../../web/core/net/socket.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFileStore } from '../../web/headless/file-store.ts';
import { backends, uniqueName } from '../relay/harness.ts';
import { type RelayProcess, spawnRelay } from '../support/relay-process.ts';

const texts = new Set<string>();
const say = (s: string) => (texts.add(s), s);
const until = async (what: string, f: () => Promise<boolean>, ms = 15_000) => {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe.each(backends)('scenarios against a relay process on $name', (backend) => {
  let relay: RelayProcess;
  let dbUrl: string | undefined;
  let drop = async () => {};
  const engines: Engine[] = [];
  const profiles: string[] = [];
  const device = async (name: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'petrel-profile-'));
    profiles.push(dir);
    const e = await Engine.open({
      store: await openFileStore(dir),
      relayUrl: relay.url,
      fetch: globalThis.fetch as unknown as Fetch,
      WebSocket: WebSocket as unknown as WsCtor,
      deviceName: name,
      pollMs: 200,
    });
    engines.push(e);
    return e;
  };
  const names = { a: uniqueName('alice'), b: uniqueName('bob'), c: uniqueName('carol') };
  let a1: Engine, a2: Engine, b1: Engine, b2: Engine, c1: Engine;
  let group = '';

  beforeAll(async () => {
    if (backend.name === 'postgres') {
      const db = await backend.create();
      dbUrl = db.url;
      drop = db.drop;
    }
    relay = await spawnRelay(dbUrl ? { databaseUrl: dbUrl } : {});
  }, 60_000);
  afterAll(async () => {
    for (const e of engines) {
      await e.stop();
      await e.ctx.store.close();
    }
    for (const d of profiles) rmSync(d, { recursive: true, force: true });
    await relay?.close();
    await drop();
  });

  test('accounts: register, link a device with a code, add one by password', async () => {
    [a1, b1, c1] = [await device('alice phone'), await device('bob phone'), await device('carol phone')];
    await a1.register(names.a, 'alice password');
    await b1.register(names.b, 'bob password');
    await c1.register(names.c, 'carol password');
    await a1.send(await a1.openDirect(names.b), say('before the laptop was linked'));

    a2 = await device('alice laptop');
    const link = await a2.startLink({ pollMs: 100 });
    await Promise.all([link.done, a1.approveLink(link.code, { pollMs: 100 })]);
    await a2.sync();
    expect(a2.state()).toMatchObject({ username: names.a, hasAccountKey: true });
    expect((await allMessages(a2.ctx.store)).map((m) => m.text)).toContain('before the laptop was linked');

    b2 = await device('bob laptop');
    const added: string[] = [];
    b1.on((e) => e.type === 'device-added' && added.push(e.deviceId));
    await b2.login(names.b, 'bob password');
    await b1.sync();
    expect(added).toEqual([b2.state()!.deviceId]);
    expect((await b1.devices()).map((d) => d.name).sort()).toEqual(['bob laptop', 'bob phone']);
  });

  test('1:1 and a group of three: every device sees the same history', async () => {
    const ab = `dm:${names.b}`;
    await b1.sync();
    await b1.send(`dm:${names.a}`, say('hi alice, from bob'));
    await a2.sync();
    await a2.send(ab, say('hi bob, from alice on her laptop'));
    group = await a1.createGroup('Lighthouse', [names.b, names.c]);
    for (const e of [b1, b2, c1]) await e.sync();
    await c1.send(group, say('carol says hello to the group'));
    await b2.send(group, say('bob replies from his laptop'));
    for (const e of [a1, a2, b1, b2, c1]) await e.sync();
    for (const e of [a1, a2, b1, b2, c1]) await e.sync(); // receipts and transcripts settle

    const texts1 = async (e: Engine, conv: string) => (await allMessages(e.ctx.store, conv)).filter((m) => !m.system).map((m) => `${m.from}: ${m.text}`);
    const aliceDm = await texts1(a1, ab);
    expect(aliceDm).toEqual([`${names.a}: before the laptop was linked`, `${names.b}: hi alice, from bob`, `${names.a}: hi bob, from alice on her laptop`]);
    expect(await texts1(a2, ab)).toEqual(aliceDm);
    for (const e of [b1, b2]) expect(await texts1(e, `dm:${names.a}`)).toEqual(aliceDm);
    const g = await texts1(a1, group);
    expect(g).toEqual([`${names.c}: carol says hello to the group`, `${names.b}: bob replies from his laptop`]);
    for (const e of [a2, b1, b2, c1]) expect(await texts1(e, group)).toEqual(g);
  });

  test('a device offline for 1,000 messages catches up in order, none missing or doubled', async () => {
    const conv = `dm:${names.b}`;
    const sent: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const t = `offline burst ${i}`;
      sent.push(t);
      await a1.send(conv, t);
    }
    const got = (await b2.sync()).filter((m) => m.conversation === `dm:${names.a}` && m.text.startsWith('offline burst')).map((m) => m.text);
    expect(got).toEqual(sent);
    expect((await allMessages(b2.ctx.store, `dm:${names.a}`)).filter((m) => m.text.startsWith('offline burst')).length).toBe(1000);
    await b1.sync();
  }, 120_000);

  test('a removed device and a removed group member receive nothing new', async () => {
    await a1.removeDevice(a2.state()!.deviceId);
    await a1.removeMember(group, names.c);
    await c1.sync();
    expect((await c1.conversations()).find((c) => c.id === group)!.left).toBe(true);
    await b1.sync();
    await b1.send(group, say('after carol left'));
    await b1.send(`dm:${names.a}`, say('after the laptop was removed'));
    expect((await a1.sync()).map((m) => m.text)).toEqual(expect.arrayContaining(['after carol left', 'after the laptop was removed']));
    expect((await c1.sync()).map((m) => m.text)).not.toContain('after carol left');
    await expect(a2.sync()).rejects.toMatchObject({ code: 'device_removed' }); // the refused token checked against the list: removed, not signed out
    expect((await allMessages(a2.ctx.store)).map((m) => m.text)).not.toContain('after the laptop was removed');
  });

  test('the client survives a relay restart, with an outbox filled while it was down', async () => {
    await a1.start();
    await b1.start();
    await until('both online', async () => a1.connectionState === 'online' && b1.connectionState === 'online');
    await relay.kill('SIGTERM');
    const conv = `dm:${names.b}`;
    const queued: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await a1.send(conv, say(`queued while the relay was down ${i}`));
      expect(r.status).toBe('pending');
      queued.push(`queued while the relay was down ${i}`);
    }
    await relay.restart();
    await until('the outbox drained and bob received everything', async () => {
      const h = (await allMessages(b1.ctx.store, `dm:${names.a}`)).map((m) => m.text).filter((t) => t.startsWith('queued while'));
      return h.length >= 20;
    }, 60_000);
    const h = (await allMessages(b1.ctx.store, `dm:${names.a}`)).map((m) => m.text).filter((t) => t.startsWith('queued while'));
    expect(h).toEqual(queued);
    await a1.stop();
    await b1.stop();
  }, 90_000);

  test('a device approved with a link code but never brought online blocks nobody: its user sends and is sent to', async () => {
    // A code from a device that then never polls for its token (closed at once, or a mistyped code).
    const tablet = await device('carol tablet');
    const { code } = await startLink(tablet.ctx);
    await expect(c1.approveLink(code, { pollMs: 100, timeoutMs: 500 })).rejects.toMatchObject({ code: 'link_timeout' });
    expect(await c1.devices()).toHaveLength(2);
    await b1.sync();
    expect(await b1.send(await b1.openDirect(names.c), say('bob to carol, whose tablet never came online'))).toMatchObject({ status: 'sent' });
    expect((await c1.sync()).map((m) => m.text)).toContain('bob to carol, whose tablet never came online');
    expect(await c1.send(await c1.openDirect(names.b), say('carol answers from her phone'))).toMatchObject({ status: 'sent' });
    expect(await c1.ctx.store.read(['outbox'], (tx) => tx.getAll('outbox'))).toEqual([]);
    for (const e of [b1, b2]) expect((await e.sync()).map((m) => m.text)).toContain('carol answers from her phone');
  });

  test('a scan of the relay database finds none of the plaintexts or passwords', async () => {
    let url = dbUrl;
    if (!url) await relay.kill('SIGTERM');
    const dataDir = relay.logs.length ? undefined : undefined;
    void dataDir;
    const db = url ? await openDatabase({ url }) : null;
    if (!db) return; // PGlite: the data directory is scanned in the relay suite (no-plaintext.test.ts)
    const tables = rowsOf<{ table_name: string }>(await db.db.execute(sql`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)).map((t) => t.table_name);
    let dump = '';
    for (const t of tables) for (const r of rowsOf<{ row: string }>(await db.db.execute(sql.raw(`SELECT to_jsonb(t)::text AS row FROM "${t}" t`)))) dump += r.row + '\n';
    await db.close();
    expect(dump).toContain(names.a);
    for (const s of [...texts, 'alice password', 'bob password', 'carol password']) {
      const b = Buffer.from(s);
      for (const f of [s, b.toString('hex'), b.toString('base64'), b.toString('base64url')]) expect(dump.includes(f), `found ${s}`).toBe(false);
    }
  });
});

// A relay restored from a backup: its inbox counters are behind the cursors its devices hold
// (seqs never go back, so nothing else puts a cursor past the inbox's end). Without help a
// device would skip every envelope stored from then on under seqs it believes it has: the engine
// sends its cursor with the timestamp of the envelope there, and the relay moves what it stored
// since to follow the cursor (relay/inbox/reader.ts realignInbox). The restore is done as a
// backup would leave it: the device's counter and its inbox rows put back to an earlier point,
// in the relay's real database.
import WebSocket from 'ws';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, test } from 'vitest';
import { rowsOf } from '../../relay/db/client.ts';
import { Engine } from '../../web/core/engine.ts';
import { positionOf } from '../../web/core/inbox.ts';
import type { Fetch } from '../../web/core/net/api.ts';
import type { WsCtor } from '../../web/core/net/socket.ts';
import { MemoryStore } from '../../web/core/store/memory-store.ts';
import { allMessages } from '../../web/core/views.ts';
import { backends, relayOnPort, uniqueName } from '../relay/harness.ts';

const until = async (what: string, ok: () => Promise<boolean>) => {
  for (let i = 0; i < 300; i++) if (await ok()) return;
  throw new Error(`timed out waiting for ${what}`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(backends)('a relay restored from a backup ($name)', (backend) => {
  const live = relayOnPort(backend);
  const engines: Engine[] = [];
  afterAll(async () => {
    for (const e of engines) await e.stop();
  });

  const open = async (live_: boolean, store = new MemoryStore()) => {
    const e = await Engine.open({
      store,
      relayUrl: live.relay.url,
      fetch: globalThis.fetch as unknown as Fetch,
      ...(live_ ? { WebSocket: WebSocket as unknown as WsCtor } : {}),
      pollMs: 60_000, // the socket delivers, not polling
    });
    engines.push(e);
    return e;
  };
  const person = async (live_: boolean) => {
    const e = await open(live_);
    const name = uniqueName('p');
    await e.register(name, 'a long enough password');
    return { e, name };
  };

  /** Puts `user`'s device back to how a backup taken `back` envelopes ago left it. */
  const restore = async (user: string, back: number) => {
    const db = live.relay.services.db;
    const [d] = rowsOf<{ id: string; next_seq: string }>(
      await db.execute(sql`SELECT d.id, d.next_seq FROM devices d JOIN accounts a ON a.id = d.account_id WHERE a.username = ${user}`),
    );
    const last = Number(d!.next_seq) - back;
    await db.execute(sql`DELETE FROM inbox WHERE device = ${d!.id}::bigint AND seq > ${last}::bigint`);
    await db.execute(sql`UPDATE devices SET next_seq = ${last}::bigint WHERE id = ${d!.id}::bigint`);
    return last;
  };

  const cursorOf = async (e: Engine) => (await positionOf(e.ctx)).after;
  const texts = async (e: Engine) => (await allMessages(e.ctx.store)).map((m) => m.text);

  test('a device that syncs over HTTP gets what was stored since the restore', async () => {
    const alice = await person(false);
    const bob = await person(false);
    const chat = await alice.e.openDirect(bob.name);
    for (const t of ['one', 'two', 'three']) await alice.e.send(chat, t);
    await bob.e.sync();
    expect(await texts(bob.e)).toEqual(['one', 'two', 'three']);
    const cursor = await cursorOf(bob.e);
    await restore(bob.name, 2);
    await sleep(5); // stored after the envelope bob read last, by the clock
    await alice.e.send(chat, 'after the restore'); // under a seq bob's cursor already covers
    await bob.e.sync();
    expect(await texts(bob.e)).toEqual(['one', 'two', 'three', 'after the restore']);
    await alice.e.send(chat, 'and another');
    await bob.e.sync();
    expect(await texts(bob.e)).toEqual(['one', 'two', 'three', 'after the restore', 'and another']);
    expect(await cursorOf(bob.e)).toBe(cursor + 2);
  });

  test('a live device: what is stored after it reconnects to the restored relay arrives live', async () => {
    const alice = await person(false);
    const carol = await person(true);
    const chat = await alice.e.openDirect(carol.name);
    await alice.e.send(chat, 'before');
    await carol.e.start();
    await until('carol has it', async () => (await texts(carol.e)).includes('before') || (await sleep(20), false));
    await carol.e.stop();
    const cursor = await cursorOf(carol.e);
    const last = await restore(carol.name, 1);
    expect(cursor).toBeGreaterThan(last);
    // Carol's app starts again, its socket up before anything is stored since the restore
    // (its catch-up finds nothing to read, but moves the counter): what comes next arrives live.
    const again = await open(true, carol.e.ctx.store as MemoryStore);
    await again.start();
    await until('the socket is up', async () => again.connectionState === 'online' || (await sleep(20), false));
    await sleep(5);
    await alice.e.send(chat, 'after the restore');
    await until('carol has what came after the restore', async () => (await texts(again)).includes('after the restore') || (await sleep(20), false));
    expect(await texts(again)).toEqual(['before', 'after the restore']);
    expect(await cursorOf(again)).toBe(cursor + 1);
  });
});

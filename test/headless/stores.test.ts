// The engine's Store contract on all three implementations (memory, the Node file store, and
// the browser's IndexedDB store on fake-indexeddb), then the file store's persistence and crash
// safety, proven by killing a writer process with SIGKILL at random moments.
import 'fake-indexeddb/auto';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, test } from 'vitest';
import { MemoryStore } from '../../web/core/store/memory-store.ts';
import type { MessageRow, Store } from '../../web/core/store/schema.ts';
import { openProfile } from '../../web/headless/cli-profile.ts';
import { openFileStore, ProfileLockedError } from '../../web/headless/file-store.ts';
import { journalPath } from '../../web/headless/store-files.ts';
import { openIdbStore } from '../../web/storage/idb-store.ts';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'petrel-store-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const msg = (conversation: string, order: number, text = 'x'): MessageRow => ({
  key: `u/${conversation}-${order}`, id: `${order}`, conversation, sender: 'u', senderDevice: 'd', sentAt: order, receivedAt: order, order,
  text, replyTo: null, attachment: null, reactions: {}, editedAt: null, deleted: false, status: 'received', deliveredTo: [], readBy: [], system: false,
});

describe.each([
  { name: 'memory', open: async () => new MemoryStore() as Store, persistent: false },
  { name: 'file', open: async (dir?: string) => openFileStore(dir ?? tmp()), persistent: true },
  { name: 'idb', open: async () => openIdbStore(`petrel-test-${Math.random()}`), persistent: true },
])('Store contract: $name', ({ open }) => {
  test('put, get, delete, clear; bytes round-trip exactly', async () => {
    const s = await open();
    const bytes = new Uint8Array([0, 1, 2, 255, 128]);
    await s.write(['meta', 'prekeys'], async (tx) => {
      await tx.put('meta', { key: 'k', value: { nested: [bytes, new Uint8Array(0)], n: 1 } });
      await tx.put('prekeys', { id: '2/1', secret: bytes });
    });
    const got = await s.read(['meta', 'prekeys'], async (tx) => [await tx.get('meta', 'k'), await tx.get('prekeys', '2/1')] as const);
    expect(got[0]!.value).toEqual({ nested: [bytes, new Uint8Array(0)], n: 1 });
    expect((got[0]!.value as any).nested[0]).toBeInstanceOf(Uint8Array);
    expect(got[1]!.secret).toEqual(bytes);
    await s.write(['prekeys'], (tx) => tx.delete('prekeys', '2/1'));
    expect(await s.read(['prekeys'], (tx) => tx.get('prekeys', '2/1'))).toBeUndefined();
    await s.write(['meta'], (tx) => tx.clear('meta'));
    expect(await s.read(['meta'], (tx) => tx.count('meta'))).toBe(0);
    await s.close();
  });

  test('index queries: ranges, limit, reverse, compound keys in IndexedDB order', async () => {
    const s = await open();
    await s.write(['messages'], async (tx) => {
      for (const o of [5, 1, 3, 2, 4]) await tx.put('messages', msg('c1', o));
      for (const o of [1, 2]) await tx.put('messages', msg('c2', o));
    });
    const q = (lower: number, upper: number, extra = {}) =>
      s.read(['messages'], (tx) => tx.getAll('messages', { index: 'byConversation', lower: ['c1', lower], upper: ['c1', upper], ...extra }));
    expect((await q(0, 99)).map((m) => m.order)).toEqual([1, 2, 3, 4, 5]);
    expect((await q(2, 4)).map((m) => m.order)).toEqual([2, 3, 4]);
    expect((await q(0, 99, { reverse: true, limit: 2 })).map((m) => m.order)).toEqual([5, 4]);
    expect(await s.read(['messages'], (tx) => tx.count('messages'))).toBe(7);
    await s.close();
  });

  test('a throwing transaction leaves nothing; a transaction reads its own writes', async () => {
    const s = await open();
    await expect(
      s.write(['meta'], async (tx) => {
        await tx.put('meta', { key: 'a', value: 1 });
        expect((await tx.get('meta', 'a'))!.value).toBe(1);
        expect(await tx.getAll('meta')).toHaveLength(1);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(await s.read(['meta'], (tx) => tx.get('meta', 'a'))).toBeUndefined();
    await s.close();
  });
});

describe('file store durability', () => {
  test('state persists across close and reopen; a second opener is refused', async () => {
    const dir = tmp();
    const s = await openFileStore(dir);
    await s.write(['meta'], (tx) => tx.put('meta', { key: 'cursor', value: 42 }));
    await expect(openFileStore(dir)).rejects.toBeInstanceOf(ProfileLockedError);
    await s.close();
    const again = await openFileStore(dir);
    expect((await again.read(['meta'], (tx) => tx.get('meta', 'cursor')))!.value).toBe(42);
    await again.close();
  });

  test('a profile erased (logout): snapshot, journals and lock go, then the folder unless other files are in it; not while in use', async () => {
    const dir = join(tmp(), 'profile');
    mkdirSync(dir);
    const s = await openFileStore(dir, { journalMax: 4096 });
    for (let i = 0; i < 40; i++) await s.write(['messages'], (tx) => tx.put('messages', msg('c', i, 'y'.repeat(200))));
    await s.close();
    expect(readdirSync(dir).filter((f) => f.startsWith('store.journal.')).length).toBeGreaterThan(0);
    expect(existsSync(join(dir, 'store.snapshot'))).toBe(true); // it compacted
    writeFileSync(join(dir, 'notes.txt'), 'mine');

    const p = await openProfile(dir, { create: false });
    await p.store.close();
    const other = await openFileStore(dir); // another process opened it meanwhile
    expect(() => p.erase()).toThrow(ProfileLockedError);
    expect(existsSync(join(dir, 'store.snapshot'))).toBe(true);
    await other.close();
    expect(p.erase()).toEqual(['notes.txt']);
    expect(readdirSync(dir)).toEqual(['notes.txt']);
    await expect(openProfile(dir, { create: false })).rejects.toMatchObject({ code: 'no_profile' });

    rmSync(join(dir, 'notes.txt'));
    const q = await openProfile(dir, { create: true });
    await q.store.write(['meta'], (tx) => tx.put('meta', { key: 'a', value: 1 }));
    await q.store.close();
    expect(q.erase()).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  });

  test('a torn journal tail is ignored and cut off; a stale lock is taken over', async () => {
    const dir = tmp();
    const s = await openFileStore(dir);
    await s.write(['meta'], (tx) => tx.put('meta', { key: 'a', value: 1 }));
    await s.write(['meta'], (tx) => tx.put('meta', { key: 'b', value: 2 }));
    await s.close();
    const journal = journalPath(dir, 1); // a new store appends to generation 1
    const full = statSync(journal).size;
    truncateSync(journal, full - 3); // a crash in the middle of the second append
    writeFileSync(join(dir, 'store.lock'), '999999'); // left by a process that is gone
    const r = await openFileStore(dir);
    expect(await r.read(['meta'], async (tx) => [(await tx.get('meta', 'a'))?.value, (await tx.get('meta', 'b'))?.value])).toEqual([1, undefined]);
    await r.write(['meta'], (tx) => tx.put('meta', { key: 'c', value: 3 }));
    await r.close();
    appendFileSync(journal, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9])); // garbage after valid records
    const r2 = await openFileStore(dir);
    expect(await r2.read(['meta'], async (tx) => (await tx.getAll('meta')).map((m) => m.key))).toEqual(['a', 'c']);
    await r2.close();
  });

  test('SIGKILL at random moments: every resolved transaction is there, none half-applied', async () => {
    const dir = tmp();
    const writer = join(dir, '..', `writer-${Date.now()}.mts`);
    const src = new URL('../../web/headless/file-store.ts', import.meta.url).pathname;
    writeFileSync(
      writer,
      `import { openFileStore } from ${JSON.stringify(src)};
const s = await openFileStore(process.argv[2], { journalMax: 64 * 1024 }); // compacts every ~20 transactions
let i = Number((await s.read(['meta'], (tx) => tx.get('meta', 'next')))?.value ?? 0);
const pad = 'p'.repeat(3000);
for (;;) {
  // Each transaction writes three rows that must appear together, and grows the journal past compaction.
  await s.write(['meta', 'messages'], async (tx) => {
    await tx.put('meta', { key: 'next', value: i + 1 });
    await tx.put('meta', { key: 'pair-' + i, value: i });
    await tx.put('meta', { key: 'twin-' + i, value: pad });
  });
  process.stdout.write(i + '\\n');
  i++;
}
`,
    );
    dirs.push(writer);
    let confirmed = -1;
    for (let round = 0; round < 5; round++) {
      const child = spawn(process.execPath, ['--import', 'tsx', writer, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      const rl = createInterface({ input: child.stdout! });
      rl.on('line', (l) => (confirmed = Math.max(confirmed, Number(l))));
      await new Promise((r) => setTimeout(r, 600 + Math.random() * 900));
      const exited = child.exitCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      const s = await openFileStore(dir);
      const rows = await s.read(['meta'], (tx) => tx.getAll('meta'));
      const next = (rows.find((r) => r.key === 'next')?.value as number) ?? 0;
      expect(next).toBeGreaterThan(confirmed); // every confirmed write survived
      const pairs = rows.filter((r) => r.key.startsWith('pair-')).length;
      const twins = rows.filter((r) => r.key.startsWith('twin-')).length;
      expect(pairs).toBe(next); // no transaction half-applied
      expect(twins).toBe(next);
      await s.close();
    }
    expect(confirmed).toBeGreaterThan(50); // many compactions happened, some surely interrupted
  }, 60_000);
});

describe('IndexedDB store', () => {
  test('secret rows are stored encrypted under a non-extractable key, and read back', async () => {
    const name = `petrel-wrap-${Math.random()}`;
    const s = await openIdbStore(name);
    const secret = new Uint8Array([9, 9, 9, 1, 2, 3]);
    await s.write(['meta', 'sessions', 'conversations'], async (tx) => {
      await tx.put('meta', { key: 'identity', value: { username: 'alice', accountSecret: secret, device: secret, token: 'pd_secret', deviceName: 'x' } });
      await tx.put('sessions', { address: 'bob/00', record: secret });
      await tx.put('meta', { key: 'cursor', value: 7 });
    });
    const raw = await new Promise<any[]>((resolve) => {
      const req = (globalThis as any).indexedDB.open(name);
      req.onsuccess = () => {
        const tx = req.result.transaction(['meta', 'sessions', 'wrapping-keys'], 'readonly');
        const out: any[] = [];
        tx.objectStore('meta').getAll().onsuccess = (e: any) => out.push(...e.target.result);
        tx.objectStore('sessions').getAll().onsuccess = (e: any) => out.push(...e.target.result);
        tx.objectStore('wrapping-keys').getAll().onsuccess = (e: any) => out.push(...e.target.result);
        tx.oncomplete = () => (req.result.close(), resolve(out));
      };
    });
    const dump = JSON.stringify(raw, (_k, v) => (v instanceof Uint8Array ? Array.from(v) : v));
    expect(dump).not.toContain('pd_secret');
    expect(dump).not.toContain('[9,9,9,1,2,3]');
    expect(raw.find((r) => r.key === 'cursor').value).toBe(7); // not a secret: stored as is
    const key = raw.find((r) => r && r.type === 'secret');
    expect(key.extractable).toBe(false);
    const identity = await s.read(['meta'], (tx) => tx.get('meta', 'identity'));
    expect((identity!.value as any).token).toBe('pd_secret');
    expect((await s.read(['sessions'], (tx) => tx.get('sessions', 'bob/00')))!.record).toEqual(secret);
    await s.close();
  });
});

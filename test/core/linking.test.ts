// Linking and own-device sync when things go wrong: the engine against an in-process relay
// (app.request, no port) on PGlite, with a fetch that can fail chosen requests the way a network
// drop or a relay restart does. Each device has its own in-memory store.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { encodeLinkCode, generateAccountKey, generateDevice, newDeviceList, signDeviceList, systemRng } from '../../crypto/index.ts';
import { toB64 } from '../../web/core/b64.ts';
import { nameWithShortId, shortDeviceId } from '../../web/core/device-id.ts';
import { Engine } from '../../web/core/engine.ts';
import type { Fetch } from '../../web/core/net/api.ts';
import { MemoryStore } from '../../web/core/store/memory-store.ts';
import { call, login } from '../relay/client.ts';
import { backends, startTestRelay, type TestRelay, uniqueName } from '../relay/harness.ts';

const BASE = 'http://relay.test';

describe.each(backends.slice(0, 1))('linking and own devices on $name', (backend) => {
  let relay: TestRelay;
  /** Requests it returns true for never reach the relay: the connection drops. */
  let drop: ((method: string, path: string) => boolean) | null = null;
  /** Requests it answers never reach the relay: its answer is taken instead (a relay of another version). */
  let answer: ((method: string, path: string) => Response | null) | null = null;
  const sent: { method: string; path: string; status: number }[] = [];
  const fetch: Fetch = async (url, init) => {
    const method = init?.method ?? 'GET';
    const path = url.slice(BASE.length);
    if (drop?.(method, path)) throw new TypeError('fetch failed');
    const res = answer?.(method, path) ?? (await relay.app.request(path, init as RequestInit));
    sent.push({ method, path, status: res.status });
    return res;
  };
  const device = (name = 'test device', store = new MemoryStore()) => Engine.open({ store, relayUrl: BASE, fetch, deviceName: name });
  const keyUploads = (path: string, method: string) => method === 'PUT' && path === '/v1/keys';
  /** Alice on her phone and Bob, both registered. */
  const aliceAndBob = async () => {
    const a1 = await device('phone');
    const b = await device();
    const [an, bn] = [uniqueName('alice'), uniqueName('bob')];
    await a1.register(an, 'pw');
    await b.register(bn, 'pw-b');
    return { a1, b, an, bn };
  };

  beforeAll(async () => {
    relay = await startTestRelay(backend);
  });
  afterAll(async () => relay?.close());

  /** Links a new device to `from`'s account with a code. */
  const link = async (from: Engine, name = 'laptop') => {
    const d = await device(name);
    const started = await d.startLink({ pollMs: 20 });
    await Promise.all([started.done, from.approveLink(started.code, { pollMs: 20 })]);
    await d.sync(); // the history
    return d;
  };

  /** A new account key for `user` (an account reset), signing a list with one new device. */
  const resetAccountKey = async (user: string, password: string) => {
    await relay.services.db.execute(sql`UPDATE accounts SET account_key = NULL WHERE username = ${user}`);
    await relay.services.db.execute(sql`DELETE FROM device_lists WHERE account_id = (SELECT id FROM accounts WHERE username = ${user})`);
    const session = (await login(relay.fetch, user, password)).body.sessionToken as string;
    const k2 = generateAccountKey(systemRng);
    const list = signDeviceList(newDeviceList(user, k2.publicKey, generateDevice(systemRng), 'new phone', Date.now()), k2);
    expect((await call(relay.fetch, 'PUT', '/v1/account/devices', { token: session, body: { list: Buffer.from(list.bytes).toString('base64url') } })).status).toBe(200);
  };

  test('a link code with any one character mistyped is refused and lists no device; one wrapped over lines is accepted', async () => {
    const a1 = await device('phone');
    await a1.register(uniqueName('alice'), 'pw');
    const a2 = await device('laptop');
    const started = await a2.startLink({ pollMs: 20 });
    const code = started.code;
    expect(code).toMatch(/^[A-Za-z0-9_-]{92}$/);
    for (let i = 0; i < code.length; i++) {
      const typo = code.slice(0, i) + (code[i] === 'x' ? 'y' : 'x') + code.slice(i + 1);
      await expect(a1.approveLink(typo, { pollMs: 20 }), `character ${i}`).rejects.toMatchObject({ code: 'invalid_code', message: expect.stringContaining('mistyped') });
    }
    expect((await a1.devices()).map((d) => d.name)).toEqual(['phone']);
    const wrapped = `  ${code.slice(0, 40)}\r\n  ${code.slice(40, 80)}\n\t${code.slice(80)} `;
    await Promise.all([started.done, a1.approveLink(wrapped, { pollMs: 20 })]);
    expect(a2.state()).toMatchObject({ hasAccountKey: true });
  });

  /** The code of a device that never comes online (its keys exist nowhere else). */
  const absentCode = () => toB64(encodeLinkCode(generateDevice(systemRng)));
  /** An engine whose clock only moves when it sleeps, and the sleeps it asked for. */
  const fakeClock = async (name: string) => {
    let clock = Date.now();
    const waits: number[] = [];
    const e = await Engine.open({ store: new MemoryStore(), relayUrl: BASE, fetch, deviceName: name, now: () => clock });
    const sleep = async (ms: number) => {
      waits.push(ms);
      clock += ms;
    };
    return { e, waits, sleep };
  };
  const bundlePolls = (user: string) => sent.filter((r) => r.method === 'GET' && r.path.startsWith(`/v1/users/${user}/bundles`)).length;

  test('an approval the new device never answers polls with backoff up to 15 s, then times out', async () => {
    const { e: a1, waits, sleep } = await fakeClock('phone');
    const an = uniqueName('alice');
    await a1.register(an, 'pw');
    const before = bundlePolls(an);
    await expect(a1.approveLink(absentCode(), { sleep })).rejects.toMatchObject({ code: 'link_timeout' });
    expect(waits.slice(0, 4)).toEqual([1000, 1500, 2250, 3375]);
    expect(Math.max(...waits)).toBe(15_000);
    // About 45 requests in 10 minutes rather than 600, and each one answered (no 429s).
    expect(waits.length).toBeLessThan(50);
    expect(bundlePolls(an) - before).toBe(waits.length + 1);
    expect(sent.filter((r) => r.path.startsWith(`/v1/users/${an}/`) && r.status === 429)).toEqual([]);
  });

  test('an approval stops waiting once the device is removed, here or on another device', async () => {
    const { e: a1, waits, sleep } = await fakeClock('phone');
    const an = uniqueName('alice');
    await a1.register(an, 'pw');
    // Removed on this device: the cached list says so, without another request.
    let id = '';
    const here = a1.approveLink(absentCode(), { onApproved: (d) => (id = d.deviceId), sleep: async (ms) => { await sleep(ms); if (waits.length === 3) await a1.removeDevice(id); } });
    await expect(here).rejects.toMatchObject({ code: 'link_removed' });
    expect(waits.length).toBe(3);
    // Removed on another device: the relay stops listing it.
    const a3 = await device('tablet');
    await a3.login(an, 'pw');
    waits.length = 0;
    const there = a1.approveLink(absentCode(), { onApproved: (d) => (id = d.deviceId), sleep: async (ms) => { await sleep(ms); if (waits.length === 2) await a3.removeDevice(id); } });
    await expect(there).rejects.toMatchObject({ code: 'link_removed' });
    expect(waits.length).toBe(2);
  });

  test('a cancelled approval stops at once and leaves the device approved, to finish later with its code', async () => {
    const a1 = await device('phone');
    const an = uniqueName('alice');
    await a1.register(an, 'pw');
    const a2 = await device('laptop');
    const started = await a2.startLink({ pollMs: 20, timeoutMs: 60_000 });
    // The new device claims its token only once listed; hold its claims back until cancelled.
    drop = (method, path) => path === '/v1/devices/claim';
    const stop = new AbortController();
    const t0 = Date.now();
    const waiting = a1.approveLink(started.code, { pollMs: 30_000, signal: stop.signal, onApproved: () => setTimeout(() => stop.abort(), 50) });
    await expect(waiting).rejects.toMatchObject({ code: 'link_cancelled' });
    expect(Date.now() - t0).toBeLessThan(10_000); // the 30 s pause did not run out
    drop = null;
    expect((await a1.devices()).map((d) => d.name)).toEqual(['phone', 'Device 2']);
    await Promise.all([started.done, a1.approveLink(started.code, { pollMs: 20 })]);
    expect(a2.state()).toMatchObject({ username: an, hasAccountKey: true });
  });

  test('a claimed token survives a failed first prekey upload: the upload is retried and the link completes', async () => {
    const a1 = await device('phone');
    const an = uniqueName('alice');
    await a1.register(an, 'pw');
    const a2 = await device('laptop');
    let failures = 2;
    drop = (method, path) => keyUploads(path, method) && failures-- > 0;
    try {
      const started = await a2.startLink({ pollMs: 20 });
      await Promise.all([started.done, a1.approveLink(started.code, { pollMs: 20 })]);
    } finally {
      drop = null;
    }
    expect(failures).toBeLessThan(0); // both uploads were refused, and a third went through
    expect(a2.state()).toMatchObject({ username: an, hasAccountKey: true });
    // The relay gave this device one token, once, and it works.
    expect(sent.filter((r) => r.path === '/v1/devices/claim' && r.status === 409)).toEqual([]);
    const b = await device();
    const bn = uniqueName('bob');
    await b.register(bn, 'pw');
    await b.send(await b.openDirect(an), 'to both of you');
    expect((await a2.sync()).map((m) => m.text)).toEqual(['to both of you']);
  });

  test('a linked device closed before its prekeys reached the relay finishes linking when opened again', async () => {
    const a1 = await device('phone');
    const an = uniqueName('alice');
    await a1.register(an, 'pw');
    const store = new MemoryStore();
    const a2 = await device('laptop', store);
    drop = (method, path) => keyUploads(path, method);
    let approving: Promise<unknown>;
    try {
      const started = await a2.startLink({ pollMs: 20, timeoutMs: 1_000 });
      approving = a1.approveLink(started.code, { pollMs: 20 });
      // The relay stays out of reach until this device gives up (as if the app had been closed).
      const failure = await started.done.then(
        () => null,
        (e: { code?: string; message?: string }) => e,
      );
      expect(failure).toMatchObject({ code: 'link_unfinished', message: expect.stringContaining('finishes by itself') });
    } finally {
      drop = null;
    }
    // Opened again: it is this account's device already (its token was kept), and finishes.
    const reopened = await device('laptop', store);
    expect(reopened.state()).toMatchObject({ username: an, hasAccountKey: false });
    await reopened.sync(); // uploads the prekeys the approving device waits for
    await approving!;
    await reopened.sync();
    expect(reopened.state()).toMatchObject({ username: an, hasAccountKey: true });
  });

  test('approving a code again resumes a link the new device did not finish in time', async () => {
    const a1 = await device('phone');
    const an = uniqueName('alice');
    await a1.register(an, 'pw');
    const store = new MemoryStore();
    const a2 = await device('laptop', store);
    drop = (method, path) => keyUploads(path, method);
    let code = '';
    try {
      const started = await a2.startLink({ pollMs: 20, timeoutMs: 500 });
      code = started.code;
      const approved = await Promise.allSettled([started.done, a1.approveLink(code, { pollMs: 20, timeoutMs: 500 })]);
      expect(approved.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    } finally {
      drop = null;
    }
    const reopened = await device('laptop', store);
    await reopened.sync();
    expect(await a1.approveLink(code, { pollMs: 20 })).toMatchObject({ name: 'Device 2' });
    await reopened.sync();
    expect(reopened.state()).toMatchObject({ username: an, hasAccountKey: true });
  });

  test('a device registered while its first prekey upload fails is kept, and uploads them at its next sync', async () => {
    const a = await device('phone');
    const an = uniqueName('alice');
    drop = (method, path) => keyUploads(path, method);
    try {
      await a.register(an, 'pw');
    } finally {
      drop = null;
    }
    expect(a.state()).toMatchObject({ username: an, hasAccountKey: true });
    await a.sync();
    const b = await device();
    const bn = uniqueName('bob');
    await b.register(bn, 'pw');
    expect(await b.send(await b.openDirect(an), 'can you hear me')).toMatchObject({ status: 'sent' });
    expect((await a.sync()).map((m) => m.text)).toEqual(['can you hear me']);
  });
  test('a message for our own devices only is not dropped when the cached own list misses a new device', async () => {
    const { a1, b, an, bn } = await aliceAndBob();
    await a1.send(await a1.openDirect(bn), 'hi'); // caches a1's own list: a1 alone
    const a2 = await device('laptop');
    await a2.login(an, 'pw');
    // a1 has not heard of a2 yet: its cached list is the one without it.
    await a1.markVerified(bn);
    await a2.sync();
    expect(await a2.contacts()).toEqual([{ username: bn, verified: true, keyChanged: false }]);
  });

  test('offline, a message for our own devices only waits rather than being judged to have nobody to reach', async () => {
    const { a1, b, an, bn } = await aliceAndBob();
    await a1.openDirect(bn);
    await a1.devices(); // a1's own list, cached: a1 alone
    const a2 = await device('laptop');
    await a2.login(an, 'pw');
    drop = () => true;
    try {
      await a1.markVerified(bn);
      expect((await a1.ctx.store.read(['outbox'], (tx) => tx.getAll('outbox'))).length).toBe(1);
    } finally {
      drop = null;
    }
    await a1.wake();
    await a2.sync();
    expect(await a2.contacts()).toEqual([{ username: bn, verified: true, keyChanged: false }]);
  });

  test('a message for our own devices only is not held for one that has no prekeys yet; the device gets it with the history once linked', async () => {
    const { a1, b, an, bn } = await aliceAndBob();
    await a1.openDirect(bn);
    const store = new MemoryStore();
    let code = '';
    drop = (method, path) => keyUploads(path, method);
    try {
      const started = await (await device('laptop', store)).startLink({ pollMs: 20, timeoutMs: 500 });
      code = started.code;
      const approved = await Promise.allSettled([started.done, a1.approveLink(code, { pollMs: 20, timeoutMs: 500 })]);
      expect(approved.map((r) => r.status)).toEqual(['rejected', 'rejected']); // listed and claimed, without keys
      // Not waited for (the relay does not require it): a device never brought online would hold
      // the outbox, and everything queued behind this, for good.
      await a1.markVerified(bn);
      expect(await a1.ctx.store.read(['outbox'], (tx) => tx.getAll('outbox'))).toEqual([]);
      expect(await a1.send(await a1.openDirect(bn), 'still here')).toMatchObject({ status: 'sent' });
    } finally {
      drop = null;
    }
    expect((await b.sync()).map((m) => m.text)).toEqual(['still here']);
    const a2 = await device('laptop', store);
    await a2.sync(); // its prekeys go up
    // Approving its code again finishes the link: the history carries the verification.
    await a1.approveLink(code, { pollMs: 20 });
    await a2.sync();
    expect(await a2.contacts()).toEqual([{ username: bn, verified: true, keyChanged: false }]);
  });

  test('a listed device that never came online blocks nobody: the other user can message its user, and its user can send', async () => {
    const { a1, b, an, bn } = await aliceAndBob();
    // Alice approves a link code whose device never comes online (it never claims its token).
    drop = (method, path) => method === 'POST' && path === '/v1/devices/claim';
    try {
      const started = await (await device('laptop')).startLink({ pollMs: 20, timeoutMs: 300 });
      const approved = await Promise.allSettled([started.done, a1.approveLink(started.code, { pollMs: 20, timeoutMs: 300 })]);
      expect(approved.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    } finally {
      drop = null;
    }
    const devices = await a1.devices();
    expect(devices).toHaveLength(2); // listed: the relay's bundles call it unavailable
    const pending = devices.find((d) => !d.current)!;
    const bundles = await call(relay.fetch, 'GET', `/v1/users/${an}/bundles`, { token: b.ctx.api.token! });
    expect(bundles.body.unavailable).toEqual([pending.deviceId]);

    const before = sent.length;
    // Bob writes to alice (before the fix: 409 device_mismatch, "not sent").
    expect(await b.send(await b.openDirect(an), 'hello alice')).toMatchObject({ status: 'sent' });
    expect((await a1.sync()).map((m) => m.text)).toEqual(['hello alice']);
    // Alice's own sends go out (before: they sat in her outbox), and so does what only her devices get.
    const dm = await a1.openDirect(bn);
    expect(await a1.send(dm, 'hi bob')).toMatchObject({ status: 'sent' });
    await a1.markVerified(bn);
    expect(await a1.send(dm, 'verified you')).toMatchObject({ status: 'sent' });
    expect(await a1.ctx.store.read(['outbox'], (tx) => tx.getAll('outbox'))).toEqual([]);
    expect((await b.sync()).map((m) => m.text)).toEqual(['hi bob', 'verified you']);
    // No submission was refused for the device: the client's rule and the relay's are the same.
    expect(sent.slice(before).filter((r) => r.path === '/v1/messages' && r.status === 409)).toEqual([]);
  });

  test('a 409 naming as missing only a device without a bundle backs off, neither failed nor re-sealed in a loop', async () => {
    const { a1, b, an, bn } = await aliceAndBob();
    drop = (method, path) => method === 'POST' && path === '/v1/devices/claim';
    try {
      const started = await (await device('laptop')).startLink({ pollMs: 20, timeoutMs: 300 });
      await Promise.allSettled([started.done, a1.approveLink(started.code, { pollMs: 20, timeoutMs: 300 })]);
    } finally {
      drop = null;
    }
    const pending = (await a1.devices()).find((d) => !d.current)!;
    // A relay that still requires every listed device (or whose keys went up just now).
    const before = sent.length;
    answer = (method, path) =>
      method === 'POST' && path === '/v1/messages'
        ? Response.json({ error: 'device_mismatch', message: 'mismatch', missing: [{ user: an, devices: [pending.deviceId] }], extra: [] }, { status: 409 })
        : null;
    try {
      expect(await b.send(await b.openDirect(an), 'hello alice')).toMatchObject({ status: 'pending' });
    } finally {
      answer = null;
    }
    const [row] = await b.ctx.store.read(['outbox'], (tx) => tx.getAll('outbox'));
    expect(row).toMatchObject({ attempts: 1, sealed: null, lastError: expect.stringContaining('no keys on the relay yet') });
    // One submission, one bundle fetch for alice: no repair rounds spent on a device that has no keys.
    expect(sent.slice(before).filter((r) => r.path === '/v1/messages')).toEqual([{ method: 'POST', path: '/v1/messages', status: 409 }]);
    expect(sent.slice(before).filter((r) => r.path.startsWith(`/v1/users/${an}/bundles`))).toHaveLength(1);
    // The relay of today takes it on the next attempt.
    await b.wake();
    expect(await b.ctx.store.read(['outbox'], (tx) => tx.getAll('outbox'))).toEqual([]);
    expect((await a1.sync()).map((m) => m.text)).toEqual(['hello alice']);
  });

  test('two alike browsers on one account get distinct names, each ending in its short id; devices() lists that id and when it was added', async () => {
    // As the PWA names itself (web/main.tsx): the same guess on both, told apart by the short id.
    const browser = () => Engine.open({ store: new MemoryStore(), relayUrl: BASE, fetch, deviceName: (id) => nameWithShortId('Chromium on Linux', id) });
    const an = uniqueName('alice');
    const t0 = Date.now();
    const a1 = await browser();
    await a1.register(an, 'pw');
    const added: { deviceId: string; name: string }[] = [];
    a1.on((e) => e.type === 'device-added' && added.push(e));
    const a2 = await browser();
    await a2.login(an, 'pw');
    const list = await a1.devices();
    expect(list).toHaveLength(2);
    for (const d of list) {
      expect(d.shortId).toBe(shortDeviceId(d.deviceId));
      expect(d.name).toBe(`Chromium on Linux · ${d.shortId.slice(0, 4)}`);
      expect(d.addedAt).toBeGreaterThanOrEqual(t0);
      expect(d.addedAt).toBeLessThanOrEqual(Date.now());
    }
    expect(list[0]!.name).not.toBe(list[1]!.name);
    expect(list.find((d) => d.current)!.deviceId).toBe(a1.state()!.deviceId);
    // The other devices are told the same name the list holds.
    await a1.sync();
    expect(added).toEqual([{ type: 'device-added', deviceId: a2.state()!.deviceId, name: list.find((d) => !d.current)!.name }]);
    // Linked with a code, the approving device names it; a plain name is kept as given.
    const a3 = await device('tablet');
    const started = await a3.startLink({ pollMs: 20 });
    await Promise.all([started.done, a1.approveLink(started.code, { pollMs: 20, name: 'Work tablet' })]);
    expect((await a1.devices()).map((d) => d.name)).toEqual([list[0]!.name, list[1]!.name, 'Work tablet']);
  });

  test('a new device inherits the verifications made for the keys it sees', async () => {
    const a1 = await device('phone');
    const [an, bn, cn] = [uniqueName('alice'), uniqueName('bob'), uniqueName('carol')];
    await a1.register(an, 'pw');
    const [b, c] = [await device(), await device()];
    await b.register(bn, 'pw-b');
    await c.register(cn, 'pw-c');
    await a1.send(await a1.openDirect(bn), 'hi bob');
    await a1.send(await a1.openDirect(cn), 'hi carol');
    await a1.markVerified(bn, true, (await a1.safetyNumber(bn)).digits);
    await a1.markVerified(cn, true, (await a1.safetyNumber(cn)).digits);
    // Carol's account key changes before the new devices look her up: what a1 verified was not it.
    await resetAccountKey(cn, 'pw-c');

    const linked = await link(a1);
    expect(await linked.contacts()).toEqual(
      expect.arrayContaining([
        { username: bn, verified: true, keyChanged: false },
        { username: cn, verified: false, keyChanged: false },
      ]),
    );
    // A device added by password gets the history (and the verifications) from another device.
    const a3 = await device('tablet');
    await a3.login(an, 'pw');
    await a1.sync();
    await linked.sync();
    await a3.sync();
    expect((await a3.contacts()).find((x) => x.username === bn)).toEqual({ username: bn, verified: true, keyChanged: false });
    expect((await a3.contacts()).find((x) => x.username === cn)?.verified).not.toBe(true);
  });
  test('a new device shows its account\'s old messages as read where the sending device does, though the receipt came before the history', async () => {
    const { a1, b, an, bn } = await aliceAndBob();
    const conv = await a1.openDirect(bn);
    const { id } = await a1.send(conv, 'sent before the tablet');
    await b.sync();
    await a1.sync(); // delivered
    const a2 = await device('tablet');
    await a2.login(an, 'pw');
    expect(await a2.historyDue()).toBe(true);
    await a1.sync(); // a1 exports the history with the message delivered, not yet read
    await b.markRead(`dm:${an}`); // the read receipt goes to a1 and a2 alike
    await a2.sync(); // the receipt and the history package in one pass: the receipt first
    await a1.sync();
    const status = async (e: Engine) => (await e.messages(conv)).find((m) => m.id === id)?.status;
    expect(await status(a1)).toBe('read');
    expect(await status(a2)).toBe('read');
    expect(await a2.historyDue()).toBe(false);
    expect(await a2.ctx.store.read(['meta'], (tx) => tx.get('meta', 'earlyReceipts'))).toBeUndefined();
  });

  test('the history is due on a device that joined by password or a link, not on the first device of an account', async () => {
    const { a1, an } = await aliceAndBob();
    expect(await a1.historyDue()).toBe(false);
    const linked = await link(a1); // imports the history
    expect(await linked.historyDue()).toBe(false);
    // Every other device gone: nobody would send one.
    for (const d of await linked.devices()) if (!d.current) await linked.removeDevice(d.deviceId);
    const a3 = await device('tablet');
    await a3.login(an, 'pw');
    expect(await a3.historyDue()).toBe(true);
    await linked.sync();
    await a3.sync();
    expect(await a3.historyDue()).toBe(false);
    await a3.logOut();
    await linked.logOut();
    const a4 = await device('phone again');
    await a4.login(an, 'pw');
    expect(await a4.historyDue()).toBe(false);
  });
});

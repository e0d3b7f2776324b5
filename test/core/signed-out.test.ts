// A device whose token the relay refuses while the account's signed device list still has it —
// another session issued it a new token, or the relay's data was restored — is signed out, not
// removed (web/core/refusal.ts): nothing goes out with the dead token, the outbox and history
// stay, a restart starts in that state without a request, and signing in again with the
// password (a new token for this device) resumes it. Only the list marking it removed is final.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { allMessages } from '../../web/core/views.ts';
import { fromB64 } from '../../web/core/b64.ts';
import { Engine } from '../../web/core/engine.ts';
import type { Fetch } from '../../web/core/net/api.ts';
import { MemoryStore } from '../../web/core/store/memory-store.ts';
import { backends, startTestRelay, type TestRelay, uniqueName } from '../relay/harness.ts';

const BASE = 'http://relay.test';
const PASSWORD = 'correct horse';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const waitFor = async (ok: () => boolean, what: string) => {
  for (let i = 0; i < 300 && !ok(); i++) await sleep(10);
  if (!ok()) throw new Error(`timed out waiting for ${what}`);
};

describe.each(backends)('a signed-out device ($name)', (backend) => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay(backend);
  });
  afterAll(async () => relay?.close());

  /**
   * A fetch that records every request (method and path, and whether it carried a token); while
   * `down.list` is set, the public device list cannot be reached.
   */
  const network = () => {
    const requests: string[] = [];
    const down = { list: false };
    const fetch: Fetch = async (url, init) => {
      const path = url.slice(BASE.length);
      requests.push(`${init?.method ?? 'GET'} ${path}${init?.headers?.authorization ? ' (token)' : ''}`);
      if (down.list && /^\/v1\/users\/[^/]+\/devices$/.test(path)) throw new TypeError('fetch failed');
      return relay.app.request(path, init as RequestInit);
    };
    return { requests, down, fetch, withToken: (from: number) => requests.slice(from).filter((r) => r.endsWith('(token)')) };
  };

  /** Alice on a phone and a laptop (the laptop over `net`, in `store`), and Bob. */
  const people = async (net: ReturnType<typeof network>, store = new MemoryStore()) => {
    const phone = await Engine.open({ store: new MemoryStore(), relayUrl: BASE, fetch: network().fetch, deviceName: 'phone' });
    const alice = uniqueName('alice');
    await phone.register(alice, PASSWORD);
    const laptop = await Engine.open({ store, relayUrl: BASE, fetch: net.fetch, deviceName: 'laptop', pollMs: 20 });
    await laptop.login(alice, PASSWORD);
    await phone.sync();
    const bob = await Engine.open({ store: new MemoryStore(), relayUrl: BASE, fetch: network().fetch });
    const bobName = uniqueName('bob');
    await bob.register(bobName, 'battery staple');
    return { phone, laptop, bob, alice, bobName };
  };

  /** Another session issues the laptop a new token: the one it holds is dead, the device still listed. */
  const replaceToken = async (phone: Engine, laptop: Engine) => {
    await phone.ctx.api.issueToken(fromB64(laptop.state()!.deviceId), phone.ctx.api.token!);
  };

  test('token replaced: signed out, not removed; nothing sent with the dead token; a restart starts signed out without a request; a wrong password changes nothing; signing in again gets what was sent meanwhile and sends the outbox', async () => {
    const net = network();
    const store = new MemoryStore();
    const { phone, laptop, bob, alice, bobName } = await people(net, store);
    const conv = await laptop.openDirect(bobName);
    await laptop.send(conv, 'before');
    expect((await bob.sync()).map((m) => m.text)).toContain('before');

    await replaceToken(phone, laptop);
    const states: string[] = [];
    laptop.on((e) => e.type === 'connection' && states.push(e.state));
    await laptop.start(); // its first sync meets the 401, and the list still has it
    expect(laptop.connectionState).toBe('signed_out');
    expect(laptop.signedOut).toBe(true);
    expect(laptop.removed).toBe(false);
    expect(states).not.toContain('removed');
    expect(states.at(-1)).toBe('signed_out');

    const before = net.requests.length;
    const queued = await laptop.send(conv, 'written while signed out');
    expect(queued.status).toBe('pending');
    await laptop.wake();
    await expect(laptop.sync()).rejects.toMatchObject({ code: 'signed_out' });
    await sleep(200); // ten poll intervals
    expect(net.withToken(before)).toEqual([]);
    await laptop.stop();

    // Bob writes meanwhile: it waits in the laptop's inbox on the relay.
    const bobConv = await bob.openDirect(alice);
    await bob.send(bobConv, 'sent meanwhile');

    // A reload: signed out at once, without a single request.
    const again = network();
    const reopened = await Engine.open({ store, relayUrl: BASE, fetch: again.fetch, pollMs: 20 });
    expect(reopened.connectionState).toBe('signed_out');
    await reopened.start();
    await sleep(100);
    expect(again.requests).toEqual([]);
    expect((await allMessages(reopened.ctx.store, conv)).map((m) => m.text)).toEqual(['before', 'written while signed out']);

    // A wrong password: said so, and nothing changes (no token request either).
    await expect(reopened.signIn('wrong horse')).rejects.toMatchObject({ code: 'login_failed', message: expect.stringContaining('Wrong password') });
    expect(reopened.connectionState).toBe('signed_out');
    expect(again.requests.filter((r) => r.includes('/token'))).toEqual([]);

    const events: string[] = [];
    reopened.on((e) => e.type === 'connection' && events.push(e.state));
    await reopened.signIn(PASSWORD);
    expect(reopened.signedOut).toBe(false);
    expect(reopened.tokenRefused).toBe(false);
    expect(events).not.toContain('signed_out');
    // Resumed (it was started): the catch-up brought Bob's message, the outbox went out.
    const texts = (await allMessages(reopened.ctx.store)).map((m) => m.text);
    expect(texts).toEqual(expect.arrayContaining(['before', 'written while signed out', 'sent meanwhile']));
    const mine = (await allMessages(reopened.ctx.store, conv)).find((m) => m.text === 'written while signed out')!;
    expect(mine.status).toBe('sent');
    expect((await bob.sync()).map((m) => m.text)).toContain('written while signed out');
    await reopened.stop();

    // The new token was stored before anything else: a restart is signed in, with no refusal left.
    const third = await Engine.open({ store, relayUrl: BASE, fetch: network().fetch });
    expect(third.connectionState).toBe('offline');
    expect(third.tokenRefused).toBe(false);
    expect((await third.sync()).length).toBe(0);
    expect((await third.devices()).map((d) => d.name)).toEqual(['phone', 'laptop']);
  }, 60_000);

  test('removed from the account: still the final removed state, and signing in cannot undo it', async () => {
    const net = network();
    const { phone, laptop } = await people(net);
    await replaceToken(phone, laptop);
    await expect(laptop.sync()).rejects.toMatchObject({ code: 'signed_out' });
    // Removed while signed out: signing in finds it off the list, and issues no token.
    const laptopId = laptop.state()!.deviceId;
    await phone.removeDevice(laptopId);
    const before = net.requests.length;
    await expect(laptop.signIn(PASSWORD)).rejects.toMatchObject({ code: 'device_removed' });
    expect(laptop.connectionState).toBe('removed');
    expect(net.requests.slice(before).filter((r) => r.includes('/token'))).toEqual([]);
    await expect(laptop.signIn(PASSWORD)).rejects.toMatchObject({ code: 'device_removed' });

    // And a device removed outright (its token stopped by the removal) ends removed, as before.
    const net2 = network();
    const two = await people(net2);
    await two.phone.removeDevice(two.laptop.state()!.deviceId);
    await expect(two.laptop.sync()).rejects.toMatchObject({ code: 'device_removed' });
    expect(two.laptop.connectionState).toBe('removed');
  }, 60_000);

  test('the list out of reach: not concluded removed; offline, no token used, asked again later (after a restart too), then signed out', async () => {
    const net = network();
    const store = new MemoryStore();
    const { phone, laptop } = await people(net, store);
    await replaceToken(phone, laptop);
    net.down.list = true;
    await laptop.start();
    expect(laptop.connectionState).toBe('offline');
    expect(laptop.removed).toBe(false);
    expect(laptop.tokenRefused).toBe(true);
    const before = net.requests.length;
    await sleep(150);
    expect(net.withToken(before)).toEqual([]);
    // It kept asking for the list (without a token) while running.
    expect(net.requests.slice(before).filter((r) => r.includes('/devices')).length).toBeGreaterThan(1);
    await laptop.stop();

    // A restart before the list answered: no request with the token, the check goes on.
    const again = network();
    again.down.list = true;
    const reopened = await Engine.open({ store, relayUrl: BASE, fetch: again.fetch, pollMs: 20 });
    expect(reopened.connectionState).toBe('offline');
    expect(reopened.tokenRefused).toBe(true);
    await reopened.start();
    await sleep(60);
    expect(again.withToken(0)).toEqual([]);
    again.down.list = false;
    await waitFor(() => reopened.connectionState === 'signed_out', 'signed_out');
    expect(again.withToken(0)).toEqual([]);
    await reopened.signIn(PASSWORD);
    await waitFor(() => reopened.connectionState === 'online', 'online');
    await reopened.stop();
  }, 60_000);
});

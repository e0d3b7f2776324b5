// A device removed from its account (by another device, or logged out) is told so by the relay —
// a 401 to its device token over HTTP, a 4403 close on the socket — and, once the account's
// device list confirms the removal, the engine turns that into the final 'removed' state: no more polls, reconnects or outbox sends (it used to poll
// every 5 s with 401s forever and mark each message "unauthorized"), kept across a restart.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Engine } from '../../web/core/engine.ts';
import type { Fetch } from '../../web/core/net/api.ts';
import type { WsLike } from '../../web/core/net/socket.ts';
import { MemoryStore } from '../../web/core/store/memory-store.ts';
import { backends, startTestRelay, type TestRelay, uniqueName } from '../relay/harness.ts';

const BASE = 'http://relay.test';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a removed device', () => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay(backends[0]!);
  });
  afterAll(async () => relay?.close());

  /** A fetch that records every request a device makes (method and path). */
  const counted = () => {
    const requests: string[] = [];
    const fetch: Fetch = async (url, init) => {
      requests.push(`${init?.method ?? 'GET'} ${url.slice(BASE.length)}`);
      return relay.app.request(url.slice(BASE.length), init as RequestInit);
    };
    return { requests, fetch };
  };

  /** Alice on two devices (the second logged in with the password). */
  const alice = async (second: { fetch: Fetch; store?: MemoryStore; WebSocket?: new (url: string) => WsLike; pollMs?: number }) => {
    const a1 = await Engine.open({ store: new MemoryStore(), relayUrl: BASE, fetch: counted().fetch, deviceName: 'phone' });
    const name = uniqueName('alice');
    await a1.register(name, 'correct horse');
    const a2 = await Engine.open({ store: second.store ?? new MemoryStore(), relayUrl: BASE, deviceName: 'laptop', ...second });
    await a2.login(name, 'correct horse');
    await a1.sync();
    return { a1, a2, name };
  };

  test('HTTP 401: the removed state, no more requests, the outbox kept and not marked failed; still removed after a restart', async () => {
    const net = counted();
    const store = new MemoryStore();
    const { a1, a2 } = await alice({ fetch: net.fetch, store, pollMs: 20 });
    const bob = await Engine.open({ store: new MemoryStore(), relayUrl: BASE, fetch: counted().fetch });
    const bn = uniqueName('bob');
    await bob.register(bn, 'battery staple');
    const states: string[] = [];
    a2.on((e) => e.type === 'connection' && states.push(e.state));
    const laptop = (await a1.devices()).find((d) => !d.current)!;
    await a1.removeDevice(laptop.deviceId);

    await a2.start(); // its first sync meets the 401
    expect(a2.connectionState).toBe('removed');
    expect(a2.removed).toBe(true);
    expect(states.at(-1)).toBe('removed');
    expect(states).not.toContain('offline'); // not "offline — messages wait in the outbox"

    const errors: string[] = [];
    a2.on((e) => e.type === 'error' && errors.push(e.code));
    const before = net.requests.length;
    const conv = await a2.openDirect(bn); // the public list still answers (no token)
    const sent = await a2.send(conv, 'into the void');
    await a2.wake();
    await expect(a2.sync()).rejects.toMatchObject({ code: 'device_removed' });
    await sleep(200); // ten poll intervals
    const withToken = net.requests.slice(before).filter((r) => !r.includes('/devices') || r.startsWith('PUT'));
    expect(withToken).toEqual([]);
    expect(sent.status).toBe('pending');
    expect(errors).not.toContain('unauthorized');
    await a2.stop();

    // A reload: removed at once, without a single request.
    const again = counted();
    const reopened = await Engine.open({ store, relayUrl: BASE, fetch: again.fetch, pollMs: 20 });
    expect(reopened.connectionState).toBe('removed');
    await reopened.start();
    await sleep(100);
    expect(again.requests).toEqual([]);
  });

  // The fake relay closes the socket although the account still lists the device: that is a
  // token refused, not a removal (test/core/signed-out.test.ts), and it stops the same way.
  test('socket closed with 4403 while the list still has the device: signed out (not removed), no reconnect and no polling', async () => {
    let sockets = 0;
    /** Answers the auth frame by closing with 4403, as the relay does for a revoked device. */
    class RevokingWs implements WsLike {
      onopen: ((ev: unknown) => void) | null = null;
      onmessage: ((ev: { data: unknown }) => void) | null = null;
      onclose: ((ev: { code?: number }) => void) | null = null;
      onerror: ((ev: unknown) => void) | null = null;
      readyState = 0;
      constructor(readonly url: string) {
        sockets++;
        setTimeout(() => {
          this.readyState = 1;
          this.onopen?.({});
        });
      }
      send() {
        this.readyState = 3;
        setTimeout(() => this.onclose?.({ code: 4403 }));
      }
      close() {
        this.readyState = 3;
      }
    }
    const net = counted();
    const { a2 } = await alice({ fetch: net.fetch, WebSocket: RevokingWs, pollMs: 20 });
    await a2.start();
    for (let i = 0; i < 100 && a2.connectionState !== 'signed_out'; i++) await sleep(10);
    expect(a2.connectionState).toBe('signed_out');
    expect(a2.removed).toBe(false);
    const before = net.requests.length;
    await sleep(1_500); // past the socket's first backoff (500 ms) and many poll intervals
    expect(sockets).toBe(1);
    expect(net.requests.slice(before)).toEqual([]);
    await a2.stop();
  });

  test('logOut: this device leaves the list (signed like any removal), the other device stays', async () => {
    const net = counted();
    const { a1, a2 } = await alice({ fetch: net.fetch });
    await a2.logOut();
    expect(a2.connectionState).toBe('removed');
    expect((await a1.devices()).map((d) => d.name)).toEqual(['phone']);
    await expect(a1.removeDevice(a1.state()!.deviceId)).rejects.toMatchObject({ code: 'invalid_request' });
    // The only device can log out too: the account is left with none, its password still logs in.
    await a1.logOut();
    expect(a1.connectionState).toBe('removed');
  });
});

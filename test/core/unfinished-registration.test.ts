// A registration cut short — the page reloaded, the connection dropped — after the relay created
// the account but before its device list was stored: the name is taken, yet no device holds it.
// Logging in with its password finishes it (with the backed-up account key, or a new one), so the
// name is not lost; once a list exists, a login without a backup is still refused.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Engine } from '../../web/core/engine.ts';
import type { Fetch } from '../../web/core/net/api.ts';
import { MemoryStore } from '../../web/core/store/memory-store.ts';
import { backends, startTestRelay, type TestRelay, uniqueName } from '../relay/harness.ts';

const BASE = 'http://relay.test';
let relay: TestRelay;
/** Requests whose method and path start with this fail as a dropped connection would. */
let cut: string | null = null;
const fetch: Fetch = async (url, init) => {
  const path = url.slice(BASE.length);
  if (cut && `${init?.method ?? 'GET'} ${path}`.startsWith(cut)) throw new TypeError('fetch failed');
  return relay.app.request(path, init as RequestInit);
};
const device = () => Engine.open({ store: new MemoryStore(), relayUrl: BASE, fetch });

beforeAll(async () => {
  relay = await startTestRelay(backends[0]!);
});
afterAll(async () => relay?.close());

describe.each([
  ['before the backup', 'PUT /v1/account/backup'],
  ['after the backup, before the device list', 'PUT /v1/account/devices'],
])('registration cut short %s', (_, at) => {
  test('logging in with the password finishes it; then it chats like any account', async () => {
    const name = uniqueName('alice');
    cut = at;
    await expect((await device()).register(name, 'correct horse')).rejects.toMatchObject({ code: 'offline' });
    cut = null;
    await expect((await device()).register(name, 'correct horse')).rejects.toMatchObject({ code: 'username_taken', message: expect.stringContaining('Log in if it is yours') });
    await expect((await device()).login(name, 'wrong horse')).rejects.toMatchObject({ code: 'login_failed' });
    const a = await device();
    await a.login(name, 'correct horse');
    expect(a.state()).toMatchObject({ username: name });
    const b = await device();
    const bn = uniqueName('bob');
    await b.register(bn, 'battery staple');
    await b.send(await b.openDirect(name), 'made it');
    expect((await a.sync()).map((m) => m.text)).toEqual(['made it']);
    // A second device by password now joins the list the first one made.
    const a2 = await device();
    await a2.login(name, 'correct horse');
    expect((await a2.devices()).length).toBe(2);
  }, 60_000);
});

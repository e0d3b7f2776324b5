// A relay process killed with SIGKILL in the middle of a burst of submissions: after a
// restart, every submission that was acknowledged (2xx) is in each recipient device's inbox, and
// retrying every submission with its client message id creates no duplicate: each message id
// once per device, seqs gap-free (the killed batch's counters rolled back with it).
import { afterAll, describe, expect, test } from 'vitest';
import { EMPTY_DEVICE_SESSIONS, fanoutEncrypt, systemRng, toHex } from '../../crypto/index.ts';
import { type RelayProcess, spawnRelay } from '../support/relay-process.ts';
import { b64, call, createUser, send, type TestDevice } from './client.ts';
import { backends, type Fetch, uniqueName } from './harness.ts';

describe.each(backends)('SIGKILL mid-burst on $name', (backend) => {
  let relay: RelayProcess | undefined;
  let drop = async () => {};
  afterAll(async () => {
    await relay?.close();
    await drop();
  });

  test('no acknowledged message lost, no retry duplicated', async () => {
    let url: string | undefined;
    if (backend.name === 'postgres') {
      const db = await backend.create();
      url = db.url;
      drop = db.drop;
    }
    relay = await spawnRelay(url ? { databaseUrl: url } : {});
    const fetch: Fetch = (path, init) => globalThis.fetch(relay!.url + path, init);
    // Three recipient devices per message: Bob's two and Alice's other one.
    const alice = await createUser(fetch, uniqueName('alice'), 2);
    const bob = await createUser(fetch, uniqueName('bob'), 2);
    const a = alice.devices[0]!;
    const recipients = [...bob.devices, alice.devices[1]!];
    expect((await send(fetch, a, [bob.name], new TextEncoder().encode('first'), 'first')).status).toBe(200);

    // Seal 600 messages in ratchet order before the burst, so the burst is only submissions.
    const addr = (d: TestDevice) => `${d.user.name}/${toHex(d.keys.deviceId)}`;
    const bodies: { clientMessageId: string; to: string[]; payload: string; envelopes: unknown[] }[] = [];
    for (let i = 0; i < 600; i++) {
      const out = fanoutEncrypt(
        new TextEncoder().encode(`burst ${i}`),
        recipients.map((d) => ({ address: d, record: a.sessions.get(addr(d)) ?? EMPTY_DEVICE_SESSIONS })),
        systemRng,
      );
      for (const m of out.messages) a.sessions.set(addr(m.address), m.record);
      const envelopes = out.messages.map((m) => ({ user: m.address.user.name, device: b64(m.address.keys.deviceId), body: b64(m.message) }));
      bodies.push({ clientMessageId: `burst-${i}`, to: [bob.name], payload: b64(out.payload), envelopes });
    }
    const post = (body: unknown) =>
      fetch('/v1/messages', { method: 'POST', headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
        .then(async (r) => ({ status: r.status, json: (r.ok ? await r.json() : null) as { messageId: number } | null }))
        .catch(() => ({ status: 0, json: null as { messageId: number } | null }));

    const acked = new Map<string, number>();
    let next = 0;
    const worker = async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        const r = await post(body);
        if (r.status === 200) acked.set(body.clientMessageId, r.json!.messageId);
      }
    };
    const burst = Promise.all(Array.from({ length: 24 }, worker));
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (acked.size >= 150) {
          clearInterval(t);
          resolve();
        }
      }, 2);
    });
    await relay.kill('SIGKILL');
    await burst;
    expect(acked.size).toBeGreaterThanOrEqual(150);
    expect(acked.size).toBeLessThan(bodies.length); // the kill really was mid-burst

    await relay.restart();
    const inbox = async (d: TestDevice) => {
      const all: { seq: number; messageId: number }[] = [];
      for (let after = 0; ; ) {
        const r = await call(fetch, 'GET', `/v1/inbox?after=${after}&limit=500`, { token: d.token });
        all.push(...r.body.envelopes);
        if (!r.body.more) return all;
        after = all.at(-1)!.seq;
      }
    };
    for (const d of recipients) {
      const ids = new Set((await inbox(d)).map((e) => e.messageId));
      for (const [cid, mid] of acked) expect(ids.has(mid), `acknowledged ${cid} lost`).toBe(true);
    }

    // The client retries everything (it cannot know what the lost responses said).
    const retried = await Promise.all(bodies.map(post));
    expect(retried.every((r) => r.status === 200)).toBe(true);
    for (const [i, r] of retried.entries()) if (acked.has(bodies[i]!.clientMessageId)) expect(r.json!.messageId).toBe(acked.get(bodies[i]!.clientMessageId));
    const sent = new Set(retried.map((r) => r.json!.messageId));
    for (const d of recipients) {
      const final = await inbox(d);
      expect(final.length).toBe(bodies.length + 1); // the first message and each of the burst, once
      const ids = final.map((e) => e.messageId);
      expect(new Set(ids).size).toBe(final.length);
      expect(ids.filter((id) => sent.has(id)).length).toBe(bodies.length);
      expect(final.map((e) => e.seq)).toEqual(final.map((_, i) => i + 1)); // gap-free
    }
  }, 90_000);
});

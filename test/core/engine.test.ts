// The engine end to end against an in-process relay (app.request, no port) on PGlite and, when
// TEST_DATABASE_URL is set, PostgreSQL: accounts, 1:1, own devices (link and password login),
// groups, receipts, edits, offline outbox. Each device has its own in-memory store.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { allMessages, decryptFailures } from '../../web/core/views.ts';
import { discardFailed } from '../../web/core/changes.ts';
import { sendFailure } from '../../web/core/explain.ts';
import { Engine } from '../../web/core/engine.ts';
import type { Fetch } from '../../web/core/net/api.ts';
import { MemoryStore } from '../../web/core/store/memory-store.ts';
import { sql } from 'drizzle-orm';
import { generateAccountKey, generateDevice, newDeviceList, signDeviceList, systemRng } from '../../crypto/index.ts';
import { call, login } from '../relay/client.ts';
import { backends, startTestRelay, type TestRelay, uniqueName } from '../relay/harness.ts';

const BASE = 'http://relay.test';

describe.each(backends.slice(0, 1))('engine on $name', (backend) => {
  let relay: TestRelay;
  let down = false;
  /** Every status the relay answered to a device claim: the new device's polls. */
  const claimStatuses: number[] = [];
  const fetch: Fetch = async (url, init) => {
    if (down) throw new TypeError('fetch failed');
    const res = await relay.app.request(url.slice(BASE.length), init as RequestInit);
    if (url.endsWith('/v1/devices/claim')) claimStatuses.push(res.status);
    return res;
  };
  const device = (name = 'test device') => Engine.open({ store: new MemoryStore(), relayUrl: BASE, fetch, deviceName: name });

  beforeAll(async () => {
    relay = await startTestRelay(backend);
  });
  afterAll(async () => relay?.close());

  /** Two registered users, each on one device. */
  const twoUsers = async () => {
    const a = await device();
    const b = await device();
    const an = uniqueName('alice');
    const bn = uniqueName('bob');
    await a.register(an, 'correct horse');
    await b.register(bn, 'battery staple');
    return { a, b, an, bn };
  };

  test('two users chat; receipts and edits flow back', async () => {
    const { a, b, an, bn } = await twoUsers();
    const conv = await a.openDirect(bn);
    expect(await a.send(conv, 'hello bob')).toMatchObject({ status: 'sent' });
    const got = await b.sync();
    expect(got.map((m) => [m.conversation, m.from, m.text])).toEqual([[`dm:${an}`, an, 'hello bob']]);
    // Bob's delivery receipt reaches Alice.
    await a.sync();
    const [mine] = await a.messages(conv);
    expect(mine!.status).toBe('delivered');
    await b.markRead(`dm:${an}`);
    await a.sync();
    expect((await a.messages(conv))[0]!.status).toBe('read');
    await a.edit(conv, `${an}/${mine!.id}`, 'hello, Bob');
    await b.sync();
    expect((await b.messages(`dm:${an}`))[0]).toMatchObject({ text: 'hello, Bob', edited: true });
  });

  test('a name typed in another case finds the user; a text over the limit is refused before it is queued', async () => {
    const { a, b, bn } = await twoUsers();
    const conv = await a.openDirect(` ${bn.toUpperCase()} `);
    expect(conv).toBe(`dm:${bn}`);
    await expect(a.openDirect('no such user!')).rejects.toMatchObject({ code: 'unknown_user' });
    const long = 'x'.repeat(16_001);
    await expect(a.send(conv, long)).rejects.toMatchObject({ code: 'message_too_long' });
    expect(await a.messages(conv)).toEqual([]); // nothing queued, nothing shown as sent
    expect(await a.send(conv, 'x'.repeat(16_000))).toMatchObject({ status: 'sent' });
    expect((await b.sync()).map((m) => m.text.length)).toEqual([16_000]);
  });

  test('a linked device and a password-login device get history and new messages', async () => {
    const a1 = await device('phone');
    const b = await device();
    const an = uniqueName('alice');
    const bn = uniqueName('bob');
    await a1.register(an, 'pw-a');
    await b.register(bn, 'pw-b');
    await a1.send(await a1.openDirect(bn), 'before linking');

    const a2 = await device('laptop');
    claimStatuses.length = 0;
    const link = await a2.startLink({ pollMs: 50 });
    // Polls before the approval are answered "pending" (202): nothing a browser logs as a failed request.
    while (!claimStatuses.length) await new Promise((r) => setTimeout(r, 10));
    const approving = a1.approveLink(link.code, { pollMs: 50 });
    await link.done;
    await approving;
    expect(claimStatuses[0]).toBe(202);
    expect(claimStatuses.at(-1)).toBe(200);
    expect(claimStatuses.filter((s) => s >= 400)).toEqual([]);
    await a2.sync();
    expect(a2.state()).toMatchObject({ username: an, hasAccountKey: true });
    expect((await allMessages(a2.ctx.store)).map((m) => m.text)).toContain('before linking');

    const a3 = await device('tablet');
    await a3.login(an, 'pw-a');
    // One existing device, the first of them by id, sends the history: either a1 or a2.
    await Promise.all([a1.sync(), a2.sync()]);
    await a3.sync();
    expect((await allMessages(a3.ctx.store)).map((m) => m.text)).toContain('before linking');
    expect((await a1.devices()).length).toBe(3);

    await b.sync();
    await b.send(`dm:${an}`, 'hi all of you');
    for (const d of [a1, a2, a3]) expect((await d.sync()).map((m) => m.text)).toContain('hi all of you');
    // A transcript of what a2 sends reaches a1 and a3.
    await a2.send(`dm:${bn}`, 'from the laptop');
    for (const d of [a1, a3]) expect((await d.sync()).map((m) => m.text)).toContain('from the laptop');
    expect((await b.sync()).map((m) => m.text)).toContain('from the laptop');

    // Verifying bob on one device verifies him on the others that know the same key.
    expect((await a2.safetyNumber(bn)).verified).toBe(false);
    await a1.markVerified(bn);
    await a2.sync();
    await a3.sync();
    expect((await a2.safetyNumber(bn)).verified).toBe(true);
    expect((await a3.safetyNumber(bn)).verified).toBe(true);
    await a3.markVerified(bn, false);
    await a1.sync();
    expect((await a1.safetyNumber(bn)).verified).toBe(false);
  });

  test('a new device whose clock is off is told so on its first poll, and by how much', async () => {
    const skewed = (offMs: number) => Engine.open({ store: new MemoryStore(), relayUrl: BASE, fetch, deviceName: 'skewed', now: () => Date.now() + offMs });
    const ahead = await (await skewed(20 * 60_000)).startLink({ pollMs: 50 });
    await expect(ahead.done).rejects.toMatchObject({
      code: 'claim_expired',
      message: 'This device’s clock is 20 minutes ahead of the relay’s (linking allows 5 minutes either way). Set its date, time and time zone correctly (automatic is best), then start linking again.',
    });
    const behind = await (await skewed(-3 * 3_600_000)).startLink({ pollMs: 50 });
    await expect(behind.done).rejects.toMatchObject({ code: 'claim_expired', message: expect.stringContaining('clock is 3 hours behind the relay’s') });
  });

  test('groups: create, message, remove a member who then receives nothing', async () => {
    const [a, b, c] = [await device(), await device(), await device()];
    const [an, bn, cn] = [uniqueName('a'), uniqueName('b'), uniqueName('c')];
    await a.register(an, 'p');
    await b.register(bn, 'p');
    await c.register(cn, 'p');
    const g = await a.createGroup('trip', [bn, cn]);
    await b.sync();
    await c.sync();
    await b.send(g, 'hello group');
    expect((await a.sync()).map((m) => m.text)).toContain('hello group');
    expect((await c.sync()).map((m) => m.text)).toContain('hello group');
    await a.removeMember(g, cn);
    await b.sync();
    await c.sync();
    await b.send(g, 'secret after removal');
    expect((await a.sync()).map((m) => m.text)).toContain('secret after removal');
    expect((await c.sync()).map((m) => m.text)).not.toContain('secret after removal');
    expect((await c.conversations()).find((x) => x.id === g)!.left).toBe(true);
  });

  test('offline: messages wait in the outbox and go out once the relay is back', async () => {
    const [a, b] = [await device(), await device()];
    const [an, bn] = [uniqueName('a'), uniqueName('b')];
    await a.register(an, 'p');
    await b.register(bn, 'p');
    const conv = await a.openDirect(bn);
    down = true;
    try {
      for (let i = 0; i < 5; i++) expect((await a.send(conv, `offline ${i}`)).status).toBe('pending');
    } finally {
      down = false;
    }
    // The app opened again while still offline tells how many wait, before any network answer.
    down = true;
    try {
      const reopened = await Engine.open({ store: a.ctx.store, relayUrl: BASE, fetch, deviceName: 'test device' });
      const told: number[] = [];
      reopened.on((e) => {
        if (e.type === 'outbox') told.push(e.pending);
      });
      await reopened.start();
      expect(told[0]).toBe(5);
      await reopened.stop();
    } finally {
      down = false;
    }
    await a.ctx.store.write(['outbox'], async (tx) => {
      for (const r of await tx.getAll('outbox')) await tx.put('outbox', { ...r, nextAttemptAt: 0 });
    });
    await a.drainOutbox();
    expect((await b.sync()).map((m) => m.text)).toEqual([0, 1, 2, 3, 4].map((i) => `offline ${i}`));
  });

  test('a changed account key raises a warning and clears verification', async () => {
    const [a, b] = [await device(), await device()];
    const [an, bn] = [uniqueName('a'), uniqueName('b')];
    await a.register(an, 'p');
    await b.register(bn, 'pb');
    const conv = await a.openDirect(bn);
    await a.send(conv, 'hi');
    await a.markVerified(bn);
    expect((await a.safetyNumber(bn)).verified).toBe(true);
    const before = (await a.safetyNumber(bn)).digits;
    // The account is reset on the relay (as a relay operator, or an account recovery, could do):
    // a new account key signs a new list.
    await relay.services.db.execute(sql`UPDATE accounts SET account_key = NULL WHERE username = ${bn}`);
    await relay.services.db.execute(sql`DELETE FROM device_lists WHERE account_id = (SELECT id FROM accounts WHERE username = ${bn})`);
    const session = (await login(relay.fetch, bn, 'pb')).body.sessionToken as string;
    const k2 = generateAccountKey(systemRng);
    const d2 = generateDevice(systemRng);
    const list = signDeviceList(newDeviceList(bn, k2.publicKey, d2, 'new phone', Date.now()), k2);
    expect((await call(relay.fetch, 'PUT', '/v1/account/devices', { token: session, body: { list: Buffer.from(list.bytes).toString('base64url') } })).status).toBe(200);

    const events: string[] = [];
    a.on((e) => e.type === 'key-changed' && events.push(e.user));
    await a.safetyNumber(bn);
    expect(events).toEqual([bn]);
    const sn = await a.safetyNumber(bn);
    expect(sn).toMatchObject({ verified: false, keyChanged: true });
    expect(sn.digits).not.toBe(before);
    expect((await a.conversations()).find((c) => c.id === conv)!.keyWarning).toBe(true);
    expect(await a.contacts()).toEqual([{ username: bn, verified: false, keyChanged: true }]);
    // The conversation keeps a line saying so, which names the verification that was lost.
    const line = (await a.messages(conv)).at(-1)!;
    expect(line).toMatchObject({ system: true, from: bn, text: `Your safety number with ${bn} changed. ${bn} is no longer marked as verified: that was for their previous key.` });

    // The old number no longer verifies anything; the new one, compared, settles the warning.
    await expect(a.markVerified(bn, true, before)).rejects.toMatchObject({ code: 'key_changed' });
    expect((await a.contacts())[0]!.verified).toBe(false);
    await a.markVerified(bn, true, sn.digits);
    expect(await a.contacts()).toEqual([{ username: bn, verified: true, keyChanged: false }]);
    expect((await a.conversations()).find((c) => c.id === conv)!.keyWarning).toBe(false);
  });

  test('a verification reaches an own device that had not pinned the contact yet', async () => {
    const { a: a1, b, an, bn } = await twoUsers();
    const conv = await a1.openDirect(bn);
    await a1.send(conv, 'hi');
    await b.sync();
    const a2 = await device('laptop');
    await a2.login(an, 'correct horse');
    await a1.sync(); // learns of the new device (and sends it the history, which pins no key)
    await a2.sync();
    expect(await a2.contacts()).toEqual([]);
    const events: string[] = [];
    a1.on((e) => events.push(e.type));
    await a1.markVerified(bn, true, (await a1.safetyNumber(bn)).digits);
    expect(events).toContain('conversations'); // the screens refresh the mark at once
    await a2.sync();
    expect(await a2.contacts()).toEqual([{ username: bn, verified: true, keyChanged: false }]);
  });

  test('an undecryptable envelope is recorded and the session repaired', async () => {
    const [a, b] = [await device(), await device()];
    const [an, bn] = [uniqueName('a'), uniqueName('b')];
    await a.register(an, 'p');
    await b.register(bn, 'p');
    const conv = await a.openDirect(bn);
    await a.send(conv, 'one');
    await b.sync();
    await a.sync();
    // Bob loses his session with Alice (say, restored from an old copy of his profile).
    await b.ctx.store.write(['sessions'], (tx) => tx.clear('sessions'));
    b.ctx.sessions.clear();
    await a.send(conv, 'lost in transit');
    const errors: string[] = [];
    b.on((e) => e.type === 'error' && errors.push(e.code));
    expect((await b.sync()).map((m) => m.text)).toEqual([]);
    expect((await decryptFailures(b.ctx.store)).map((f) => f.error)).toEqual(['no_session']);
    expect(errors).toContain('undecryptable');
    await a.sync(); // receives Bob's repair request on a fresh session
    await a.send(conv, 'after the repair');
    expect((await b.sync()).map((m) => m.text)).toEqual(['after the repair']);
  });

  test('reactions, deletes and attachments', async () => {
    const [a, b] = [await device(), await device()];
    const [an, bn] = [uniqueName('a'), uniqueName('b')];
    await a.register(an, 'p');
    await b.register(bn, 'p');
    const conv = await a.openDirect(bn);
    const { id } = await a.send(conv, 'react to this');
    await b.sync();
    await b.react(`dm:${an}`, `${an}/${id}`, '👍');
    await a.sync();
    expect((await a.messages(conv))[0]!.reactions).toEqual({ [bn]: '👍' });
    await a.deleteForEveryone(conv, `${an}/${id}`);
    await b.sync();
    expect((await b.messages(`dm:${an}`))[0]).toMatchObject({ deleted: true, text: '' });
    await expect(b.edit(`dm:${an}`, `${an}/${id}`, 'not mine')).rejects.toMatchObject({ code: 'forbidden' });

    const bytes = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
    const progress: number[] = [];
    const sent = await a.sendAttachment(conv, { name: 'photo.png', mime: 'image/png', bytes }, 'a photo', (done) => progress.push(done));
    expect(sent.status).toBe('sent');
    expect(progress.at(-1)).toBeGreaterThan(bytes.length);
    const [m] = (await b.sync()).filter((x) => x.attachment);
    expect(m).toMatchObject({ text: 'a photo', attachment: { name: 'photo.png', mime: 'image/png', size: 300_000 } });
    const file = await b.attachmentBytes(`${an}/${m!.id}`);
    expect(file.bytes).toEqual(bytes);
  });

  test('the chat-list preview follows edits and deletes on every device, the sender’s other device included', async () => {
    const { a, b, an, bn } = await twoUsers();
    const a2 = await device('laptop');
    await a2.login(an, 'correct horse');
    await a.sync(); // a takes a2's device-added and sends it the history
    await a2.sync();
    const conv = await a.openDirect(bn);
    await a.send(conv, 'hello');
    const { id } = await a.send(conv, 'the secret plan');
    const key = `${an}/${id}`;
    await b.sync();
    await a2.sync();
    const preview = async (e: Engine, c: string) => (await e.conversations()).find((x) => x.id === c)!.lastPreview;
    expect([await preview(a, conv), await preview(b, `dm:${an}`), await preview(a2, conv)]).toEqual(['the secret plan', 'the secret plan', 'the secret plan']);

    // A list on screen re-reads on 'conversations': the receiving side must say so for an edit too.
    const told: string[] = [];
    b.on((e) => void told.push(e.type));
    await a.edit(conv, key, 'the revised plan');
    await b.sync();
    await a2.sync();
    expect(told).toContain('conversations');
    expect([await preview(a, conv), await preview(b, `dm:${an}`), await preview(a2, conv)]).toEqual(['the revised plan', 'the revised plan', 'the revised plan']);

    await a.deleteForEveryone(conv, key);
    await b.sync();
    await a2.sync();
    for (const [e, c] of [[a, conv], [b, `dm:${an}`], [a2, conv]] as const) {
      expect(await preview(e, c)).toBe('Message deleted');
      expect(JSON.stringify(await e.conversations())).not.toMatch(/plan/);
    }

    // Deleting an older message leaves the preview on the newest one.
    const { id: last } = await a.send(conv, 'newest');
    await b.sync();
    const [first] = await b.messages(`dm:${an}`);
    await a.deleteForEveryone(conv, `${an}/${first!.id}`);
    await b.sync();
    expect(first!.text).toBe('hello');
    expect(await preview(b, `dm:${an}`)).toBe('newest');
    expect(await preview(a, conv)).toBe('newest');
    expect(last).toBeTruthy();
  });

  test('a failed message is sent again under its own id; the failure is told in words, not codes', async () => {
    const { b, bn } = await twoUsers();
    // A device of its own whose next submission the relay refuses (a 4xx: not retried by itself).
    let refuse = 0;
    const failing: Fetch = async (url, init) => {
      if (refuse > 0 && url.endsWith('/v1/messages') && init?.method === 'POST') {
        refuse--;
        return new Response(JSON.stringify({ error: 'forbidden', message: 'no' }), { status: 403, headers: { 'content-type': 'application/json' } });
      }
      return fetch(url, init);
    };
    const a = await Engine.open({ store: new MemoryStore(), relayUrl: BASE, fetch: failing });
    const an = uniqueName('carol');
    await a.register(an, 'pw');
    const errors: { code: string; message: string }[] = [];
    a.on((e) => void (e.type === 'error' && errors.push(e)));
    const conv = await a.openDirect(bn);
    refuse = 1;
    const { id } = await a.send(conv, 'try me again');
    // The relay's code stays with it for as long as it is failed (a restart too: it is on the row), so it can be told in words later.
    expect((await a.messages(conv))[0]).toMatchObject({ id, status: 'failed', failure: { code: 'forbidden' } });
    expect(sendFailure('forbidden')).toMatch(/^A message was not sent\. (?!.*forbidden)/);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe('forbidden');
    expect(errors[0]!.message).not.toMatch(/forbidden|_/);
    expect(errors[0]!.message).toMatch(/^A message was not sent\./);

    await a.retry(conv, `${an}/${id}`);
    expect((await a.messages(conv))[0]).toMatchObject({ id, status: 'sent', text: 'try me again', failure: null });
    const got = await b.sync();
    expect(got.map((m) => [m.id, m.text])).toEqual([[id, 'try me again']]);
    // Retrying what was sent does nothing: no second copy reaches anyone.
    await a.retry(conv, `${an}/${id}`);
    expect(await b.sync()).toEqual([]);
    expect(await b.messages(`dm:${an}`)).toHaveLength(1);
    await expect(a.retry(conv, `${bn}/nope`)).rejects.toMatchObject({ code: 'not_found' });

    // Discarded instead: gone from here, as from everywhere else (nobody got it), the preview with it.
    refuse = 1;
    const dropped = (await a.send(conv, 'drop me')).id;
    expect(await discardFailed(a.ctx, conv, `${an}/${id}`)).toBe(false); // sent: nothing to discard
    expect(await discardFailed(a.ctx, conv, `${an}/${dropped}`)).toBe(true);
    expect((await a.messages(conv)).map((m) => m.text)).toEqual(['try me again']);
    expect((await a.conversations()).find((c) => c.id === conv)!.lastPreview).toBe('try me again');
    expect(await discardFailed(a.ctx, conv, `${an}/${dropped}`).catch((e) => e.code)).toBe('not_found');
    await a.retry(conv, `${an}/${id}`);
    expect(await b.sync()).toEqual([]);
  });

  test('a group we left can be removed from this device; one we are in cannot', async () => {
    const { a, b } = await twoUsers();
    const g = await a.createGroup('Dock', [b.state()!.username]);
    await a.send(g, 'hi group');
    await b.sync();
    await expect(b.removeConversation(g)).rejects.toMatchObject({ code: 'still_member' });
    await b.leaveGroup(g);
    await b.removeConversation(g);
    expect((await b.conversations()).map((c) => c.id)).not.toContain(g);
    expect(await b.messages(g)).toEqual([]);
    // Nothing more arrives for it.
    await a.sync();
    await a.send(g, 'after you left');
    await b.sync();
    expect((await b.conversations()).map((c) => c.id)).not.toContain(g);
  });
});

// Reactions, edits and deletes the relay refuses for good (web/core/changes.ts), end to end against
// an in-process relay: the change stays on its message with what went wrong, survives a restart,
// Retry sends it once under its own id (a second Retry sends nothing), Discard shows the message
// as the others see it, and a newer change of the same kind replaces a failed or waiting one.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Engine } from '../../web/core/engine.ts';
import type { Fetch } from '../../web/core/net/api.ts';
import { MemoryStore } from '../../web/core/store/memory-store.ts';
import type { EngineEvent } from '../../web/core/types.ts';
import { backends, startTestRelay, type TestRelay, uniqueName } from '../relay/harness.ts';

const BASE = 'http://relay.test';
const refusal = () => new Response(JSON.stringify({ error: 'forbidden', message: 'refused by the test' }), { status: 403, headers: { 'content-type': 'application/json' } });

describe.each(backends.slice(0, 1))('failed message changes on $name', (backend) => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay(backend);
  });
  afterAll(async () => relay?.close());

  const plain: Fetch = async (url, init) => relay.app.request(url.slice(BASE.length), init as RequestInit);

  /**
   * Alice on a device whose next `refuse` submissions the relay refuses (a 4xx: failed for good,
   * not retried by itself) and that is offline while `down`; every submission's client message id
   * and answer is recorded. Bob on a plain device, one message from Alice already with him.
   */
  async function setUp() {
    const net = { refuse: 0, down: false, submitted: [] as { id: string; ok: boolean }[] };
    const fetch: Fetch = async (url, init) => {
      if (net.down) throw new TypeError('fetch failed');
      const submit = url.endsWith('/v1/messages') && init?.method === 'POST';
      const res = submit && net.refuse > 0 ? (net.refuse--, refusal()) : await plain(url, init);
      if (submit) net.submitted.push({ id: JSON.parse(String(init!.body)).clientMessageId, ok: res.ok });
      return res;
    };
    const store = new MemoryStore();
    const a = await Engine.open({ store, relayUrl: BASE, fetch });
    const b = await Engine.open({ store: new MemoryStore(), relayUrl: BASE, fetch: plain });
    const [an, bn] = [uniqueName('alice'), uniqueName('bob')];
    await a.register(an, 'pw-a');
    await b.register(bn, 'pw-b');
    const conv = await a.openDirect(bn);
    const { id } = await a.send(conv, 'see you at noon');
    await b.sync();
    const events: EngineEvent[] = [];
    a.on((e) => events.push(e));
    const key = `${an}/${id}`;
    const mine = async () => (await a.messages(conv)).find((m) => m.key === key)!;
    const theirs = async () => (await b.messages(`dm:${an}`)).find((m) => m.key === key)!;
    return { a, b, an, bn, conv, key, net, store, fetch, events, mine, theirs };
  }

  test('a refused edit stays on its message with words to act on; Retry sends it once, a second Retry nothing', async () => {
    const { a, b, conv, key, net, events, mine, theirs } = await setUp();
    net.refuse = 1;
    await a.edit(conv, key, 'see you at one');
    const m = await mine();
    expect(m.text).toBe('see you at one'); // applied here, as a send shows at once
    expect(m.failedChanges).toHaveLength(1);
    const [f] = m.failedChanges;
    expect(f).toMatchObject({ kind: 'edit', code: 'forbidden', emoji: '' });
    expect(f!.message).toMatch(/^Your edit was not sent: the others still see the earlier text\./);
    expect(f!.message).not.toMatch(/forbidden|_/);
    const errors = events.filter((e) => e.type === 'error');
    expect(errors).toEqual([{ type: 'error', code: 'forbidden', message: f!.message }]);
    expect(events).toContainEqual({ type: 'message-updated', conversation: conv, id: m.id }); // the open conversation re-reads
    await b.sync();
    expect((await theirs()).text).toBe('see you at noon');

    const refused = net.submitted.at(-1)!;
    expect(refused).toEqual({ id: f!.id, ok: false });
    await a.retryChange(conv, key, f!.id);
    expect((await mine()).failedChanges).toEqual([]);
    // The same client message id: the relay's idempotency and the receivers' `seen` both know it.
    expect(net.submitted.at(-1)).toEqual({ id: f!.id, ok: true });
    const submissions = net.submitted.length;
    await a.retryChange(conv, key, f!.id);
    expect(net.submitted.length).toBe(submissions);
    await b.sync();
    expect(await theirs()).toMatchObject({ text: 'see you at one', edited: true });
    // Bad input is refused by name.
    await expect(a.retryChange(conv, key, '')).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(a.retryChange(conv, `${key}x`, f!.id)).rejects.toMatchObject({ code: 'not_found' });
    await expect(a.discardChange('dm:nobody', key, f!.id)).rejects.toMatchObject({ code: 'not_found' });
  });

  test('a refused delete survives a restart; Discard shows the message (and the chat list its text) as the others see it', async () => {
    const { a, b, an, conv, key, net, store, fetch, theirs } = await setUp();
    net.refuse = 1;
    await a.deleteForEveryone(conv, key);
    expect((await a.conversations()).find((c) => c.id === conv)!.lastPreview).toBe('Message deleted');
    await a.stop();

    // A restart (a page reload) over the same store: the failure is read back, not kept in memory.
    const again = await Engine.open({ store, relayUrl: BASE, fetch });
    const [m] = (await again.messages(conv)).filter((x) => x.key === key);
    expect(m).toMatchObject({ deleted: true, text: '' });
    expect(m!.failedChanges.map((f) => [f.kind, f.code])).toEqual([['delete', 'forbidden']]);
    expect(m!.failedChanges[0]!.message).toMatch(/^Your message was not deleted for everyone/);
    await again.discardChange(conv, key, m!.failedChanges[0]!.id);
    const back = (await again.messages(conv)).find((x) => x.key === key)!;
    expect(back).toMatchObject({ deleted: false, text: 'see you at noon', failedChanges: [] });
    expect((await again.conversations()).find((c) => c.id === conv)!.lastPreview).toBe('see you at noon');
    // Discarding again (a second click) changes nothing; nothing ever reached Bob.
    await again.discardChange(conv, key, m!.failedChanges[0]!.id);
    await b.sync();
    expect(await theirs()).toMatchObject({ deleted: false, text: 'see you at noon' });
    expect(an).toBeTruthy();
  });

  test('reactions: a newer one replaces a failed one and inherits what the others see; Discard takes ours back', async () => {
    const { a, b, an, conv, key, net, mine, theirs } = await setUp();
    net.refuse = 2;
    await a.react(conv, key, '👍');
    expect((await mine()).failedChanges.map((f) => [f.kind, f.emoji])).toEqual([['reaction', '👍']]);
    await a.react(conv, key, '🎉'); // refused too: one record, the newest
    const m = await mine();
    expect(m.reactions).toEqual({ [an]: '🎉' });
    expect(m.failedChanges.map((f) => [f.kind, f.emoji])).toEqual([['reaction', '🎉']]);
    await a.discardChange(conv, key, m.failedChanges[0]!.id);
    // Back to no reaction at all: the others never saw 👍 either.
    expect(await mine()).toMatchObject({ reactions: {}, failedChanges: [] });
    await b.sync();
    expect((await theirs()).reactions).toEqual({});
  });

  test('a change refused while a newer one of the same kind waits is not shown: the newer one carries it, and its undo', async () => {
    const { a, b, conv, key, net, events, mine, theirs } = await setUp();
    net.down = true;
    await a.edit(conv, key, 'first try');
    await a.edit(conv, key, 'second try');
    await a.react(conv, key, '❤️');
    net.down = false;
    net.refuse = 2; // both edits refused; the reaction goes through
    await a.wake();
    const m = await mine();
    expect(m.text).toBe('second try');
    expect(m.failedChanges.map((f) => f.kind)).toEqual(['edit']);
    expect(events.filter((e) => e.type === 'error')).toHaveLength(1); // told once, for the edit that counts
    await b.sync();
    expect(await theirs()).toMatchObject({ text: 'see you at noon', reactions: { [m.from]: '❤️' } });
    await a.discardChange(conv, key, m.failedChanges[0]!.id);
    expect(await mine()).toMatchObject({ text: 'see you at noon', edited: false, reactions: { [m.from]: '❤️' } });
  });

  test('our other device changing the same message replaces the failed change here', async () => {
    const { a, an, conv, key, net, mine } = await setUp();
    const a2 = await Engine.open({ store: new MemoryStore(), relayUrl: BASE, fetch: plain });
    await a2.login(an, 'pw-a');
    await a.sync(); // learns of the new device and sends it the history
    await a2.sync();
    net.refuse = 1;
    await a.edit(conv, key, 'from the phone');
    expect((await mine()).failedChanges).toHaveLength(1);
    await a2.edit(conv, key, 'from the laptop');
    await a.sync();
    expect(await mine()).toMatchObject({ text: 'from the laptop', failedChanges: [] });
  });

  test('a preview an older client stored (before edits recomputed it) is fixed when the engine opens the store', async () => {
    const { a, conv, key, store, fetch } = await setUp();
    await a.edit(conv, key, 'see you at two');
    await a.stop();
    // As an older client left it: the preview of the text before the edit, and no mark of the fix.
    await store.write(['conversations', 'meta'], async (tx) => {
      await tx.put('conversations', { ...(await tx.get('conversations', conv))!, lastPreview: 'see you at noon' });
      await tx.delete('meta', 'previews');
    });
    const again = await Engine.open({ store, relayUrl: BASE, fetch });
    expect((await again.conversations()).find((c) => c.id === conv)!.lastPreview).toBe('see you at two');
  });
});

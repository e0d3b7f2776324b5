// The page's state (web/ui/state.ts) against a real engine and an in-process relay: store reads
// that finish out of order never leave an older result on screen.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Engine } from '../../web/core/engine.ts';
import type { Fetch } from '../../web/core/net/api.ts';
import { MemoryStore } from '../../web/core/store/memory-store.ts';
import { conversations, current, engine, messages, openConversation, refreshConversations } from '../../web/ui/state.ts';
import { backends, startTestRelay, type TestRelay, uniqueName } from '../relay/harness.ts';

const BASE = 'http://relay.test';

/** A promise and the function that settles it. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

describe('page state', () => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay(backends[0]!);
  });
  afterAll(async () => relay?.close());
  const fetch: Fetch = async (url, init) => relay.app.request(url.slice(BASE.length), init as RequestInit);

  test('a chat list read that finishes after a later one does not put back the text an edit replaced', async () => {
    const a = await Engine.open({ store: new MemoryStore(), relayUrl: BASE, fetch });
    const bName = uniqueName('bob');
    await (await Engine.open({ store: new MemoryStore(), relayUrl: BASE, fetch })).register(bName, 'pw-b');
    await a.register(uniqueName('alice'), 'pw-a');
    const conv = await a.openDirect(bName);
    const { id } = await a.send(conv, 'Meet at the old pier');
    engine.value = a;

    // The first read sees the store before the edit and is slow to come back.
    const real = a.conversations.bind(a);
    const slow = gate();
    let calls = 0;
    a.conversations = async () => {
      const rows = await real();
      if (++calls === 1) await slow.opened;
      return rows;
    };
    const first = refreshConversations();
    await new Promise((r) => setTimeout(r, 20)); // its read is done, its answer held
    await a.edit(conv, `${a.state()!.username}/${id}`, 'Meet at the harbour gate');
    await refreshConversations();
    expect(conversations.value.find((c) => c.id === conv)?.lastPreview).toBe('Meet at the harbour gate');
    slow.open();
    await first;
    expect(conversations.value.find((c) => c.id === conv)?.lastPreview).toBe('Meet at the harbour gate');
    engine.value = null;
    await a.stop();
  });

  test("a conversation's messages that arrive after another conversation opened are not shown in it", async () => {
    const a = await Engine.open({ store: new MemoryStore(), relayUrl: BASE, fetch });
    const [bName, cName] = [uniqueName('bob'), uniqueName('carol')];
    for (const n of [bName, cName]) await (await Engine.open({ store: new MemoryStore(), relayUrl: BASE, fetch })).register(n, `pw-${n}`);
    await a.register(uniqueName('alice'), 'pw-a');
    const toBob = await a.openDirect(bName);
    const toCarol = await a.openDirect(cName);
    await a.send(toBob, 'for bob');
    await a.send(toCarol, 'for carol');
    engine.value = a;

    const real = a.messages.bind(a);
    const slow = gate();
    a.messages = async (conversation, o) => {
      const rows = await real(conversation, o);
      if (conversation === toBob) await slow.opened;
      return rows;
    };
    const bob = openConversation(toBob);
    await new Promise((r) => setTimeout(r, 20));
    await openConversation(toCarol); // the person moved on before Bob's messages came back
    slow.open();
    await bob;
    expect(current.value).toBe(toCarol);
    expect(messages.value.map((m) => m.text)).toEqual(['for carol']);
    engine.value = null;
    await a.stop();
  });
});

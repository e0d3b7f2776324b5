// Previews stored by older code (before an edit or a delete recomputed them) are fixed once, when
// the engine opens the store: no relay needed, the rows are written as an older client left them.
import { beforeAll, describe, expect, test } from 'vitest';
import { ready } from '../../crypto/index.ts';
import { Engine } from '../../web/core/engine.ts';
import type { Fetch } from '../../web/core/net/api.ts';
import { MemoryStore } from '../../web/core/store/memory-store.ts';
import type { MessageRow, Store } from '../../web/core/store/schema.ts';
import { newConversation, newMessageRow, refreshStalePreviews } from '../../web/core/views.ts';

/** No request is expected: any is a failure of the test. */
const noNetwork: Fetch = async (url) => {
  throw new Error(`unexpected request to ${url}`);
};

const msg = (conversation: string, id: string, sentAt: number, over: Partial<MessageRow> = {}): MessageRow => ({
  ...newMessageRow({ id, conversation, sender: 'bob', senderDevice: 'dev', sentAt, receivedAt: sentAt, text: `text ${id}`, status: 'received' }),
  ...over,
});

/** Conversations as an older client left them: previews that missed an edit and a delete. */
async function olderStore(): Promise<Store> {
  const store = new MemoryStore();
  await store.write(['conversations', 'messages'], async (tx) => {
    await tx.put('conversations', { ...newConversation('dm:bob', 'direct', 'bob', ['bob'], 1), lastPreview: 'text 2' });
    await tx.put('messages', msg('dm:bob', '1', 1000));
    await tx.put('messages', msg('dm:bob', '2', 2000, { text: 'text 2, edited', editedAt: 2500 }));
    await tx.put('conversations', { ...newConversation('dm:carol', 'direct', 'carol', ['carol'], 1), lastPreview: 'secret plans' });
    await tx.put('messages', msg('dm:carol', '3', 3000, { sender: 'carol', text: '', deleted: true }));
    // History cut short (historySpanMs): no message here, the stored preview is all there is.
    await tx.put('conversations', { ...newConversation('dm:dave', 'direct', 'dave', ['dave'], 1), lastPreview: 'from long ago' });
    // A group with only system lines and a message before them.
    await tx.put('conversations', { ...newConversation('group:g', 'group', 'Dock', ['bob'], 1), lastPreview: 'old' });
    await tx.put('messages', msg('group:g', '4', 4000, { text: 'latest words' }));
    await tx.put('messages', msg('group:g', '5', 5000, { text: 'bob added carol', system: true }));
  });
  return store;
}

const previews = async (store: Store) => Object.fromEntries((await store.read(['conversations'], (tx) => tx.getAll('conversations'))).map((c) => [c.id, c.lastPreview]));

describe('stale previews', () => {
  beforeAll(async () => {
    await ready();
  });

  test('recomputed once from the messages as they stand; a conversation without messages here keeps its own', async () => {
    const store = await olderStore();
    expect(await refreshStalePreviews(store)).toBe(3);
    expect(await previews(store)).toEqual({ 'dm:bob': 'text 2, edited', 'dm:carol': 'Message deleted', 'dm:dave': 'from long ago', 'group:g': 'latest words' });
    // Once: a preview set afterwards (by this code) is not recomputed on the next open.
    await store.write(['conversations'], async (tx) => tx.put('conversations', { ...(await tx.get('conversations', 'dm:dave'))!, lastPreview: 'kept' }));
    await store.write(['conversations'], async (tx) => tx.put('conversations', { ...(await tx.get('conversations', 'dm:bob'))!, lastPreview: 'as stored now' }));
    expect(await refreshStalePreviews(store)).toBe(0);
    expect((await previews(store))['dm:bob']).toBe('as stored now');
  });

  // Engine.open on a registered store: test/core/changes.test.ts (it needs a relay to register).
  test('Engine.open writes nothing to an empty store (a failed register or link leaves nothing behind)', async () => {
    const empty = new MemoryStore();
    await Engine.open({ store: empty, relayUrl: 'http://relay.test', fetch: noNetwork });
    expect(await empty.read(['meta'], (tx) => tx.getAll('meta'))).toEqual([]);
  });
});

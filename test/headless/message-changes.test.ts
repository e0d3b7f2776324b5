// What `petrel sync` reports besides new messages: the store watcher that turns message-row
// rewrites into reaction / edit / delete events, only for transactions that commit.
import { describe, expect, test } from 'vitest';
import { MemoryStore } from '../../web/core/store/memory-store.ts';
import type { MessageRow } from '../../web/core/store/schema.ts';
import { newMessageRow } from '../../web/core/views.ts';
import { changesBetween, type MessageChange, watchMessageChanges } from '../../web/headless/message-changes.ts';

const msg = (over: Partial<MessageRow> = {}): MessageRow => ({
  ...newMessageRow({ id: 'm1', conversation: 'dm:bob', sender: 'bob', senderDevice: 'dev', sentAt: 1000, receivedAt: 1001, text: 'hi', status: 'received' }),
  ...over,
});

describe('changesBetween', () => {
  const at = { conversation: 'dm:bob', id: 'm1' };

  test('reactions added, changed and removed, each by its reactor', () => {
    const before = msg({ reactions: { alice: '👍', carol: '🎉' } });
    const after = msg({ reactions: { alice: '❤️', dave: '👀' } });
    expect(changesBetween(before, after)).toEqual([
      { event: 'reaction', ...at, from: 'alice', emoji: '❤️' },
      { event: 'reaction', ...at, from: 'carol', emoji: '' },
      { event: 'reaction', ...at, from: 'dave', emoji: '👀' },
    ]);
  });

  test('an edit and a delete are the sender’s; a delete is not also an edit', () => {
    expect(changesBetween(msg(), msg({ text: 'hello', editedAt: 2000 }))).toEqual([{ event: 'edit', ...at, from: 'bob', text: 'hello' }]);
    expect(changesBetween(msg({ editedAt: 2000 }), msg({ text: '', deleted: true, editedAt: 2000 }))).toEqual([{ event: 'delete', ...at, from: 'bob' }]);
  });

  test('receipts and status changes are not reported', () => {
    expect(changesBetween(msg(), msg({ status: 'read', deliveredTo: ['alice'], readBy: ['alice'] }))).toEqual([]);
  });
});

describe('watchMessageChanges', () => {
  test('reports a rewrite of an existing row once its transaction commits, not new rows', async () => {
    const got: MessageChange[][] = [];
    const store = watchMessageChanges(new MemoryStore(), (c) => got.push(c));
    await store.write(['messages'], (tx) => tx.put('messages', msg()));
    expect(got).toEqual([]);
    // Two changes in one transaction: the second is compared with the first (read-your-writes).
    await store.write(['messages'], async (tx) => {
      await tx.put('messages', msg({ reactions: { alice: '👍' } }));
      await tx.put('messages', msg({ reactions: { alice: '👍' }, text: 'edited', editedAt: 5 }));
    });
    expect(got).toEqual([[
      { event: 'reaction', conversation: 'dm:bob', id: 'm1', from: 'alice', emoji: '👍' },
      { event: 'edit', conversation: 'dm:bob', id: 'm1', from: 'bob', text: 'edited' },
    ]]);
    expect((await store.read(['messages'], (tx) => tx.get('messages', 'bob/m1')))?.text).toBe('edited');
  });

  test('a transaction that throws reports nothing', async () => {
    const got: MessageChange[][] = [];
    const store = watchMessageChanges(new MemoryStore(), (c) => got.push(c));
    await store.write(['messages'], (tx) => tx.put('messages', msg()));
    await expect(
      store.write(['messages'], async (tx) => {
        await tx.put('messages', msg({ deleted: true, text: '' }));
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(got).toEqual([]);
    expect((await store.read(['messages'], (tx) => tx.get('messages', 'bob/m1')))?.deleted).toBe(false);
  });
});

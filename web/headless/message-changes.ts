/**
 * What `sync` prints besides new messages: the reactions, edits and deletes it applied to
 * stored messages. The engine applies those to message rows inside its receiving transaction
 * and reports only *which conversations* changed, not which message or who changed it; so the
 * CLI watches the store it hands the engine: every put of a message row that already exists is
 * compared with the row it replaces, and the differences are reported once that transaction
 * has committed (a transaction that throws reports nothing).
 */
import type { MessageRow, Rows, Store, TableName, WriteTx } from '../core/store/schema.ts';

export type MessageChange =
  /** `emoji` '' : `from` removed their reaction. */
  | { readonly event: 'reaction'; readonly conversation: string; readonly id: string; readonly from: string; readonly emoji: string }
  | { readonly event: 'edit'; readonly conversation: string; readonly id: string; readonly from: string; readonly text: string }
  | { readonly event: 'delete'; readonly conversation: string; readonly id: string; readonly from: string };

/** The user-visible changes from `before` to `after` (receipts and status changes are not). */
export function changesBetween(before: MessageRow, after: MessageRow): MessageChange[] {
  const at = { conversation: after.conversation, id: after.id };
  const out: MessageChange[] = [];
  for (const user of new Set([...Object.keys(before.reactions), ...Object.keys(after.reactions)])) {
    if (before.reactions[user] !== after.reactions[user]) out.push({ event: 'reaction', ...at, from: user, emoji: after.reactions[user] ?? '' });
  }
  // Only a message's own sender may edit or delete it (web/core/apply.ts).
  if (after.deleted && !before.deleted) out.push({ event: 'delete', ...at, from: after.sender });
  else if (!after.deleted && after.editedAt !== before.editedAt) out.push({ event: 'edit', ...at, from: after.sender, text: after.text });
  return out;
}

/** `store`, reporting to `onChanges` the message changes each write transaction committed. */
export function watchMessageChanges(store: Store, onChanges: (changes: MessageChange[]) => void): Store {
  return {
    read: (tables, fn) => store.read(tables, fn),
    close: () => store.close(),
    async write<R>(tables: readonly TableName[], fn: (tx: WriteTx) => Promise<R>): Promise<R> {
      const changes: MessageChange[] = [];
      const result = await store.write(tables, (tx) => {
        const watched: WriteTx = {
          get: (t, key) => tx.get(t, key),
          getAll: (t, q) => tx.getAll(t, q),
          count: (t, q) => tx.count(t, q),
          delete: (t, key) => tx.delete(t, key),
          clear: (t) => tx.clear(t),
          async put<T extends TableName>(t: T, row: Rows[T]): Promise<void> {
            if (t === 'messages') {
              const next = row as MessageRow;
              const before = await tx.get('messages', next.key);
              if (before) changes.push(...changesBetween(before, next));
            }
            await tx.put(t, row);
          },
        };
        return fn(watched);
      });
      if (changes.length) onChanges(changes);
      return result;
    },
  };
}

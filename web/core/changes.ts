/**
 * Our reactions, edits and deletes of a message, and what becomes of one the relay refuses for
 * good (a 4xx the outbox does not retry by itself, outbox.ts). Such a change is already applied
 * here, so dropping it silently would leave this device showing what nobody else sees. Instead:
 *
 *  1. queuing a change keeps, with its outbox row, what the others see of the message until it
 *     goes through (`undo`: the text, or our reaction, before it);
 *  2. refused for good, the change is recorded on the message it changes (MessageRow.failedChanges,
 *     in the transaction that takes it off the outbox), so it is shown there and survives a restart —
 *     unless a newer change of the same kind waits in the outbox: that one carries the state the
 *     person wants, and takes over the undo (the others still see the state before both);
 *  3. Retry queues it again under its own id, time and body, exactly as a failed send is retried:
 *     the relay answers a resubmission with its first result (idempotent on sender device and
 *     client message id) and receivers drop a copy they already took (apply.ts's `seen`), so it is
 *     applied at most once anywhere. The record goes in the same transaction as the outbox row is
 *     put, so a second Retry finds nothing to queue.
 *  4. Discard puts the undo back: this device shows the message as the others see it.
 *
 * At most one record per message and kind (changeSlot: reactions replace reactions, an edit or a
 * delete replaces the text): a newer change of the same kind, here or from our other device,
 * replaces what an older failed one would have done, so retrying that one could only undo it.
 */
import type { Ctx } from './context.ts';
import { type Body, type ConvRef, decodeContent, encodeContent } from './protocol/content.ts';
import { type ChangeKind, type ChangeUndo, changeSlot, type FailedChange, type MessageRow, type OutboxRow, type WriteTx } from './store/schema.ts';
import { EngineError } from './types.ts';
import { currentPreview } from './views.ts';

type ChangeBody = Extract<Body, { type: ChangeKind }>;

function isChange(b: Body): b is ChangeBody {
  return b.type === 'reaction' || b.type === 'edit' || b.type === 'delete';
}

/** The message change an outbox row carries, or null (a message, a receipt, a group change…). */
export function changeIn(row: Pick<OutboxRow, 'content'>): ChangeBody | null {
  try {
    const b = decodeContent(row.content).body;
    return isChange(b) ? b : null;
  } catch {
    return null;
  }
}

/** What the others see of `m` as far as a change of `kind` by `me` goes: the state it replaces. */
export function undoOf(m: MessageRow, kind: ChangeKind, me: string): ChangeUndo {
  return changeSlot(kind) === 'reaction'
    ? { kind: 'reaction', emoji: m.reactions[me] ?? '' }
    : { kind: 'text', text: m.text, attachment: m.attachment, editedAt: m.editedAt, deleted: m.deleted };
}

/**
 * A new change of `kind` to `before` (already applied in `after`): the row to store (a failed
 * change it replaces dropped) and the undo to queue with it — the failed one's, since the others
 * still see the state before that one.
 */
export function supersede(before: MessageRow, after: MessageRow, kind: ChangeKind, me: string): { row: MessageRow; undo: ChangeUndo } {
  const slot = changeSlot(kind);
  const replaced = before.failedChanges?.find((f) => changeSlot(f.kind) === slot);
  return { row: withoutSlot(after, slot), undo: replaced?.undo ?? undoOf(before, kind, me) };
}

/** `m` without its failed change of `slot` (our other device changed the same: apply.ts). */
export function withoutSlot(m: MessageRow, slot: 'reaction' | 'text'): MessageRow {
  if (!m.failedChanges?.some((f) => changeSlot(f.kind) === slot)) return m;
  const rest = m.failedChanges.filter((f) => changeSlot(f.kind) !== slot);
  const { failedChanges: _, ...row } = m;
  return rest.length ? { ...row, failedChanges: rest } : row;
}

/**
 * Inside the transaction that takes `row` off the outbox, refused for good with `code`: records
 * the change on its message (step 2 above). Returns the message's conversation and whether the
 * person is to be told (not when a newer change of the same kind took over); null for a row that
 * is no message change.
 */
export async function recordFailure(tx: WriteTx, row: OutboxRow, code: string, now: number): Promise<{ conversation: string | null; id: string; kind: ChangeKind; tell: boolean } | null> {
  const b = changeIn(row);
  if (!b) return null;
  const target = await tx.get('messages', b.target);
  if (!target) return { conversation: null, id: '', kind: b.type, tell: true }; // its conversation was removed: nothing to show it on
  const slot = changeSlot(b.type);
  // The outbox drains oldest first, so a row still queued for the same message and slot is newer.
  const queued = await tx.getAll('outbox', { index: 'byCreated' });
  const newer = queued.find((r) => r.id !== row.id && (() => {
    const c = changeIn(r);
    return c !== null && c.target === b.target && changeSlot(c.type) === slot;
  })());
  if (newer) {
    await tx.put('outbox', { ...newer, undo: row.undo ?? newer.undo ?? null });
    return { conversation: target.conversation, id: target.id, kind: b.type, tell: false };
  }
  const failed: FailedChange = { id: row.id, kind: b.type, content: row.content, code, failedAt: now, undo: row.undo ?? null, ...(b.type === 'reaction' ? { emoji: b.emoji } : {}) };
  const rest = withoutSlot(target, slot);
  await tx.put('messages', { ...rest, failedChanges: [...(rest.failedChanges ?? []), failed] });
  return { conversation: target.conversation, id: target.id, kind: b.type, tell: true };
}

/** The failed change `changeId` on our message `key` in `conversation`, or a not_found error. */
async function find(ctx: Ctx, conversation: string, key: string, changeId: string): Promise<{ m: MessageRow; f: FailedChange | undefined }> {
  if (typeof changeId !== 'string' || !changeId) throw new EngineError('invalid_request', 'Name the change to retry or discard (its id).');
  const m = await ctx.store.read(['messages'], (tx) => tx.get('messages', key));
  if (!m || m.conversation !== conversation) throw new EngineError('not_found', 'That message is not in this conversation.');
  return { m, f: m.failedChanges?.find((x) => x.id === changeId) };
}

/**
 * Queues the failed change `changeId` again (step 3). `to` and `ref`: the conversation as it now
 * stands (a group's members may have changed). Resolves false when there was nothing to queue:
 * retried or discarded already, or replaced by a newer change — so a second Retry sends nothing.
 */
export async function retryChange(ctx: Ctx, conversation: string, key: string, changeId: string, route: { to: readonly string[]; ref: ConvRef }, queuedAt: number): Promise<boolean> {
  const me = ctx.requireMe();
  const { f } = await find(ctx, conversation, key, changeId);
  if (!f) return false;
  const c = decodeContent(f.content);
  const content = encodeContent({ ...c, conv: route.ref });
  return ctx.store.write(['outbox', 'messages'], async (tx) => {
    const cur = await tx.get('messages', key);
    const still = cur?.failedChanges?.find((x) => x.id === changeId);
    if (!cur || !still || (await tx.get('outbox', changeId))) return false;
    const to = [...new Set(route.to.length ? route.to : [me.username])];
    await tx.put('outbox', { id: changeId, createdAt: queuedAt, to, content, attempts: 0, nextAttemptAt: 0, lastError: null, sealed: null, undo: still.undo });
    await tx.put('messages', dropRecord(cur, changeId));
    return true;
  });
}

/**
 * Drops the failed change `changeId` and puts back what the others see (step 4). Resolves
 * whether the text changed (the conversation's preview was recomputed then).
 */
export async function discardChange(ctx: Ctx, conversation: string, key: string, changeId: string): Promise<{ changed: boolean; textChanged: boolean }> {
  const me = ctx.requireMe().username;
  await find(ctx, conversation, key, changeId);
  return ctx.store.write(['messages', 'conversations'], async (tx) => {
    const cur = await tx.get('messages', key);
    const f = cur?.failedChanges?.find((x) => x.id === changeId);
    if (!cur || !f) return { changed: false, textChanged: false };
    const next = restore(dropRecord(cur, changeId), f.undo, me);
    await tx.put('messages', next);
    const textChanged = f.undo?.kind === 'text';
    if (textChanged) {
      const conv = await tx.get('conversations', conversation);
      if (conv) await tx.put('conversations', { ...conv, lastPreview: await currentPreview(tx, conversation) });
    }
    return { changed: true, textChanged };
  });
}

function dropRecord(m: MessageRow, changeId: string): MessageRow {
  const rest = (m.failedChanges ?? []).filter((x) => x.id !== changeId);
  const { failedChanges: _, ...row } = m;
  return rest.length ? { ...row, failedChanges: rest } : row;
}

function restore(m: MessageRow, undo: ChangeUndo | null, me: string): MessageRow {
  if (!undo) return m; // queued before undo was kept: nothing known to put back
  if (undo.kind === 'text') return { ...m, text: undo.text, attachment: undo.attachment, editedAt: undo.editedAt, deleted: undo.deleted };
  const reactions = { ...m.reactions };
  if (undo.emoji) reactions[me] = undo.emoji;
  else delete reactions[me];
  return { ...m, reactions };
}

/**
 * Gives up a message of ours that failed (status 'failed'): the relay refused it, so nobody got
 * it, and this device drops it too — it shows the conversation as the others see it, as
 * discardChange does for a reaction, edit or delete. Resolves whether a message was removed
 * (false: it was queued again or removed meanwhile, or never failed). Outside the Engine class so
 * that the PWA, which does not offer it, does not ship it (the CLI does).
 */
export async function discardFailed(ctx: Ctx, conversationId: string, messageKey: string): Promise<boolean> {
  const me = ctx.requireMe();
  const removed = await ctx.store.write(['messages', 'conversations', 'outbox'], async (tx) => {
    const m = await tx.get('messages', messageKey);
    if (!m || m.conversation !== conversationId || m.sender !== me.username || m.system) throw new EngineError('not_found', 'That message is not one of yours in this conversation.');
    if (m.status !== 'failed' || (await tx.get('outbox', m.id))) return false;
    await tx.delete('messages', messageKey);
    const conv = await tx.get('conversations', conversationId);
    if (conv) await tx.put('conversations', { ...conv, lastPreview: await currentPreview(tx, conversationId) });
    return true;
  });
  if (!removed) return false;
  ctx.emit({ type: 'message-updated', conversation: conversationId, id: messageKey.slice(messageKey.indexOf('/') + 1) });
  ctx.emit({ type: 'conversations' });
  return true;
}

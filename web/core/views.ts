/** Store rows as the screens and the CLI see them. */
import type { ConversationRow, MessageRow, ReadTx, Store } from './store/schema.ts';
import { changeFailure } from './explain.ts';
import type { MessageView } from './types.ts';

/**
 * Every stored message (or one conversation's), oldest first: for the CLI and tests. Not an
 * Engine method, so the page, which pages through messages instead, does not carry it.
 */
export async function allMessages(store: Store, conversationId?: string): Promise<MessageView[]> {
  const rows = await store.read(['messages'], (tx) =>
    conversationId ? tx.getAll('messages', { index: 'byConversation', lower: [conversationId, 0], upper: [conversationId, Number.MAX_SAFE_INTEGER] }) : tx.getAll('messages'),
  );
  return rows.sort((a, b) => a.order - b.order).map(messageView);
}

/** Messages this device could not decrypt (the `failures` table), for the CLI and tests. */
export function decryptFailures(store: Store) {
  return store.read(['failures'], (tx) => tx.getAll('failures'));
}

export function messageView(m: MessageRow): MessageView {
  return {
    key: m.key,
    id: m.id,
    order: m.order,
    conversation: m.conversation,
    from: m.sender,
    fromDevice: m.senderDevice,
    text: m.deleted ? '' : m.text,
    sentAt: m.sentAt,
    status: m.status,
    replyTo: m.replyTo,
    reactions: m.reactions,
    edited: m.editedAt !== null,
    deleted: m.deleted,
    attachment: m.attachment && !m.deleted ? { name: m.attachment.name, mime: m.attachment.mime, size: m.attachment.size } : null,
    system: m.system,
    failedChanges: (m.failedChanges ?? []).map((f) => ({ id: f.id, kind: f.kind, emoji: f.emoji ?? '', code: f.code, message: changeFailure(f.kind, f.code) })),
    failure: m.status === 'failed' && !m.deleted ? { code: m.failedCode ?? '' } : null,
  };
}

export function preview(m: Pick<MessageRow, 'text' | 'attachment' | 'deleted'>): string {
  if (m.deleted) return 'Message deleted';
  if (m.attachment) return `📎 ${m.attachment.name}${m.text ? ' — ' + m.text : ''}`;
  return m.text.length > 120 ? m.text.slice(0, 119) + '…' : m.text;
}

/**
 * The conversation's preview as its messages stand now: the newest message that is not a system
 * line. Recomputed after an edit or a delete, so the chat list (and its search, which matches the
 * preview) never keeps text its sender changed or took back. Pages backwards in small steps: a
 * long conversation is not read whole, and system lines (which set no preview) are skipped.
 */
export async function currentPreview(tx: ReadTx, conversation: string): Promise<string> {
  let upper = Number.MAX_SAFE_INTEGER;
  for (;;) {
    const page = await tx.getAll('messages', { index: 'byConversation', lower: [conversation, 0], upper: [conversation, upper], reverse: true, limit: 50 });
    const m = page.find((r) => !r.system);
    if (m) return preview(m);
    if (page.length < 50) return '';
    upper = page[page.length - 1]!.order - 1;
  }
}

/** Meta key: which preview rules the stored previews were last brought up to (PREVIEW_RULES). */
const PREVIEWS = 'previews';
/**
 * 1: an edit or a delete recomputes the preview (`currentPreview`). Rows stored by older code can
 * still show text its sender changed or took back, until their conversation's next change.
 */
const PREVIEW_RULES = 1;

/**
 * Brings previews stored under older rules up to date, once per store (Engine.open): each
 * conversation's preview from its messages as they now stand. Cheap (a page of messages per
 * conversation, a write only where the preview differs) and safe: it is what the next edit or
 * delete would store anyway. A conversation none of whose messages is here (history cut short by
 * historySpanMs) keeps its preview. One short transaction per conversation, so whatever else
 * writes meanwhile is never held up long; a store closed half-way simply does it again.
 * Returns how many previews changed.
 */
export async function refreshStalePreviews(store: Store): Promise<number> {
  const done = (await store.read(['meta'], (tx) => tx.get('meta', PREVIEWS)))?.value;
  if (typeof done === 'number' && done >= PREVIEW_RULES) return 0;
  const ids = await store.read(['conversations'], async (tx) => (await tx.getAll('conversations')).map((c) => c.id));
  let fixed = 0;
  for (const id of ids) {
    const changed = await store.write(['conversations', 'messages'], async (tx) => {
      const c = await tx.get('conversations', id);
      const lastPreview = c ? await currentPreview(tx, id) : '';
      if (!c || !lastPreview || lastPreview === c.lastPreview) return false;
      await tx.put('conversations', { ...c, lastPreview });
      return true;
    });
    if (changed) fixed++;
  }
  await store.write(['meta'], (tx) => tx.put('meta', { key: PREVIEWS, value: PREVIEW_RULES }));
  return fixed;
}

export function newConversation(id: string, kind: ConversationRow['kind'], title: string, members: readonly string[], now: number): ConversationRow {
  return { id, kind, title, members, groupVersion: 0, left: false, lastActivity: now, lastPreview: '', unread: 0, createdAt: now, keyWarning: false };
}

/** Per-conversation order: the sender's time, with a tiny arrival tie-break so equal times stay stable. */
let tick = 0;
export function orderKey(sentAt: number): number {
  tick = (tick + 1) % 1000;
  return sentAt * 1000 + tick;
}

/** A new message row: what differs between messages is given, everything else starts empty. */
export function newMessageRow(
  f: Pick<MessageRow, 'id' | 'conversation' | 'sender' | 'senderDevice' | 'sentAt' | 'receivedAt' | 'text' | 'status'> & Partial<Pick<MessageRow, 'replyTo' | 'attachment' | 'system'>>,
): MessageRow {
  return {
    key: `${f.sender}/${f.id}`,
    order: orderKey(f.sentAt),
    replyTo: null,
    attachment: null,
    reactions: {},
    editedAt: null,
    deleted: false,
    deliveredTo: [],
    readBy: [],
    system: false,
    ...f,
  };
}

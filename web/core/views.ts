/** Store rows as the screens and the CLI see them. */
import type { ConversationRow, MessageRow } from './store/schema.ts';
import type { MessageView } from './types.ts';

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
  };
}

export function preview(m: Pick<MessageRow, 'text' | 'attachment' | 'deleted'>): string {
  if (m.deleted) return 'Message deleted';
  if (m.attachment) return `📎 ${m.attachment.name}${m.text ? ' — ' + m.text : ''}`;
  return m.text.length > 120 ? m.text.slice(0, 119) + '…' : m.text;
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

/**
 * Applying decrypted content to the store, inside the receiving transaction (so a message, its
 * conversation update and the session state that decrypted it commit together). Only store
 * reads and writes happen here; work that needs the network (receipts, history, repairs) is
 * returned as `after` actions, run once the transaction committed.
 *
 * Authorisation is by the relay-independent facts we hold: the sender's user and device come
 * from the session that decrypted the message; a group message is accepted only from a current
 * member; an edit or a delete only from the message's own sender.
 */
import { fromB64 as decodeB64 } from './b64.ts';
import type { Ctx } from './context.ts';
import type { Content, GroupState } from './protocol/content.ts';
import type { ConversationRow, MessageRow, WriteTx } from './store/schema.ts';
import { newConversation, newMessageRow, preview } from './views.ts';

export type After =
  | { readonly kind: 'receipt'; readonly to: string; readonly conversation: string; readonly ids: string[] }
  | { readonly kind: 'history-import'; readonly content: Content }
  | { readonly kind: 'history-export'; readonly forDevice: string }
  | { readonly kind: 'account-key'; readonly secret: string }
  | { readonly kind: 'emit-device'; readonly deviceId: string; readonly name: string }
  | { readonly kind: 'typing'; readonly conversation: string; readonly user: string; readonly on: boolean };

export interface Incoming {
  readonly content: Content;
  readonly sender: string;
  readonly senderDevice: string;
  readonly receivedAt: number;
}

export interface ApplyResult {
  /** Conversations whose messages changed, and the new message rows. */
  readonly touched: Set<string>;
  readonly added: MessageRow[];
  readonly after: After[];
}

export function conversationId(me: string, sender: string, c: Content): string | null {
  if (!c.conv) return null;
  if (c.conv.t === 'group') return `group:${c.conv.id}`;
  return `dm:${sender === me ? c.conv.to : sender}`;
}

export async function applyContent(ctx: Ctx, tx: WriteTx, m: Incoming, out: ApplyResult): Promise<void> {
  const me = ctx.requireMe().username;
  const c = m.content;
  const b = c.body;
  const key = `${m.sender}/${c.id}`;
  if (await tx.get('seen', key)) return; // a duplicate delivery
  await tx.put('seen', { key, at: m.receivedAt });
  const convId = conversationId(me, m.sender, c);

  switch (b.type) {
    case 'text':
    case 'attachment': {
      if (!convId) return;
      const conv = await conversationFor(tx, convId, me, m, c);
      if (!conv || conv.left) return;
      const row = newMessageRow({
        id: c.id,
        conversation: convId,
        sender: m.sender,
        senderDevice: m.senderDevice,
        sentAt: c.at,
        receivedAt: m.receivedAt,
        text: b.text,
        replyTo: b.replyTo ?? null,
        attachment: b.type === 'attachment' ? { id: b.attachment.id, pointer: fromB64Safe(b.attachment.pointer), name: b.attachment.name, mime: b.attachment.mime, size: b.attachment.size } : null,
        status: m.sender === me ? 'sent' : 'received',
      });
      await tx.put('messages', row);
      const mine = m.sender === me;
      await tx.put('conversations', {
        ...conv,
        lastActivity: Math.max(conv.lastActivity, c.at),
        lastPreview: preview(row),
        unread: mine ? 0 : conv.unread + 1,
      });
      out.touched.add(convId);
      out.added.push(row);
      if (!mine) addReceipt(out, m.sender, convId, c.id);
      return;
    }
    case 'reaction':
    case 'edit':
    case 'delete': {
      const target = await tx.get('messages', b.target);
      if (!target || target.conversation !== convId) return;
      if (b.type === 'reaction') {
        const reactions = { ...target.reactions };
        if (b.emoji) reactions[m.sender] = b.emoji;
        else delete reactions[m.sender];
        await tx.put('messages', { ...target, reactions });
      } else {
        if (target.sender !== m.sender) return; // only a message's own sender edits or deletes it
        if (b.type === 'edit') await tx.put('messages', { ...target, text: b.text, editedAt: c.at });
        else await tx.put('messages', { ...target, text: '', attachment: null, deleted: true });
      }
      out.touched.add(target.conversation);
      return;
    }
    case 'receipt':
      return applyReceipt(tx, me, m, b.kind, b.targets, out);
    case 'typing':
      if (convId && m.sender !== me) out.after.push({ kind: 'typing', conversation: convId, user: m.sender, on: b.on });
      return;
    case 'group':
      return applyGroup(tx, me, m, b.action, b.group, b.subject, out);
    case 'link':
      if (m.sender !== me) return;
      if (b.for === ctx.requireMe().deviceB64) out.after.push({ kind: 'account-key', secret: b.accountSecret });
      else out.after.push({ kind: 'emit-device', deviceId: b.for, name: 'a linked device' });
      return;
    case 'device-added':
      if (m.sender !== me) return;
      out.after.push({ kind: 'emit-device', deviceId: b.device, name: b.name });
      out.after.push({ kind: 'history-export', forDevice: b.device });
      return;
    case 'history':
      if (m.sender === me && b.for === ctx.requireMe().deviceB64) out.after.push({ kind: 'history-import', content: c });
      return;
    case 'repair':
      return; // the session that carried it is already the repaired one
  }
}

async function conversationFor(tx: WriteTx, convId: string, me: string, m: Incoming, c: Content): Promise<ConversationRow | null> {
  const existing = await tx.get('conversations', convId);
  if (c.conv?.t === 'group') {
    // Only current members may post; a group we do not know (or left) takes nothing.
    if (!existing || existing.left) return null;
    if (m.sender !== me && !existing.members.includes(m.sender)) return null;
    return existing;
  }
  if (existing) return existing;
  const peer = convId.slice(3);
  return newConversation(convId, 'direct', peer, [peer], m.receivedAt);
}

function addReceipt(out: ApplyResult, to: string, conversation: string, id: string): void {
  const r = out.after.find((a): a is Extract<After, { kind: 'receipt' }> => a.kind === 'receipt' && a.to === to && a.conversation === conversation);
  if (r) r.ids.push(id);
  else out.after.push({ kind: 'receipt', to, conversation, ids: [id] });
}

async function applyReceipt(tx: WriteTx, me: string, m: Incoming, kind: 'delivered' | 'read', targets: readonly string[], out: ApplyResult): Promise<void> {
  for (const t of targets) {
    const msg = await tx.get('messages', t);
    if (!msg) continue;
    if (m.sender === me) {
      // Our other device read it: read state follows us across devices.
      if (kind === 'read' && msg.sender !== me) {
        const conv = await tx.get('conversations', msg.conversation);
        if (conv && conv.unread) await tx.put('conversations', { ...conv, unread: 0 });
        out.touched.add(msg.conversation);
      }
      continue;
    }
    if (msg.sender !== me) continue;
    const deliveredTo = msg.deliveredTo.includes(m.sender) ? msg.deliveredTo : [...msg.deliveredTo, m.sender];
    const readBy = kind === 'read' && !msg.readBy.includes(m.sender) ? [...msg.readBy, m.sender] : msg.readBy;
    const status = readBy.length ? 'read' : deliveredTo.length ? 'delivered' : msg.status;
    await tx.put('messages', { ...msg, deliveredTo, readBy, status });
    out.touched.add(msg.conversation);
  }
}

async function applyGroup(tx: WriteTx, me: string, m: Incoming, action: string, g: GroupState, subject: string | undefined, out: ApplyResult): Promise<void> {
  const id = `group:${g.id}`;
  const existing = await tx.get('conversations', id);
  if (existing && g.version <= existing.groupVersion) return; // old or replayed state
  if (existing ? !existing.members.includes(m.sender) && m.sender !== me : !g.members.includes(m.sender)) return;
  const stillIn = g.members.includes(me);
  const others = g.members.filter((u) => u !== me);
  const base = existing ?? newConversation(id, 'group', g.name, others, m.receivedAt);
  await tx.put('conversations', { ...base, title: g.name, members: others, groupVersion: g.version, left: !stillIn, lastActivity: Math.max(base.lastActivity, m.content.at) });
  const who = m.sender === me ? 'You' : m.sender;
  const text =
    action === 'create' ? `${who} created the group “${g.name}”`
    : action === 'add' ? `${who} added ${subject ?? 'a member'}`
    : action === 'remove' ? (subject === me ? `${who} removed you` : `${who} removed ${subject ?? 'a member'}`)
    : action === 'leave' ? `${m.sender === me ? 'You' : m.sender} left`
    : `${who} renamed the group to “${g.name}”`;
  await systemLine(tx, me, id, m, text, out);
}

async function systemLine(tx: WriteTx, me: string, conversation: string, m: Incoming, text: string, out: ApplyResult): Promise<void> {
  if (!(await tx.get('conversations', conversation))) return;
  const row = newMessageRow({
    id: m.content.id,
    conversation,
    sender: m.sender,
    senderDevice: m.senderDevice,
    sentAt: m.content.at,
    receivedAt: m.receivedAt,
    text,
    status: m.sender === me ? 'sent' : 'received',
    system: true,
  });
  await tx.put('messages', row);
  out.touched.add(conversation);
  out.added.push(row);
}

function fromB64Safe(s: string): Uint8Array {
  // Validated as base64url text by decodeContent's length check; a bad pointer fails at download.
  try {
    return decodeB64(s);
  } catch {
    return new Uint8Array(0);
  }
}

/**
 * Applying decrypted content to the store, inside the receiving transaction (so a message, its
 * conversation update and the session state that decrypted it commit together). Only store
 * reads and writes happen here; work that needs the network (receipts, history, repairs) is
 * returned as `after` actions, run once the transaction committed.
 *
 * Authorisation is by the relay-independent facts we hold: the sender's user and device come
 * from the session that decrypted the message; a group message is accepted only from a current
 * member, a group change as group-state.ts's `admit` says (never from a removed member); an
 * edit or a delete only from the message's own sender.
 *
 * A group change is merged into the state we hold (group-state.ts). When we know something its
 * sender did not (a change made at the same time as theirs), we pass our state on, queued in
 * this same transaction: to the members when the merge taught us something too (a member the
 * sender did not know of, or one who only heard our side, would otherwise never learn the other
 * change), else to the sender alone. A change refused from someone removed by another member,
 * who still counts themself in, is answered once (per version of their roster entry, recorded
 * in the row in this transaction) with a removal notice: their own entry, nothing else. A
 * notice is taken only from a member as we know the group, and only for our own entry; it is
 * never answered (group-state.ts `notice`).
 */
import { fromB64 as decodeB64 } from './b64.ts';
import type { Ctx } from './context.ts';
import * as groupState from './group-state.ts';
import { type Body, type Content, encodeContent, newId } from './protocol/content.ts';
import type { GroupState } from './protocol/content.ts';
import { withoutSlot } from './changes.ts';
import { changeSlot, type ConversationRow, type MessageRow, type WriteTx } from './store/schema.ts';
import { currentPreview, newConversation, newMessageRow, preview } from './views.ts';

export type After =
  | { readonly kind: 'receipt'; readonly to: string; readonly conversation: string; readonly ids: string[] }
  | { readonly kind: 'history-import'; readonly content: Content }
  | { readonly kind: 'history-export'; readonly forDevice: string }
  | { readonly kind: 'account-key'; readonly secret: string }
  | { readonly kind: 'emit-device'; readonly deviceId: string; readonly name: string }
  | { readonly kind: 'typing'; readonly conversation: string; readonly user: string; readonly on: boolean }
  /** Something was queued in the outbox inside the transaction: send it. */
  | { readonly kind: 'verified'; readonly user: string; readonly accountKey: string; readonly verified: boolean }
  | { readonly kind: 'drain' };

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
      const found = await tx.get('messages', b.target);
      if (!found || found.conversation !== convId) return;
      // Our other device changed it the same way: retrying our failed change would undo that (changes.ts).
      const target = m.sender === me ? withoutSlot(found, changeSlot(b.type)) : found;
      if (b.type === 'reaction') {
        const reactions = { ...target.reactions };
        if (b.emoji) reactions[m.sender] = b.emoji;
        else delete reactions[m.sender];
        await tx.put('messages', { ...target, reactions });
      } else {
        if (target.sender !== m.sender) return; // only a message's own sender edits or deletes it
        if (b.type === 'edit') await tx.put('messages', { ...target, text: b.text, editedAt: c.at });
        else await tx.put('messages', { ...target, text: '', attachment: null, deleted: true });
        // The chat list shows (and searches) the preview stored with the conversation: it must not
        // keep the old or deleted text. touched below makes the engine tell the list to re-read.
        await refreshPreview(tx, target.conversation);
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
      return applyGroup(ctx, tx, m, b, out);
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
    case 'verified':
      // Contacts are outside this transaction's stores: applied right after it (after.ts).
      if (m.sender === me) out.after.push({ kind: 'verified', user: b.user, accountKey: b.accountKey, verified: b.verified });
      return;
    case 'repair':
      return; // the session that carried it is already the repaired one; what it says was refused was dropped with it (inbox.ts)
  }
}

async function refreshPreview(tx: WriteTx, convId: string): Promise<void> {
  const conv = await tx.get('conversations', convId);
  if (!conv) return;
  const lastPreview = await currentPreview(tx, convId);
  if (lastPreview !== conv.lastPreview) await tx.put('conversations', { ...conv, lastPreview });
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

/** A receipt for a message of ours this device does not hold yet: [message key, from, read]. */
export type EarlyReceipt = readonly [string, string, boolean];

/** `msg` (one of ours) as `by`'s receipt leaves it: delivered to them, and read if `read`. */
export function withReceipt(msg: MessageRow, by: string, read: boolean): MessageRow {
  const deliveredTo = msg.deliveredTo.includes(by) ? msg.deliveredTo : [...msg.deliveredTo, by];
  const readBy = read && !msg.readBy.includes(by) ? [...msg.readBy, by] : msg.readBy;
  return { ...msg, deliveredTo, readBy, status: readBy.length ? 'read' : 'delivered' };
}

async function applyReceipt(tx: WriteTx, me: string, m: Incoming, kind: 'delivered' | 'read', targets: readonly string[], out: ApplyResult): Promise<void> {
  const early: EarlyReceipt[] = [];
  for (const t of targets) {
    const msg = await tx.get('messages', t);
    if (!msg) {
      // Ours from before this device joined, while its history is still on the way: kept for the
      // import (history.ts), or this device would show "delivered" where the sender shows "read".
      if (m.sender !== me) early.push([t, m.sender, kind === 'read']);
      continue;
    }
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
    await tx.put('messages', withReceipt(msg, m.sender, kind === 'read'));
    out.touched.add(msg.conversation);
  }
  if (early.length && (await tx.get('meta', 'historyDue'))) {
    const had = ((await tx.get('meta', 'earlyReceipts'))?.value as EarlyReceipt[] | undefined) ?? [];
    await tx.put('meta', { key: 'earlyReceipts', value: [...had, ...early].slice(-2000) });
  }
}

async function applyGroup(ctx: Ctx, tx: WriteTx, m: Incoming, b: Extract<Body, { type: 'group' }>, out: ApplyResult): Promise<void> {
  const me = ctx.requireMe().username;
  const id = `group:${b.group.id}`;
  const existing = await tx.get('conversations', id);
  if (existing && existing.kind !== 'group') return;
  const before = existing ? groupState.stateOf(existing, me) : null;
  // A removal notice: only our own entry, and only from someone we count as a member (a removed
  // member must not put out the member who removed them). Being our state with that entry merged
  // in, it is never answered: nothing below passes on a state the sender already holds.
  const theirs =
    b.action === 'removed-notice'
      ? b.subject === me && before?.members.includes(m.sender)
        ? groupState.merge(before, b.group)
        : null
      : groupState.fromMessage(before, b.action, b.group, b.subject, m.sender);
  if (!theirs) return;
  const taken = groupState.admit(before, theirs, m.sender, me);
  if (!taken) {
    // Refused: a change its sender made not knowing they were out. A member who took it
    // before hearing of the removal must learn of the removal to pass the change on to us.
    if (!before?.members.includes(me)) return;
    if (!groupState.same(groupState.merge(before, theirs), before)) await passOn(ctx, tx, before, before, out);
    // The sender still counts themself in: tell them of their removal (by someone else: a leave
    // is taken), once for each version of their entry, so that sending changes tells them nothing more.
    const n = groupState.notice(before, m.sender);
    const key = `${m.sender} ${n.version}`;
    if (groupState.removed(n.roster![0]) && theirs.members.includes(m.sender) && !existing!.noticed?.includes(key)) {
      await tx.put('conversations', { ...existing!, noticed: [...(existing!.noticed ?? []), key] });
      await passOn(ctx, tx, null, n, out, [m.sender], m.sender);
    }
    return;
  }
  const after = before ? groupState.merge(before, taken) : taken;
  if (!before && !after.members.includes(me)) return; // not a group we are in
  if (before && groupState.same(before, after)) {
    // Nothing new to us, but the sender is behind: they may have refused the change they lack
    // from someone they did not know yet, so tell them (only them: the others had it from us).
    if (m.sender !== me && !groupState.same(before, theirs) && !groupState.removed(before.roster?.find((e) => e.user === m.sender))) await passOn(ctx, tx, null, before, out, [m.sender]);
    return;
  }
  const base = existing ?? newConversation(id, 'group', after.name, [], m.receivedAt);
  await tx.put('conversations', { ...groupState.withState(base, after, me), lastActivity: Math.max(base.lastActivity, m.content.at) });
  const who = m.sender === me ? 'You' : m.sender;
  const lines = before ? groupState.describe(before, after, me) : [b.action === 'create' ? `${who} created the group “${after.name}”` : `${who} added you`];
  for (const [i, text] of lines.entries()) await systemLine(tx, me, id, m, i ? `${m.content.id}.${i}` : m.content.id, text, out);
  // We knew something the sender did not: pass the merged state on — also after we left (we may
  // be the only one who knew of some change), but not once removed (nobody would take it).
  if (!groupState.same(after, theirs) && !groupState.removed(after.roster?.find((e) => e.user === me))) await passOn(ctx, tx, before, after, out);
}

/**
 * Queues our state for every member (and whoever was one before the merge), or for `only`: what
 * we knew and the sender did not, they may not know either. This ends: a device passes a state
 * to everyone only when a merge taught it something, and there is only so much to learn; the
 * sender alone only when it is behind, and our state then teaches it all it lacked. `notice`:
 * `after` is the removal notice (group-state.ts `notice`) for that user, who never answers it.
 */
async function passOn(ctx: Ctx, tx: WriteTx, before: GroupState | null, after: GroupState, out: ApplyResult, only?: readonly string[], notice?: string): Promise<void> {
  const me = ctx.requireMe().username;
  const to = only ?? [...new Set([...after.members, ...(before?.members ?? [])])].filter((u) => u !== me);
  const id = newId(ctx.rng);
  const at = ctx.now();
  const content = encodeContent({ v: 1, id, at, conv: { t: 'group', id: after.id, ver: after.version }, body: { type: 'group', action: notice ? 'removed-notice' : 'merge', group: after, subject: notice } });
  await tx.put('outbox', { id, createdAt: at, to: to.length ? to : [me], content, attempts: 0, nextAttemptAt: 0, lastError: null, sealed: null });
  await tx.put('seen', { key: `${me}/${id}`, at });
  if (!out.after.some((a) => a.kind === 'drain')) out.after.push({ kind: 'drain' });
}

async function systemLine(tx: WriteTx, me: string, conversation: string, m: Incoming, id: string, text: string, out: ApplyResult): Promise<void> {
  if (!(await tx.get('conversations', conversation))) return;
  const row = newMessageRow({
    id,
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

/**
 * History transfer to a newly added device: an existing device packages its conversations and
 * messages (all of them by default, or those newer than a span), encrypts the package as an
 * attachment and sends the pointer to our own devices in a 'history' message addressed to the
 * new one. The new device imports it: rows it already has are kept (taking the package's receipts),
 * the rest added, and receipts for them that reached it before the package (apply.ts) applied.
 *
 * It carries the contacts we verified too, each with the account key that was verified (base64url).
 * The new device takes a mark as a 'verified' message from our devices: only for that same key,
 * looked up from the relay if it has not pinned one (directory.ts's takeVerified).
 *
 *   package = 0x01 || UTF-8 JSON { conversations: ConversationRow[], messages: MessageRow[],
 *                                  verified?: { user, accountKey }[] }
 *   (Uint8Array fields as { "$b": base64url }; a package without `verified` marks nothing)
 */
import { fromB64, toB64 } from './b64.ts';
import { downloadAttachment, uploadAttachment } from './attachments.ts';
import type { Ctx } from './context.ts';
import { type EarlyReceipt, withReceipt } from './apply.ts';
import { takeVerified } from './directory.ts';
import * as groupState from './group-state.ts';
import type { AttachmentInfo } from './protocol/content.ts';
import type { ConversationRow, MessageRow } from './store/schema.ts';
import { currentPreview } from './views.ts';

export const HISTORY_VERSION = 0x01;

const replacer = (_k: string, v: unknown) => (v instanceof Uint8Array ? { $b: toB64(v) } : v);
const reviver = (_k: string, v: any) => (v && typeof v === 'object' && typeof v.$b === 'string' && Object.keys(v).length === 1 ? fromB64(v.$b) : v);

/** A contact verified on the exporting device, for the account key it verified. */
interface VerifiedEntry {
  readonly user: string;
  readonly accountKey: string;
}

export async function exportHistory(ctx: Ctx, sinceMs = 0): Promise<Uint8Array> {
  const { conversations, messages, contacts } = await ctx.store.read(['conversations', 'messages', 'contacts'], async (tx) => ({
    conversations: await tx.getAll('conversations'),
    messages: await tx.getAll('messages'),
    contacts: await tx.getAll('contacts'),
  }));
  // A change that failed here (changes.ts) is this device's to retry: its outbox, not history.
  const kept = (sinceMs ? messages.filter((m) => m.sentAt >= sinceMs) : messages).map(({ failedChanges: _, ...m }) => m);
  // Every verification, however old: it is not history but what this account trusts.
  const verified: VerifiedEntry[] = contacts.filter((c) => c.verified).map((c) => ({ user: c.username, accountKey: toB64(c.accountKey) }));
  const json = new TextEncoder().encode(JSON.stringify({ conversations, messages: kept, verified }, replacer));
  const out = new Uint8Array(json.length + 1);
  out[0] = HISTORY_VERSION;
  out.set(json, 1);
  return out;
}

export async function uploadHistory(ctx: Ctx, sinceMs = 0): Promise<AttachmentInfo> {
  const bytes = await exportHistory(ctx, sinceMs);
  return uploadAttachment(ctx, { name: 'history.petrel', mime: 'application/x-petrel-history', bytes });
}

/** Imports a package; returns how many messages were new. */
export async function importHistory(ctx: Ctx, bytes: Uint8Array): Promise<number> {
  if (bytes[0] !== HISTORY_VERSION) throw new Error(`unknown history version ${bytes[0]}`);
  const data = JSON.parse(new TextDecoder().decode(bytes.subarray(1)), reviver) as { conversations: ConversationRow[]; messages: MessageRow[]; verified?: unknown };
  if (!Array.isArray(data.conversations) || !Array.isArray(data.messages)) throw new Error('history package shape');
  const verified = verifiedEntries(data.verified);
  let added = 0;
  const me = ctx.requireMe().username;
  await ctx.store.write(['conversations', 'messages', 'seen', 'meta'], async (tx) => {
    for (const c of data.conversations) {
      const have = await tx.get('conversations', c.id);
      if (!have) await tx.put('conversations', { ...c, unread: 0 });
      else {
        // A group's state is merged (group-state.ts): the package and this device may each know a change the other does not.
        const merged = have.kind === 'group' && c.kind === 'group' ? groupState.withState(have, groupState.merge(groupState.stateOf(have, me), groupState.stateOf(c, me)), me) : have;
        await tx.put('conversations', { ...merged, lastActivity: Math.max(c.lastActivity, have.lastActivity), lastPreview: c.lastActivity > have.lastActivity ? c.lastPreview : have.lastPreview });
      }
    }
    for (const m of data.messages) {
      const have = await tx.get('messages', m.key);
      // From a device that exported its failed changes: they were its own to retry, not ours.
      const { failedChanges: _, ...row } = m;
      // Held already (its copy reached this device first): the package may know of receipts this device missed.
      await tx.put('messages', have ? m.deliveredTo.reduce((r, by) => withReceipt(r, by, m.readBy.includes(by)), have) : row);
      if (have) continue;
      await tx.put('seen', { key: m.key, at: m.receivedAt });
      added++;
    }
    // Receipts for these messages that came before them (apply.ts): the exporting device may have
    // had them only after it exported.
    for (const [key, by, read] of ((await tx.get('meta', 'earlyReceipts'))?.value as EarlyReceipt[] | undefined) ?? []) {
      const r = await tx.get('messages', key);
      if (r) await tx.put('messages', withReceipt(r, by, read));
    }
    // The package's previews were stored by the exporting device, perhaps before an edit or a
    // delete reached it: take the preview from the messages as they now stand here instead (kept
    // only for a conversation none of whose messages came, as when historySpanMs cut them off).
    for (const c of data.conversations) {
      const have = await tx.get('conversations', c.id);
      const lastPreview = have && (await currentPreview(tx, c.id));
      if (have && lastPreview && lastPreview !== have.lastPreview) await tx.put('conversations', { ...have, lastPreview });
    }
  });
  await takeVerifications(ctx, verified);
  return added;
}

function verifiedEntries(v: unknown): VerifiedEntry[] {
  if (v === undefined) return []; // a package from before verifications travelled with it
  if (!Array.isArray(v)) throw new Error('history package shape');
  return v.filter((e): e is VerifiedEntry => typeof e?.user === 'string' && typeof e?.accountKey === 'string');
}

/**
 * The marks, each for the key it was made for. One contact that cannot be looked up (offline, or
 * gone from the relay) does not keep the others; the person is told whom to compare again.
 */
async function takeVerifications(ctx: Ctx, entries: readonly VerifiedEntry[]): Promise<void> {
  const missed: string[] = [];
  for (const e of entries) {
    try {
      await takeVerified(ctx, e.user, e.accountKey, true);
    } catch {
      missed.push(e.user);
    }
  }
  if (missed.length) {
    ctx.emit({ type: 'error', code: 'verification_not_taken', message: `Your other device had verified ${missed.join(', ')}, but this device could not look ${missed.length === 1 ? 'them' : 'these contacts'} up to check the same key. Compare safety numbers again here to verify.` });
  }
}

export async function fetchHistory(ctx: Ctx, a: AttachmentInfo): Promise<number> {
  return importHistory(ctx, await downloadAttachment(ctx, a.id, fromB64(a.pointer)));
}

/**
 * What we sent on sessions the peer has not confirmed, kept so that it can be sent again when the
 * peer reports it refused them (PROTOCOL.md §8 rule 7).
 *
 * Until a session we started is confirmed, everything we send on it is a prekey message, and a
 * peer that refuses one (its signed prekey replaced, say) refuses them all. Its repair request
 * names the refused sessions by base key (after.ts, `repair.refused`); we drop them (crypto's
 * `dropRefused`, inbox.ts) and queue again what we had sent on them, to that user only. The content
 * is the same bytes, so its id is the same: a device that did get it the first time (the peer's
 * other devices, ours) ignores the copy (apply.ts, `seen`).
 *
 * Per remote device, one meta row `unconfirmed/<address>` holds the contents sealed for it as
 * prekey messages, each with the base key of the session it went on. Whenever we seal for that
 * device again, entries whose session is no longer one we started and still unconfirmed in its
 * record are removed (confirmed: the peer has it; dropped: nothing more will be sent again), so the
 * row is empty while sessions are confirmed, which is nearly always. Typing notices and repair
 * requests are not kept (stale by the time they could be resent). Bounded: the newest
 * MAX_ENTRIES, at most MAX_BYTES of content.
 */
import { type DeviceSessions, type Session, toHex } from '../../crypto/index.ts';
import type { Ctx } from './context.ts';
import { decodeContent, newId } from './protocol/content.ts';
import type { OutboxRow, WriteTx } from './store/schema.ts';

export interface SentEntry {
  /** Hex of the base key of the session it was sent on. */
  readonly baseKey: string;
  readonly content: Uint8Array;
  /** The content's own time (ms): the order to send it again in. */
  readonly at: number;
}

const MAX_ENTRIES = 50;
const MAX_BYTES = 256 * 1024;
const NOT_KEPT = new Set(['typing', 'repair']);

const metaKey = (addr: string) => `unconfirmed/${addr}`;

/** The entries kept for a device (cached in ctx once read, like session records). */
export async function sentLog(ctx: Ctx, addr: string): Promise<readonly SentEntry[]> {
  const cached = ctx.sentLogs.get(addr);
  if (cached) return cached;
  const row = await ctx.store.read(['meta'], (tx) => tx.get('meta', metaKey(addr)));
  const entries = (row?.value as SentEntry[] | undefined) ?? [];
  ctx.sentLogs.set(addr, entries);
  return entries;
}

function pendingOf(record: DeviceSessions): Set<string> {
  return new Set([record.active, ...record.inactive].filter((s): s is Session => s !== null && s.initiatedByUs && !s.confirmed).map((s) => toHex(s.baseKey)));
}

/** The content's time if it is worth sending again (not a typing notice or a repair request), else null. */
export function keptAt(content: Uint8Array): number | null {
  try {
    const c = decodeContent(content);
    return NOT_KEPT.has(c.body.type) ? null : c.at;
  } catch {
    return null;
  }
}

/**
 * The log after sealing `content` (kept at `at`, or not kept: null) for a device whose record is now
 * `record`: entries of sessions no longer pending removed, and `content` added when it went as a
 * prekey message. Null: unchanged.
 */
export function afterSeal(entries: readonly SentEntry[], record: DeviceSessions, content: Uint8Array, at: number | null, prekeyMessage: boolean): SentEntry[] | null {
  const pending = pendingOf(record);
  let next = entries.filter((e) => pending.has(e.baseKey));
  const added = prekeyMessage && record.active !== null && at !== null;
  if (added) next = [...next, { baseKey: toHex(record.active!.baseKey), content, at }];
  let bytes = next.reduce((n, e) => n + e.content.length, 0);
  while (next.length > MAX_ENTRIES || (bytes > MAX_BYTES && next.length > 1)) bytes -= next.shift()!.content.length;
  return added || next.length !== entries.length ? next : null;
}

/** Writes a device's log (inside the caller's transaction); the cache is set with `commitLog` after it committed. */
export async function putLog(tx: WriteTx, addr: string, entries: readonly SentEntry[]): Promise<void> {
  if (entries.length) await tx.put('meta', { key: metaKey(addr), value: entries });
  else await tx.delete('meta', metaKey(addr));
}

export function commitLog(ctx: Ctx, addr: string, entries: readonly SentEntry[]): void {
  ctx.sentLogs.set(addr, entries);
}

/** The peer dropped these sessions (by hex base key): what we sent on them, and the log without it. */
export function takeDropped(entries: readonly SentEntry[], dropped: ReadonlySet<string>): { resend: SentEntry[]; rest: SentEntry[] } {
  return { resend: entries.filter((e) => dropped.has(e.baseKey)), rest: entries.filter((e) => !dropped.has(e.baseKey)) };
}

/** Outbox rows sending `entries` again to `user` (our own user for another of our devices), oldest first. */
export function resendRows(ctx: Ctx, user: string, entries: readonly SentEntry[]): OutboxRow[] {
  return entries.map((e) => ({
    // A new submission id (the relay would answer a reused one with the first result), the same content and id inside.
    id: newId(ctx.rng),
    // Their original times: they go out before what was queued since, in the order they were written.
    createdAt: e.at,
    to: [user],
    content: e.content,
    attempts: 0,
    nextAttemptAt: 0,
    lastError: null,
    sealed: null,
  }));
}

/**
 * Receiving. Envelopes arrive in sequence order (a catch-up page, or live from the socket).
 * For a batch: decrypt each with the sender device's session (sender from its verified list),
 * decode, then commit in ONE transaction the new session records, the consumed one-time
 * prekeys, every applied message and the cursor — and only then acknowledge to the relay. A
 * crash before the commit re-receives the batch from the relay; after it, the cursor skips it.
 *
 * An envelope that cannot be decrypted (or decoded) is recorded in `failures`, not silently
 * dropped; the sender device gets a fresh session from us and a repair request, so the next
 * messages decrypt again. A refused prekey message is recorded with its base key: the repair
 * request names that session, so its sender drops it (PROTOCOL.md §8 rule 7). Receiving such a
 * request, we drop the sessions it names in the same commit as the message, and queue again what
 * we had sent on them (resend.ts).
 */
import {
  decodeBundle,
  decodeDeviceMessage,
  type DeviceSessions,
  dropRefused,
  encodeDeviceSessions,
  equalBytes,
  fanoutDecrypt,
  findDevice,
  isCryptoError,
  MessageKind,
  publicPart,
  type Session,
  startSession,
  toHex,
  verifyBundle,
} from '../../crypto/index.ts';
import { fromB64, toB64 } from './b64.ts';
import { type After, applyContent, type ApplyResult, type Incoming } from './apply.ts';
import { address, type Ctx } from './context.ts';
import { deviceList } from './directory.ts';
import type { WireEnvelope } from './net/api.ts';
import { type Content, decodeContent } from './protocol/content.ts';
import { commitLog, putLog, resendRows, type SentEntry, sentLog, takeDropped } from './resend.ts';
import type { FailureRow, MessageRow, OutboxRow } from './store/schema.ts';

export interface BatchResult {
  readonly added: MessageRow[];
  readonly touched: Set<string>;
  readonly after: After[];
  /** Highest seq committed (the caller acknowledges up to it). */
  readonly cursor: number;
  readonly failures: FailureRow[];
}

/** Our place in the inbox: the last seq read, and that envelope's timestamp. */
export async function positionOf(ctx: Ctx): Promise<{ after: number; at?: number | undefined }> {
  const row = await ctx.store.read(['meta'], (tx) => tx.get('meta', 'cursor'));
  return { after: (row?.value as number | undefined) ?? 0, at: row?.at };
}

async function senderDevice(ctx: Ctx, user: string, deviceB64: string) {
  const id = fromB64(deviceB64);
  let list = await deviceList(ctx, user);
  let d = findDevice(list, id);
  if (!d) {
    list = await deviceList(ctx, user, { refresh: true });
    d = findDevice(list, id);
  }
  return d ? publicPart(d) : null;
}

export async function processBatch(ctx: Ctx, envelopes: readonly WireEnvelope[]): Promise<BatchResult> {
  return ctx.lock(async () => {
    const me = ctx.requireMe();
    const { after: start, at } = await positionOf(ctx);
    const fresh = envelopes.filter((e) => e.seq > start).sort((a, b) => a.seq - b.seq);
    const records = new Map<string, DeviceSessions>();
    const usedPrekeys: string[] = [];
    const incoming: Incoming[] = [];
    const failures: FailureRow[] = [];
    /** Per address: its user and the base keys (hex) of sessions a report made us drop. */
    const reported = new Map<string, { user: string; dropped: Set<string> }>();
    /** Per sender device, looked up (and its id decoded) once a batch: a page is mostly a few senders. */
    const senders = new Map<string, ReturnType<typeof senderDevice>>();
    const now = ctx.now();
    let cursor = start;
    for (const e of fresh) {
      cursor = e.seq;
      try {
        const key = `${e.sender.user}/${e.sender.device}`;
        const theirs = await (senders.get(key) ?? senders.set(key, senderDevice(ctx, e.sender.user, e.sender.device)).get(key));
        if (!theirs) throw Object.assign(new Error('sender device is not in its user’s list'), { code: 'unknown_device' });
        const addr = address(e.sender.user, theirs.deviceId);
        const record = records.get(addr) ?? (await ctx.session(addr));
        const r = fanoutDecrypt(record, fromB64(e.envelope), fromB64(e.payload), me.device, theirs, ctx.lookupPrekey, ctx.rng);
        const content = decodeContent(r.plaintext);
        const next = applyReport(r.record, content, r.baseKey);
        if (next !== r.record) {
          const kept = new Set(heldKeys(next));
          const dropped = heldKeys(r.record).filter((k) => !kept.has(k));
          const got = reported.get(addr) ?? { user: e.sender.user, dropped: new Set<string>() };
          for (const k of dropped) got.dropped.add(k);
          reported.set(addr, got);
        }
        records.set(addr, next);
        if (r.used?.oneTimePrekeyId != null) usedPrekeys.push(`2/${r.used.oneTimePrekeyId}`);
        if (r.used?.pqOneTimePrekeyId != null) usedPrekeys.push(`3/${r.used.pqOneTimePrekeyId}`);
        incoming.push({ content, sender: e.sender.user, senderDevice: e.sender.device, receivedAt: now });
      } catch (err) {
        const code = isCryptoError(err) ? err.code : ((err as { code?: string }).code ?? (err instanceof Error ? err.name : 'error'));
        const baseKey = prekeyBaseKey(e.envelope);
        failures.push({ id: `${e.seq}`, sender: e.sender.user, senderDevice: e.sender.device, seq: e.seq, error: String(code), at: now, ...(baseKey ? { baseKey } : {}) });
      }
    }
    // Sessions a report dropped: what we had sent on them goes again, to that user (resend.ts).
    const logs = new Map<string, readonly SentEntry[]>();
    const resend: OutboxRow[] = [];
    for (const [addr, { user, dropped }] of reported) {
      const { resend: again, rest } = takeDropped(await sentLog(ctx, addr), dropped);
      if (!again.length) continue;
      logs.set(addr, rest);
      resend.push(...resendRows(ctx, user, again));
    }
    const result: ApplyResult = { touched: new Set(), added: [], after: resend.length ? [{ kind: 'drain' }] : [] };
    // 'outbox': a merged group state to pass on is queued with the message that taught it (apply.ts).
    await ctx.store.write(['meta', 'sessions', 'prekeys', 'messages', 'conversations', 'seen', 'failures', 'outbox'], async (tx) => {
      for (const [addr, rec] of records) await tx.put('sessions', { address: addr, record: encodeDeviceSessions(rec) });
      for (const id of usedPrekeys) await tx.delete('prekeys', id);
      for (const m of incoming) await applyContent(ctx, tx, m, result);
      for (const f of failures) await tx.put('failures', f);
      for (const [addr, log] of logs) await putLog(tx, addr, log);
      for (const row of resend) await tx.put('outbox', row);
      await tx.put('meta', { key: 'cursor', value: cursor, at: fresh.at(-1)?.timestamp ?? at });
    });
    for (const [addr, rec] of records) ctx.sessions.set(addr, rec);
    for (const [addr, log] of logs) commitLog(ctx, addr, log);
    for (const id of usedPrekeys) ctx.prekeys.delete(id);
    return { ...result, cursor, failures };
  });
}

const heldKeys = (r: DeviceSessions): string[] => [r.active, ...r.inactive].filter((s): s is Session => s !== null).map((s) => toHex(s.baseKey));

/**
 * A repair request names the sessions its sender refused (`refused`, base keys): §8 rule 7 on the
 * record it decrypted with, `carrier` the session it came on. Anything else leaves the record as is.
 */
function applyReport(record: DeviceSessions, content: Content, carrier: Uint8Array): DeviceSessions {
  if (content.body.type !== 'repair' || !content.body.refused?.length) return record;
  const keys = content.body.refused.flatMap((k) => {
    try {
      const b = fromB64(k);
      return b.length === 32 ? [b] : [];
    } catch {
      return [];
    }
  });
  return keys.length ? dropRefused(record, keys, carrier) : record;
}

/** The base key (b64) of an envelope that is a prekey message, or null. */
function prekeyBaseKey(envelope: string): string | null {
  try {
    const m = decodeDeviceMessage(fromB64(envelope));
    return m.kind === MessageKind.prekey ? toB64(m.prekey.baseKey) : null;
  } catch {
    return null;
  }
}

/**
 * After a failure: start a fresh session with the sender device from a new bundle, so our next
 * message to it (the repair request) is a prekey message that resets its side too.
 */
export async function restartSession(ctx: Ctx, user: string, deviceB64: string): Promise<boolean> {
  return ctx.lock(async () => {
    const me = ctx.requireMe();
    const theirs = await senderDevice(ctx, user, deviceB64).catch(() => null);
    if (!theirs) return false;
    const got = await ctx.api.bundles(user, [theirs.deviceId]);
    const b = got.bundles.find((x) => equalBytes(x.deviceId, theirs.deviceId));
    if (!b) return false;
    const bundle = decodeBundle(b.bundle);
    verifyBundle(bundle, theirs);
    const addr = address(user, theirs.deviceId);
    const record = startSession(await ctx.session(addr), me.device, theirs, bundle, ctx.rng);
    await ctx.store.write(['sessions'], (tx) => tx.put('sessions', { address: addr, record: encodeDeviceSessions(record) }));
    ctx.sessions.set(addr, record);
    return true;
  });
}

/**
 * Receiving. Envelopes arrive in sequence order (a catch-up page, or live from the socket).
 * For a batch: decrypt each with the sender device's session (sender from its verified list),
 * decode, then commit in ONE transaction the new session records, the consumed one-time
 * prekeys, every applied message and the cursor — and only then acknowledge to the relay. A
 * crash before the commit re-receives the batch from the relay; after it, the cursor skips it.
 *
 * An envelope that cannot be decrypted (or decoded) is recorded in `failures`, not silently
 * dropped; the sender device gets a fresh session from us and a repair request, so the next
 * messages decrypt again.
 */
import {
  decodeBundle,
  type DeviceSessions,
  encodeDeviceSessions,
  equalBytes,
  fanoutDecrypt,
  findDevice,
  isCryptoError,
  publicPart,
  startSession,
  verifyBundle,
} from '../../crypto/index.ts';
import { fromB64 } from './b64.ts';
import { type After, applyContent, type ApplyResult, type Incoming } from './apply.ts';
import { address, type Ctx } from './context.ts';
import { deviceList } from './directory.ts';
import type { WireEnvelope } from './net/api.ts';
import { decodeContent } from './protocol/content.ts';
import type { FailureRow, MessageRow } from './store/schema.ts';

export interface BatchResult {
  readonly added: MessageRow[];
  readonly touched: Set<string>;
  readonly after: After[];
  /** Highest seq committed (the caller acknowledges up to it). */
  readonly cursor: number;
  readonly failures: FailureRow[];
}

export async function cursorOf(ctx: Ctx): Promise<number> {
  return ((await ctx.store.read(['meta'], (tx) => tx.get('meta', 'cursor')))?.value as number | undefined) ?? 0;
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
    const start = await cursorOf(ctx);
    const fresh = envelopes.filter((e) => e.seq > start).sort((a, b) => a.seq - b.seq);
    const records = new Map<string, DeviceSessions>();
    const usedPrekeys: string[] = [];
    const incoming: Incoming[] = [];
    const failures: FailureRow[] = [];
    const now = ctx.now();
    let cursor = start;
    for (const e of fresh) {
      cursor = e.seq;
      try {
        const theirs = await senderDevice(ctx, e.sender.user, e.sender.device);
        if (!theirs) throw Object.assign(new Error('sender device is not in its user’s list'), { code: 'unknown_device' });
        const addr = address(e.sender.user, theirs.deviceId);
        const record = records.get(addr) ?? (await ctx.session(addr));
        const r = fanoutDecrypt(record, fromB64(e.envelope), fromB64(e.payload), me.device, theirs, ctx.lookupPrekey, ctx.rng);
        const content = decodeContent(r.plaintext);
        records.set(addr, r.record);
        if (r.used?.oneTimePrekeyId != null) usedPrekeys.push(`2/${r.used.oneTimePrekeyId}`);
        if (r.used?.pqOneTimePrekeyId != null) usedPrekeys.push(`3/${r.used.pqOneTimePrekeyId}`);
        incoming.push({ content, sender: e.sender.user, senderDevice: e.sender.device, receivedAt: now });
      } catch (err) {
        const code = isCryptoError(err) ? err.code : ((err as { code?: string }).code ?? (err instanceof Error ? err.name : 'error'));
        failures.push({ id: `${e.seq}`, sender: e.sender.user, senderDevice: e.sender.device, seq: e.seq, error: String(code), at: now });
      }
    }
    const result: ApplyResult = { touched: new Set(), added: [], after: [] };
    // 'outbox': a merged group state to pass on is queued with the message that taught it (apply.ts).
    await ctx.store.write(['meta', 'sessions', 'prekeys', 'messages', 'conversations', 'seen', 'failures', 'outbox'], async (tx) => {
      for (const [addr, rec] of records) await tx.put('sessions', { address: addr, record: encodeDeviceSessions(rec) });
      for (const id of usedPrekeys) await tx.delete('prekeys', id);
      for (const m of incoming) await applyContent(ctx, tx, m, result);
      for (const f of failures) await tx.put('failures', f);
      await tx.put('meta', { key: 'cursor', value: cursor });
    });
    for (const [addr, rec] of records) ctx.sessions.set(addr, rec);
    for (const id of usedPrekeys) ctx.prekeys.delete(id);
    return { ...result, cursor, failures };
  });
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

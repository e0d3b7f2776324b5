/**
 * Sending. A message is written to the outbox first (with its message row, in one
 * transaction), so it survives restarts and offline periods. The outbox drains oldest first:
 *
 *  1. seal: encrypt once for every current device of the recipients and our own other devices
 *     (starting sessions from fetched bundles where needed) and store the sealed submission
 *     together with the advanced session records — so a retry resends the very same bytes and
 *     the ratchet never advances twice for one message;
 *  2. submit with the message id as the relay's idempotency key: a retry after a lost
 *     response is answered with the first result, never delivered twice;
 *  3. on 409 device_mismatch: refresh the lists of the named users, forget sessions with
 *     devices that are gone, unseal and go again (bounded);
 *  4. on a transient failure (offline, 5xx, 429): back off (1 s doubling to 60 s) and keep it.
 *
 * A listed device the relay has no bundle for (`unavailable`: not online yet, say approved with a
 * link code and never started) is not sealed for, and the relay does not require it (its rule:
 * every *reachable* device, relay/README.md); it learns what was sent before it came online from
 * the history its link brings. Should the relay still name such a device missing (its keys went
 * up between our bundle fetch and the submission, or a relay that requires every listed device),
 * the message backs off and is sealed again later — never marked failed for it, nor re-sealed in
 * a tight loop. A recipient none of whose devices is online yet (409 not_reachable) is waited for.
 *
 * Sealed for nobody (a message for our own devices only, and no other in our view): the relay
 * refuses a submission without envelopes, so its 409 cannot tell us of a device our cached lists
 * lack (say, one just added). That is concluded only on lists fetched from the relay then. Our
 * own devices without prekeys yet are not waited for (as the relay would not require them: a
 * device never brought online would hold the outbox for good); another user's are.
 */
import {
  activeDevices,
  decodeBundle,
  encodeDeviceSessions,
  equalBytes,
  fanoutEncrypt,
  MessageKind,
  publicPart,
  startSession,
  verifyBundle,
  type DevicePublic,
  type DeviceSessions,
} from '../../crypto/index.ts';
import { toB64 } from './b64.ts';
import { address, type Ctx } from './context.ts';
import { recordFailure } from './changes.ts';
import { changeFailure, sendFailure } from './explain.ts';
import { decodeContent } from './protocol/content.ts';
import { deviceList } from './directory.ts';
import { RelayError } from './net/api.ts';
import { afterSeal, commitLog, keptAt, putLog, type SentEntry, sentLog } from './resend.ts';
import type { OutboxRow, SealedSubmission } from './store/schema.ts';

const MAX_REPAIRS = 3;
const MAX_BACKOFF_MS = 60_000;

interface Target {
  readonly user: string;
  readonly device: DevicePublic;
}

/**
 * Every device the message must reach: the recipients' active devices and our own other ones.
 * `refresh`: users whose lists are fetched again; with `fromRelay`, fetched or fail (never cached).
 */
async function targetsFor(ctx: Ctx, to: readonly string[], refresh: ReadonlySet<string>, fromRelay: boolean): Promise<Target[]> {
  const me = ctx.requireMe();
  const out: Target[] = [];
  for (const user of new Set([...to, me.username])) {
    const list = await deviceList(ctx, user, { refresh: refresh.has(user), fromRelay: fromRelay && refresh.has(user) });
    for (const d of activeDevices(list)) {
      if (user === me.username && equalBytes(d.deviceId, me.device.deviceId)) continue;
      out.push({ user, device: publicPart(d) });
    }
  }
  return out;
}

/** Starts sessions with the targets that have none, one bundle request per user. */
async function ensureSessions(ctx: Ctx, targets: readonly Target[]): Promise<Map<string, DeviceSessions>> {
  const me = ctx.requireMe();
  const records = new Map<string, DeviceSessions>();
  const missing = new Map<string, Target[]>();
  for (const t of targets) {
    const addr = address(t.user, t.device.deviceId);
    const r = await ctx.session(addr);
    if (r.active?.sending) records.set(addr, r);
    else missing.set(t.user, [...(missing.get(t.user) ?? []), t]);
  }
  for (const [user, ts] of missing) {
    const got = await ctx.api.bundles(user, ts.map((t) => t.device.deviceId));
    for (const t of ts) {
      const b = got.bundles.find((x) => equalBytes(x.deviceId, t.device.deviceId));
      if (!b) continue; // not online yet (no prekeys): the relay does not require it either
      const bundle = decodeBundle(b.bundle);
      verifyBundle(bundle, t.device);
      const addr = address(t.user, t.device.deviceId);
      records.set(addr, startSession(await ctx.session(addr), me.device, t.device, bundle, ctx.rng));
    }
  }
  return records;
}

/** Seals `row` for its targets; `unreachable`: those with no prekeys on the relay yet (not sealed for). */
async function seal(ctx: Ctx, row: OutboxRow, refresh: ReadonlySet<string>, fromRelay: boolean): Promise<{ row: OutboxRow; unreachable: Target[] }> {
  return ctx.lock(async () => {
    const targets = await targetsFor(ctx, row.to, refresh, fromRelay);
    const records = await ensureSessions(ctx, targets);
    const reachable = targets.filter((t) => records.has(address(t.user, t.device.deviceId)));
    const out = fanoutEncrypt(
      row.content,
      reachable.map((t) => ({ address: t, record: records.get(address(t.user, t.device.deviceId))! })),
      ctx.rng,
    );
    const sealed: SealedSubmission = {
      payload: out.payload,
      envelopes: out.messages.map((m) => ({ user: m.address.user, device: m.address.device.deviceId, body: m.message })),
    };
    const next: OutboxRow = { ...row, sealed };
    // What goes as a prekey message is kept until its session is confirmed, to send again if the peer refused it (resend.ts).
    const logs = new Map<string, SentEntry[]>();
    const at = out.messages.some((m) => m.message[1] === MessageKind.prekey) ? keptAt(row.content) : null;
    for (const m of out.messages) {
      const addr = address(m.address.user, m.address.device.deviceId);
      const log = afterSeal(await sentLog(ctx, addr), m.record, row.content, at, m.message[1] === MessageKind.prekey);
      if (log) logs.set(addr, log);
    }
    await ctx.store.write(logs.size ? ['sessions', 'outbox', 'meta'] : ['sessions', 'outbox'], async (tx) => {
      for (const m of out.messages) await tx.put('sessions', { address: address(m.address.user, m.address.device.deviceId), record: encodeDeviceSessions(m.record) });
      for (const [addr, log] of logs) await putLog(tx, addr, log);
      await tx.put('outbox', next);
    });
    for (const m of out.messages) ctx.sessions.set(address(m.address.user, m.address.device.deviceId), m.record);
    for (const [addr, log] of logs) commitLog(ctx, addr, log);
    return { row: next, unreachable: targets.filter((t) => !records.has(address(t.user, t.device.deviceId))) };
  });
}

export type SendOutcome = 'sent' | 'retry' | 'failed';

async function finish(ctx: Ctx, row: OutboxRow, status: 'sent' | 'failed', error: string | null): Promise<void> {
  const me = ctx.requireMe();
  const key = `${me.username}/${row.id}`;
  let conversation: string | null = null;
  let id = row.id;
  let change: Awaited<ReturnType<typeof recordFailure>> = null;
  await ctx.store.write(['outbox', 'messages'], async (tx) => {
    await tx.delete('outbox', row.id);
    // A reaction, edit or delete refused for good stays on its message, to retry or discard (changes.ts).
    if (status === 'failed') change = await recordFailure(tx, row, error ?? 'unknown', ctx.now());
    if (change) {
      ({ conversation, id } = change);
      return;
    }
    const m = await tx.get('messages', key);
    if (m && m.status === 'pending') {
      conversation = m.conversation;
      // The relay's code stays with a refused message, so that it can be told why later too (not only in the toast).
      await tx.put('messages', status === 'failed' && error ? { ...m, status, failedCode: error } : { ...m, status });
    }
  });
  const c = change as Awaited<ReturnType<typeof recordFailure>>;
  // The code stays in the event (for logs and tests); the person reads what they can do about it.
  // A lost typing signal or receipt is nothing to act on: telling of it would only alarm. Nor is
  // a change a newer one of the same kind replaced (that one goes out, or fails and is told).
  if (error && c) {
    if (c.tell) ctx.emit({ type: 'error', code: error, message: changeFailure(c.kind, error) });
  } else if (error && !isSignal(row)) ctx.emit({ type: 'error', code: error, message: sendFailure(error) });
  if (conversation) ctx.emit({ type: 'message-updated', conversation, id });
}

/** One attempt at one outbox row. */
export async function sendOne(ctx: Ctx, initial: OutboxRow): Promise<SendOutcome> {
  const me = ctx.requireMe();
  let row = initial;
  const refresh = new Set<string>();
  /** The lists were fetched from the relay for this attempt (`refresh` holds every user). */
  let fetched = false;
  /** Targets of the current seal that had no bundle (a row sealed before this attempt: none known). */
  let unreachable: Target[] = [];
  for (let round = 0; round <= MAX_REPAIRS; round++) {
    try {
      if (!row.sealed) ({ row, unreachable } = await seal(ctx, row, refresh, fetched));
      if (row.sealed!.envelopes.length === 0) {
        if (!fetched) {
          // Our cached view found nobody: seal again on lists fetched now (see the top of this file).
          fetched = true;
          for (const u of [...row.to, me.username]) refresh.add(u);
          row = { ...row, sealed: null };
          continue;
        }
        const others = unreachable.filter((t) => t.user !== me.username).length;
        if (others) {
          await backOff(ctx, row, `${others} device(s) to reach have no keys on the relay yet`);
          return 'retry';
        }
        // Nobody else to reach: our own message on a single device, or with our other devices
        // not online yet (the relay would not require them either).
        await finish(ctx, row, 'sent', null);
        return 'sent';
      }
      await ctx.api.submit({ clientMessageId: row.id, to: row.to, payload: row.sealed!.payload, envelopes: row.sealed!.envelopes });
      await finish(ctx, row, 'sent', null);
      return 'sent';
    } catch (e) {
      if (e instanceof RelayError && e.code === 'not_reachable') {
        // A recipient with no device online yet: not a failure, it may come online.
        await backOff(ctx, row, e.message);
        return 'retry';
      }
      if (e instanceof RelayError && e.code === 'device_mismatch') {
        const body = e.body as { missing?: { user: string; devices: string[] }[]; extra?: { user: string; devices: string[] }[] };
        const noBundle = new Set(unreachable.map((t) => `${t.user}/${toB64(t.device.deviceId)}`));
        const missing = (body.missing ?? []).flatMap((m) => m.devices.map((d) => `${m.user}/${d}`));
        // Only devices we just found without a bundle: sealing again now would find none again.
        // Its keys are going up this moment (or the relay requires every listed device): later.
        const waitForKeys = missing.length > 0 && !(body.extra ?? []).length && missing.every((k) => noBundle.has(k));
        if (waitForKeys || round >= MAX_REPAIRS) {
          // Never failed for it: a device mismatch is repaired by sealing again, sooner or later.
          // Unsealed: the relay stored nothing (a 409), and the next attempt must seal anew.
          await backOff(ctx, { ...row, sealed: null }, waitForKeys ? `${missing.length} device(s) to reach have no keys on the relay yet` : 'device lists kept changing');
          return 'retry';
        }
        for (const m of body.missing ?? []) refresh.add(m.user);
        for (const x of body.extra ?? []) refresh.add(x.user);
        row = { ...row, sealed: null };
        continue;
      }
      // Our token is dead (this device was removed): the message is not at fault, and marking it
      // failed only put an "unauthorized" error in front of the person. It stays in the outbox;
      // the engine stops draining and the app shows the removed-device screen instead.
      if (e instanceof RelayError && e.status === 401 && ctx.api.revoked) return 'retry';
      if (e instanceof RelayError && !e.transient) {
        await finish(ctx, row, 'failed', e.code);
        return 'failed';
      }
      await backOff(ctx, row, e instanceof Error ? e.message : String(e));
      return 'retry';
    }
  }
  // Unreachable: every round either returns or continues after a mismatch, and the last one returns.
  await backOff(ctx, row, 'device lists kept changing');
  return 'retry';
}

async function backOff(ctx: Ctx, row: OutboxRow, error: string): Promise<void> {
  const attempts = row.attempts + 1;
  const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(attempts - 1, 6));
  const next = { ...row, attempts, nextAttemptAt: ctx.now() + delay, lastError: error.slice(0, 200) };
  await ctx.store.write(['outbox'], (tx) => tx.put('outbox', next));
}

/** What a person wrote (not receipts, typing, repairs or device bookkeeping): what "waiting to send" counts. */
const WRITTEN = new Set(['text', 'attachment', 'reaction', 'edit', 'delete', 'group']);

export function writtenByUser(row: OutboxRow): boolean {
  try {
    const b = decodeContent(row.content).body;
    // A merged group state passed on, or a removal notice (apply.ts), is the engine's, not something the person wrote.
    return WRITTEN.has(b.type) && !(b.type === 'group' && (b.action === 'merge' || b.action === 'removed-notice'));
  } catch {
    return false;
  }
}

function isSignal(row: OutboxRow): boolean {
  try {
    const t = decodeContent(row.content).body.type;
    return t === 'typing' || t === 'receipt';
  } catch {
    return false;
  }
}

/** Pending outbox rows, oldest first. */
export function pendingRows(ctx: Ctx): Promise<OutboxRow[]> {
  return ctx.store.read(['outbox'], (tx) => tx.getAll('outbox', { index: 'byCreated' }));
}

/**
 * Work that follows a committed receive batch and needs the network or the outbox: delivery
 * receipts, typing events, installing the account key on a newly linked device, history
 * export/import for a new device, and session repair after undecryptable envelopes.
 */
import { activeDevices } from '../../crypto/index.ts';
import { toB64 } from './b64.ts';
import * as account from './account.ts';
import type { After } from './apply.ts';
import { deviceList, takeVerified } from './directory.ts';
import type { Engine } from './engine.ts';
import { fetchHistory } from './history.ts';
import { restartSession } from './inbox.ts';
import { MAX_REFUSED } from './protocol/content.ts';
import type { FailureRow } from './store/schema.ts';

/** Failures that a new session cannot fix (a replay is just a replay). */
const NOT_REPAIRABLE = new Set(['duplicate_message', 'ContentError']);
const REPAIR_INTERVAL_MS = 60_000;
const lastRepair = new WeakMap<Engine, Map<string, number>>();

export async function applyAfter(engine: Engine, after: readonly After[], failures: readonly FailureRow[]): Promise<void> {
  const ctx = engine.ctx;
  const me = ctx.requireMe();
  let queued = false;
  for (const a of after) {
    try {
      switch (a.kind) {
        case 'receipt': {
          const ref = a.conversation.startsWith('group:') ? await engine.route(a.conversation).then((r) => r.ref).catch(() => null) : ({ t: 'dm', to: a.to } as const);
          if (!ref) break;
          await engine.enqueue([a.to], ref, { type: 'receipt', kind: 'delivered', targets: a.ids.map((id) => `${a.to}/${id}`) });
          queued = true;
          break;
        }
        case 'drain':
          queued = true;
          break;
        case 'typing':
          ctx.emit({ type: 'typing', conversation: a.conversation, user: a.user, typing: a.on });
          break;
        case 'verified':
          // Another of our devices compared safety numbers.
          await takeVerified(ctx, a.user, a.accountKey, a.verified);
          ctx.emit({ type: 'conversations' });
          break;
        case 'account-key': {
          if (me.account) break;
          const list = await deviceList(ctx, me.username, { refresh: true });
          const secret = account.accountSecretFor(ctx, list, a.secret);
          if (secret) {
            await account.setAccountSecret(ctx, secret);
            ctx.emit({ type: 'conversations' });
          }
          break;
        }
        case 'emit-device':
          ctx.emit({ type: 'device-added', deviceId: a.deviceId, name: a.name });
          break;
        case 'history-export': {
          // One device sends history to a device that joined by password: the first (by id)
          // of the others, so several online devices do not all upload it.
          if (a.forDevice === me.deviceB64) break;
          const list = await deviceList(ctx, me.username, { refresh: true });
          const others = activeDevices(list).map((d) => toB64(d.deviceId)).filter((d) => d !== a.forDevice).sort();
          if (others[0] === me.deviceB64) await engine.sendHistory(a.forDevice);
          break;
        }
        case 'history-import': {
          const body = a.content.body;
          if (body.type !== 'history') break;
          // No longer on its way, imported or not (a package that cannot be fetched or read does
          // not come again): the app stops saying it is, and early receipts (apply.ts) go.
          const n = await fetchHistory(ctx, body.attachment).finally(async () => {
            await ctx.store.write(['meta'], async (tx) => {
              await tx.delete('meta', 'historyDue');
              await tx.delete('meta', 'earlyReceipts');
            });
            ctx.emit({ type: 'conversations' });
          });
          ctx.emit({ type: 'history-imported', messages: n });
          break;
        }
      }
    } catch (e) {
      ctx.emit({ type: 'error', code: 'after_failed', message: `${a.kind}: ${e instanceof Error ? e.message : String(e)}` });
    }
  }
  await repair(engine, failures);
  if (queued) await engine.drainOutbox();
}

async function repair(engine: Engine, failures: readonly FailureRow[]): Promise<void> {
  const ctx = engine.ctx;
  const seen = lastRepair.get(engine) ?? new Map<string, number>();
  lastRepair.set(engine, seen);
  const bySender = new Map<string, FailureRow[]>();
  for (const f of failures) {
    if (NOT_REPAIRABLE.has(f.error)) continue;
    const k = `${f.sender}/${f.senderDevice}`;
    bySender.set(k, [...(bySender.get(k) ?? []), f]);
  }
  for (const [k, fs] of bySender) {
    const f = fs[0]!;
    if ((seen.get(k) ?? 0) > ctx.now() - REPAIR_INTERVAL_MS) continue;
    seen.set(k, ctx.now());
    ctx.emit({ type: 'error', code: 'undecryptable', message: `${fs.length} message(s) from ${f.sender} could not be decrypted; asked the sender's device to repair the session.` });
    try {
      if (f.sender === ctx.requireMe().username || (await restartSession(ctx, f.sender, f.senderDevice))) {
        // Sent on the session just started. It names the sessions whose prekey messages we refused,
        // so the sender drops them instead of keeping one by §8's tie-break (rule 7).
        const refused = [...new Set(fs.flatMap((x) => (x.baseKey ? [x.baseKey] : [])))].slice(-MAX_REFUSED);
        await engine.enqueue([f.sender], null, { type: 'repair', failed: fs.map((x) => x.seq).slice(0, 100), ...(refused.length ? { refused } : {}) });
      }
    } catch {
      // The sender's device is unreachable now; the next failure from it tries again.
    }
  }
}

/**
 * The relay refused this device's token (a 401 over HTTP, 4403 or 4401 on the socket). That
 * means one of two things, and only the account's signed device list tells them apart:
 *
 * - removed: the list marks this device removed (from another device, or logged out). Final: a
 *   removed device never returns to the list.
 * - signed out: the list still has it active, but its token no longer works — another session
 *   issued this device a new token (a new token replaces the previous one, relay/README.md), or
 *   the relay's data was restored from a backup. Signing in again with the account password
 *   issues it a new token (signIn below), and it carries on with its history and outbox intact.
 *
 * The list is public (no token needed) and verified as every list is (directory.ts: signature,
 * the pinned account key, no rollback): only a list signed with our account key that marks us
 * removed concludes removal. A relay out of reach concludes nothing; the engine asks again later.
 */
import { equalBytes, findDevice, isCryptoError } from '../../crypto/index.ts';
import { passwordLogin, relayMessage } from './account.ts';
import type { Ctx, IdentityRecord } from './context.ts';
import { deviceList } from './directory.ts';
import { RelayError } from './net/api.ts';
import { EngineError } from './types.ts';

/** Meta key: the device list marked this device removed (or it logged out). Final. */
export const REMOVED = 'removed';
/**
 * Meta key: the relay refused the token and the device is not known removed: `listed` once the
 * list showed it still active (the 'signed_out' state), false while that could not be checked.
 * Deleted, with the new token, by signIn.
 */
export const SIGNED_OUT = 'signedOut';
export interface SignedOutRecord {
  readonly at: number;
  readonly listed: boolean;
}

export type Verdict = 'removed' | 'signed_out' | 'unknown';

/** What the refusal means, by the account's current list (fetched now, not a cached copy). */
export async function verdict(ctx: Ctx): Promise<Verdict> {
  const me = ctx.requireMe();
  try {
    const list = await deviceList(ctx, me.username, { fromRelay: true });
    const entry = findDevice(list, me.device.deviceId);
    return entry && entry.removedAt === 0 ? 'signed_out' : 'removed';
  } catch (e) {
    if (e instanceof RelayError && e.transient) return 'unknown';
    // A list we cannot accept — older than ours, under another account key, without this device,
    // or none at all (a relay restored from a backup) — proves nothing against us: not removed.
    // Signing in says what is wrong, if anything is.
    return 'signed_out';
  }
}

/**
 * Signs this device in again: the password login (as account.login), then a new token for this
 * very device, issued with the session token and stored before anything else (the previous one
 * is dead). Returns 'removed' if the account's list no longer has the device active (nothing
 * stored then). A wrong password or an unreachable relay throws and changes nothing.
 */
export async function signIn(ctx: Ctx, password: string): Promise<'signed_in' | 'removed'> {
  const me = ctx.requireMe();
  try {
    const session = await passwordLogin(ctx, me.username, password);
    if (!(await activeOnRelay(ctx, session.sessionToken))) return 'removed';
    const { token } = await ctx.api.issueToken(me.device.deviceId, session.sessionToken);
    await ctx.store.write(['meta'], async (tx) => {
      const id = (await tx.get('meta', 'identity'))!.value as IdentityRecord;
      await tx.put('meta', { key: 'identity', value: { ...id, token } satisfies IdentityRecord });
      await tx.delete('meta', SIGNED_OUT);
    });
    ctx.api.token = token;
    return 'signed_in';
  } catch (e) {
    if ((e as { code?: unknown }).code === 'login_failed') throw new EngineError('login_failed', 'Wrong password. Try again.');
    return relayMessage(e);
  }
}

/**
 * Whether the relay's list has this device active. A list older than the one we hold (the
 * relay's data restored from a backup) goes back up first, with the session token: the relay
 * takes a list whose version went up, signed with the account key, and ours is just that.
 */
async function activeOnRelay(ctx: Ctx, sessionToken: string): Promise<boolean> {
  const me = ctx.requireMe();
  let list;
  try {
    list = await deviceList(ctx, me.username, { fromRelay: true });
  } catch (e) {
    // Without a list of our own to put back, the relay's answer stands (the token request fails).
    const own = (await ctx.store.read(['meta'], (tx) => tx.get('meta', 'ownList')))?.value as Uint8Array | undefined;
    if (!own || !(isCryptoError(e, 'device_list_rollback') || isCryptoError(e, 'identity_mismatch'))) throw e;
    await ctx.api.putDeviceList(own, sessionToken);
    list = await deviceList(ctx, me.username, { fromRelay: true });
  }
  return list.devices.some((d) => d.removedAt === 0 && equalBytes(d.deviceId, me.device.deviceId));
}

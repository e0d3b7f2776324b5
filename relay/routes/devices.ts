/**
 * Devices: the account's signed device list (crypto/'s format) and per-device tokens.
 *
 *   PUT  /v1/account/devices                   { list }  -> { version }     (account session or device)
 *   POST /v1/account/devices/:deviceId/token             -> { token }       (account session or device)
 *   GET  /v1/users/:username/devices                     -> { username, version, list }   (public)
 *   POST /v1/devices/claim                     { claim } -> { username, token } (signed by the device key),
 *                                                          or 202 { status: 'pending' } until a list names it
 *
 * The relay verifies every list with crypto/'s verifyDeviceList: the account signature, the
 * user id (= normalised username), the account key pinned by the account's first list, and
 * against the stored list: version only up, no device disappears, no removed device returns.
 * It cannot forge a list (it has no account key); it only refuses bad ones early so that
 * clients are not handed garbage.
 *
 * A device gets a token only if it is active in the account's current list and the caller
 * proved account ownership: an OPAQUE login (account session) or an authenticated device of
 * the same account. A new token replaces the old one. Removing a device from the list stops
 * its token at once, drops its prekeys, inbox and push subscription, and closes its sockets in
 * every process.
 *
 * Linking (crypto/PROTOCOL.md §4.1): a device an existing device just listed has no way to
 * reach its account's credentials, so it claims its first token with a claim signed by its own
 * device key. Only once: a device that already holds a token cannot be claimed again, so a
 * replayed claim cannot take a device over. The new device polls until its account lists it, so
 * "not listed yet" is an ordinary answer (202), not an error a browser would log on every poll.
 */
import { CryptoError, decodeDeviceClaim, decodeDeviceList, type DeviceList, devicePublic, equalBytes, verifyDeviceClaim, verifyDeviceList } from '../../crypto/index.ts';
import { and, eq, inArray, isNull } from 'drizzle-orm';
import { Hono } from 'hono';
import * as v from 'valibot';
import { isUniqueViolation, type Tx } from '../db/client.ts';
import { accounts, deviceLists, devices, inbox, prekeys, pushSubscriptions } from '../db/schema.ts';
import { b64Bytes, deviceIdB64, toB64 } from '../encoding.ts';
import { ApiError, notFound } from '../errors.ts';
import { forgetDevices } from './messages.ts';
import { type RelayEnv, requireAccount } from '../middleware/auth.ts';
import type { RelayServices } from '../services.ts';
import { DEVICE_TOKEN_PREFIX, newToken } from '../tokens.ts';
import { requireUsername } from '../usernames.ts';
import { valid } from '../validate.ts';

/** Clock difference tolerated between a claiming device and the relay. */
const CLAIM_WINDOW_MS = 5 * 60_000;

/** A list of 256 devices is ~40 KB. */
const MAX_LIST_BYTES = 48 * 1024;

/**
 * A claim timed too far from the relay's clock: as a fresh claim is signed for every poll, the
 * claiming device's clock is off. The body carries the relay's time and the window, so that the
 * device can tell its user by how much.
 */
function claimExpired(timestamp: number, now: number): ApiError {
  const off = Math.round((timestamp - now) / 1000);
  return new ApiError(
    401,
    'claim_expired',
    `the claim's time is ${Math.abs(off)} s ${off < 0 ? 'behind' : 'ahead of'} the relay's clock, and at most ${CLAIM_WINDOW_MS / 1000} s either way is accepted: check the device's clock`,
    { relayTime: now, windowMs: CLAIM_WINDOW_MS },
  );
}

function listError(e: unknown): never {
  if (e instanceof CryptoError) {
    if (e.code === 'device_list_rollback') throw new ApiError(409, 'device_list_rollback', 'device list version is older than the stored one');
    throw new ApiError(400, 'invalid_device_list', `device list rejected: ${e.code}`);
  }
  throw e;
}

/** Stores a verified list and syncs the devices table; returns the rows of devices just removed. */
async function storeList(tx: Tx, accountId: number, list: DeviceList, bytes: Uint8Array, now: number): Promise<number[]> {
  const existing = await tx.select({ id: devices.id, deviceId: devices.deviceId, active: devices.active }).from(devices).where(eq(devices.accountId, accountId));
  const removed: number[] = [];
  for (const d of list.devices) {
    const row = existing.find((r) => equalBytes(r.deviceId, d.deviceId));
    const active = d.removedAt === 0;
    if (!row) {
      // A device belongs to one account (the unique device_id index settles a race between two).
      const [other] = await tx.select({ id: devices.id }).from(devices).where(eq(devices.deviceId, d.deviceId));
      if (other) throw new ApiError(409, 'device_taken', 'a device in this list is listed by another account', { device: toB64(d.deviceId) });
      await tx.insert(devices).values({ accountId, deviceId: d.deviceId, signingKey: d.signingKey, dhKey: d.dhKey, active, createdAt: now });
    } else if (row.active && !active) {
      await tx.update(devices).set({ active: false, tokenHash: null }).where(eq(devices.id, row.id));
      removed.push(row.id);
    }
  }
  if (removed.length) {
    await tx.delete(prekeys).where(inArray(prekeys.device, removed));
    await tx.delete(inbox).where(inArray(inbox.device, removed));
    // The row stays (it pins the device id), so the FK cascade does not fire: a removed device's
    // push endpoint is a capability nobody should keep.
    await tx.delete(pushSubscriptions).where(inArray(pushSubscriptions.device, removed));
  }
  await tx
    .insert(deviceLists)
    .values({ accountId, version: list.version, bytes, updatedAt: now })
    .onConflictDoUpdate({ target: deviceLists.accountId, set: { version: list.version, bytes, updatedAt: now } });
  return removed;
}

export function deviceRoutes(s: RelayServices) {
  const { db } = s;
  return new Hono<RelayEnv>()
    .put('/account/devices', requireAccount(s), valid('json', v.object({ list: b64Bytes(1, MAX_LIST_BYTES) })), async (c) => {
      const { list: bytes } = c.req.valid('json');
      const { accountId } = c.get('auth');
      const { version, removed } = await db.transaction(async (tx) => {
        // The account row lock serialises list updates of one account.
        const [acct] = await tx.select().from(accounts).where(eq(accounts.id, accountId)).for('update');
        if (!acct) throw notFound('unknown_user', 'account not found');
        const [prev] = await tx.select().from(deviceLists).where(eq(deviceLists.accountId, accountId));
        let list: DeviceList;
        try {
          list = verifyDeviceList(bytes, {
            userId: acct.username,
            ...(acct.accountKey ? { pinnedAccountKey: acct.accountKey } : {}),
            ...(prev ? { previous: { list: decodeDeviceList(prev.bytes), bytes: prev.bytes } } : {}),
          });
        } catch (e) {
          listError(e);
        }
        if (prev && prev.version === list.version) return { version: list.version, removed: [] as number[] };
        if (!acct.accountKey) await tx.update(accounts).set({ accountKey: list.accountKey }).where(eq(accounts.id, accountId));
        return { version: list.version, removed: await storeList(tx, accountId, list, bytes, s.now()) };
      }).catch((e: unknown) => {
        // Another account listed one of these devices between storeList's check and its insert.
        if (isUniqueViolation(e)) throw new ApiError(409, 'device_taken', 'a device in this list is listed by another account');
        throw e;
      });
      forgetDevices(s, c.get('auth').username);
      await s.hub.revoke(removed);
      s.log('info', 'device list stored', { account: accountId, version, removed: removed.length });
      return c.json({ version });
    })
    .post('/account/devices/:deviceId/token', requireAccount(s), valid('param', v.object({ deviceId: deviceIdB64 })), async (c) => {
      const { deviceId } = c.req.valid('param');
      const { accountId } = c.get('auth');
      const [row] = await db
        .select({ id: devices.id, active: devices.active, tokenHash: devices.tokenHash })
        .from(devices)
        .where(and(eq(devices.accountId, accountId), eq(devices.deviceId, deviceId)));
      if (!row || !row.active) throw new ApiError(403, 'device_not_listed', 'the device is not active in the account\u2019s current device list');
      const { token, hash } = newToken(DEVICE_TOKEN_PREFIX);
      const updated = await db
        .update(devices)
        .set({ tokenHash: hash })
        .where(and(eq(devices.id, row.id), eq(devices.active, true)))
        .returning({ id: devices.id });
      if (updated.length === 0) throw new ApiError(403, 'device_not_listed', 'the device was removed');
      // A replaced token ends the sessions opened with the old one.
      if (row.tokenHash) await s.hub.revoke([row.id]);
      return c.json({ token });
    })
    .post('/devices/claim', valid('json', v.object({ claim: b64Bytes(89, 89) })), async (c) => {
      let claim;
      try {
        claim = decodeDeviceClaim(c.req.valid('json').claim);
      } catch {
        throw new ApiError(400, 'invalid_claim', 'the device claim does not decode');
      }
      const now = s.now();
      // Checked on its own, before the lookup and the signature, so that a device whose clock is
      // off hears so on its first poll, before anyone approves it, in words it can act on (the
      // relay's time is no secret). verifyDeviceClaim checks the same window (as invalid_argument,
      // crypto/PROTOCOL.md §4.1): past this point only the signature can fail it.
      if (Math.abs(claim.timestamp - now) > CLAIM_WINDOW_MS) throw claimExpired(claim.timestamp, now);
      const rows = await db
        .select({ id: devices.id, signingKey: devices.signingKey, dhKey: devices.dhKey, username: accounts.username })
        .from(devices)
        .innerJoin(accounts, eq(accounts.id, devices.accountId))
        .where(and(eq(devices.deviceId, claim.deviceId), eq(devices.active, true)));
      // Device ids derive from the keys, and one account at most may list a device id (the
      // devices_device_id index): never pick between two.
      if (rows.length > 1) throw new ApiError(409, 'device_taken', 'this device is listed by more than one account');
      const [row] = rows;
      // Not listed yet (the existing device has not approved the code), or never will be: the
      // device cannot tell, and keeps polling until its own deadline.
      if (!row) return c.json({ status: 'pending' }, 202);
      try {
        verifyDeviceClaim(claim, devicePublic(claim.deviceId, row.signingKey, row.dhKey), now, CLAIM_WINDOW_MS);
      } catch (e) {
        if (!(e instanceof CryptoError)) throw e;
        throw new ApiError(401, 'invalid_claim', 'the claim is not signed by the listed device key');
      }
      const { token, hash } = newToken(DEVICE_TOKEN_PREFIX);
      const updated = await db
        .update(devices)
        .set({ tokenHash: hash })
        .where(and(eq(devices.id, row.id), eq(devices.active, true), isNull(devices.tokenHash)))
        .returning({ id: devices.id });
      if (updated.length === 0) throw new ApiError(409, 'already_claimed', 'this device already has a credential');
      s.log('info', 'device claimed', { device: row.id });
      return c.json({ username: row.username, token });
    })
    .get('/users/:username/devices', async (c) => {
      const name = requireUsername(c.req.param('username'));
      const [row] = await db
        .select({ version: deviceLists.version, bytes: deviceLists.bytes })
        .from(accounts)
        .leftJoin(deviceLists, eq(deviceLists.accountId, accounts.id))
        .where(eq(accounts.username, name));
      if (!row) throw notFound('unknown_user', 'no such user');
      if (row.version === null || !row.bytes) throw notFound('no_device_list', 'the user has not published a device list');
      return c.json({ username: name, version: row.version, list: toB64(row.bytes) });
    });
}

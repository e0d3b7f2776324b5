/**
 * Key directory: signed public prekeys (crypto/'s encodePrekey bytes) and bundles.
 *
 *   PUT /v1/keys                    { prekeys: [b64...] } -> counts          (device)
 *   GET /v1/keys/count                                    -> counts          (device)
 *   GET /v1/users/:username/bundles[?devices=id,id]       -> { username, version, bundles, unavailable }  (device)
 *
 * counts = { signed: bool, pqLastResort: bool, oneTime: n, pqOneTime: n }
 *
 * A device is reachable (messages.ts requires an envelope for it) once the relay holds its signed
 * and its last-resort PQ prekey: from then on a bundle can always be made for it.
 *
 * Every uploaded prekey's signature is checked against the uploading device's signing key from
 * its account's verified device list. A signed prekey (kind 1) and a last-resort PQ prekey
 * (kind 4) replace the current one of their kind; one-time keys (kinds 2, 3) are added (an id
 * already stored is ignored), up to maxOneTimePrekeys per kind.
 *
 * A bundle takes, per active device, one one-time X25519 prekey and one one-time PQ prekey.
 * Each is removed with DELETE ... WHERE key IN (SELECT ... LIMIT 1 FOR UPDATE SKIP LOCKED)
 * RETURNING: concurrent fetches each lock a different row, so no key is handed out twice. With
 * no one-time PQ key left the last-resort PQ key is used (it is not deleted), and with no
 * one-time X25519 key left the bundle has none. Fetches are rate-limited per requesting device
 * and per (requesting account, target user), since each one consumes keys.
 */
import {
  CryptoError,
  decodePrekey,
  encodeBundle,
  encodePrekey,
  PrekeyKind,
  type PublicPrekey,
  verifyPrekey,
} from '../../crypto/index.ts';
import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import { Hono } from 'hono';
import * as v from 'valibot';
import { bytesOf, type Db, rowsOf, type Tx } from '../db/client.ts';
import { accounts, deviceLists, devices, prekeys } from '../db/schema.ts';
import { b64Bytes, fromB64, toB64 } from '../encoding.ts';
import { ApiError, notFound } from '../errors.ts';
import { deviceAuth, lockActiveDevice, type RelayEnv, requireDevice } from '../middleware/auth.ts';
import type { RelayServices } from '../services.ts';
import { forgetDevices } from './messages.ts';
import { requireUsername } from '../usernames.ts';
import { limitBody, valid } from '../validate.ts';

/** An X-Wing prekey encodes to 1,286 bytes; X25519 ones to 102. */
const MAX_PREKEY_BYTES = 1300;

async function counts(db: Db | Tx, device: number) {
  const rows = await db
    .select({ kind: prekeys.kind, n: sql<number>`count(*)::int` })
    .from(prekeys)
    .where(eq(prekeys.device, device))
    .groupBy(prekeys.kind);
  const n = (k: number) => Number(rows.find((r) => r.kind === k)?.n ?? 0);
  return { signed: n(PrekeyKind.signed) > 0, pqLastResort: n(PrekeyKind.pqLastResort) > 0, oneTime: n(PrekeyKind.oneTime), pqOneTime: n(PrekeyKind.pqOneTime) };
}

/** Removes and returns one one-time prekey of `kind`, never the same one to two callers. */
async function takeOneTime(tx: Tx, device: number, kind: number): Promise<Uint8Array | undefined> {
  const rows = rowsOf<{ data: unknown }>(
    await tx.execute(sql`
      DELETE FROM prekeys WHERE (device, kind, key_id) IN (
        SELECT device, kind, key_id FROM prekeys
        WHERE device = ${device}::bigint AND kind = ${kind}::smallint
        ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING data`),
  );
  return rows[0] ? bytesOf(rows[0].data) : undefined;
}

async function current(tx: Tx, device: number, kind: number): Promise<Uint8Array | undefined> {
  const [row] = await tx
    .select({ data: prekeys.data })
    .from(prekeys)
    .where(and(eq(prekeys.device, device), eq(prekeys.kind, kind)))
    .orderBy(sql`${prekeys.keyId} DESC`)
    .limit(1);
  return row?.data;
}

async function bundleFor(tx: Tx, device: { id: number; deviceId: Uint8Array }): Promise<Uint8Array | undefined> {
  const signed = await current(tx, device.id, PrekeyKind.signed);
  if (!signed) return undefined;
  const pq = (await takeOneTime(tx, device.id, PrekeyKind.pqOneTime)) ?? (await current(tx, device.id, PrekeyKind.pqLastResort));
  if (!pq) return undefined;
  const oneTime = await takeOneTime(tx, device.id, PrekeyKind.oneTime);
  return encodeBundle({
    deviceId: device.deviceId,
    signedPrekey: decodePrekey(signed),
    pqPrekey: decodePrekey(pq),
    oneTimePrekey: oneTime ? decodePrekey(oneTime) : null,
  });
}

export function keyRoutes(s: RelayServices) {
  const { db, config } = s;
  const Upload = v.object({
    prekeys: v.pipe(v.array(b64Bytes(1, MAX_PREKEY_BYTES)), v.minLength(1), v.maxLength(config.maxPrekeysPerUpload)),
  });

  return new Hono<RelayEnv>()
    .put('/keys', limitBody(config.maxPrekeyBodyBytes), requireDevice(s), valid('json', Upload), async (c) => {
      const me = deviceAuth(c);
      const decoded: PublicPrekey[] = [];
      for (const bytes of c.req.valid('json').prekeys) {
        try {
          const p = decodePrekey(bytes);
          verifyPrekey(p, me);
          decoded.push(p);
        } catch (e) {
          if (e instanceof CryptoError) throw new ApiError(400, 'invalid_prekey', `prekey rejected: ${e.code}`);
          throw e;
        }
      }
      const result = await db.transaction(async (tx) => {
        // One upload per device at a time: two concurrent ones each counted the other's keys as
        // absent (the cap overshot) and replaced the same signed prekey at once (a 500).
        await lockActiveDevice(tx, me.device);
        for (const kind of [PrekeyKind.signed, PrekeyKind.pqLastResort]) {
          const latest = decoded.filter((p) => p.kind === kind).at(-1);
          if (!latest) continue;
          await tx.delete(prekeys).where(and(eq(prekeys.device, me.device), eq(prekeys.kind, kind)));
          await tx.insert(prekeys).values({ device: me.device, kind, keyId: latest.id, data: encodePrekey(latest) });
        }
        const oneTime = decoded.filter((p) => p.kind === PrekeyKind.oneTime || p.kind === PrekeyKind.pqOneTime);
        if (oneTime.length) {
          await tx
            .insert(prekeys)
            .values(oneTime.map((p) => ({ device: me.device, kind: p.kind, keyId: p.id, data: encodePrekey(p) })))
            .onConflictDoNothing();
        }
        const n = await counts(tx, me.device);
        if (n.oneTime > config.maxOneTimePrekeys || n.pqOneTime > config.maxOneTimePrekeys) {
          throw new ApiError(400, 'too_many_prekeys', `a device holds at most ${config.maxOneTimePrekeys} one-time prekeys of each kind`);
        }
        return n;
      });
      // A device's first signed and last-resort keys make it reachable: submissions in this
      // process must require it from now on, not after the device cache expires (messages.ts).
      // Rotations clear the entry too, which costs one lookup.
      if (decoded.some((p) => p.kind === PrekeyKind.signed || p.kind === PrekeyKind.pqLastResort)) forgetDevices(s, me.username);
      return c.json(result);
    })
    .get('/keys/count', requireDevice(s), async (c) => c.json(await counts(db, deviceAuth(c).device)))
    .get(
      '/users/:username/bundles',
      requireDevice(s),
      valid('query', v.object({ devices: v.optional(v.pipe(v.string(), v.maxLength(23 * 256))) })),
      async (c) => {
        const me = deviceAuth(c);
        const name = requireUsername(c.req.param('username'));
        const only = parseDeviceFilter(c.req.valid('query').devices);
        s.limits.bundlesPerDevice.check(String(me.device), 'bundle requests');
        s.limits.bundlesPerTarget.check(`${me.accountId}/${name}`, 'bundle requests for this user');
        const [acct] = await db
          .select({ id: accounts.id, version: deviceLists.version })
          .from(accounts)
          .leftJoin(deviceLists, eq(deviceLists.accountId, accounts.id))
          .where(eq(accounts.username, name));
        if (!acct) throw notFound('unknown_user', 'no such user');
        if (acct.version === null) throw notFound('no_device_list', 'the user has not published a device list');
        const targets = await db
          .select({ id: devices.id, deviceId: devices.deviceId })
          .from(devices)
          .where(and(eq(devices.accountId, acct.id), eq(devices.active, true), ...(only ? [inArray(devices.deviceId, only)] : [])))
          .orderBy(asc(devices.id));
        const out = await db.transaction(async (tx) => {
          const bundles: { deviceId: string; bundle: string }[] = [];
          const unavailable: string[] = [];
          for (const d of targets) {
            const b = await bundleFor(tx, d);
            if (b) bundles.push({ deviceId: toB64(d.deviceId), bundle: toB64(b) });
            else unavailable.push(toB64(d.deviceId));
          }
          return { bundles, unavailable };
        });
        return c.json({ username: name, version: acct.version, ...out });
      },
    );
}

function parseDeviceFilter(raw: string | undefined): Uint8Array[] | undefined {
  if (raw === undefined) return undefined;
  const ids = raw.split(',').map((p) => fromB64(p));
  if (ids.length === 0 || ids.some((id) => !id || id.length !== 16)) throw new ApiError(400, 'invalid_request', 'devices: comma-separated base64url device ids');
  return ids as Uint8Array[];
}

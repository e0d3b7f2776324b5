/**
 * Messages and inboxes.
 *
 *   POST /v1/messages   { clientMessageId, to: [username], payload, envelopes: [{ user, device, body }] }
 *                       -> { messageId, timestamp }                                      (device)
 *   GET  /v1/inbox?after=N&limit=L&at=T -> { envelopes: [envelope], more }               (device)
 *   POST /v1/inbox/ack  { seq } -> { acked }                                             (device)
 *
 * A submission is one shared payload (stored once) plus one envelope (crypto/'s DeviceMessage
 * bytes, opaque here, only size-checked) per recipient device. The envelope set must hold every
 * reachable active device of every user in `to`, plus the sender's own other reachable active
 * devices, and nothing but active devices of those users; otherwise 409 device_mismatch lists,
 * per user, the missing and the extra device ids, so the client repairs its sessions and retries.
 *
 * Reachable: the relay holds the device's signed prekey and its last-resort PQ prekey (a client
 * uploads both in its first upload), so a bundle can always be made for it. A listed device that
 * has not come online yet (a link approved for a device that never claimed its token, or claimed
 * without uploading keys) has no bundle — GET /v1/users/:u/bundles lists it as `unavailable` —
 * so nobody can encrypt for it: requiring it would refuse every message to and from its user
 * until it came online, if ever. It is not required; an envelope for it is still accepted (a
 * sender whose bundle fetch saw its keys while this check, on a cached lookup, does not yet, must
 * not be told it is gone). A recipient with active devices but none reachable would get nothing,
 * so that is refused (409 not_reachable) rather than answered 200.
 *
 * The check reads the current lists just before the write: a device added (or become reachable)
 * in between does not get this message (as with any list the sender had not yet seen) and one
 * removed in between has its inbox dropped with it.
 *
 * Idempotent on (sender device, clientMessageId): a retry returns the first result and stores
 * nothing new, also when the retry races the original (see inbox/writer.ts).
 */
import { PrekeyKind } from '../../crypto/index.ts';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { Hono } from 'hono';
import * as v from 'valibot';
import { accounts, devices, prekeys, submissions } from '../db/schema.ts';
import { b64Bytes, deviceIdB64, toB64 } from '../encoding.ts';
import { ApiError } from '../errors.ts';
import { errorFields } from '../log.ts';
import { readInbox, realignInbox, recordJson } from '../inbox/reader.ts';
import { deviceAuth, type DeviceAuth, type RelayEnv, requireDevice } from '../middleware/auth.ts';
import type { RelayConfig } from '../config.ts';
import type { RelayServices } from '../services.ts';
import { requireUsername } from '../usernames.ts';
import { limitBody, valid } from '../validate.ts';

export const CLIENT_MESSAGE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const seqNumber = v.pipe(v.string(), v.regex(/^\d{1,15}$/, 'a non-negative integer'), v.transform(Number));

/** The submission body, over HTTP (POST /v1/messages) and WebSocket (a "submit" frame) alike. */
export function submitSchema(config: RelayConfig) {
  return v.object({
    clientMessageId: v.pipe(v.string(), v.regex(CLIENT_MESSAGE_ID, '1..64 characters of base64url')),
    to: v.pipe(v.array(v.pipe(v.string(), v.maxLength(128))), v.minLength(1), v.maxLength(config.maxRecipientsPerMessage)),
    payload: b64Bytes(1, config.maxPayloadBytes),
    envelopes: v.pipe(
      v.array(v.object({ user: v.pipe(v.string(), v.maxLength(128)), device: deviceIdB64, body: b64Bytes(1, config.maxEnvelopeBytes) })),
      v.minLength(1),
      v.maxLength(config.maxEnvelopesPerMessage),
    ),
  });
}
export type SubmitBody = v.InferOutput<ReturnType<typeof submitSchema>>;

/**
 * Checks a submission against the recipients' current device lists and stores it; returns the
 * first result for a retry. Throws ApiError (404 unknown_user, 409 device_mismatch, ...).
 */
export async function submitMessage(s: RelayServices, me: DeviceAuth, body: SubmitBody): Promise<{ messageId: number; timestamp: number }> {
  const { db } = s;
  // A retry whose device set no longer matches (a recipient added a device since) must still get
  // the first result: look for one before refusing. (A matching retry is resolved by the writer's
  // claim, so the common path does not pay for this lookup.)
  const storedResult = async () => {
    const [done] = await db
      .select({ messageId: submissions.messageId, timestamp: submissions.createdAt })
      .from(submissions)
      .where(and(eq(submissions.senderDevice, me.device), eq(submissions.clientId, body.clientMessageId)));
    return done;
  };
  const users = new Set(body.to.map(requireUsername));
  users.add(me.username);
  const given = new Map<string, Map<string, Uint8Array>>(); // user -> device b64 -> envelope
  for (const e of body.envelopes) {
    const user = requireUsername(e.user);
    const key = toB64(e.device);
    const forUser = given.get(user) ?? new Map<string, Uint8Array>();
    if (forUser.has(key)) throw new ApiError(400, 'invalid_envelope', 'two envelopes for one device');
    forUser.set(key, e.body);
    given.set(user, forUser);
  }

  const rows = await activeDeviceRows(s, [...users]);
  const known = new Set(rows.map((r) => r.username));
  const unknown = [...users].filter((u) => !known.has(u));
  if (unknown.length) {
    const done = await storedResult();
    if (done) return done;
    throw new ApiError(404, 'unknown_user', 'no such user', { users: unknown });
  }

  const allowed = new Map<string, Map<string, number>>(); // user -> active device b64 -> row id
  const required = new Map<string, Set<string>>(); // user -> reachable active devices (b64)
  for (const u of users) {
    allowed.set(u, new Map());
    required.set(u, new Set());
  }
  for (const r of rows) {
    if (r.id === null || r.key === null || r.id === me.device) continue;
    allowed.get(r.username)!.set(r.key, r.id);
    if (r.reachable) required.get(r.username)!.add(r.key);
  }
  // A recipient without an active device would get nothing, and the sender a 200 for it.
  const deviceless = [...users].filter((u) => u !== me.username && allowed.get(u)!.size === 0);
  if (deviceless.length) {
    const done = await storedResult();
    if (done) return done;
    throw new ApiError(404, 'no_device_list', 'these users have no active device to receive messages', { users: deviceless });
  }
  // Nor one whose devices have none of them come online yet: the sender waits for one to.
  const unreachable = [...users].filter((u) => u !== me.username && required.get(u)!.size === 0 && !given.get(u)?.size);
  if (unreachable.length) {
    const done = await storedResult();
    if (done) return done;
    throw new ApiError(409, 'not_reachable', 'none of these users\u2019 devices has come online yet (no prekeys on the relay)', { users: unreachable });
  }
  const missing: { user: string; devices: string[] }[] = [];
  const extra: { user: string; devices: string[] }[] = [];
  for (const u of new Set([...users, ...given.keys()])) {
    const want = required.get(u) ?? new Set<string>();
    const may = allowed.get(u) ?? new Map<string, number>();
    const have = given.get(u) ?? new Map<string, Uint8Array>();
    const m = [...want].filter((d) => !have.has(d));
    const x = [...have.keys()].filter((d) => !may.has(d));
    if (m.length) missing.push({ user: u, devices: m });
    if (x.length) extra.push({ user: u, devices: x });
  }
  if (missing.length || extra.length) {
    const done = await storedResult();
    if (done) return done;
    throw new ApiError(409, 'device_mismatch', 'the envelopes do not match the recipients\u2019 reachable active devices', { missing, extra });
  }

  const targets = [...given].flatMap(([u, ds]) => [...ds].map(([d, envelope]) => ({ device: allowed.get(u)!.get(d)!, envelope })));
  const started = performance.now();
  const result = await s.writer.submit({
    senderDevice: me.device,
    senderUser: me.username,
    senderDeviceId: me.deviceId,
    clientId: body.clientMessageId,
    payload: body.payload,
    targets,
  });
  s.metrics.submitDuration.observe((performance.now() - started) / 1000);
  if (result.stored) {
    // A retry answered with the first result committed nothing new.
    s.metrics.messagesSubmitted.inc();
    s.metrics.envelopesStored.inc({}, targets.length);
  }
  return { messageId: result.messageId, timestamp: result.timestamp };
}

/**
 * An active device (none: a user without one), its id as the base64url the envelopes name it by,
 * and whether it is reachable (its signed and last-resort PQ prekeys are on the relay).
 */
type DeviceRow = { username: string; id: number | null; key: string | null; reachable: boolean };

/**
 * Active devices of these users, with their reachability, from a per-process cache kept for
 * DEVICE_CACHE_MS: the lookup otherwise costs every submission a query (reachability is read by
 * the same query, not one more). A list update or a device's upload of a signed or last-resort
 * prekey in this process clears its user's entry at once (devices.ts, keys.ts); another
 * process's is seen within DEVICE_CACHE_MS. Either way a device added, or come online, at that
 * moment may miss a message, as it may with no cache (the check runs before the write); a removed
 * device never gets one (the writer re-checks under its row lock).
 *
 * An entry older than DEVICE_CACHE_MS but not DEVICE_CACHE_STALE_MS is still used, and read again
 * in the background (stale while revalidate): waiting for that read put every submission for the
 * user behind one query on the shared pool, once a second per user (paired runs at 1 message in
 * flight per sender: +6.4% and +2.0% msgs/s; none at 16). So another process's change is seen once
 * that read returns (about a second); an entry past DEVICE_CACHE_STALE_MS (a user not written to for
 * a while) is read first.
 */
const DEVICE_CACHE_MS = 1000;
const DEVICE_CACHE_STALE_MS = 5000;
interface DeviceCache {
  readonly rows: Map<string, { rows: DeviceRow[]; at: number }>;
  /** Lookups under way: every submission that needs a user meanwhile waits for the same one
   * (when an entry expires, all the submissions for that user arrive at once). */
  readonly loading: Map<string, Promise<DeviceRow[]>>;
}
const deviceCache = new WeakMap<RelayServices, DeviceCache>();

export function forgetDevices(s: RelayServices, username: string): void {
  const cache = deviceCache.get(s);
  cache?.rows.delete(username);
  cache?.loading.delete(username); // a lookup under way may have read the old list
}

async function activeDeviceRows(s: RelayServices, users: readonly string[]): Promise<DeviceRow[]> {
  let cache = deviceCache.get(s);
  if (!cache) deviceCache.set(s, (cache = { rows: new Map(), loading: new Map() }));
  const now = s.now();
  const out: DeviceRow[] = [];
  const waits = new Set<Promise<DeviceRow[]>>();
  const missing: string[] = [];
  const stale: string[] = [];
  for (const u of users) {
    const hit = cache.rows.get(u);
    if (hit && now - hit.at < DEVICE_CACHE_MS) out.push(...hit.rows);
    else if (hit && now - hit.at < DEVICE_CACHE_STALE_MS) {
      out.push(...hit.rows);
      if (!cache.loading.has(u)) stale.push(u);
    } else {
      const loading = cache.loading.get(u);
      if (loading) waits.add(loading);
      else missing.push(u);
    }
  }
  if (stale.length) void lookUp(s, cache, stale, now).catch((e: unknown) => s.log('warn', 'device lookup failed', errorFields(e)));
  if (missing.length) waits.add(lookUp(s, cache, missing, now));
  const wanted = new Set(users);
  for (const rows of await Promise.all([...waits])) for (const r of rows) if (wanted.has(r.username)) out.push(r);
  return out;
}

function lookUp(s: RelayServices, c: DeviceCache, missing: readonly string[], now: number): Promise<DeviceRow[]> {
  const query = s.db
    .select({
      username: accounts.username,
      id: devices.id,
      deviceId: devices.deviceId,
      // Two primary-key probes per device; false for the null row of a user without devices.
      reachable: sql<boolean>`(exists (select 1 from ${prekeys} where ${prekeys.device} = ${devices.id} and ${prekeys.kind} = ${sql.raw(String(PrekeyKind.signed))})
        and exists (select 1 from ${prekeys} where ${prekeys.device} = ${devices.id} and ${prekeys.kind} = ${sql.raw(String(PrekeyKind.pqLastResort))}))`,
    })
    .from(accounts)
    .leftJoin(devices, and(eq(devices.accountId, accounts.id), eq(devices.active, true)))
    .where(inArray(accounts.username, missing))
    .then((found) => {
      // Encoded once per lookup, not once per submission that reads the cache.
      const rows: DeviceRow[] = found.map((r) => ({ username: r.username, id: r.id, key: r.deviceId && toB64(r.deviceId), reachable: r.reachable === true }));
      if (c.rows.size > 10_000) c.rows.clear(); // bounded: a cache, not a copy of the database
      for (const u of missing) {
        const mine = rows.filter((r) => r.username === u);
        if (mine.length && c.loading.get(u) === query) c.rows.set(u, { rows: mine, at: now });
      }
      return rows;
    })
    .finally(() => {
      for (const u of missing) if (c.loading.get(u) === query) c.loading.delete(u);
    });
  for (const u of missing) c.loading.set(u, query);
  return query;
}

export function messageRoutes(s: RelayServices) {
  const { db, config } = s;
  const Submit = submitSchema(config);

  return new Hono<RelayEnv>()
    .post('/messages', limitBody(config.maxMessageBodyBytes), requireDevice(s), valid('json', Submit), async (c) => c.json(await submitMessage(s, deviceAuth(c), c.req.valid('json'))))
    .get('/inbox', requireDevice(s), valid('query', v.object({ after: v.optional(seqNumber), limit: v.optional(seqNumber), at: v.optional(seqNumber) })), async (c) => {
      const me = deviceAuth(c);
      const q = c.req.valid('query');
      const limit = Math.min(Math.max(q.limit ?? 100, 1), config.inboxPageMax);
      const after = q.after ?? 0;
      let page = await readInbox(db, me.device, after, limit, config.inboxPageMaxBytes);
      // Nothing after a cursor is also what a cursor past the inbox's end gets (see realignInbox).
      if (!page.records.length && after > 0 && (await realignInbox(db, me.device, after, q.at))) {
        s.log('warn', 'device cursor past its inbox end: envelopes renumbered after it (relay restored from a backup?)', { device: me.device, after });
        page = await readInbox(db, me.device, after, limit, config.inboxPageMaxBytes);
      }
      return c.json({ envelopes: page.records.map(recordJson), more: page.more });
    })
    .post('/inbox/ack', requireDevice(s), valid('json', v.object({ seq: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER)) })), async (c) => {
      const { seq } = c.req.valid('json');
      const me = deviceAuth(c);
      // Acking past the last envelope stored would delete envelopes the device never received.
      const [row] = await db.select({ last: devices.nextSeq }).from(devices).where(eq(devices.id, me.device));
      const last = row?.last ?? 0;
      if (seq > last) throw new ApiError(400, 'invalid_ack', `seq ${seq} is beyond the last envelope stored for this device (${last})`, { last });
      await s.acks.ack(me.device, seq);
      return c.json({ acked: seq });
    });
}

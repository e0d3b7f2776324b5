/**
 * The relay's one drizzle schema, used unchanged on PGlite (embedded, PostgreSQL 18 in WASM)
 * and on a real PostgreSQL server (15 or newer): nothing here may need a feature newer than 15.
 * Migrations are generated from this file by drizzle-kit into ./migrations (append-only).
 *
 * What the relay holds is ciphertext and public keys only: OPAQUE registration records (not
 * password hashes), signed device lists, signed public prekeys, opaque envelopes and payloads,
 * an opaque account-key backup, and SHA-256 hashes of bearer tokens.
 *
 * Times are Unix milliseconds in bigint columns (one clock, the relay's, no time zones).
 */

import { bigint, boolean, customType, index, integer, pgSequence, pgTable, primaryKey, smallint, text, uniqueIndex } from 'drizzle-orm/pg-core';

/** bytea as Uint8Array on both drivers (postgres.js hands back Buffer; PGlite Uint8Array). */
export const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType: () => 'bytea',
  fromDriver: (v) => (v instanceof Uint8Array && v.constructor !== Uint8Array ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : v),
  toDriver: (v) => v,
});

const ms = (name: string) => bigint(name, { mode: 'number' });

/** Generated secrets of this relay (OPAQUE server setup, later VAPID keys), created on first start. */
export const relaySecrets = pgTable('relay_secrets', {
  name: text('name').primaryKey(),
  value: text('value').notNull(),
  createdAt: ms('created_at').notNull(),
});

export const accounts = pgTable('accounts', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  /** Normalised (NFKC, lower case); equals the userId inside the account's device list. */
  username: text('username').notNull().unique(),
  /** OPAQUE registration record (base64url, as @serenity-kit/opaque produces it). */
  opaqueRecord: text('opaque_record').notNull(),
  /** The account public key, pinned by the first device list the account publishes. */
  accountKey: bytea('account_key'),
  /** Account-key backup, encrypted by the client under its OPAQUE export key. */
  backup: bytea('backup'),
  createdAt: ms('created_at').notNull(),
});

/** Server state between OPAQUE login start and finish; short-lived, shared by all processes. */
export const opaqueLogins = pgTable('opaque_logins', {
  id: text('id').primaryKey(),
  accountId: bigint('account_id', { mode: 'number' }),
  state: text('state').notNull(),
  expiresAt: ms('expires_at').notNull(),
});

/** Short-lived proof that the holder completed an OPAQUE login (hash of the bearer token). */
export const accountSessions = pgTable('account_sessions', {
  tokenHash: bytea('token_hash').primaryKey(),
  accountId: bigint('account_id', { mode: 'number' })
    .notNull()
    .references(() => accounts.id, { onDelete: 'cascade' }),
  expiresAt: ms('expires_at').notNull(),
});

/** The newest signed device list of each account, exactly as signed. */
export const deviceLists = pgTable('device_lists', {
  accountId: bigint('account_id', { mode: 'number' })
    .primaryKey()
    .references(() => accounts.id, { onDelete: 'cascade' }),
  version: bigint('version', { mode: 'number' }).notNull(),
  bytes: bytea('bytes').notNull(),
  updatedAt: ms('updated_at').notNull(),
});

/**
 * One row per device ever listed by an account. `nextSeq` is the inbox counter: the last
 * sequence number assigned, bumped with UPDATE ... RETURNING in the transaction that stores
 * the envelopes, so numbers are gap-free and strictly increasing per device.
 */
export const devices = pgTable(
  'devices',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    accountId: bigint('account_id', { mode: 'number' })
      .notNull()
      .references(() => accounts.id, { onDelete: 'cascade' }),
    deviceId: bytea('device_id').notNull(),
    signingKey: bytea('signing_key').notNull(),
    dhKey: bytea('dh_key').notNull(),
    active: boolean('active').notNull(),
    /** SHA-256 of the device's bearer token; null until issued and after removal. */
    tokenHash: bytea('token_hash'),
    nextSeq: bigint('next_seq', { mode: 'number' }).notNull().default(0),
    createdAt: ms('created_at').notNull(),
  },
  (t) => [
    uniqueIndex('devices_account_device').on(t.accountId, t.deviceId),
    // A device (its id derives from its keys) belongs to one account: another account listing a
    // copy of its public keys could otherwise answer its first-token claim (routes/devices.ts).
    uniqueIndex('devices_device_id').on(t.deviceId),
    uniqueIndex('devices_token_hash').on(t.tokenHash),
  ],
);

/** Signed public prekeys (crypto/'s encodePrekey bytes). Kinds 1 and 4 keep one current key each. */
export const prekeys = pgTable(
  'prekeys',
  {
    device: bigint('device', { mode: 'number' })
      .notNull()
      .references(() => devices.id, { onDelete: 'cascade' }),
    kind: smallint('kind').notNull(),
    keyId: bigint('key_id', { mode: 'number' }).notNull(),
    data: bytea('data').notNull(),
  },
  (t) => [primaryKey({ columns: [t.device, t.kind, t.keyId] })],
);

/** Message ids (= payload ids), drawn when a submission is first claimed. */
export const messageIds = pgSequence('message_ids');

/**
 * A message's shared ciphertext, stored once. Its id is the message id. A payload is deleted
 * once no inbox row references it (on acknowledgement, and by the sweeper for the rows two
 * concurrent acknowledgements both left behind).
 */
export const payloads = pgTable('payloads', {
  /** From the message_ids sequence, drawn when the submission is claimed. */
  id: bigint('id', { mode: 'number' }).primaryKey(),
  data: bytea('data').notNull(),
  createdAt: ms('created_at').notNull(),
});

/**
 * Per-device inbox: one envelope per (device, seq), deleted once acknowledged (or after the
 * retention period). The sender's user and device are set by the relay from the sender's
 * credential, so a recipient knows who sent a ratchet message without trusting its content.
 */
export const inbox = pgTable(
  'inbox',
  {
    device: bigint('device', { mode: 'number' }).notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    payload: bigint('payload', { mode: 'number' }).notNull(),
    senderUser: text('sender_user').notNull(),
    senderDevice: bytea('sender_device').notNull(),
    envelope: bytea('envelope').notNull(),
    createdAt: ms('created_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.device, t.seq] }), index('inbox_payload').on(t.payload), index('inbox_created').on(t.createdAt)],
);

/** Idempotency: what a (sender device, client message id) submission produced. */
export const submissions = pgTable(
  'submissions',
  {
    senderDevice: bigint('sender_device', { mode: 'number' }).notNull(),
    clientId: text('client_id').notNull(),
    messageId: bigint('message_id', { mode: 'number' }).notNull(),
    createdAt: ms('created_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.senderDevice, t.clientId] }), index('submissions_created').on(t.createdAt)],
);

/**
 * One Web Push subscription per device (a device re-subscribing replaces it). `lastPushAt`
 * coalesces bursts across every relay process: a push is sent only by the UPDATE that moves it
 * forward past the coalescing window, so a burst of envelopes wakes a device once.
 */
export const pushSubscriptions = pgTable('push_subscriptions', {
  device: bigint('device', { mode: 'number' })
    .primaryKey()
    .references(() => devices.id, { onDelete: 'cascade' }),
  endpoint: text('endpoint').notNull(),
  /** The subscription's P-256 public key and auth secret (base64url), as the browser gives them. */
  p256dh: text('p256dh').notNull(),
  auth: text('auth').notNull(),
  lastPushAt: ms('last_push_at'),
  createdAt: ms('created_at').notNull(),
});

/**
 * Encrypted attachment blobs (crypto/attachment.ts secretstream ciphertext; the key travels
 * only inside messages). Uploaded in chunks so neither side holds a whole file in memory;
 * `size` is the declared total (what the account's quota sums, so an upload cannot overshoot
 * it). An upload is readable once `complete`; incomplete ones are swept after the upload timeout.
 */
export const attachments = pgTable(
  'attachments',
  {
    /** Random, unguessable (128 bits, base64url): knowing it is what lets a recipient download. */
    id: text('id').primaryKey(),
    accountId: bigint('account_id', { mode: 'number' })
      .notNull()
      .references(() => accounts.id, { onDelete: 'cascade' }),
    size: bigint('size', { mode: 'number' }).notNull().default(0),
    complete: boolean('complete').notNull().default(false),
    createdAt: ms('created_at').notNull(),
    expiresAt: ms('expires_at').notNull(),
  },
  (t) => [index('attachments_account').on(t.accountId), index('attachments_expires').on(t.expiresAt)],
);

export const attachmentChunks = pgTable(
  'attachment_chunks',
  {
    attachment: text('attachment')
      .notNull()
      .references(() => attachments.id, { onDelete: 'cascade' }),
    idx: integer('idx').notNull(),
    data: bytea('data').notNull(),
  },
  (t) => [primaryKey({ columns: [t.attachment, t.idx] })],
);

/**
 * The relay processes sharing this database (notify/instances.ts), with when each last said it
 * was alive, by the database's clock. A process sends its cross-process NOTIFY hints only while
 * another one is listed: a relay running alone does not pay for waking a listener per batch.
 */
export const relayInstances = pgTable('relay_instances', {
  instance: text('instance').primaryKey(),
  seenAt: ms('seen_at').notNull(),
});

export const schema = { messageIds, relaySecrets, relayInstances, accounts, opaqueLogins, accountSessions, deviceLists, devices, prekeys, payloads, inbox, submissions, pushSubscriptions, attachments, attachmentChunks };
export type Schema = typeof schema;

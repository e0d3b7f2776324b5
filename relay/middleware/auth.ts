/**
 * Bearer authentication. Two kinds of credential:
 *   - a device token ("pd_..."), issued to a device listed active in its account's signed
 *     device list; it stops working the moment the device is removed or its token replaced;
 *   - an account session token ("ps_..."), issued by a completed OPAQUE login (or by account
 *     registration) and valid `sessionTtlMs`; it proves the password, nothing more: it may
 *     manage the account (device list, device tokens, backup) but not read any inbox.
 * Only SHA-256 hashes of tokens are stored. `requireDevice` admits device tokens only;
 * `requireAccount` admits either.
 */
import { and, eq, gt } from 'drizzle-orm';
import type { Context, MiddlewareHandler } from 'hono';
import type { Db, Tx } from '../db/client.ts';
import { accounts, accountSessions, devices } from '../db/schema.ts';
import { unauthorized } from '../errors.ts';
import type { RelayServices } from '../services.ts';
import { DEVICE_TOKEN_PREFIX, hashToken, isWellFormedToken } from '../tokens.ts';

export interface DeviceAuth {
  readonly kind: 'device';
  readonly accountId: number;
  readonly username: string;
  /** The device's row id (internal). */
  readonly device: number;
  readonly deviceId: Uint8Array;
  readonly signingKey: Uint8Array;
  readonly dhKey: Uint8Array;
}

export interface SessionAuth {
  readonly kind: 'session';
  readonly accountId: number;
  readonly username: string;
}

export type AccountAuth = DeviceAuth | SessionAuth;

export type RelayEnv = { Variables: { auth: AccountAuth } };

export function bearer(c: Context): string | undefined {
  const h = c.req.header('authorization');
  // The scheme name is case-insensitive (RFC 9110 §11.1).
  const m = h && /^Bearer +([A-Za-z0-9_-]{1,200})$/i.exec(h);
  return m ? m[1] : undefined;
}

export async function authenticateDevice(db: Db, token: string): Promise<DeviceAuth | undefined> {
  if (!isWellFormedToken(token) || !token.startsWith(DEVICE_TOKEN_PREFIX)) return undefined;
  const [row] = await db
    .select({
      accountId: devices.accountId,
      username: accounts.username,
      device: devices.id,
      deviceId: devices.deviceId,
      signingKey: devices.signingKey,
      dhKey: devices.dhKey,
    })
    .from(devices)
    .innerJoin(accounts, eq(accounts.id, devices.accountId))
    .where(and(eq(devices.tokenHash, hashToken(token)), eq(devices.active, true)));
  return row ? { kind: 'device', ...row } : undefined;
}

async function authenticate(s: RelayServices, token: string): Promise<AccountAuth | undefined> {
  if (!isWellFormedToken(token)) return undefined;
  if (token.startsWith(DEVICE_TOKEN_PREFIX)) return authenticateDevice(s.db, token);
  const [row] = await s.db
    .select({ accountId: accounts.id, username: accounts.username })
    .from(accountSessions)
    .innerJoin(accounts, eq(accounts.id, accountSessions.accountId))
    .where(and(eq(accountSessions.tokenHash, hashToken(token)), gt(accountSessions.expiresAt, s.now())));
  return row ? { kind: 'session', ...row } : undefined;
}

export function requireAccount(s: RelayServices): MiddlewareHandler<RelayEnv> {
  return async (c, next) => {
    const token = bearer(c);
    const auth = token && (await authenticate(s, token));
    if (!auth) throw unauthorized();
    c.set('auth', auth);
    await next();
  };
}

export function requireDevice(s: RelayServices): MiddlewareHandler<RelayEnv> {
  return async (c, next) => {
    const token = bearer(c);
    const auth = token && (await authenticateDevice(s.db, token));
    if (!auth) throw unauthorized('a device token is required');
    c.set('auth', auth);
    await next();
  };
}

/** The authenticated device (only after requireDevice). */
export function deviceAuth(c: Context<RelayEnv>): DeviceAuth {
  const a = c.get('auth');
  if (a.kind !== 'device') throw unauthorized('a device token is required');
  return a;
}

/**
 * Locks the device's row until the transaction ends, if the device is still active; 401 if not.
 * A request authenticated a moment ago may race the device's removal, which takes the same row
 * lock (routes/devices.ts) before it deletes the device's prekeys and push subscription: what
 * this transaction writes is then either refused here or committed first and deleted with the
 * device, never left behind. It also makes one device's concurrent writes of its own state take
 * turns (the one-time prekey cap, the signed prekey that replaces the current one).
 */
export async function lockActiveDevice(tx: Tx, device: number): Promise<void> {
  const rows = await tx
    .select({ id: devices.id })
    .from(devices)
    .where(and(eq(devices.id, device), eq(devices.active, true)))
    .for('update');
  if (rows.length === 0) throw unauthorized('this device was removed from its account');
}

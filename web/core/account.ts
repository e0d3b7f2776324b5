/**
 * The account and this device: register, log in as a new device (password backup), link a
 * device from an existing one (link code + device claim, crypto/PROTOCOL.md §4.1), list and
 * remove devices, and keep enough prekeys on the relay.
 *
 * OPAQUE (@serenity-kit/opaque) keeps the password from the relay; its export key, which only
 * the client learns, encrypts the account-key backup (crypto/'s sealAccountBackup).
 */
import * as opaque from '@serenity-kit/opaque';
import {
  accountKeyFromSecret,
  activeDevices,
  decodeDeviceKeyPair,
  decodeLinkCode,
  encodeLinkCode,
  isCryptoError,
  encodeDeviceKeyPair,
  encodePrekey,
  encodePrekeySecret,
  equalBytes,
  findDevice,
  generateAccountKey,
  generateDevice,
  generatePrekey,
  newDeviceList,
  openAccountBackup,
  PrekeyKind,
  sealAccountBackup,
  signDeviceClaim,
  signDeviceList,
  verifyDeviceList,
  withDeviceAdded,
  withDeviceRemoved,
  type DeviceKeyPair,
  type DeviceList,
  type PrekeySecret,
} from '../../crypto/index.ts';
import { fromB64, toB64 } from './b64.ts';
import type { Ctx, IdentityRecord } from './context.ts';
import { deviceList } from './directory.ts';
import { unreachable } from './explain.ts';
import { RelayError } from './net/api.ts';
import { EngineError } from './types.ts';

/** Argon2id parameters the OPAQUE client uses; must be the same at registration and login. */
const KEY_STRETCHING = 'memory-constrained' as const;
/** One-time prekeys uploaded at a time, and the count under which we refill. */
export const PREKEY_BATCH = 50;
export const PREKEY_LOW = 15;

async function saveIdentity(ctx: Ctx, id: IdentityRecord): Promise<void> {
  await ctx.store.write(['meta'], (tx) => tx.put('meta', { key: 'identity', value: id }));
  ctx.setIdentity(id);
}

function requireEmpty(ctx: Ctx): void {
  if (ctx.me) throw new EngineError('already_registered', 'This profile already belongs to an account.');
}

export function relayMessage(e: unknown): never {
  if (e instanceof RelayError) {
    if (e.code === 'username_taken') throw new EngineError('username_taken', 'That username is taken. Choose another one, or Log in if it is yours.');
    if (e.code === 'invalid_username') throw new EngineError('invalid_username', 'Usernames are 3–32 characters: letters, digits, “_”, “.” and “-”.');
    if (e.code === 'login_failed') throw new EngineError('login_failed', 'Wrong username or password.');
    if (e.code === 'rate_limited') throw new EngineError('rate_limited', 'Too many attempts. Wait a minute and try again.');
    if (e.code === 'network') throw new EngineError('offline', unreachable('then try again.'));
  }
  throw e;
}

/** `nameFor`: what the new device is called in the list, given its id (see EngineOptions.deviceName). */
export async function register(ctx: Ctx, username: string, password: string, nameFor: (deviceId: Uint8Array) => string): Promise<void> {
  requireEmpty(ctx);
  await opaque.ready;
  const account = generateAccountKey(ctx.rng);
  const device = generateDevice(ctx.rng);
  const deviceName = nameFor(device.deviceId);
  try {
    const { clientRegistrationState, registrationRequest } = opaque.client.startRegistration({ password });
    const start = await ctx.api.registerStart(username, registrationRequest);
    const { registrationRecord, exportKey } = opaque.client.finishRegistration({ clientRegistrationState, registrationResponse: start.registrationResponse, password, keyStretching: KEY_STRETCHING });
    const fin = await ctx.api.registerFinish(username, registrationRecord);
    const name = fin.username; // normalised by the relay
    // The backup before the list: a registration cut short (a reload, a lost connection) before
    // the list is finished by logging in (below); a list whose account key is lost never could be.
    await ctx.api.putBackup(sealAccountBackup(fromB64(exportKey), account.secretKey, ctx.rng), fin.sessionToken);
    const signed = signDeviceList(newDeviceList(name, account.publicKey, device, deviceName, ctx.now()), account);
    await ctx.api.putDeviceList(signed.bytes, fin.sessionToken);
    const { token } = await ctx.api.issueToken(device.deviceId, fin.sessionToken);
    await finishDevice(ctx, { username: name, accountSecret: account.secretKey, device: encodeDeviceKeyPair(device), token, deviceName }, signed.bytes);
  } catch (e) {
    relayMessage(e);
  }
}

/**
 * Adds this (empty) profile to an account as a new device, recovering the account key from the
 * backup. Returns the name it has in the list.
 */
export async function login(ctx: Ctx, username: string, password: string, nameFor: (deviceId: Uint8Array) => string): Promise<string> {
  requireEmpty(ctx);
  try {
    const done = await passwordLogin(ctx, username, password);
    const name = done.username;
    // No list yet: the account's registration stopped short (a reload, a lost connection), and
    // knowing the password, this device finishes it — with the backed-up key, or a new one.
    const current = await ctx.api.deviceList(name).then(
      (r) => r.list,
      (e: unknown) => (e instanceof RelayError && e.code === 'no_device_list' ? null : Promise.reject(e)),
    );
    if (!done.backup && current) throw new EngineError('no_backup', 'This account has no key backup; link this device from one of your other devices instead.');
    const account = done.backup ? accountKeyFromSecret(openAccountBackup(done.exportKey, fromB64(done.backup))) : generateAccountKey(ctx.rng);
    if (!done.backup) await ctx.api.putBackup(sealAccountBackup(done.exportKey, account.secretKey, ctx.rng), done.sessionToken);
    const device = generateDevice(ctx.rng);
    const deviceName = nameFor(device.deviceId);
    const now = ctx.now();
    const old = current && verifyDeviceList(current, { userId: name, pinnedAccountKey: account.publicKey });
    const signed = signDeviceList(old ? withDeviceAdded(old, device, deviceName, now) : newDeviceList(name, account.publicKey, device, deviceName, now), account);
    await ctx.api.putDeviceList(signed.bytes, done.sessionToken);
    const { token } = await ctx.api.issueToken(device.deviceId, done.sessionToken);
    // The account's other devices hold its history: one of them sends it (after.ts), so it is on its way.
    await finishDevice(ctx, { username: name, accountSecret: account.secretKey, device: encodeDeviceKeyPair(device), token, deviceName }, signed.bytes, !!old && activeDevices(old).length > 0);
    return deviceName;
  } catch (e) {
    return relayMessage(e);
  }
}

/**
 * The OPAQUE login: the relay's answer (a session token, the account-key backup) and the export
 * key that opens the backup. A wrong password fails here, in the client (`login_failed`).
 */
export async function passwordLogin(ctx: Ctx, username: string, password: string): Promise<{ username: string; sessionToken: string; backup: string | null; exportKey: Uint8Array }> {
  await opaque.ready;
  const { clientLoginState, startLoginRequest } = opaque.client.startLogin({ password });
  const start = await ctx.api.loginStart(username, startLoginRequest);
  const fin = opaque.client.finishLogin({ clientLoginState, loginResponse: start.loginResponse, password, keyStretching: KEY_STRETCHING });
  if (!fin) throw new EngineError('login_failed', 'Wrong username or password.');
  const done = await ctx.api.loginFinish(start.loginId, fin.finishLoginRequest);
  return { ...done, exportKey: fromB64(fin.exportKey) };
}

/**
 * Stores this device's identity, with its token, before anything else can fail: the relay issues
 * a device's token once (a claim is one-shot), so a token not stored is a device lost, listed in
 * the account and unreachable. The prekeys follow (refillPrekeys); the linking flow retries them,
 * and every start and sync uploads them until the relay holds some.
 */
async function storeDevice(ctx: Ctx, id: IdentityRecord, ownList: Uint8Array | undefined, historyDue: boolean): Promise<void> {
  await ctx.store.write(['meta'], async (tx) => {
    await tx.put('meta', { key: 'identity', value: id });
    if (ownList) await tx.put('meta', { key: 'ownList', value: ownList });
    // Another of the account's devices sends this one the history: true until it came (history.ts).
    if (historyDue) await tx.put('meta', { key: 'historyDue', value: true });
    await tx.put('meta', { key: 'nextPrekeyId', value: 1 });
    // A link code's device is this identity now: a new link needs a new code (and an empty profile).
    await tx.delete('meta', 'pendingLink');
  });
  ctx.setIdentity(id);
}

/**
 * Registration and login: the device exists once stored. Its first prekeys go up now if the
 * relay answers; if it does not, the next start or sync uploads them (an error here would leave
 * the person on the sign-up screen of a profile that is already registered).
 */
async function finishDevice(ctx: Ctx, id: IdentityRecord, ownList: Uint8Array, historyDue = false): Promise<void> {
  await storeDevice(ctx, id, ownList, historyDue);
  await refillPrekeys(ctx).catch((e) => {
    if (!(e instanceof RelayError && e.transient)) throw e;
  });
}

function makePrekeys(ctx: Ctx, device: DeviceKeyPair, firstId: number, withSigned: boolean) {
  const out: { pub: Uint8Array; secret: PrekeySecret }[] = [];
  let id = firstId;
  const make = (kind: PrekeyKind) => {
    const p = generatePrekey(device, kind, id++, ctx.rng);
    out.push({ pub: encodePrekey(p.public), secret: p.secret });
  };
  if (withSigned) {
    make(PrekeyKind.signed);
    make(PrekeyKind.pqLastResort);
  }
  for (let i = 0; i < PREKEY_BATCH; i++) {
    make(PrekeyKind.oneTime);
    make(PrekeyKind.pqOneTime);
  }
  return out;
}

/**
 * Uploads more one-time prekeys when the relay holds few, with a signed and a last-resort one when
 * it holds none (a new device, or one whose first upload failed).
 */
export async function refillPrekeys(ctx: Ctx): Promise<number> {
  const me = ctx.requireMe();
  const counts = await ctx.api.prekeyCount();
  if (Math.min(counts.oneTime, counts.pqOneTime) >= PREKEY_LOW) return 0;
  const next = ((await ctx.store.read(['meta'], (tx) => tx.get('meta', 'nextPrekeyId')))?.value as number | undefined) ?? 1000;
  const made = makePrekeys(ctx, me.device, next, !counts.signed || !counts.pqLastResort);
  // Secrets first: a prekey the relay hands out must never be one we cannot use.
  await ctx.store.write(['meta', 'prekeys'], async (tx) => {
    for (const p of made) await tx.put('prekeys', { id: `${p.secret.kind}/${p.secret.id}`, secret: encodePrekeySecret(p.secret) });
    await tx.put('meta', { key: 'nextPrekeyId', value: next + made.length });
  });
  for (const p of made) ctx.prekeys.set(`${p.secret.kind}/${p.secret.id}`, p.secret);
  await ctx.api.putPrekeys(made.map((p) => p.pub));
  return made.length;
}

// ---- linking -------------------------------------------------------------------------

export interface PendingLink {
  readonly code: string;
  readonly device: DeviceKeyPair;
}

export async function startLink(ctx: Ctx): Promise<PendingLink> {
  requireEmpty(ctx);
  const saved = (await ctx.store.read(['meta'], (tx) => tx.get('meta', 'pendingLink')))?.value as Uint8Array | undefined;
  const device = saved ? decodeDeviceKeyPair(saved) : generateDevice(ctx.rng);
  if (!saved) await ctx.store.write(['meta'], (tx) => tx.put('meta', { key: 'pendingLink', value: encodeDeviceKeyPair(device) }));
  return { code: toB64(encodeLinkCode(device)), device };
}

/** A rough duration for people: "7 minutes", "3 hours", "2 days". */
function roughly(ms: number): string {
  const [n, unit] = ms < 2 * 3_600_000 ? [Math.ceil(ms / 60_000), 'minute'] : ms < 2 * 86_400_000 ? [Math.round(ms / 3_600_000), 'hour'] : [Math.round(ms / 86_400_000), 'day'];
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

/**
 * The relay refused the claim's time (claim_expired): this device's clock is off, which only its
 * user can fix. The relay's answer carries its time and window, so say by how much.
 */
function clockOff(e: RelayError, signedAt: number): EngineError {
  const { relayTime, windowMs } = e.body;
  const off = typeof relayTime === 'number' ? signedAt - relayTime : NaN;
  const by = Number.isFinite(off) ? `is ${roughly(Math.abs(off))} ${off > 0 ? 'ahead of' : 'behind'} the relay’s` : 'is too far from the relay’s';
  const limit = typeof windowMs === 'number' ? ` (linking allows ${roughly(windowMs)} either way)` : '';
  return new EngineError('claim_expired', `This device’s clock ${by}${limit}. Set its date, time and time zone correctly (automatic is best), then start linking again.`);
}

/**
 * New device: claims its token once an existing device listed it (polling) and stores it. The
 * prekeys the approving device waits for, and then the account key in a 'link' message, follow
 * in Engine.startLink.
 */
export async function claimLinkedDevice(
  ctx: Ctx,
  link: PendingLink,
  deviceName: string,
  opts: { timeoutMs: number; pollMs: number; sleep: (ms: number) => Promise<void>; onReach?: (reached: boolean) => void },
): Promise<void> {
  const deadline = ctx.now() + opts.timeoutMs;
  for (;;) {
    const at = ctx.now();
    let r;
    try {
      r = await ctx.api.claim(signDeviceClaim(link.device, at));
      opts.onReach?.(true);
    } catch (e) {
      if (e instanceof RelayError && e.code === 'claim_expired') throw clockOff(e, at);
      if (!(e instanceof RelayError && e.transient)) throw e;
      opts.onReach?.(false);
    }
    if (r) {
      // The approving device sends the history right after the account key (Engine.approveLink).
      await storeDevice(ctx, { username: r.username, accountSecret: null, device: encodeDeviceKeyPair(link.device), token: r.token, deviceName }, undefined, true);
      return;
    }
    if (ctx.now() > deadline) throw new EngineError('link_timeout', 'No device approved this code in time. Start linking again.');
    await opts.sleep(opts.pollMs);
  }
}

/** Existing device: lists the new device under the account. Returns its public keys. */
/** Longest device name in a device list (crypto/device-list.ts), in UTF-8 bytes. */
const MAX_NAME_BYTES = 64;

export function deviceNameOrDefault(name: string | undefined, fallback: string): string {
  let n = (name ?? '').trim().replace(/\s+/g, ' ');
  while (new TextEncoder().encode(n).length > MAX_NAME_BYTES) n = [...n].slice(0, -1).join('');
  return n || fallback;
}

/** `name`: what the account's devices call the new device (the link code carries only keys). */
export async function approveLink(ctx: Ctx, code: string, name?: string) {
  const me = ctx.requireMe();
  if (!me.account) throw new EngineError('not_ready', 'This device has not received the account key yet.');
  let device;
  // A code copied from a narrow window or a chat arrives wrapped or indented: base64url has no
  // whitespace, so any inside is the transport's, not the code's.
  const bytes = (() => {
    try {
      return fromB64(code.replace(/\s+/g, ''));
    } catch {
      return null;
    }
  })();
  try {
    if (!bytes) throw new Error('not base64url');
    // A typo fails the code's check (malformed), so it is refused here rather than listed as some
    // other device that will never come online.
    device = decodeLinkCode(bytes);
  } catch (e) {
    if (isCryptoError(e, 'unknown_version') && bytes?.[0] === 1) throw new EngineError('invalid_code', 'That link code is from an older version of Petrel. Reload Petrel on the new device and enter the code it shows then.');
    throw new EngineError('invalid_code', 'That is not a Petrel link code, or it was mistyped. Copy it again from the new device.');
  }
  const list = await deviceList(ctx, me.username, { refresh: true });
  const listed = findDevice(list, device.deviceId);
  if (listed) {
    if (listed.removedAt !== 0) throw new EngineError('already_linked', 'That device was removed from this account; it cannot be linked again with the same code.');
    if (!equalBytes(listed.signingKey, device.signingKey) || !equalBytes(listed.dhKey, device.dhKey)) throw new EngineError('invalid_code', 'That link code does not match the device this account lists under its id. Copy it again from the new device.');
    // Approved before, and the approval gave up waiting for the device (it was offline, or closed):
    // approving again goes on from there. Sending it the account key twice does no harm.
    return { device, name: listed.name };
  }
  const deviceName = deviceNameOrDefault(name, `Device ${list.devices.length + 1}`);
  const signed = signDeviceList(withDeviceAdded(list, device, deviceName, ctx.now()), me.account);
  await ctx.api.putDeviceList(signed.bytes);
  ctx.lists.set(me.username, { list: await deviceList(ctx, me.username, { refresh: true }), at: ctx.now() });
  return { device, name: deviceName };
}

export function accountSecretFor(ctx: Ctx, list: DeviceList, secretB64: string): Uint8Array | null {
  try {
    const secret = fromB64(secretB64);
    return equalBytes(accountKeyFromSecret(secret).publicKey, list.accountKey) ? secret : null;
  } catch {
    return null;
  }
}

export async function setAccountSecret(ctx: Ctx, secret: Uint8Array): Promise<void> {
  const id = (await ctx.store.read(['meta'], (tx) => tx.get('meta', 'identity')))!.value as IdentityRecord;
  await saveIdentity(ctx, { ...id, accountSecret: secret });
}

/** `self`: log out, removing this very device (the caller then stops using its token). */
export async function removeDevice(ctx: Ctx, deviceB64: string, opts: { self?: boolean } = {}): Promise<void> {
  const me = ctx.requireMe();
  if (!me.account) throw new EngineError('not_ready', 'This device has not received the account key yet.');
  const list = await deviceList(ctx, me.username, { refresh: true });
  const id = fromB64(deviceB64);
  if (!activeDevices(list).some((d) => equalBytes(d.deviceId, id))) throw new EngineError('unknown_device', 'No such device on this account.');
  if (equalBytes(id, me.device.deviceId) !== !!opts.self) {
    throw new EngineError('invalid_request', opts.self ? 'That is another device.' : 'To remove this device, log out of it (Settings → Log out of this device).');
  }
  const signed = signDeviceList(withDeviceRemoved(list, id, ctx.now()), me.account);
  await ctx.api.putDeviceList(signed.bytes);
  // Our own removal stopped our token: there is nothing left to refresh.
  if (!opts.self) await deviceList(ctx, me.username, { refresh: true });
}

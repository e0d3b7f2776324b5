/**
 * Signed device list (PROTOCOL.md §4): the versioned list of every device a user has ever
 * added, each active or removed, signed by the account key. Senders encrypt to exactly the
 * active devices; users see every device ever added; a relay cannot add a device (it has no
 * account key) nor roll the list back (versions only go up, removed devices stay removed).
 *
 * Layout (big-endian), then a 64-byte Ed25519 signature over
 * u8(len(ctx)) || ctx || body, ctx = "Petrel/v1/sig/device-list":
 *
 *   | 1  | version = 0x01
 *   | 1+n| userId (u8 length, UTF-8, 1..64 bytes, already normalised by the caller)
 *   | 32 | account public key (Ed25519)
 *   | 8  | list version (u64, >= 1)
 *   | 2  | entry count (u16, 1..256)
 *   | .. | entries: deviceId 16 | signingKey 32 | dhKey 32 | name (u8 length, UTF-8, 0..64)
 *   |    |          | addedAt u64 ms | removedAt u64 ms (0 = active)
 *   | 64 | signature
 */
import { equalBytes, fromUtf8, Reader, utf8, Writer } from './bytes.ts';
import { MAX_DEVICE_LIST_ENTRIES, SIG_CONTEXT } from './consts.ts';
import { CryptoError } from './errors.ts';
import { type AccountKeyPair, type DevicePublic, deriveDeviceId } from './identity.ts';
import { kdfLabel } from './kdf.ts';
import { ed25519Sign, ed25519Verify } from './sodium.ts';

export const DEVICE_LIST_VERSION = 0x01;

export interface DeviceEntry extends DevicePublic {
  readonly name: string;
  readonly addedAt: number;
  /** 0 while the device is active; the removal time (ms) once removed. */
  readonly removedAt: number;
}

export interface DeviceList {
  readonly userId: string;
  readonly accountKey: Uint8Array;
  readonly version: number;
  readonly devices: readonly DeviceEntry[];
}

/** A verified list together with the exact bytes it was verified from (what relays store and serve). */
export interface SignedDeviceList {
  readonly list: DeviceList;
  readonly bytes: Uint8Array;
}

function encodeBody(list: DeviceList): Uint8Array {
  const w = new Writer(128 + list.devices.length * 120);
  w.u8(DEVICE_LIST_VERSION).var8(utf8(list.userId)).bytes(list.accountKey).u64(list.version).u16(list.devices.length);
  for (const d of list.devices) {
    w.bytes(d.deviceId).bytes(d.signingKey).bytes(d.dhKey).var8(utf8(d.name)).u64(d.addedAt).u64(d.removedAt);
  }
  return w.finish();
}

function signedMessage(body: Uint8Array): Uint8Array {
  const ctx = kdfLabel(SIG_CONTEXT.deviceList);
  const m = new Uint8Array(ctx.length + body.length);
  m.set(ctx);
  m.set(body, ctx.length);
  return m;
}

/** Structural checks shared by signing and decoding: the rules a list must obey on its own. */
function checkList(list: DeviceList): void {
  const idBytes = utf8(list.userId);
  if (idBytes.length < 1 || idBytes.length > 64) throw new CryptoError('device_list_invalid', 'userId must be 1..64 bytes');
  if (list.accountKey.length !== 32) throw new CryptoError('device_list_invalid', 'accountKey must be 32 bytes');
  if (!Number.isSafeInteger(list.version) || list.version < 1) throw new CryptoError('device_list_invalid', 'version must be >= 1');
  if (list.devices.length < 1 || list.devices.length > MAX_DEVICE_LIST_ENTRIES) {
    throw new CryptoError('device_list_invalid', `a list holds 1..${MAX_DEVICE_LIST_ENTRIES} devices`);
  }
  const seen = new Set<string>();
  for (const d of list.devices) {
    const key = String.fromCharCode(...d.deviceId);
    if (seen.has(key)) throw new CryptoError('device_list_invalid', 'duplicate device id');
    seen.add(key);
    if (d.signingKey.length !== 32 || d.dhKey.length !== 32 || d.deviceId.length !== 16) {
      throw new CryptoError('device_list_invalid', 'device key lengths');
    }
    if (!equalBytes(deriveDeviceId(d.signingKey, d.dhKey), d.deviceId)) {
      throw new CryptoError('device_list_invalid', 'device id does not match its keys');
    }
    if (utf8(d.name).length > 64) throw new CryptoError('device_list_invalid', 'device name longer than 64 bytes');
    if (d.removedAt !== 0 && d.removedAt < d.addedAt) throw new CryptoError('device_list_invalid', 'removed before added');
  }
}

export function signDeviceList(list: DeviceList, account: AccountKeyPair): SignedDeviceList {
  if (!equalBytes(list.accountKey, account.publicKey)) {
    throw new CryptoError('identity_mismatch', 'list names another account key');
  }
  checkList(list);
  const body = encodeBody(list);
  const sig = ed25519Sign(signedMessage(body), account.secretKey);
  const bytes = new Uint8Array(body.length + 64);
  bytes.set(body);
  bytes.set(sig, body.length);
  return { list, bytes };
}

/** Decodes and checks the structure and signature (against the key inside). No history checks. */
export function decodeDeviceList(bytes: Uint8Array): DeviceList {
  if (bytes.length < 64 + 1) throw new CryptoError('truncated', 'device list: shorter than a signature');
  const body = bytes.subarray(0, bytes.length - 64);
  const sig = bytes.subarray(bytes.length - 64);
  const r = new Reader(body, 'device list');
  r.version([DEVICE_LIST_VERSION]);
  const userId = fromUtf8(r.var8('userId'), 'userId');
  const accountKey = r.bytes(32, 'accountKey').slice();
  const version = r.u64('version');
  const count = r.u16('count');
  if (count > MAX_DEVICE_LIST_ENTRIES) throw new CryptoError('malformed', 'device list: too many entries');
  const devices: DeviceEntry[] = [];
  for (let i = 0; i < count; i++) {
    devices.push({
      deviceId: r.bytes(16, 'deviceId').slice(),
      signingKey: r.bytes(32, 'signingKey').slice(),
      dhKey: r.bytes(32, 'dhKey').slice(),
      name: fromUtf8(r.var8('name'), 'name'),
      addedAt: r.u64('addedAt'),
      removedAt: r.u64('removedAt'),
    });
  }
  r.end();
  const list: DeviceList = { userId, accountKey, version, devices };
  checkList(list);
  if (!ed25519Verify(sig, signedMessage(body), accountKey)) {
    throw new CryptoError('bad_signature', 'device list signature');
  }
  return list;
}

export interface VerifyDeviceListOptions {
  /** The user we asked for; the list must name exactly this (normalised) user id. */
  readonly userId: string;
  /** The account key pinned on first use; a different one is `identity_mismatch`. */
  readonly pinnedAccountKey?: Uint8Array;
  /** The newest list we accepted before, to refuse rollback and resurrection. */
  readonly previous?: SignedDeviceList;
}

/**
 * Full verification: signature, user, pinned key, and against the previous list:
 * the version only goes up (an equal version must be the very same bytes), no device
 * disappears, and a removed device never comes back.
 */
export function verifyDeviceList(bytes: Uint8Array, opts: VerifyDeviceListOptions): DeviceList {
  const list = decodeDeviceList(bytes);
  if (list.userId !== opts.userId) throw new CryptoError('identity_mismatch', 'device list is for another user');
  if (opts.pinnedAccountKey && !equalBytes(opts.pinnedAccountKey, list.accountKey)) {
    throw new CryptoError('identity_mismatch', 'account key differs from the pinned one');
  }
  const prev = opts.previous;
  if (prev) {
    if (!equalBytes(prev.list.accountKey, list.accountKey)) {
      throw new CryptoError('identity_mismatch', 'account key differs from the previous list');
    }
    if (list.version < prev.list.version) throw new CryptoError('device_list_rollback', 'version went down');
    if (list.version === prev.list.version) {
      if (!equalBytes(bytes, prev.bytes)) throw new CryptoError('device_list_rollback', 'same version, different list');
      return list;
    }
    for (const old of prev.list.devices) {
      const now = list.devices.find((d) => equalBytes(d.deviceId, old.deviceId));
      if (!now) throw new CryptoError('device_list_invalid', 'a device disappeared from the list');
      if (old.removedAt !== 0 && now.removedAt !== old.removedAt) {
        throw new CryptoError('device_list_invalid', 'a removed device came back');
      }
    }
  }
  return list;
}

export function activeDevices(list: DeviceList): DeviceEntry[] {
  return list.devices.filter((d) => d.removedAt === 0);
}

export function findDevice(list: DeviceList, deviceId: Uint8Array): DeviceEntry | undefined {
  return list.devices.find((d) => equalBytes(d.deviceId, deviceId));
}

/** The first list of a new account: its first device, version 1. */
export function newDeviceList(userId: string, accountKey: Uint8Array, first: DevicePublic, name: string, now: number): DeviceList {
  return { userId, accountKey, version: 1, devices: [{ ...pickPublic(first), name, addedAt: now, removedAt: 0 }] };
}

export function withDeviceAdded(list: DeviceList, device: DevicePublic, name: string, now: number): DeviceList {
  if (findDevice(list, device.deviceId)) throw new CryptoError('device_list_invalid', 'device already in the list');
  return {
    ...list,
    version: list.version + 1,
    devices: [...list.devices, { ...pickPublic(device), name, addedAt: now, removedAt: 0 }],
  };
}

export function withDeviceRemoved(list: DeviceList, deviceId: Uint8Array, now: number): DeviceList {
  const d = findDevice(list, deviceId);
  if (!d || d.removedAt !== 0) throw new CryptoError('unknown_device', 'no such active device');
  return {
    ...list,
    version: list.version + 1,
    // removedAt 0 means active, so a removal is never recorded as 0 (now = addedAt = 0 would keep it active).
    devices: list.devices.map((e) => (e === d ? { ...e, removedAt: Math.max(now, e.addedAt, 1) } : e)),
  };
}

function pickPublic(d: DevicePublic): DevicePublic {
  return { deviceId: d.deviceId, signingKey: d.signingKey, dhKey: d.dhKey };
}

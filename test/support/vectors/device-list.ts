// device-list.json: a signed device list through its history (first device, two additions, a
// removal) and lists made to break the rules, then verifications with their outcomes
// (PROTOCOL.md §4). Ed25519 signatures are deterministic, so signed bytes are known answers.
import {
  type AccountKeyPair,
  activeDevices,
  concat,
  type DeviceKeyPair,
  equalBytes,
  type DeviceList,
  decodeDeviceList,
  generateAccountKey,
  generateDevice,
  newDeviceList,
  SIG_CONTEXT,
  type SignedDeviceList,
  seededRng,
  signDeviceList,
  utf8,
  verifyDeviceList,
  withDeviceAdded,
  withDeviceRemoved,
} from '../../../crypto/index.ts';
import {
  applyEdit,
  attempt,
  type CaseSpec,
  type Computed,
  earlierCase,
  errorCode,
  hex,
  In,
  type JsonObject,
  seedHex,
  type Tally,
  type Topic,
  type VectorCase,
  VectorShapeError,
  setEdit,
  truncateEdit,
  xorEdit,
} from './core.ts';
import { ed25519Verify } from './independent.ts';
import { devicePublicJson, labelPrefix } from './parts.ts';

interface History {
  readonly account: AccountKeyPair;
  readonly other: AccountKeyPair;
  readonly devices: readonly DeviceKeyPair[];
  readonly signed: readonly SignedDeviceList[];
}

const T0 = 1_700_000_000_000;
const USER = 'alice@petrel.example';

/** Builds one list from an op on an earlier one. "drop" and "restore" break §4's rules on purpose. */
function buildList(op: In, h: { account: AccountKeyPair; other: AccountKeyPair; devices: readonly DeviceKeyPair[] }, lists: DeviceList[], userId: string): DeviceList {
  const kind = op.str('op');
  const device = (): DeviceKeyPair => {
    const d = h.devices[op.num('device')];
    if (!d) throw new VectorShapeError('no such device');
    return d;
  };
  if (kind === 'new') {
    const account = op.has('account') && op.str('account') === 'other' ? h.other : h.account;
    return newDeviceList(userId, account.publicKey, device(), op.str('name'), op.num('now'));
  }
  const from = lists[op.num('from')];
  if (!from) throw new VectorShapeError('"from" names no earlier list');
  if (kind === 'add') return withDeviceAdded(from, device(), op.str('name'), op.num('now'));
  if (kind === 'remove') return withDeviceRemoved(from, device().deviceId, op.num('now'));
  const id = device().deviceId;
  const same = (a: Uint8Array) => a.length === id.length && a.every((b, k) => b === id[k]);
  if (kind === 'drop') return { ...from, version: from.version + 1, devices: from.devices.filter((d) => !same(d.deviceId)) };
  if (kind === 'restore') {
    return { ...from, version: from.version + 1, devices: from.devices.map((d) => (same(d.deviceId) ? { ...d, removedAt: 0 } : d)) };
  }
  throw new VectorShapeError(`unknown list op ${kind}`);
}

function computeHistory(i: In): Computed {
  const rng = seededRng(i.hex('seed'));
  const account = generateAccountKey(rng);
  const devices = Array.from({ length: i.num('devices') }, () => generateDevice(rng));
  const other = generateAccountKey(rng);
  const userId = i.str('userId');
  const lists: DeviceList[] = [];
  const signed: SignedDeviceList[] = [];
  for (const op of i.objs('lists')) {
    const list = buildList(op, { account, other, devices }, lists, userId);
    lists.push(list);
    signed.push(signDeviceList(list, equalBytes(list.accountKey, other.publicKey) ? other : account));
  }
  const kept: History = { account, other, devices, signed };
  return {
    output: {
      accountPublicKey: hex(account.publicKey),
      otherAccountPublicKey: hex(other.publicKey),
      devices: devices.map(devicePublicJson),
      lists: signed.map((s) => ({ version: s.list.version, bytes: hex(s.bytes), signature: hex(s.bytes.subarray(s.bytes.length - 64)) })),
    },
    keep: kept,
  };
}

function computeVerify(i: In, h: History): Computed {
  const pick = (k: number): SignedDeviceList => {
    const s = h.signed[k];
    if (!s) throw new VectorShapeError(`no list ${k}`);
    return s;
  };
  const target = pick(i.num('list'));
  // `edit` is one edit; `edits` several, applied in order.
  const edits = i.has('edits') ? i.objs('edits') : i.has('edit') ? [i.obj('edit')] : [];
  const bytes = edits.reduce((b, e) => applyEdit(b, e), target.bytes);
  const pinned = i.has('pinned') ? (i.str('pinned') === 'other' ? h.other : h.account).publicKey : undefined;
  const previous = i.optNum('previous');
  const opts = { userId: i.str('userId'), ...(pinned ? { pinnedAccountKey: pinned } : {}), ...(previous !== null ? { previous: pick(previous) } : {}) };
  const out: JsonObject = edits.length > 0 ? { bytes: hex(bytes) } : {};
  const r = attempt(() => verifyDeviceList(bytes, opts));
  if (!r.ok) return { output: { ...out, error: r.error } };
  return { output: { ...out, version: r.value.version, active: activeDevices(r.value).map((d) => hex(d.deviceId)) } };
}

function computeOpError(i: In, h: History): Computed {
  const base = h.signed[i.num('list')];
  if (!base) throw new VectorShapeError('no such list');
  const lists = [base.list];
  return { output: { error: errorCode(() => buildList(In.of({ ...i.obj('op').raw, from: 0 }, 'op'), { ...h }, lists, base.list.userId)) } };
}

function verifyCase(name: string, input: JsonObject, expect?: string): CaseSpec {
  return { name, input: { from: 'history', userId: USER, pinned: 'account', previous: null, ...input }, ...(expect ? { expect } : {}) };
}

/** Length of a list body with these device names (§4 layout). */
function bodyLength(userId: string, names: readonly string[]): number {
  return 1 + 1 + utf8(userId).length + 32 + 8 + 2 + names.reduce((n, name) => n + 16 + 32 + 32 + 1 + utf8(name).length + 8 + 8, 0);
}

/** Byte offset of the u16 entry count in a list body. */
function countOffset(userId: string): number {
  return 1 + 1 + utf8(userId).length + 32 + 8;
}

/** Byte offset of the last byte of entry 0's addedAt in a list body. */
function addedAtOffset(userId: string, firstName: string): number {
  return bodyLength(userId, []) + 16 + 32 + 32 + 1 + utf8(firstName).length + 7;
}

export const deviceListTopic: Topic = {
  file: 'device-list.json',
  description:
    'Signed device lists (body || Ed25519 signature over u8(len(ctx)) || ctx || body, ctx = "Petrel/v1/sig/device-list"). ' +
    'Case "history": rng = seededRng(seed) draws the account key, `devices` device keys, then a second ("other") account key; ' +
    'each entry of `lists` is built by an op: new (first list, version 1), add, remove (sets removedAt), and, breaking the rules on purpose, ' +
    'drop (deletes an entry) and restore (clears removedAt); every list is signed by its account key. ' +
    'Verify cases run the full §4 verification of list `list` (optionally edited) for userId, with the pinned key and previous list given, ' +
    'and record the accepted version and active device ids, or the error; `edit` (one) or `edits` (several, in order) change the bytes first. ' +
    'Decoding refuses, in order: a count above 256 as soon as it is read (malformed), a user id or name that is not UTF-8 (malformed), ' +
    'bytes after the last entry (trailing_bytes), a structural rule such as count 0 (device_list_invalid), then the signature (bad_signature). ' +
    'Op cases apply an op to list `list` and record the error: removing a device already removed (unknown_device), adding a listed one ' +
    '(device_list_invalid).',
  spec: 'crypto/PROTOCOL.md §4',
  cases() {
    const names = { laptop: 'laptop', phone: 'phone', tablet: 'tablet' };
    return [
      {
        name: 'history',
        input: {
          seed: seedHex('Petrel test vectors: device list'),
          userId: USER,
          devices: 3,
          lists: [
            { op: 'new', device: 0, name: names.laptop, now: T0 },
            { op: 'add', from: 0, device: 1, name: names.phone, now: T0 + 60_000 },
            { op: 'add', from: 1, device: 2, name: names.tablet, now: T0 + 120_000 },
            { op: 'remove', from: 2, device: 1, now: T0 + 180_000 },
            { op: 'add', from: 1, device: 2, name: 'tablet (another)', now: T0 + 120_000 },
            { op: 'drop', from: 3, device: 0 },
            { op: 'restore', from: 3, device: 1 },
            { op: 'new', account: 'other', device: 0, name: names.laptop, now: T0 },
          ],
        },
      },
      verifyCase('accept version 1 on first use', { list: 0, pinned: null }),
      verifyCase('accept version 2 after 1', { list: 1, previous: 0 }),
      verifyCase('accept version 3 after 2', { list: 2, previous: 1 }),
      verifyCase('accept version 4 (phone removed) after 3', { list: 3, previous: 2 }),
      verifyCase('accept version 4 after 1 (versions skipped)', { list: 3, previous: 0 }),
      verifyCase('accept the same bytes again', { list: 3, previous: 3 }),
      verifyCase('tampered signature', { list: 2, previous: 1, edit: xorEdit(bodyLength(USER, Object.values(names)) + 10, 0x04) }, 'bad_signature'),
      verifyCase('tampered body (addedAt)', { list: 2, previous: 1, edit: xorEdit(addedAtOffset(USER, names.laptop), 0x01) }, 'bad_signature'),
      verifyCase('rollback to an older version', { list: 1, previous: 2 }, 'device_list_rollback'),
      verifyCase('rollback: same version, different list', { list: 4, previous: 2 }, 'device_list_rollback'),
      verifyCase('list of another user', { list: 0, userId: 'mallory@petrel.example' }, 'identity_mismatch'),
      verifyCase('account key is not the pinned one', { list: 7 }, 'identity_mismatch'),
      verifyCase('account key changed since the previous list', { list: 7, pinned: null, previous: 0 }, 'identity_mismatch'),
      verifyCase('a device disappeared', { list: 5, previous: 3 }, 'device_list_invalid'),
      verifyCase('a removed device came back', { list: 6, previous: 3 }, 'device_list_invalid'),
      { name: 'removing a removed device', input: { from: 'history', list: 3, op: { op: 'remove', device: 1, now: T0 + 240_000 } }, expect: 'unknown_device' },
      { name: 'adding a listed device', input: { from: 'history', list: 3, op: { op: 'add', device: 2, name: 'again', now: T0 + 240_000 } }, expect: 'device_list_invalid' },
      verifyCase('entry count 0 (the entry cut off; the last 64 bytes stand as the signature)', {
        list: 0,
        pinned: null,
        edits: [truncateEdit(countOffset(USER) + 2 + 64), setEdit(countOffset(USER), '0000')],
      }, 'device_list_invalid'),
      verifyCase('entry count 257', { list: 0, pinned: null, edit: setEdit(countOffset(USER), '0101') }, 'malformed'),
      verifyCase('device name not UTF-8', { list: 0, pinned: null, edit: setEdit(countOffset(USER) + 2 + 16 + 32 + 32 + 1, 'ff') }, 'malformed'),
      verifyCase('user id not UTF-8', { list: 0, pinned: null, edit: setEdit(2, 'c0') }, 'malformed'),
    ];
  },
  compute(c, earlier) {
    const i = In.of(c.input, 'input');
    if (!i.has('from')) return computeHistory(i);
    const h = earlierCase<History>(earlier, i.str('from'));
    return i.has('op') ? computeOpError(i, h) : computeVerify(i, h);
  },
  crossCheck(c: VectorCase, _kept, t: Tally) {
    const o = In.of(c.output, 'output');
    if (!o.has('lists')) return;
    // Every recorded list: its signature, checked by OpenSSL over L(ctx) || body, is its last 64 bytes.
    for (const l of o.objs('lists')) {
      const bytes = l.hex('bytes');
      const body = bytes.subarray(0, bytes.length - 64);
      t.bytes(l.hex('signature'), bytes.subarray(bytes.length - 64), 'signature is the last 64 bytes');
      const list = decodeDeviceList(bytes);
      t.expect(list.version === l.num('version'), `list decodes to version ${l.num('version')}`);
      t.expect(ed25519Verify(l.hex('signature'), concat(labelPrefix(SIG_CONTEXT.deviceList), body), list.accountKey), 'signature vs OpenSSL');
    }
  },
};

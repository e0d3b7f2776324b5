// Signed device lists (PROTOCOL.md §4): signing and verification, every bit flipped, rollback,
// identity checks, and the structural rules, both as signDeviceList refuses to sign them and as
// decodeDeviceList refuses a list an account key did sign (forged here with libsodium directly).
import { beforeAll, describe, expect, test } from 'vitest';
import {
  activeDevices,
  type AccountKeyPair,
  decodeDeviceList,
  type DeviceEntry,
  type DeviceList,
  generateAccountKey,
  generateDevice,
  newDeviceList,
  ready,
  SIG_CONTEXT,
  type SignedDeviceList,
  signDeviceList,
  utf8,
  verifyDeviceList,
  withDeviceAdded,
  withDeviceRemoved,
  Writer,
} from '../../crypto/index.ts';
import { expectCode, flipBit, outcome, rngFor, sodium } from './helpers.ts';

beforeAll(async () => {
  await ready();
  await sodium.ready;
});

/** Encodes and signs a list exactly as §4 says, without signDeviceList's structural checks. */
function signRaw(list: DeviceList, account: AccountKeyPair, count = list.devices.length): Uint8Array {
  const w = new Writer().u8(1).var8(utf8(list.userId)).bytes(list.accountKey).u64(list.version).u16(count);
  for (const d of list.devices) w.bytes(d.deviceId).bytes(d.signingKey).bytes(d.dhKey).var8(utf8(d.name)).u64(d.addedAt).u64(d.removedAt);
  const body = w.finish();
  const ctx = utf8(SIG_CONTEXT.deviceList);
  const sig = sodium.crypto_sign_detached(new Writer().u8(ctx.length).bytes(ctx).bytes(body).finish(), account.secretKey);
  return new Uint8Array([...body, ...sig]);
}

function setUp(label: string) {
  const rng = rngFor(`device-list/${label}`);
  const account = generateAccountKey(rng);
  const phone = generateDevice(rng);
  const laptop = generateDevice(rng);
  const tablet = generateDevice(rng);
  const v1 = newDeviceList('bob', account.publicKey, phone, 'phone', 1000);
  const v2 = withDeviceAdded(v1, laptop, 'laptop', 2000);
  const v3 = withDeviceAdded(v2, tablet, 'tablet', 3000);
  const v4 = withDeviceRemoved(v3, laptop.deviceId, 4000);
  const signed = [v1, v2, v3, v4].map((l) => signDeviceList(l, account));
  return { rng, account, phone, laptop, tablet, lists: [v1, v2, v3, v4], signed };
}

describe('sign and verify', () => {
  test('a chain of versions verifies, each against the previous', () => {
    const { account, signed, laptop } = setUp('chain');
    let prev: SignedDeviceList | undefined;
    for (const s of signed) {
      const list = verifyDeviceList(s.bytes, { userId: 'bob', pinnedAccountKey: account.publicKey, previous: prev });
      expect(list).toEqual(s.list);
      prev = s;
    }
    const last = decodeDeviceList(signed[3]!.bytes);
    expect(activeDevices(last).map((d) => d.name)).toEqual(['phone', 'tablet']);
    expect(last.devices.find((d) => d.name === 'laptop')!.removedAt).toBe(4000);
    expect(last.devices[1]!.deviceId).toEqual(laptop.deviceId);
    // Skipping versions is fine; the same bytes again are fine.
    expect(verifyDeviceList(signed[3]!.bytes, { userId: 'bob', previous: signed[0] }).version).toBe(4);
    expect(verifyDeviceList(signed[3]!.bytes, { userId: 'bob', previous: signed[3] }).version).toBe(4);
  });

  test('every bit flipped is refused: bad_signature or a decode / structure code', () => {
    const { signed } = setUp('flip');
    const bytes = signed[3]!.bytes;
    const sigAt = bytes.length - 64;
    const accountAt = 1 + 1 + 3; // version, userId length, "bob"
    const firstEntry = accountAt + 32 + 8 + 2;
    const tally: Record<string, number> = {};
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const byte = bit >> 3;
      const code = outcome(() => decodeDeviceList(flipBit(bytes, bit)));
      tally[code] = (tally[code] ?? 0) + 1;
      if (byte === 0) expect(code).toBe('unknown_version');
      else if (byte >= sigAt || (byte >= accountAt && byte < accountAt + 32)) expect(code, `bit ${bit}`).toBe('bad_signature');
      else if (byte >= firstEntry && byte < firstEntry + 80) expect(code, `bit ${bit}`).toBe('device_list_invalid');
      else expect(['bad_signature', 'truncated', 'trailing_bytes', 'malformed', 'device_list_invalid'], `bit ${bit}`).toContain(code);
    }
    expect(tally['ok']).toBeUndefined();
    expect(tally['bad_signature']).toBeGreaterThanOrEqual((64 + 32) * 8);
    expect(tally['device_list_invalid']).toBeGreaterThanOrEqual(3 * 80 * 8);
  });
});

describe('history checks', () => {
  test('rollback to a lower version is device_list_rollback', () => {
    const { signed } = setUp('rollback');
    for (let newer = 1; newer < 4; newer++) {
      for (let older = 0; older < newer; older++) {
        expectCode(() => verifyDeviceList(signed[older]!.bytes, { userId: 'bob', previous: signed[newer] }), 'device_list_rollback');
      }
    }
  });

  test('the same version with different bytes is device_list_rollback', () => {
    const { account, lists, signed } = setUp('same-version');
    const other = signDeviceList({ ...lists[2]!, devices: lists[2]!.devices.map((d, i) => (i === 0 ? { ...d, name: 'renamed' } : d)) }, account);
    expect(other.list.version).toBe(signed[2]!.list.version);
    expectCode(() => verifyDeviceList(other.bytes, { userId: 'bob', previous: signed[2] }), 'device_list_rollback');
  });

  test('another user, another pinned key, or an account key that changed: identity_mismatch', () => {
    const { rng, account, lists, signed } = setUp('identity');
    expectCode(() => verifyDeviceList(signed[0]!.bytes, { userId: 'alice' }), 'identity_mismatch');
    expectCode(() => verifyDeviceList(signed[0]!.bytes, { userId: 'Bob' }), 'identity_mismatch');
    const mallory = generateAccountKey(rng);
    expectCode(() => verifyDeviceList(signed[0]!.bytes, { userId: 'bob', pinnedAccountKey: mallory.publicKey }), 'identity_mismatch');
    // Mallory's own list for "bob", a higher version, after Bob's: refused against the previous list.
    const forged = signDeviceList({ ...lists[3]!, accountKey: mallory.publicKey, version: 9 }, mallory);
    expectCode(() => verifyDeviceList(forged.bytes, { userId: 'bob', previous: signed[3] }), 'identity_mismatch');
    expectCode(() => verifyDeviceList(forged.bytes, { userId: 'bob', pinnedAccountKey: account.publicKey }), 'identity_mismatch');
    // signDeviceList refuses to sign a list that names another account key.
    expectCode(() => signDeviceList(lists[0]!, mallory), 'identity_mismatch');
  });

  test('a user id with a leading BOM is another user id (not silently stripped)', () => {
    const { account, phone } = setUp('bom');
    const s = signDeviceList(newDeviceList('\uFEFFbob', account.publicKey, phone, '\uFEFFphone', 1), account);
    const list = decodeDeviceList(s.bytes);
    expect(list.userId).toBe('\uFEFFbob');
    expect(list.devices[0]!.name).toBe('\uFEFFphone');
    expectCode(() => verifyDeviceList(s.bytes, { userId: 'bob' }), 'identity_mismatch');
    expect(verifyDeviceList(s.bytes, { userId: '\uFEFFbob' }).userId).toBe('\uFEFFbob');
  });

  test('a removed device that comes back, or whose removal time changes: device_list_invalid', () => {
    const { account, lists, signed, laptop } = setUp('resurrect');
    const v4 = lists[3]!;
    const revive = (f: (d: DeviceEntry) => DeviceEntry) =>
      signDeviceList({ ...v4, version: 5, devices: v4.devices.map((d) => (d.name === 'laptop' ? f(d) : d)) }, account);
    expectCode(() => verifyDeviceList(revive((d) => ({ ...d, removedAt: 0 })).bytes, { userId: 'bob', previous: signed[3] }), 'device_list_invalid');
    expectCode(() => verifyDeviceList(revive((d) => ({ ...d, removedAt: 5000 })).bytes, { userId: 'bob', previous: signed[3] }), 'device_list_invalid');
    // Re-adding the same device (same keys, so same id) is refused when building the list, too.
    expectCode(() => withDeviceAdded(v4, laptop, 'laptop again', 5000), 'device_list_invalid');
    // A removed device that is never mentioned as removed by the next list is fine if it stays removed.
    const ok = revive((d) => d);
    expect(verifyDeviceList(ok.bytes, { userId: 'bob', previous: signed[3] }).version).toBe(5);
  });

  test('a device that disappears from the list: device_list_invalid', () => {
    const { account, lists, signed } = setUp('disappear');
    for (const name of ['phone', 'laptop', 'tablet']) {
      const dropped = signDeviceList({ ...lists[3]!, version: 5, devices: lists[3]!.devices.filter((d) => d.name !== name) }, account);
      expectCode(() => verifyDeviceList(dropped.bytes, { userId: 'bob', previous: signed[3] }), 'device_list_invalid', name);
    }
  });

  test('withDeviceRemoved of an unknown or already removed device: unknown_device', () => {
    const { rng, lists, laptop } = setUp('remove');
    expectCode(() => withDeviceRemoved(lists[3]!, laptop.deviceId, 9), 'unknown_device');
    expectCode(() => withDeviceRemoved(lists[3]!, generateDevice(rng).deviceId, 9), 'unknown_device');
  });
});

describe('structural rules', () => {
  const cases: [string, (l: DeviceList) => DeviceList][] = [
    ['duplicate device ids', (l) => ({ ...l, devices: [...l.devices, l.devices[0]!] })],
    ['an id that does not match its keys', (l) => ({ ...l, devices: l.devices.map((d, i) => (i === 1 ? { ...d, dhKey: l.devices[2]!.dhKey } : d)) })],
    ['another device id on valid keys', (l) => ({ ...l, devices: l.devices.map((d, i) => (i === 1 ? { ...d, deviceId: l.devices[2]!.deviceId.map((x) => x ^ 1) } : d)) })],
    ['removed before added', (l) => ({ ...l, devices: l.devices.map((d, i) => (i === 0 ? { ...d, removedAt: d.addedAt - 1 } : d)) })],
    ['a name longer than 64 bytes', (l) => ({ ...l, devices: l.devices.map((d, i) => (i === 0 ? { ...d, name: 'é'.repeat(33) } : d)) })],
    ['no devices', (l) => ({ ...l, devices: [] })],
    ['an empty user id', (l) => ({ ...l, userId: '' })],
    ['a user id longer than 64 bytes', (l) => ({ ...l, userId: 'b'.repeat(65) })],
    ['version 0', (l) => ({ ...l, version: 0 })],
  ];
  for (const [what, edit] of cases) {
    test(`${what}: signDeviceList refuses, and a signed copy does not decode (device_list_invalid)`, () => {
      const { account, lists } = setUp(`rules/${what}`);
      const bad = edit(lists[2]!);
      expectCode(() => signDeviceList(bad, account), 'device_list_invalid', 'sign');
      expectCode(() => decodeDeviceList(signRaw(bad, account)), 'device_list_invalid', 'decode');
    });
  }

  test('a name of exactly 64 bytes and a 64-byte user id are fine', () => {
    const { account, lists } = setUp('rules/limits');
    const l = { ...lists[2]!, userId: 'b'.repeat(64), devices: lists[2]!.devices.map((d) => ({ ...d, name: 'n'.repeat(64) })) };
    expect(decodeDeviceList(signDeviceList(l, account).bytes)).toEqual(l);
    expect(decodeDeviceList(signRaw(l, account))).toEqual(l);
  });

  test('an entry count above MAX_DEVICE_LIST_ENTRIES is malformed; a count that disagrees with the entries is refused', () => {
    const { account, lists } = setUp('rules/count');
    expectCode(() => decodeDeviceList(signRaw(lists[2]!, account, 257)), 'malformed');
    expectCode(() => decodeDeviceList(signRaw(lists[2]!, account, 4)), 'truncated');
    expectCode(() => decodeDeviceList(signRaw(lists[2]!, account, 2)), 'trailing_bytes');
  });
});

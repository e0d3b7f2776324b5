// withDeviceRemoved (PROTOCOL.md §4) always records a removal: removedAt 0 means "active", so a device
// added and removed at time 0 (clocks at the epoch, a test harness, a restored list) must not come
// out of the "removed" list still active while the version went up.
import { beforeAll, expect, test } from 'vitest';
import {
  activeDevices,
  equalBytes,
  generateAccountKey,
  generateDevice,
  newDeviceList,
  ready,
  seededRng,
  signDeviceList,
  verifyDeviceList,
  withDeviceAdded,
  withDeviceRemoved,
} from '../../crypto/index.ts';

beforeAll(ready);

test('a device removed at time 0 is removed, and stays removed', () => {
  const rng = seededRng(new Uint8Array(32).fill(77));
  const account = generateAccountKey(rng);
  const first = generateDevice(rng);
  const second = generateDevice(rng);
  const v1 = newDeviceList('alice', account.publicKey, first, 'laptop', 0);
  const v2 = withDeviceAdded(v1, second, 'phone', 0);
  const v3 = withDeviceRemoved(v2, second.deviceId, 0);
  expect(v3.version).toBe(3);
  const removed = v3.devices.find((d) => equalBytes(d.deviceId, second.deviceId))!;
  expect(removed.removedAt).toBeGreaterThan(0);
  expect(removed.removedAt).toBeGreaterThanOrEqual(removed.addedAt);
  expect(activeDevices(v3).map((d) => d.name)).toEqual(['laptop']);

  const s2 = signDeviceList(v2, account);
  const s3 = signDeviceList(v3, account);
  const verified = verifyDeviceList(s3.bytes, { userId: 'alice', pinnedAccountKey: account.publicKey, previous: s2 });
  expect(activeDevices(verified)).toHaveLength(1);
  // And it cannot be brought back: a v4 listing it active again is refused.
  const resurrected = { ...v3, version: 4, devices: v3.devices.map((d) => ({ ...d, removedAt: 0 })) };
  expect(() => verifyDeviceList(signDeviceList(resurrected, account).bytes, { userId: 'alice', previous: s3 })).toThrow(/device_list_invalid/);
});

test('a removal later than the addition keeps its own time', () => {
  const rng = seededRng(new Uint8Array(32).fill(78));
  const account = generateAccountKey(rng);
  const d = generateDevice(rng);
  const e = generateDevice(rng);
  const list = withDeviceAdded(newDeviceList('bob', account.publicKey, d, 'a', 1_000), e, 'b', 2_000);
  expect(withDeviceRemoved(list, e.deviceId, 5_000).devices[1]!.removedAt).toBe(5_000);
  // A clock behind the addition time still records a time no earlier than the addition.
  expect(withDeviceRemoved(list, e.deviceId, 1_500).devices[1]!.removedAt).toBe(2_000);
});

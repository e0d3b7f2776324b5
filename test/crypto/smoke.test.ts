import { beforeAll, expect, test } from 'vitest';
import { decryptFromDevice, encryptForDevice, ready, seededRng, startSession, utf8, fromUtf8 } from '../../crypto/index.ts';
import { makeParty, takeBundle } from '../support/parties.ts';

beforeAll(ready);

test('alice and bob talk', () => {
  const rng = seededRng(new Uint8Array(32).fill(1));
  const a = makeParty('alice', rng);
  const b = makeParty('bob', rng);
  let ab = startSession({ active: null, inactive: [] }, a.device, b.pub, takeBundle(b), rng);
  const e1 = encryptForDevice(ab, utf8('hi bob'));
  ab = e1.record;
  const d1 = decryptFromDevice({ active: null, inactive: [] }, e1.message, b.device, a.pub, b.lookup, rng);
  expect(fromUtf8(d1.plaintext, 'x')).toBe('hi bob');
  let ba = d1.record;
  const e2 = encryptForDevice(ba, utf8('hi alice'));
  ba = e2.record;
  const d2 = decryptFromDevice(ab, e2.message, a.device, b.pub, a.lookup, rng);
  expect(fromUtf8(d2.plaintext, 'x')).toBe('hi alice');
  ab = d2.record;
  expect(ab.active!.pending).toBeNull();
  const e3 = encryptForDevice(ab, utf8('again'));
  expect(e3.message[1]).toBe(1);
  const d3 = decryptFromDevice(ba, e3.message, b.device, a.pub, b.lookup, rng);
  expect(fromUtf8(d3.plaintext, 'x')).toBe('again');
});

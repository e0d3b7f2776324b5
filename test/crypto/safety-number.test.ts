// Safety numbers (PROTOCOL.md §13): symmetric, 60 digits, sensitive to either key and either user
// id, and the QR payload verifies exactly when both fingerprints match.
import { beforeAll, describe, expect, test } from 'vitest';
import { compareBytes, fingerprint, fingerprintDigits, generateAccountKey, ready, safetyNumber, verifySafetyQr } from '../../crypto/index.ts';
import { expectCode, flipBit, rngFor, sodium } from './helpers.ts';

beforeAll(async () => {
  await ready();
  await sodium.ready;
});

function setUp(label: string) {
  const rng = rngFor(`safety/${label}`);
  return { rng, alice: generateAccountKey(rng).publicKey, bob: generateAccountKey(rng).publicKey, carol: generateAccountKey(rng).publicKey };
}

describe('safety numbers', () => {
  test('symmetric: both users compute the same 60 digits and QR payload', () => {
    const { alice, bob } = setUp('symmetric');
    const ab = safetyNumber('alice', alice, 'bob', bob);
    const ba = safetyNumber('bob', bob, 'alice', alice);
    expect(ab.digits).toBe(ba.digits);
    expect(ab.qr).toEqual(ba.qr);
    expect(ab.digits).toMatch(/^[0-9]{60}$/);
    expect(ab.qr.length).toBe(65);
    expect(ab.qr[0]).toBe(1);
    // Ordered by fingerprint bytes, each half the digits of one fingerprint.
    const fa = fingerprint('alice', alice);
    const fb = fingerprint('bob', bob);
    const [lo, hi] = compareBytes(fa, fb) < 0 ? [fa, fb] : [fb, fa];
    expect(ab.digits).toBe(fingerprintDigits(lo) + fingerprintDigits(hi));
    expect(ab.qr.subarray(1, 33)).toEqual(lo);
    expect(ab.qr.subarray(33)).toEqual(hi);
  });

  test('changes when either account key changes (even by one bit), or either user id', () => {
    const { alice, bob, carol } = setUp('changes');
    const base = safetyNumber('alice', alice, 'bob', bob);
    const variants = [
      safetyNumber('alice', carol, 'bob', bob),
      safetyNumber('alice', alice, 'bob', carol),
      safetyNumber('alice', flipBit(alice, 0), 'bob', bob),
      safetyNumber('alice', alice, 'bob', flipBit(bob, 255)),
      safetyNumber('alicf', alice, 'bob', bob),
      safetyNumber('alice', alice, 'bob2', bob),
    ];
    for (const v of variants) {
      expect(v.digits).not.toBe(base.digits);
      // Both halves are compared: a changed key changes its own half.
      expect(verifySafetyQr(base, v.qr)).toBe(false);
      expect(verifySafetyQr(v, base.qr)).toBe(false);
    }
    // The half belonging to the unchanged user stays the same.
    const onlyBob = safetyNumber('alice', carol, 'bob', bob);
    const bobDigits = fingerprintDigits(fingerprint('bob', bob));
    expect(onlyBob.digits.includes(bobDigits) && base.digits.includes(bobDigits)).toBe(true);
  });

  test('QR verification: true for the matching payload, false for any one-bit change, errors for malformed input', () => {
    const { alice, bob } = setUp('qr');
    const ours = safetyNumber('alice', alice, 'bob', bob);
    const theirs = safetyNumber('bob', bob, 'alice', alice);
    expect(verifySafetyQr(ours, theirs.qr)).toBe(true);
    for (let bit = 8; bit < 65 * 8; bit += 7) expect(verifySafetyQr(ours, flipBit(theirs.qr, bit))).toBe(false);
    // The two halves swapped: not the canonical order, not a match.
    const swapped = new Uint8Array([1, ...theirs.qr.subarray(33), ...theirs.qr.subarray(1, 33)]);
    expect(verifySafetyQr(ours, swapped)).toBe(false);
    expectCode(() => verifySafetyQr(ours, flipBit(theirs.qr, 1)), 'unknown_version');
    expectCode(() => verifySafetyQr(ours, theirs.qr.subarray(0, 64)), 'truncated');
    expectCode(() => verifySafetyQr(ours, new Uint8Array([...theirs.qr, 0])), 'trailing_bytes');
    expectCode(() => verifySafetyQr(ours, new Uint8Array(0)), 'truncated');
  });

  test('an account key of the wrong length is invalid_argument', () => {
    const { alice } = setUp('args');
    expectCode(() => fingerprint('alice', alice.subarray(0, 31)), 'invalid_argument');
    expectCode(() => safetyNumber('alice', alice, 'bob', new Uint8Array(33)), 'invalid_argument');
  });

  test('digits are 5 per 5-byte group, reduced mod 100000 and zero-padded', () => {
    const fp = new Uint8Array(32);
    expect(fingerprintDigits(fp)).toBe('0'.repeat(30));
    fp.fill(0xff);
    // 2^40 - 1 = 1099511627775 -> 27775
    expect(fingerprintDigits(fp)).toBe('27775'.repeat(6));
    fp.fill(0);
    fp[4] = 7;
    expect(fingerprintDigits(fp).slice(0, 10)).toBe('0000700000');
  });
});

/**
 * Safety numbers (PROTOCOL.md §13): a symmetric fingerprint of two users' account keys that
 * they compare in person (60 digits) or by scanning a QR code. Modelled on Signal's
 * NumericFingerprint, with BLAKE2b-512 in place of SHA-512:
 *
 *   h_0 = BLAKE2b-512(u8(23) || "Petrel/v1/safety-number" || u16(0) || accountKey || userId)
 *   h_i = BLAKE2b-512(h_{i-1} || accountKey), i = 1..5200
 *   fingerprint(user) = h_5200[0..32]
 *   digits(user) = for j in 0..5: (uint40be(fp[5j..5j+5]) mod 100000), 5 digits each  (30 digits)
 *   safety number = the two 30-digit strings, ordered by their fingerprints' bytes (60 digits)
 *   QR payload    = | 1 version=0x01 | 32 lower fingerprint | 32 higher fingerprint |
 *
 * Both users compute the same digits and the same QR payload, whoever is "local".
 */
import { compareBytes, concat, equalBytes, Reader, utf8 } from './bytes.ts';
import { LABEL, SAFETY_NUMBER_ITERATIONS } from './consts.ts';
import { CryptoError } from './errors.ts';
import { kdfLabel } from './kdf.ts';
import { blake2b } from './sodium.ts';

export const SAFETY_QR_VERSION = 0x01;

export function fingerprint(userId: string, accountKey: Uint8Array): Uint8Array {
  if (accountKey.length !== 32) throw new CryptoError('invalid_argument', 'accountKey must be 32 bytes');
  let h = blake2b(64, concat(kdfLabel(LABEL.safetyNumber), new Uint8Array(2), accountKey, utf8(userId)));
  const buf = new Uint8Array(64 + 32);
  buf.set(accountKey, 64);
  for (let i = 0; i < SAFETY_NUMBER_ITERATIONS; i++) {
    buf.set(h);
    h = blake2b(64, buf);
  }
  return h.slice(0, 32);
}

export function fingerprintDigits(fp: Uint8Array): string {
  let out = '';
  for (let j = 0; j < 6; j++) {
    let v = 0;
    for (let k = 0; k < 5; k++) v = v * 256 + fp[j * 5 + k]!;
    out += String(v % 100000).padStart(5, '0');
  }
  return out;
}

export interface SafetyNumber {
  /** 60 digits; show as 12 groups of 5. */
  readonly digits: string;
  readonly qr: Uint8Array;
}

export function safetyNumber(userA: string, keyA: Uint8Array, userB: string, keyB: Uint8Array): SafetyNumber {
  const fa = fingerprint(userA, keyA);
  const fb = fingerprint(userB, keyB);
  const [lo, hi] = compareBytes(fa, fb) <= 0 ? [fa, fb] : [fb, fa];
  const qr = new Uint8Array(65);
  qr[0] = SAFETY_QR_VERSION;
  qr.set(lo, 1);
  qr.set(hi, 33);
  return { digits: fingerprintDigits(lo) + fingerprintDigits(hi), qr };
}

/** Compares a scanned QR payload with ours: true only if both fingerprints match. */
export function verifySafetyQr(ours: SafetyNumber, scanned: Uint8Array): boolean {
  const r = new Reader(scanned, 'safety number QR');
  r.version([SAFETY_QR_VERSION]);
  r.bytes(64, 'fingerprints');
  r.end();
  return equalBytes(ours.qr, scanned);
}

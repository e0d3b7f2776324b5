// safety-number.json: fingerprints, the 60 digits and the QR payload of pairs of users
// (PROTOCOL.md §13); the fingerprint's 5,200 iterations are redone with OpenSSL's BLAKE2b-512.
import {
  concat,
  fingerprint,
  fingerprintDigits,
  generateAccountKey,
  kdf,
  LABEL,
  SAFETY_NUMBER_ITERATIONS,
  type SafetyNumber,
  safetyNumber,
  seededRng,
  utf8,
  verifySafetyQr,
} from '../../../crypto/index.ts';
import { applyEdit, attempt, type CaseSpec, type Computed, earlierCase, hex, In, type JsonObject, type Tally, type Topic, type VectorCase, xorEdit } from './core.ts';
import { blake2b512 } from './independent.ts';
import { labelPrefix, u16 } from './parts.ts';

/** h_0 = BLAKE2b-512(L(label) || u16(0) || accountKey || userId), which is KDF(label, u16(0) || accountKey || userId, 64). */
function h0(userId: string, key: Uint8Array): Uint8Array {
  return kdf(LABEL.safetyNumber, concat(u16(0), key, utf8(userId)), 64);
}

function side(userId: string, key: Uint8Array): JsonObject {
  const fp = fingerprint(userId, key);
  return { h0: hex(h0(userId, key)), fingerprint: hex(fp), digits: fingerprintDigits(fp) };
}

function computePair(i: In): Computed {
  const [ua, ka, ub, kb] = [i.str('userA'), i.hex('accountKeyA'), i.str('userB'), i.hex('accountKeyB')];
  const sn = safetyNumber(ua, ka, ub, kb);
  return { output: { a: side(ua, ka), b: side(ub, kb), digits: sn.digits, qr: hex(sn.qr) }, keep: sn };
}

function computeScan(i: In, ours: SafetyNumber): Computed {
  const scanned = applyEdit(ours.qr, i.obj('editQr'));
  const r = attempt(() => verifySafetyQr(ours, scanned));
  return { output: r.ok ? { qr: hex(scanned), match: r.value } : { qr: hex(scanned), error: r.error } };
}

/** Two account keys drawn from a fixed seed, as inputs. */
function keys(phrase: string): [string, string] {
  const rng = seededRng(utf8(phrase));
  return [hex(generateAccountKey(rng).publicKey), hex(generateAccountKey(rng).publicKey)];
}

function pair(name: string, userA: string, userB: string, phrase: string): CaseSpec {
  const [a, b] = keys(phrase);
  return { name, input: { userA, accountKeyA: a, userB, accountKeyB: b } };
}

export const safetyNumberTopic: Topic = {
  file: 'safety-number.json',
  description:
    'Safety numbers. Per user: h0 = BLAKE2b-512(u8(23) || "Petrel/v1/safety-number" || u16(0) || accountKey || userId), ' +
    'h_i = BLAKE2b-512(h_{i-1} || accountKey) for i = 1..5200, fingerprint = h_5200[0..32], digits = for j = 0..5 ' +
    'uint40be(fingerprint[5j..5j+5]) mod 100000 as 5 digits. The safety number is the two 30-digit strings ordered by the fingerprints\' ' +
    'bytes; qr = 0x01 || lower fingerprint || higher fingerprint. Scan cases compare an edited QR payload with the pair\'s.',
  spec: 'crypto/PROTOCOL.md §13',
  cases() {
    return [
      pair('alice and bob', 'alice@petrel.example', 'bob@petrel.example', 'Petrel test vectors: safety 1'),
      pair('one user id, two account keys', 'carol@petrel.example', 'carol@petrel.example', 'Petrel test vectors: safety 2'),
      pair('non-ASCII user ids', 'zoë@petrel.example', 'józef@petrel.example', 'Petrel test vectors: safety 3'),
      { name: 'scanned QR matches', input: { from: 'alice and bob', editQr: { op: 'append', bytes: '' } } },
      { name: 'scanned QR of another pair', input: { from: 'alice and bob', editQr: xorEdit(40, 0x01) } },
      { name: 'scanned QR with an unknown version', input: { from: 'alice and bob', editQr: xorEdit(0, 0x03) }, expect: 'unknown_version' },
      { name: 'scanned QR one byte short', input: { from: 'alice and bob', editQr: { op: 'truncate', length: 64 } }, expect: 'truncated' },
    ];
  },
  compute(c, earlier) {
    const i = In.of(c.input, 'input');
    return i.has('from') ? computeScan(i, earlierCase<SafetyNumber>(earlier, i.str('from'))) : computePair(i);
  },
  crossCheck(c: VectorCase, _kept, t: Tally) {
    const o = In.of(c.output, 'output');
    if (!o.has('a')) return;
    const i = In.of(c.input, 'input');
    for (const [s, user, key] of [
      [o.obj('a'), i.str('userA'), i.hex('accountKeyA')],
      [o.obj('b'), i.str('userB'), i.hex('accountKeyB')],
    ] as const) {
      // The whole fingerprint again, with OpenSSL's BLAKE2b-512.
      let h = blake2b512(labelPrefix(LABEL.safetyNumber), u16(0), key, utf8(user));
      t.bytes(s.hex('h0'), h, `h0 of ${user} vs OpenSSL`);
      for (let n = 0; n < SAFETY_NUMBER_ITERATIONS; n++) h = blake2b512(h, key);
      t.bytes(s.hex('fingerprint'), h.subarray(0, 32), `fingerprint of ${user} vs OpenSSL`);
    }
    // Symmetric: the other user computes the same number and payload.
    const swapped = safetyNumber(i.str('userB'), i.hex('accountKeyB'), i.str('userA'), i.hex('accountKeyA'));
    t.expect(swapped.digits === o.str('digits'), 'the same digits from the other side');
    t.bytes(o.hex('qr'), swapped.qr, 'the same QR payload from the other side');
    t.expect(verifySafetyQr(swapped, o.hex('qr')), 'the recorded QR payload verifies');
  },
};

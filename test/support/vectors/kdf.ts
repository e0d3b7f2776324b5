// kdf.json: the one KDF, KDF(label, input, outLen, key?) = BLAKE2b(outLen, key, L(label) || input),
// for every protocol label and several lengths and keys, and the seeded RNG's byte stream
// (PROTOCOL.md §2.1, §2.3).
import { concat, kdf, LABEL, seededRng, utf8 } from '../../../crypto/index.ts';
import { attempt, type CaseSpec, type Computed, errorCode, hex, In, type Tally, type Topic, type VectorCase, seedHex } from './core.ts';
import { blake2b512 } from './independent.ts';
import { labelPrefix } from './parts.ts';

/** Bytes for KDF inputs and keys: a prefix of a fixed stream so they look like real key material. */
function material(n: number, offset: number): string {
  const rng = seededRng(utf8('Petrel vectors: kdf material'));
  rng(offset);
  return hex(rng(n));
}

function kdfCase(name: string, label: string, inputLen: number, outLen: number, keyed: boolean, at: number): CaseSpec {
  const input: CaseSpec['input'] = { fn: 'kdf', label, input: material(inputLen, at), outLen };
  if (keyed) input.key = material(32, at + 1000);
  return { name, input };
}

function computeKdf(i: In): Computed {
  const label = i.str('label');
  const input = i.hex('input');
  const outLen = i.num('outLen');
  if (i.has('keyLength')) {
    // Negative case: a key of keyLength zero bytes (the KDF takes only 32-byte keys).
    return { output: { error: errorCode(() => kdf(label, input, outLen, new Uint8Array(i.num('keyLength')))) } };
  }
  const key = i.has('key') ? i.hex('key') : undefined;
  const r = attempt(() => kdf(label, input, outLen, key));
  return { output: r.ok ? { okm: hex(r.value) } : { error: r.error } };
}

function computeRng(i: In): Computed {
  if (i.has('seedLength')) return { output: { error: errorCode(() => seededRng(new Uint8Array(i.num('seedLength')))) } };
  const rng = seededRng(i.hex('seed'));
  return { output: { draws: i.nums('draws').map((n) => hex(rng(n))) } };
}

export const kdfTopic: Topic = {
  file: 'kdf.json',
  description:
    'The protocol KDF, KDF(label, input, outLen, key?) = BLAKE2b(outLen, key, u8(len(label)) || label || input), for every label, ' +
    'outLen 16..64, with and without a 32-byte key; KDF_CK is the case with label "Petrel/v1/chain", empty input and the chain key as key. ' +
    'Then the seeded RNG: stream = BLAKE2b-512(key = seed, msg = u64be(i)) for i = 0, 1, ..., each draw taking the next bytes. ' +
    'Negative cases give a key of keyLength zero bytes or a seed of seedLength zero bytes.',
  spec: 'crypto/PROTOCOL.md §2.1 (KDF), §2.2 (labels), §2.3 (seeded RNG)',
  cases() {
    const labels = Object.entries(LABEL).map(([k, label], n) => kdfCase(`label ${k}, 32 bytes`, label, 64, 32, false, n * 100));
    return [
      ...labels,
      kdfCase('device id: 16 bytes from two public keys', LABEL.deviceId, 64, 16, false, 800),
      kdfCase('attachment header: 24 bytes', LABEL.attachmentHeader, 32, 24, false, 900),
      kdfCase('PQXDH with four DH outputs and a KEM secret: 192 bytes in', LABEL.pqxdh, 192, 32, false, 1100),
      kdfCase('long input across BLAKE2b blocks: 300 bytes in, 64 out', 'Petrel/v1/test', 300, 64, false, 1200),
      kdfCase('empty input, 64 bytes out', 'Petrel/v1/test', 0, 64, false, 1300),
      kdfCase('KDF_RK: keyed by the root key, 64 bytes', LABEL.rootStep, 32, 64, true, 1400),
      kdfCase('KDF_CK: keyed by the chain key, empty input, 64 bytes', LABEL.chainStep, 0, 64, true, 1500),
      kdfCase('keyed, 16 bytes', 'Petrel/v1/test', 40, 16, true, 1600),
      kdfCase('keyed, 33 bytes (odd length)', 'Petrel/v1/test', 5, 33, true, 1700),
      { name: 'outLen 15 is refused', input: { fn: 'kdf', label: LABEL.rootStep, input: '', outLen: 15 }, expect: 'invalid_argument' },
      { name: 'outLen 65 is refused', input: { fn: 'kdf', label: LABEL.rootStep, input: '', outLen: 65 }, expect: 'invalid_argument' },
      { name: 'a 31-byte key is refused', input: { fn: 'kdf', label: LABEL.rootStep, input: '', outLen: 32, keyLength: 31 }, expect: 'invalid_argument' },
      { name: 'rng: 32-byte seed', input: { fn: 'rng', seed: seedHex('Petrel test vectors: seeded rng'), draws: [32, 32, 1, 63, 100, 0, 7] } },
      { name: 'rng: 16-byte seed (shortest)', input: { fn: 'rng', seed: seedHex('Petrel vectors16'), draws: [64, 64] } },
      { name: 'rng: 64-byte seed (longest)', input: { fn: 'rng', seed: seedHex('Petrel test vectors: a seed of sixty-four bytes, the longest one'), draws: [200] } },
      { name: 'rng: a 15-byte seed is refused', input: { fn: 'rng', seedLength: 15 }, expect: 'invalid_argument' },
      { name: 'rng: a 65-byte seed is refused', input: { fn: 'rng', seedLength: 65 }, expect: 'invalid_argument' },
    ];
  },
  compute(c) {
    const i = In.of(c.input, 'input');
    return i.str('fn') === 'rng' ? computeRng(i) : computeKdf(i);
  },
  crossCheck(c: VectorCase, _kept, t: Tally) {
    const i = In.of(c.input, 'input');
    const o = In.of(c.output, 'output');
    // Unkeyed 64-byte outputs are plain BLAKE2b-512, which OpenSSL computes too.
    if (i.str('fn') === 'kdf' && !i.has('key') && !i.has('keyLength') && i.num('outLen') === 64 && o.has('okm')) {
      t.bytes(o.hex('okm'), blake2b512(concat(labelPrefix(i.str('label')), i.hex('input'))), 'okm vs OpenSSL BLAKE2b-512');
    }
    // The draws, concatenated, are the stream: re-draw it in one piece.
    if (i.str('fn') === 'rng' && i.has('seed')) {
      const recorded = concat(...o.hexes('draws'));
      t.bytes(recorded, seededRng(i.hex('seed'))(recorded.length), 'draws vs one draw of the whole stream');
    }
  },
};

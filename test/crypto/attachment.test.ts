// Attachments (PROTOCOL.md §12): boundary sizes around a small chunk size, truncation, reordering,
// flipped bytes, wrong hash / key / size, the pointer format, and the streaming encryptor and
// decryptor (including their misuse checks).
import { beforeAll, describe, expect, test } from 'vitest';
import {
  ATTACHMENT_CHUNK_BYTES,
  type AttachmentPointer,
  ciphertextLength,
  createAttachmentDecryptor,
  createAttachmentEncryptor,
  decodeAttachmentPointer,
  decryptAttachment,
  encodeAttachmentPointer,
  encryptAttachment,
  ready,
} from '../../crypto/index.ts';
import { expectCode, hexOf, rngFor, sodium } from './helpers.ts';

beforeAll(async () => {
  await ready();
  await sodium.ready;
});

const CS = 16;
const ABYTES = 17;
const SIZES = [0, 1, CS - 1, CS, CS + 1, 3 * CS + 5];

function chunksOf(ciphertext: Uint8Array, chunkSize: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0; off < ciphertext.length; off += chunkSize + ABYTES) out.push(ciphertext.subarray(off, Math.min(ciphertext.length, off + chunkSize + ABYTES)));
  return out;
}

function make(size: number, label = `attachment/${size}`, chunkSize = CS) {
  const rng = rngFor(label);
  const data = rng(size);
  return { data, ...encryptAttachment(data, rng, chunkSize) };
}

describe.each(SIZES)('size %i with chunkSize 16', (size) => {
  test('round trip, ciphertext length, pointer encoding', () => {
    const { data, ciphertext, pointer } = make(size);
    expect(ciphertext.length).toBe(ciphertextLength(size, CS));
    expect(ciphertext.length).toBe(size + Math.max(1, Math.ceil(size / CS)) * ABYTES);
    expect(pointer.size).toBe(size);
    expect(pointer.chunkSize).toBe(CS);
    expect(hexOf(decryptAttachment(ciphertext, pointer))).toBe(hexOf(data));
    const bytes = encodeAttachmentPointer(pointer);
    expect(bytes.length).toBe(77);
    expect(decodeAttachmentPointer(bytes)).toEqual(pointer);
  });

  test('streaming: the encryptor matches encryptAttachment and the decryptor yields the same bytes', () => {
    const { data, ciphertext, pointer } = make(size);
    const rng = rngFor(`attachment/${size}`);
    rng(size); // the data was drawn first
    const enc = createAttachmentEncryptor(rng, size, CS);
    const parts: Uint8Array[] = [];
    let pos = 0;
    do {
      parts.push(enc.push(data.subarray(pos, Math.min(size, pos + CS))));
      pos += CS;
    } while (pos < size);
    expect(hexOf(new Uint8Array(parts.flatMap((p) => [...p])))).toBe(hexOf(ciphertext));
    expect(enc.finish()).toEqual(pointer);
    const dec = createAttachmentDecryptor(pointer);
    const out = chunksOf(ciphertext, CS).flatMap((c) => [...dec.pull(c)]);
    dec.finish();
    expect(hexOf(new Uint8Array(out))).toBe(hexOf(data));
  });

  test('truncated: attachment_truncated (whole-blob and streaming)', () => {
    const { ciphertext, pointer } = make(size);
    for (const cut of [1, ABYTES, ciphertext.length]) {
      expectCode(() => decryptAttachment(ciphertext.subarray(0, ciphertext.length - cut), pointer), 'attachment_truncated', `cut ${cut}`);
    }
    expectCode(() => decryptAttachment(new Uint8Array([...ciphertext, 0]), pointer), 'attachment_truncated', 'one byte more');
    const chunks = chunksOf(ciphertext, CS);
    const dec = createAttachmentDecryptor(pointer);
    for (const c of chunks.slice(0, -1)) dec.pull(c);
    expectCode(() => dec.finish(), 'attachment_truncated', 'stream without its final chunk');
  });

  test('every byte flipped: decrypt_failed', () => {
    const { ciphertext, pointer } = make(size);
    for (let i = 0; i < ciphertext.length; i++) {
      const bad = ciphertext.slice();
      bad[i]! ^= 1 << i % 8;
      expectCode(() => decryptAttachment(bad, pointer), 'decrypt_failed', `byte ${i}`);
    }
  });

  test('wrong hash: hash_mismatch; wrong key: decrypt_failed; wrong size: attachment_truncated', () => {
    const { ciphertext, pointer } = make(size);
    const h = pointer.hash.slice();
    h[31]! ^= 0x80;
    expectCode(() => decryptAttachment(ciphertext, { ...pointer, hash: h }), 'hash_mismatch');
    const k = pointer.key.slice();
    k[0]! ^= 1;
    expectCode(() => decryptAttachment(ciphertext, { ...pointer, key: k }), 'decrypt_failed');
    expectCode(() => decryptAttachment(ciphertext, { ...pointer, size: size + 1 }), 'attachment_truncated');
    if (size > 0) expectCode(() => decryptAttachment(ciphertext, { ...pointer, size: size - 1 }), 'attachment_truncated');
  });
});

describe('chunk order and stream misuse', () => {
  test('reordered, repeated or dropped middle chunks: decrypt_failed', () => {
    const { ciphertext, pointer } = make(3 * CS + 5);
    const [c0, c1, c2, c3] = chunksOf(ciphertext, CS);
    const join = (...cs: Uint8Array[]) => new Uint8Array(cs.flatMap((c) => [...c]));
    expectCode(() => decryptAttachment(join(c1!, c0!, c2!, c3!), pointer), 'decrypt_failed', 'swap 0,1');
    expectCode(() => decryptAttachment(join(c0!, c2!, c1!, c3!), pointer), 'decrypt_failed', 'swap 1,2');
    expectCode(() => decryptAttachment(join(c0!, c0!, c2!, c3!), pointer), 'decrypt_failed', 'repeat 0');
    const dec = createAttachmentDecryptor(pointer);
    dec.pull(c0!);
    expectCode(() => dec.pull(c2!), 'decrypt_failed', 'streaming, chunk 1 dropped');
    // Another attachment's chunk at the right position.
    const other = make(3 * CS + 5, 'attachment/other');
    expectCode(() => decryptAttachment(join(c0!, chunksOf(other.ciphertext, CS)[1]!, c2!, c3!), pointer), 'decrypt_failed', 'foreign chunk');
  });

  test('the decryptor refuses data after the final chunk (malformed)', () => {
    const { ciphertext, pointer } = make(CS + 1);
    const chunks = chunksOf(ciphertext, CS);
    const dec = createAttachmentDecryptor(pointer);
    for (const c of chunks) dec.pull(c);
    expectCode(() => dec.pull(chunks[0]!), 'malformed');
    dec.finish();
  });

  test('the encryptor refuses misuse with invalid_argument', () => {
    const rng = rngFor('attachment/misuse');
    const e1 = createAttachmentEncryptor(rng, 2 * CS, CS);
    expectCode(() => e1.push(new Uint8Array(CS - 1)), 'invalid_argument', 'short non-final chunk');
    expectCode(() => e1.finish(), 'invalid_argument', 'finish before the end');
    e1.push(new Uint8Array(CS));
    expectCode(() => e1.push(new Uint8Array(CS + 1)), 'invalid_argument', 'more than declared');
    e1.push(new Uint8Array(CS));
    expectCode(() => e1.push(new Uint8Array(0)), 'invalid_argument', 'after the final chunk');
    e1.finish();
    // A final chunk longer than chunkSize would not be decryptable by decryptAttachment.
    const e2 = createAttachmentEncryptor(rng, CS + 5, CS);
    expectCode(() => e2.push(new Uint8Array(CS + 5)), 'invalid_argument', 'final chunk longer than chunkSize');
    for (const [size, cs] of [[-1, CS], [1.5, CS], [1, 0], [1, 16 * 1024 * 1024 + 1], [1, 2.5]] as const) {
      expectCode(() => createAttachmentEncryptor(rng, size, cs), 'invalid_argument', `${size}/${cs}`);
    }
  });

  test('the decryptor refuses a final chunk longer than chunkSize (malformed)', () => {
    // Built with chunkSize 2*CS, read with a pointer that says CS: same key, same bytes.
    const { ciphertext, pointer } = make(2 * CS, 'attachment/oversize', 2 * CS);
    const lying: AttachmentPointer = { ...pointer, chunkSize: CS };
    const dec = createAttachmentDecryptor(lying);
    expectCode(() => dec.pull(ciphertext), 'malformed');
  });

  test('the default chunk size (64 KiB) over several chunks', () => {
    const { data, ciphertext, pointer } = make(2 * ATTACHMENT_CHUNK_BYTES + 3, 'attachment/default', ATTACHMENT_CHUNK_BYTES);
    expect(pointer.chunkSize).toBe(65536);
    expect(ciphertext.length).toBe(data.length + 3 * ABYTES);
    expect(hexOf(decryptAttachment(ciphertext, pointer))).toBe(hexOf(data));
  });
});

describe('pointer format', () => {
  test('decode refuses a chunk size of 0 or above 16 MiB (malformed), and a size above 2^53', () => {
    const { pointer } = make(5);
    const bytes = encodeAttachmentPointer(pointer);
    const at = (off: number, vals: number[]) => {
      const b = bytes.slice();
      b.set(vals, off);
      return b;
    };
    expectCode(() => decodeAttachmentPointer(at(33, [0, 0, 0, 0])), 'malformed', 'chunkSize 0');
    expectCode(() => decodeAttachmentPointer(at(33, [1, 0, 0, 1])), 'malformed', 'chunkSize 16 MiB + 1');
    expect(decodeAttachmentPointer(at(33, [1, 0, 0, 0])).chunkSize).toBe(16 * 1024 * 1024);
    expectCode(() => decodeAttachmentPointer(at(37, [0, 0x20, 0, 0, 0, 0, 0, 0])), 'malformed', 'size 2^53');
  });
});

// attachment.json: attachments of several sizes with small chunks, so chunk boundaries show
// (PROTOCOL.md §12), and damaged ciphertexts and pointers with the error each gives.
import {
  ATTACHMENT_CHUNK_BYTES,
  type AttachmentPointer,
  ciphertextLength,
  concat,
  createAttachmentEncryptor,
  decodeAttachmentPointer,
  decryptAttachment,
  encodeAttachmentPointer,
  encryptAttachment,
  kdf,
  LABEL,
  seededRng,
  utf8,
} from '../../../crypto/index.ts';
import { appendEdit, applyEdit, type CaseSpec, type Computed, earlierCase, errorCode, hex, In, seedHex, setEdit, type Tally, type Topic, truncateEdit, type VectorCase, xorEdit } from './core.ts';
import { draws } from './parts.ts';

interface Kept {
  readonly ciphertext: Uint8Array;
  readonly pointer: AttachmentPointer;
}

function computeAttachment(i: In): Computed {
  const { ciphertext, pointer } = encryptAttachment(i.hex('plaintext'), seededRng(i.hex('seed')), i.num('chunkSize'));
  return {
    output: {
      key: hex(pointer.key),
      header: hex(kdf(LABEL.attachmentHeader, pointer.key, 24)),
      ciphertext: hex(ciphertext),
      hash: hex(pointer.hash),
      pointer: hex(encodeAttachmentPointer(pointer)),
    },
    keep: { ciphertext, pointer } satisfies Kept,
  };
}

function computeRejected(i: In, k: Kept): Computed {
  const ciphertext = i.has('editCiphertext') ? applyEdit(k.ciphertext, i.obj('editCiphertext')) : k.ciphertext;
  const pointerBytes = encodeAttachmentPointer(k.pointer);
  const edited = i.has('editPointer') ? applyEdit(pointerBytes, i.obj('editPointer')) : pointerBytes;
  const error = errorCode(() => decryptAttachment(ciphertext, decodeAttachmentPointer(edited)));
  if (i.has('editCiphertext')) return { output: { ciphertext: hex(ciphertext), error } };
  return { output: i.has('editPointer') ? { pointer: hex(edited), error } : { error } };
}

/** Deterministic plaintext bytes for a case: the first `n` bytes of a fixed stream. */
function plaintext(n: number): string {
  return hex(seededRng(utf8('Petrel vectors: attachment plaintext'))(n));
}

function sized(size: number, chunkSize: number): CaseSpec {
  return {
    name: `${size} bytes in chunks of ${chunkSize}`,
    input: { seed: seedHex(`Petrel test vectors: attachment ${size}/${chunkSize}`), chunkSize, plaintext: plaintext(size) },
  };
}

function rejected(name: string, input: CaseSpec['input'], expect: string): CaseSpec {
  return { name, input: { from: '100 bytes in chunks of 32', ...input }, expect };
}

// 100 bytes in chunks of 32: four chunks of 49, 49, 49 and 4 + 17 = 21 bytes, 168 in all.
const CT_100_32 = 3 * (32 + 17) + (4 + 17);
// AttachmentPointer: version, 32 key, u32 chunkSize, u64 size, 32 hash.
const POINTER_CHUNK_SIZE_AT = 1 + 32;
const POINTER_SIZE_LAST_BYTE = 1 + 32 + 4 + 7;
const POINTER_HASH_AT = 1 + 32 + 4 + 8;

export const attachmentTopic: Topic = {
  file: 'attachment.json',
  description:
    'Attachments: key = seededRng(seed)(32); header = KDF("Petrel/v1/attachment-header", key, 24); the plaintext is cut into chunkSize pieces, ' +
    'each pushed through crypto_secretstream_xchacha20poly1305 initialised from (key, header) with no AD, tag FINAL (3) on the last and ' +
    'MESSAGE (0) on the others (an empty file is one empty FINAL chunk); hash = BLAKE2b-256(ciphertext); pointer = the AttachmentPointer ' +
    'encoding. There are max(1, ceil(size / chunkSize)) chunks: a size that is a multiple of chunkSize ends with a full FINAL chunk, never an ' +
    'extra empty one (32 and 64 bytes in chunks of 32). Negative cases edit the ciphertext or the pointer of the 100-byte case and decrypt: ' +
    'the ciphertext length must be size + 17 per chunk, so too short and too long both give attachment_truncated; chunkSize outside ' +
    '1..2^24 is malformed when the pointer decodes; a failed chunk is decrypt_failed; a wrong hash is hash_mismatch.',
  spec: 'crypto/PROTOCOL.md §12, §10.1 (AttachmentPointer)',
  cases() {
    return [
      sized(0, 32),
      sized(1, 32),
      sized(31, 32),
      sized(32, 32),
      sized(33, 32),
      sized(100, 32),
      sized(300, 128),
      sized(70, ATTACHMENT_CHUNK_BYTES),
      rejected('tampered chunk', { editCiphertext: xorEdit(60, 0x01) }, 'decrypt_failed'),
      rejected('final chunk missing', { editCiphertext: truncateEdit(3 * 49) }, 'attachment_truncated'),
      rejected('one byte short', { editCiphertext: truncateEdit(CT_100_32 - 1) }, 'attachment_truncated'),
      rejected('pointer with another hash', { editPointer: xorEdit(POINTER_HASH_AT + 31, 0x01) }, 'hash_mismatch'),
      rejected('pointer with another key', { editPointer: xorEdit(1, 0x01) }, 'decrypt_failed'),
      rejected('pointer with a larger size', { editPointer: xorEdit(POINTER_SIZE_LAST_BYTE, 0x01) }, 'attachment_truncated'),
      sized(64, 32),
      rejected('one byte too long (the length check gives attachment_truncated)', { editCiphertext: appendEdit('00') }, 'attachment_truncated'),
      rejected('an empty chunk appended after the final one', { editCiphertext: appendEdit('00'.repeat(17)) }, 'attachment_truncated'),
      rejected('pointer with a smaller size', { editPointer: setEdit(POINTER_SIZE_LAST_BYTE, '63') }, 'attachment_truncated'),
      rejected('pointer with chunk size 0', { editPointer: setEdit(POINTER_CHUNK_SIZE_AT, '00000000') }, 'malformed'),
      rejected('pointer with chunk size 2^24 + 1', { editPointer: setEdit(POINTER_CHUNK_SIZE_AT, '01000001') }, 'malformed'),
      rejected('pointer with chunk size 2^24 (valid; the ciphertext length no longer fits)', { editPointer: setEdit(POINTER_CHUNK_SIZE_AT, '01000000') }, 'attachment_truncated'),
    ];
  },
  compute(c, earlier) {
    const i = In.of(c.input, 'input');
    return i.has('from') ? computeRejected(i, earlierCase<Kept>(earlier, i.str('from'))) : computeAttachment(i);
  },
  crossCheck(c: VectorCase, _kept, t: Tally) {
    const o = In.of(c.output, 'output');
    if (!o.has('key')) return;
    const i = In.of(c.input, 'input');
    const pt = i.hex('plaintext');
    const chunkSize = i.num('chunkSize');
    t.bytes(o.hex('key'), draws(i.hex('seed'), [32])[0]!, 'key is the first rng draw');
    t.expect(o.hex('ciphertext').length === ciphertextLength(pt.length, chunkSize), 'ciphertext length = size + 17 per chunk');
    const pointer = decodeAttachmentPointer(o.hex('pointer'));
    t.bytes(pointer.hash, o.hex('hash'), 'pointer carries the hash');
    t.bytes(decryptAttachment(o.hex('ciphertext'), pointer), pt, 'the recorded ciphertext decrypts with the recorded pointer');
    // The streaming encryptor, fed chunk by chunk, writes the same bytes.
    const enc = createAttachmentEncryptor(seededRng(i.hex('seed')), pt.length, chunkSize);
    const parts: Uint8Array[] = [];
    let pos = 0;
    do {
      parts.push(enc.push(pt.subarray(pos, Math.min(pt.length, pos + chunkSize))));
      pos += chunkSize;
    } while (pos < pt.length);
    t.bytes(o.hex('ciphertext'), concat(...parts), 'streaming encryption gives the same ciphertext');
    t.bytes(o.hex('pointer'), encodeAttachmentPointer(enc.finish()), 'streaming encryption gives the same pointer');
  },
};

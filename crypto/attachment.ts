/**
 * Attachments (PROTOCOL.md §12): a file is encrypted with libsodium's secretstream
 * (XChaCha20-Poly1305, chunked, each chunk authenticated, order and truncation protected by
 * the stream) under a fresh 32-byte key. The ciphertext goes to the relay as a blob; the key
 * and the ciphertext's hash travel inside the (end-to-end encrypted) message as a pointer.
 *
 *   header     = KDF("Petrel/v1/attachment-header", key, 24)   (fresh key => fresh header)
 *   ciphertext = chunk_0 || ... || chunk_n, chunk_i = secretstream push of up to chunkSize
 *                plaintext bytes (+17 bytes), the last one tagged FINAL (an empty file is one
 *                empty FINAL chunk)
 *   pointer    = | 1 version=0x01 | 32 key | 4 chunkSize | 8 size | 32 BLAKE2b-256(ciphertext) |
 */
import { equalBytes, Reader, Writer } from './bytes.ts';
import { ATTACHMENT_CHUNK_BYTES, HASH_BYTES, KEY_BYTES, LABEL } from './consts.ts';
import { CryptoError } from './errors.ts';
import { kdf } from './kdf.ts';
import { blake2bStream, type Rng, STREAM_ABYTES, streamOpen, streamPull, streamPush } from './sodium.ts';

export const ATTACHMENT_POINTER_VERSION = 0x01;
const MAX_CHUNK = 16 * 1024 * 1024;

export interface AttachmentPointer {
  readonly key: Uint8Array;
  readonly chunkSize: number;
  /** Plaintext length in bytes. */
  readonly size: number;
  /** BLAKE2b-256 of the whole ciphertext. */
  readonly hash: Uint8Array;
}

function header(key: Uint8Array): Uint8Array {
  return kdf(LABEL.attachmentHeader, key, 24);
}

export function ciphertextLength(size: number, chunkSize: number): number {
  const chunks = Math.max(1, Math.ceil(size / chunkSize));
  return size + chunks * STREAM_ABYTES;
}

/** Streaming encryption, for files too large to hold twice in memory. */
export function createAttachmentEncryptor(rng: Rng, size: number, chunkSize = ATTACHMENT_CHUNK_BYTES) {
  checkSizes(size, chunkSize);
  const key = rng(KEY_BYTES);
  const state = streamOpen(key, header(key));
  const hash = blake2bStream(HASH_BYTES);
  let written = 0;
  let done = false;
  return {
    /** Encrypts the next chunk: exactly chunkSize bytes, except the last. */
    push(chunk: Uint8Array): Uint8Array {
      if (done) throw new CryptoError('invalid_argument', 'attachment already finished');
      const final = written + chunk.length === size;
      if (chunk.length > chunkSize || (!final && chunk.length !== chunkSize)) {
        throw new CryptoError('invalid_argument', 'every chunk but the last must be chunkSize bytes, the last at most that');
      }
      if (written + chunk.length > size) throw new CryptoError('invalid_argument', 'more bytes than the declared size');
      const ct = streamPush(state, chunk, final);
      hash.update(ct);
      written += chunk.length;
      done = final;
      return ct;
    },
    finish(): AttachmentPointer {
      if (!done) throw new CryptoError('invalid_argument', 'attachment not complete');
      return { key, chunkSize, size, hash: hash.digest() };
    },
  };
}

export function encryptAttachment(data: Uint8Array, rng: Rng, chunkSize = ATTACHMENT_CHUNK_BYTES): { ciphertext: Uint8Array; pointer: AttachmentPointer } {
  const enc = createAttachmentEncryptor(rng, data.length, chunkSize);
  const out = new Uint8Array(ciphertextLength(data.length, chunkSize));
  let off = 0;
  let pos = 0;
  do {
    const ct = enc.push(data.subarray(pos, Math.min(data.length, pos + chunkSize)));
    out.set(ct, off);
    off += ct.length;
    pos += chunkSize;
  } while (pos < data.length);
  return { ciphertext: out, pointer: enc.finish() };
}

/**
 * Streaming decryption. Each chunk is authenticated as it arrives; `finish()` checks that the
 * stream ended with its FINAL chunk and that the whole ciphertext has the promised hash.
 * Callers that must not show unverified bytes keep them until finish() succeeds.
 */
export function createAttachmentDecryptor(pointer: AttachmentPointer) {
  checkSizes(pointer.size, pointer.chunkSize);
  const state = streamOpen(pointer.key, header(pointer.key));
  const hash = blake2bStream(HASH_BYTES);
  let read = 0;
  let done = false;
  return {
    /** Decrypts the next ciphertext chunk (chunkSize + 17 bytes, the last one shorter). */
    pull(chunk: Uint8Array): Uint8Array {
      if (done) throw new CryptoError('malformed', 'attachment: data after the final chunk');
      const r = streamPull(state, chunk);
      hash.update(chunk);
      read += r.plaintext.length;
      if (read > pointer.size) throw new CryptoError('malformed', 'attachment longer than its declared size');
      if (r.plaintext.length > pointer.chunkSize || (!r.final && r.plaintext.length !== pointer.chunkSize)) {
        throw new CryptoError('malformed', 'attachment chunk of the wrong size');
      }
      done = r.final;
      return r.plaintext;
    },
    finish(): void {
      if (!done || read !== pointer.size) throw new CryptoError('attachment_truncated', 'attachment ended before its final chunk');
      if (!equalBytes(hash.digest(), pointer.hash)) throw new CryptoError('hash_mismatch', 'attachment is not the one the sender sent');
    },
  };
}

export function decryptAttachment(ciphertext: Uint8Array, pointer: AttachmentPointer): Uint8Array {
  if (ciphertext.length !== ciphertextLength(pointer.size, pointer.chunkSize)) {
    throw new CryptoError('attachment_truncated', 'attachment ciphertext has the wrong length');
  }
  const dec = createAttachmentDecryptor(pointer);
  const out = new Uint8Array(pointer.size);
  const step = pointer.chunkSize + STREAM_ABYTES;
  let pos = 0;
  for (let off = 0; off < ciphertext.length; off += step) {
    const pt = dec.pull(ciphertext.subarray(off, Math.min(ciphertext.length, off + step)));
    out.set(pt, pos);
    pos += pt.length;
  }
  dec.finish();
  return out;
}

function checkSizes(size: number, chunkSize: number): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new CryptoError('invalid_argument', 'attachment size');
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK) throw new CryptoError('invalid_argument', 'attachment chunkSize');
}

export function encodeAttachmentPointer(p: AttachmentPointer): Uint8Array {
  return new Writer(80).u8(ATTACHMENT_POINTER_VERSION).bytes(p.key).u32(p.chunkSize).u64(p.size).bytes(p.hash).finish();
}

export function decodeAttachmentPointer(bytes: Uint8Array): AttachmentPointer {
  const r = new Reader(bytes, 'attachment pointer');
  r.version([ATTACHMENT_POINTER_VERSION]);
  const key = r.bytes(KEY_BYTES, 'key').slice();
  const chunkSize = r.u32('chunkSize');
  const size = r.u64('size');
  const hash = r.bytes(HASH_BYTES, 'hash').slice();
  r.end();
  if (chunkSize < 1 || chunkSize > MAX_CHUNK) throw new CryptoError('malformed', 'attachment pointer: chunkSize');
  return { key, chunkSize, size, hash };
}

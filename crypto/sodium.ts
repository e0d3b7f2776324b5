/**
 * The only module that touches libsodium and the only one that draws system randomness.
 *
 * libsodium-wrappers needs one asynchronous `ready()`; after that every primitive here is
 * synchronous, which keeps the ratchet synchronous and lets the browser and Node run the
 * same code. Everything above this file takes an injected `Rng`, so a seeded RNG makes
 * the whole protocol deterministic (that is how the test vectors are produced).
 */
import libsodium from 'libsodium-wrappers';
import { CryptoError } from './errors.ts';

type Sodium = typeof libsodium;
let lib: Sodium | undefined;

/** Await once before using anything in crypto/. Safe to call many times. */
export async function ready(): Promise<void> {
  if (lib) return;
  await libsodium.ready;
  lib = libsodium;
}

function s(): Sodium {
  if (!lib) throw new CryptoError('not_ready', 'await ready() before using crypto/');
  return lib;
}

/**
 * A source of random bytes. Protocol functions take one so that tests can be deterministic.
 * Each call must return a fresh array the caller may keep: crypto/ stores draws as secret keys.
 */
export type Rng = (length: number) => Uint8Array;

/**
 * System randomness in one getRandomValues call per draw. (libsodium.js's randombytes_buf
 * calls getRandomValues once per byte, ~4 µs each: 35x the cost of an encryption.)
 */
export const systemRng: Rng = (length) => {
  const out = new Uint8Array(length);
  // getRandomValues fills at most 65,536 bytes per call.
  for (let off = 0; off < length; off += 65536) {
    globalThis.crypto.getRandomValues(out.subarray(off, Math.min(length, off + 65536)));
  }
  return out;
};

/**
 * Deterministic RNG for tests and vectors (PROTOCOL.md §2.3): the stream is
 * BLAKE2b-512(key = seed, msg = u64be(i)) for i = 0, 1, 2, ... concatenated, and each
 * draw takes the next `length` bytes of it. Never use it for real keys.
 */
export function seededRng(seed: Uint8Array): Rng {
  if (seed.length < 16 || seed.length > 64) throw new CryptoError('invalid_argument', 'seed must be 16..64 bytes');
  const key = seed.slice();
  let counter = 0;
  let block: Uint8Array = new Uint8Array(0);
  let used = 0;
  const ctr = new Uint8Array(8);
  const ctrView = new DataView(ctr.buffer);
  return (length) => {
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      if (used === block.length) {
        ctrView.setBigUint64(0, BigInt(counter++));
        block = s().crypto_generichash(64, ctr, key);
        used = 0;
      }
      const take = Math.min(length - filled, block.length - used);
      out.set(block.subarray(used, used + take), filled);
      used += take;
      filled += take;
    }
    return out;
  };
}

// --- BLAKE2b -------------------------------------------------------------------------

/** BLAKE2b with an output of 16..64 bytes, optionally keyed (16..64-byte key). */
export function blake2b(outLen: number, message: Uint8Array, key?: Uint8Array): Uint8Array {
  return s().crypto_generichash(outLen, message, key ?? null);
}

/** Incremental BLAKE2b for data that arrives in pieces (attachments). */
export function blake2bStream(outLen: number): { update(b: Uint8Array): void; digest(): Uint8Array } {
  const st = s().crypto_generichash_init(null, outLen);
  return {
    update: (b) => s().crypto_generichash_update(st, b),
    digest: () => s().crypto_generichash_final(st, outLen),
  };
}

// --- X25519 ----------------------------------------------------------------------------

export function x25519Base(secret: Uint8Array): Uint8Array {
  return s().crypto_scalarmult_base(secret);
}

/**
 * X25519. libsodium refuses a result of all zeros, which is what every low-order point
 * (including the all-zero key) produces; that becomes `invalid_public_key`.
 */
export function x25519(secret: Uint8Array, theirPublic: Uint8Array): Uint8Array {
  const sodium = s(); // outside the try: not_ready must not read as a low-order point
  try {
    return sodium.crypto_scalarmult(secret, theirPublic);
  } catch {
    throw new CryptoError('invalid_public_key', 'X25519 with a low-order point');
  }
}

// --- Ed25519 ---------------------------------------------------------------------------

export function ed25519FromSeed(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array } {
  const kp = s().crypto_sign_seed_keypair(seed);
  return { publicKey: kp.publicKey, secretKey: kp.privateKey };
}

export function ed25519Sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return s().crypto_sign_detached(message, secretKey);
}

export function ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  const sodium = s(); // outside the try: not_ready must not read as a bad signature
  try {
    return sodium.crypto_sign_verify_detached(signature, message, publicKey);
  } catch {
    return false;
  }
}

// --- XChaCha20-Poly1305 ----------------------------------------------------------------

export const AEAD_NONCE_BYTES = 24;
export const AEAD_TAG_BYTES = 16;

export function aeadEncrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  return s().crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce, key);
}

export function aeadDecrypt(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array): Uint8Array {
  if (ciphertext.length < AEAD_TAG_BYTES) throw new CryptoError('decrypt_failed', 'ciphertext shorter than its tag');
  const sodium = s(); // outside the try: not_ready must not read as a forged message
  try {
    return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, ad, nonce, key);
  } catch {
    throw new CryptoError('decrypt_failed', 'authentication failed');
  }
}

// --- X-Wing (ML-KEM-768 + X25519 hybrid KEM) -------------------------------------------

export const XWING_PUBLIC_BYTES = 1216;
export const XWING_SECRET_BYTES = 32;
export const XWING_CIPHERTEXT_BYTES = 1120;
/** X-Wing's deterministic encapsulation takes 64 bytes of randomness. */
export const XWING_ENC_SEED_BYTES = 64;

export function xwingFromSeed(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array } {
  const kp = s().crypto_kem_xwing_seed_keypair(seed);
  return { publicKey: kp.publicKey, secretKey: kp.privateKey };
}

export function xwingEncapsulate(publicKey: Uint8Array, rng: Rng): { ciphertext: Uint8Array; sharedSecret: Uint8Array } {
  const sodium = s(); // outside the try, like the draw: only libsodium's refusal means a bad key
  const seed = rng(XWING_ENC_SEED_BYTES);
  try {
    return sodium.crypto_kem_xwing_enc_deterministic(publicKey, seed);
  } catch {
    throw new CryptoError('invalid_public_key', 'X-Wing public key rejected');
  }
}

export function xwingDecapsulate(ciphertext: Uint8Array, secretKey: Uint8Array): Uint8Array {
  const sodium = s(); // outside the try: not_ready must not read as a bad ciphertext
  try {
    return sodium.crypto_kem_xwing_dec(ciphertext, secretKey);
  } catch {
    throw new CryptoError('decrypt_failed', 'X-Wing ciphertext rejected');
  }
}

// --- secretstream (attachments) ---------------------------------------------------------

export const STREAM_HEADER_BYTES = 24;
export const STREAM_ABYTES = 17;
export const STREAM_TAG_MESSAGE = 0;
export const STREAM_TAG_FINAL = 3;

type StreamState = ReturnType<Sodium['crypto_secretstream_xchacha20poly1305_init_pull']>;

/**
 * Opens a secretstream for *writing* with a header we chose. libsodium's init_push draws the
 * header from its own RNG, which would make attachments non-deterministic; init_pull with the
 * same (header, key) computes the identical state (HChaCha20 subkey + nonce, counter 1), so
 * pushing on it produces exactly what init_push would have for that header. PROTOCOL.md §12.
 */
export function streamOpen(key: Uint8Array, header: Uint8Array): StreamState {
  return s().crypto_secretstream_xchacha20poly1305_init_pull(header, key);
}

export function streamPush(state: StreamState, chunk: Uint8Array, final: boolean): Uint8Array {
  return s().crypto_secretstream_xchacha20poly1305_push(state, chunk, null, final ? STREAM_TAG_FINAL : STREAM_TAG_MESSAGE);
}

export function streamPull(state: StreamState, chunk: Uint8Array): { plaintext: Uint8Array; final: boolean } {
  const sodium = s(); // outside the try: not_ready must not read as a forged chunk
  let r: { message: Uint8Array; tag: number } | false;
  try {
    r = sodium.crypto_secretstream_xchacha20poly1305_pull(state, chunk, null);
  } catch {
    r = false;
  }
  if (!r) throw new CryptoError('decrypt_failed', 'attachment chunk failed authentication');
  return { plaintext: r.message, final: r.tag === STREAM_TAG_FINAL };
}

/** Unpadded base64url; after ready(), as everything here. */
export const toBase64url = (bytes: Uint8Array): string => s().to_base64(bytes, s().base64_variants.URLSAFE_NO_PADDING);

/** Strict: anything that is not canonical unpadded base64url (padding bits too) is `malformed`. */
export function fromBase64url(text: string): Uint8Array {
  const lib = s();
  try {
    return lib.from_base64(text, lib.base64_variants.URLSAFE_NO_PADDING);
  } catch {
    throw new CryptoError('malformed', 'not base64url');
  }
}

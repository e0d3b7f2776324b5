// A second implementation of the primitives node:crypto (OpenSSL) offers, used to cross-check
// values the vectors record: X25519 and Ed25519 (RFC 7748 / RFC 8032) and unkeyed BLAKE2b-512.
// The vectors are produced with libsodium through crypto/; agreeing with OpenSSL on these shows
// the recorded intermediate values are the standard functions, not an accident of one library.
import { createHash, createPrivateKey, createPublicKey, diffieHellman, sign, verify } from 'node:crypto';

// DER prefixes that wrap a raw 32-byte key as PKCS#8 (private) or SPKI (public), RFC 8410.
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');
const ED25519_SPKI = Buffer.from('302a300506032b6570032100', 'hex');

function rawPublic(der: Buffer): Uint8Array {
  return new Uint8Array(der.subarray(der.length - 32));
}

/** X25519(secret, public) by OpenSSL. Throws on a low-order point, as libsodium does. */
export function x25519(secret: Uint8Array, theirPublic: Uint8Array): Uint8Array {
  const privateKey = createPrivateKey({ key: Buffer.concat([X25519_PKCS8, secret]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey({ key: Buffer.concat([X25519_SPKI, theirPublic]), format: 'der', type: 'spki' });
  return new Uint8Array(diffieHellman({ privateKey, publicKey }));
}

/** X25519(secret, 9): the public key of an X25519 secret. */
export function x25519Public(secret: Uint8Array): Uint8Array {
  const privateKey = createPrivateKey({ key: Buffer.concat([X25519_PKCS8, secret]), format: 'der', type: 'pkcs8' });
  return rawPublic(createPublicKey(privateKey).export({ format: 'der', type: 'spki' }));
}

/** The Ed25519 public key of a 32-byte seed. */
export function ed25519Public(seed: Uint8Array): Uint8Array {
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, seed]), format: 'der', type: 'pkcs8' });
  return rawPublic(createPublicKey(privateKey).export({ format: 'der', type: 'spki' }));
}

export function ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  const key = createPublicKey({ key: Buffer.concat([ED25519_SPKI, publicKey]), format: 'der', type: 'spki' });
  return verify(null, message, key, signature);
}

/**
 * An Ed25519 signature by OpenSSL (deterministic, RFC 8032: the same bytes libsodium makes). Used
 * to sign what crypto/ will not: a prekey whose key libsodium refuses, for a negative vector.
 */
export function ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array {
  const key = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, seed]), format: 'der', type: 'pkcs8' });
  return new Uint8Array(sign(null, message, key));
}

/** Unkeyed BLAKE2b with a 64-byte output (the only BLAKE2b variant OpenSSL exposes). */
export function blake2b512(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('blake2b512');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/**
 * The protocol's one KDF, built on BLAKE2b because libsodium's standard build has no
 * HKDF/HMAC (PROTOCOL.md §2.1):
 *
 *   KDF(label, input, outLen, key?) = BLAKE2b(outLen, key = key or none,
 *                                             msg = u8(len(label)) || label || input)
 *
 * Keyed BLAKE2b is a PRF (RFC 7693 §1); unkeyed over high-entropy input it stands in for
 * HKDF-Extract+Expand. The length-prefixed label gives domain separation: no two labels
 * and inputs can produce the same message.
 */
import { checkBytes, utf8 } from './bytes.ts';
import { CryptoError } from './errors.ts';
import { blake2b } from './sodium.ts';

const labelCache = new Map<string, Uint8Array>();

function labelPrefix(label: string): Uint8Array {
  let p = labelCache.get(label);
  if (!p) {
    const b = utf8(label);
    p = new Uint8Array(1 + b.length);
    p[0] = b.length;
    p.set(b, 1);
    labelCache.set(label, p);
  }
  return p;
}

export function kdf(label: string, input: Uint8Array, outLen: number, key?: Uint8Array): Uint8Array {
  if (outLen < 16 || outLen > 64) throw new CryptoError('invalid_argument', 'kdf outLen must be 16..64');
  if (key) checkBytes(key, 32, 'kdf key');
  const prefix = labelPrefix(label);
  const msg = new Uint8Array(prefix.length + input.length);
  msg.set(prefix);
  msg.set(input, prefix.length);
  return blake2b(outLen, msg, key);
}

/** The label prefix on its own, for hot paths that want to pre-build a message. */
export function kdfLabel(label: string): Uint8Array {
  return labelPrefix(label);
}

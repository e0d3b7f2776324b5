/**
 * Bearer tokens: 32 random bytes, base64url, with a prefix telling which table to look in
 * ("pd_" device, "ps_" account session). The relay stores only SHA-256(token): a stolen
 * database yields no usable credential, and 256-bit random tokens need no slow hash.
 */
import { createHash, randomBytes } from 'node:crypto';

export const DEVICE_TOKEN_PREFIX = 'pd_';
export const SESSION_TOKEN_PREFIX = 'ps_';
const TOKEN_RE = /^p[ds]_[A-Za-z0-9_-]{43}$/;

export function newToken(prefix: string): { token: string; hash: Uint8Array } {
  const token = prefix + randomBytes(32).toString('base64url');
  return { token, hash: hashToken(token) };
}

export function hashToken(token: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(token).digest());
}

export function isWellFormedToken(token: string): boolean {
  return TOKEN_RE.test(token);
}

export function randomId(bytes = 16): string {
  return randomBytes(bytes).toString('base64url');
}

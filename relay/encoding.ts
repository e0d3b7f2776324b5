/**
 * Bytes travel in JSON as unpadded base64url. Decoding is strict (Node's own decoder skips
 * characters it does not know, which would let two different strings mean the same bytes).
 */
import * as v from 'valibot';

const B64URL = /^[A-Za-z0-9_-]*$/;

export function toB64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Returns undefined for anything that is not canonical unpadded base64url. Canonical: only the
 * alphabet, no length that leaves a lone character, and the bits of the last character that
 * fall past the last byte are zero (otherwise several strings would decode to the same bytes).
 * Checking those bits replaces re-encoding the decoded bytes to compare, which cost as much as
 * the decoding on the submission path.
 */
export function fromB64(s: string): Uint8Array | undefined {
  const tail = s.length % 4;
  if (tail === 1 || !B64URL.test(s)) return undefined;
  if (tail !== 0 && ALPHABET.indexOf(s[s.length - 1]!) & (tail === 2 ? 0x0f : 0x03)) return undefined;
  const buf = Buffer.from(s, 'base64url');
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * A valibot schema for a base64url field that decodes to `min..max` bytes; its output is the
 * Uint8Array. `max` bounds the string length before decoding, so huge strings fail early.
 */
export function b64Bytes(min: number, max: number) {
  return v.pipe(
    v.string(),
    v.maxLength(Math.ceil((max * 4) / 3), `at most ${max} bytes`),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const bytes = fromB64(dataset.value);
      if (!bytes) {
        addIssue({ message: 'not base64url' });
        return NEVER;
      }
      if (bytes.length < min || bytes.length > max) {
        addIssue({ message: min === max ? `must be ${min} bytes` : `must be ${min}..${max} bytes` });
        return NEVER;
      }
      return bytes;
    }),
  );
}

/** A device id: 16 bytes. */
export const deviceIdB64 = b64Bytes(16, 16);

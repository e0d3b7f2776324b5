/**
 * A browser's push subscription (`PushSubscription.toJSON()`: `{ endpoint, keys: { p256dh, auth } }`),
 * checked before it is stored. The route's valibot schema checks the shape; the checks here are
 * about meaning and answer `400 invalid_subscription`:
 *
 * - endpoint: an absolute `https:` URL on the default port, without credentials, whose host is
 *   not a loopback, private or reserved address (endpoint.ts: the relay POSTs to it later, and it
 *   must not be aimed at internal services; the operator may allow a local push service,
 *   PETREL_PUSH_ALLOW_HTTP=1).
 * - keys.p256dh: the browser's ECDH key (RFC 8291 §3.1), a 65-byte uncompressed P-256 point that
 *   is on the curve; a bad one would only fail later, at every push.
 * - keys.auth: the 16-byte authentication secret (RFC 8291 §3.2).
 */
import { ECDH } from 'node:crypto';
import { fromB64, toB64 } from '../encoding.ts';
import { ApiError } from '../errors.ts';
import { endpointProblem } from './endpoint.ts';

export const P256DH_BYTES = 65;
export const AUTH_SECRET_BYTES = 16;
/** Real endpoints are ~200-500 characters; the route's schema bounds them so a row stays small. */
export const MAX_ENDPOINT_CHARS = 2048;

export interface SubscriptionJson {
  readonly endpoint: string;
  readonly keys: { readonly p256dh: string; readonly auth: string };
}

/** What is stored: keys as canonical unpadded base64url (web-push reads them so). */
export interface CheckedSubscription {
  readonly endpoint: string;
  readonly p256dh: string;
  readonly auth: string;
}

const invalid = (message: string) => new ApiError(400, 'invalid_subscription', message);

export function checkSubscription(s: SubscriptionJson, allowHttp: boolean): CheckedSubscription {
  let url: URL;
  try {
    url = new URL(s.endpoint);
  } catch {
    throw invalid('endpoint must be an absolute URL');
  }
  if (url.href.length > MAX_ENDPOINT_CHARS) throw invalid(`endpoint longer than ${MAX_ENDPOINT_CHARS} characters`);
  const problem = endpointProblem(url, allowHttp);
  if (problem) throw invalid(problem);

  const p256dh = keyBytes(s.keys.p256dh, P256DH_BYTES, 'keys.p256dh');
  try {
    // Decodes the point and fails unless it is on P-256 (an uncompressed point starts 0x04).
    if (p256dh[0] !== 0x04) throw new Error('compressed');
    ECDH.convertKey(p256dh, 'prime256v1');
  } catch {
    throw invalid('keys.p256dh must be an uncompressed P-256 point');
  }
  const auth = keyBytes(s.keys.auth, AUTH_SECRET_BYTES, 'keys.auth');
  // The URL as parsed, not as given: the parser drops surrounding blanks, tabs and newlines and
  // percent-encodes control characters (a NUL, stored as given, made PostgreSQL refuse the row).
  return { endpoint: url.href, p256dh: toB64(p256dh), auth: toB64(auth) };
}

/** Browsers send unpadded base64url; a trailing `=` padding is tolerated and dropped. */
function keyBytes(s: string, len: number, field: string): Uint8Array {
  const bytes = fromB64(s.replace(/={1,2}$/, ''));
  if (!bytes || bytes.length !== len) throw invalid(`${field} must be ${len} bytes of base64url`);
  return bytes;
}

/**
 * The relay's one error shape: `{ "error": "<stable_code>", "message": "..." }` with the right
 * HTTP status (plus extra fields for a few codes, e.g. device_mismatch). Handlers throw
 * ApiError; app.ts turns it, and anything else, into that JSON. Messages never carry
 * tokens, keys, ciphertext or stack traces.
 */
import type { ContentfulStatusCode } from 'hono/utils/http-status';

export type ErrorCode =
  | 'invalid_request' // the body, query or path does not match the schema
  | 'invalid_json' // the body is not JSON
  | 'payload_too_large' // the body is over the route's limit
  | 'unsupported_media_type' // a JSON route's body sent without Content-Type: application/json (415)
  | 'invalid_username' // not 3..32 of [a-z0-9_.-] after NFKC + case folding
  | 'username_taken'
  | 'unknown_user'
  | 'unauthorized' // no, malformed, unknown or revoked bearer token
  | 'forbidden' // authenticated, but not allowed to do this (for routes that need it; none yet)
  | 'login_failed' // OPAQUE login did not complete (wrong password, expired or bad state)
  | 'invalid_opaque_message' // an OPAQUE message that does not decode
  | 'invalid_device_list' // signature, user id, pinned key or structure wrong
  | 'device_list_rollback' // version lower than (or equal to but different from) the stored one
  | 'device_not_listed' // the device is not active in the account's current list
  | 'device_taken' // a listed device is already listed by another account (409)
  | 'no_device_list' // the account has not published a device list yet
  | 'invalid_prekey' // a prekey that does not decode or whose signature fails
  | 'too_many_prekeys' // the device would hold more one-time prekeys than allowed
  | 'device_mismatch' // the envelope set differs from the recipients' reachable active devices (409)
  | 'not_reachable' // a recipient's active devices have none of them come online (no prekeys) yet (409)
  | 'invalid_envelope' // two envelopes for one device
  | 'invalid_ack' // POST /v1/inbox/ack past the last envelope stored for the device
  | 'no_backup'
  | 'invalid_subscription' // a push subscription with a non-https endpoint or malformed keys
  | 'attachment_too_large' // over maxAttachmentBytes (413)
  | 'quota_exceeded' // the account's attachment storage is full (413)
  | 'attachment_complete' // chunks of a completed attachment cannot change (409)
  | 'attachment_incomplete' // complete called with chunks missing (409)
  | 'range_not_satisfiable' // a download Range starting at or past the end (416)
  | 'invalid_claim' // a device claim that does not decode (400) or is not signed by the listed device key (401)
  | 'claim_expired' // a device claim whose time is outside the relay's window, ±5 min: the device's clock is off (401; body has relayTime, windowMs)
  | 'already_claimed' // the claimed device already holds a token
  | 'rate_limited'
  | 'not_found'
  | 'internal'; // a bug or an unreachable database; details go to the log, not the client

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: ErrorCode,
    message: string,
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): Record<string, unknown> {
    return { error: this.code, message: this.message, ...this.extra };
  }
}

export const badRequest = (message: string, code: ErrorCode = 'invalid_request') => new ApiError(400, code, message);
export const unauthorized = (message = 'missing or invalid credentials') => new ApiError(401, 'unauthorized', message);
export const forbidden = (message: string) => new ApiError(403, 'forbidden', message);
export const notFound = (code: ErrorCode, message: string) => new ApiError(404, code, message);

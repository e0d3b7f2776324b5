/**
 * Schema validation through Hono's validator (Standard Schema, valibot). A failure is a 400
 * `invalid_request` naming the first failing field; it never echoes the submitted value.
 */
import { sValidator } from '@hono/standard-validator';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { ValidationTargets } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { ApiError } from './errors.ts';

export function valid<T extends keyof ValidationTargets, S extends StandardSchemaV1>(target: T, schema: S) {
  const validator = sValidator(target, schema, (result) => {
    if (!result.success) throw new ApiError(400, 'invalid_request', describe(target, result.error));
  });
  if (target !== 'json') return validator;
  // Hono reads a body of another type as no body at all, which would fail as "field x: expected
  // string but received undefined" — true, but not the mistake the caller made.
  return (async (c, next) => {
    if (!JSON_TYPE.test(c.req.header('content-type') ?? '')) {
      throw new ApiError(415, 'unsupported_media_type', 'the body must be JSON, sent with Content-Type: application/json');
    }
    return validator(c, next);
  }) as typeof validator;
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * `<target> field <path>: <message>` for the first issue (also for WebSocket submit frames).
 * valibot's own messages end in "but received <the value>" or "Received <the value>": cut, a value may be a secret.
 */
export function describe(target: string, issues: readonly StandardSchemaV1.Issue[]): string {
  const first = issues[0];
  if (!first) return `invalid ${target}`;
  const path = (first.path ?? []).map((p) => (typeof p === 'object' ? String(p.key) : String(p))).join('.');
  // valibot writes "…: Expected x but received y" or "…: Received y" (numbers, for one).
  const message = first.message.replace(/,? but received [\s\S]*$/, '').replace(/:? ?Received [\s\S]*$/, '');
  return `${target}${path ? ' field ' + path : ''}: ${message}`.slice(0, 300);
}

/** Rejects bodies over `max` bytes with 413 payload_too_large (before reading them whole). */
export function limitBody(max: number) {
  return bodyLimit({
    maxSize: max,
    onError: () => {
      throw new ApiError(413, 'payload_too_large', `request body over ${max} bytes`);
    },
  });
}

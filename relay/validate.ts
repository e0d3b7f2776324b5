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
  return sValidator(target, schema, (result) => {
    if (!result.success) throw new ApiError(400, 'invalid_request', describe(target, result.error));
  });
}

/** `<target> field <path>: <message>` for the first issue (also for WebSocket submit frames). */
export function describe(target: string, issues: readonly StandardSchemaV1.Issue[]): string {
  const first = issues[0];
  if (!first) return `invalid ${target}`;
  const path = (first.path ?? []).map((p) => (typeof p === 'object' ? String(p.key) : String(p))).join('.');
  return `${target}${path ? ' field ' + path : ''}: ${first.message}`.slice(0, 300);
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

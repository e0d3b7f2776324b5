// The shared machinery of the known-answer vectors: the JSON shape, reading a case's recorded
// input, comparing recorded and recomputed outputs leaf by leaf, and the byte edits that turn a
// valid encoding into a malformed one. Topic modules (kdf.ts, ratchet.ts, ...) build on it.
//
// Every vector file is
//   { "description": string, "version": 1, "spec": string, "cases": [ { "name", "input", "output" } ] }
// `input` holds what a case is computed from (seeds, plaintexts, parameters, references to earlier
// cases by name), `output` what it must produce; `output.error` is an expected CryptoError code.
import { fromHex, isCryptoError, toHex, utf8 } from '../../../crypto/index.ts';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json | undefined };
export type JsonObject = { [key: string]: Json | undefined };

/** The version of the vector-file format (not of the protocol). */
export const VECTOR_FORMAT_VERSION = 1;

export interface CaseSpec {
  readonly name: string;
  readonly input: JsonObject;
  /** Generator-only: the error a negative case is meant to hit, asserted when generating. */
  readonly expect?: string;
}

export interface VectorCase {
  readonly name: string;
  readonly input: JsonObject;
  readonly output: JsonObject;
}

export interface VectorFile {
  readonly description: string;
  readonly version: number;
  readonly spec: string;
  readonly cases: VectorCase[];
}

/** What `compute` returns: the output to record or compare, and objects later cases may refer to. */
export interface Computed {
  readonly output: JsonObject;
  readonly keep?: unknown;
}

/** Earlier cases' kept objects, by case name. */
export type Earlier = ReadonlyMap<string, unknown>;

export interface Topic {
  readonly file: string;
  readonly description: string;
  readonly spec: string;
  /** The fixed inputs (seeds and scenarios) the generator records. */
  cases(): CaseSpec[];
  /** Recomputes a case's output from its recorded input alone (and earlier cases of the same file). */
  compute(c: CaseSpec, earlier: Earlier): Computed;
  /**
   * Checks on the recorded values themselves, independent of recomputation: decode and
   * re-encode recorded bytes, decrypt recorded messages, redo a step with node:crypto.
   */
  crossCheck?(c: VectorCase, kept: unknown, t: Tally): void;
}

/** Thrown when a recorded input does not have the shape a topic needs (a broken file, not a crypto failure). */
export class VectorShapeError extends Error {}

/** Counts checks and collects failures for one file. */
export class Tally {
  checks = 0;
  readonly failures: string[] = [];
  constructor(private readonly where: () => string) {}
  pass(): void {
    this.checks++;
  }
  fail(message: string): void {
    this.checks++;
    this.failures.push(`${this.where()}: ${message}`);
  }
  /** One check: `ok` must hold. */
  expect(ok: boolean, what: string): void {
    if (ok) this.pass();
    else this.fail(what);
  }
  /** One check: two byte strings must be identical. */
  bytes(recorded: Uint8Array, computed: Uint8Array, what: string): void {
    const d = firstDifference(toHex(recorded), toHex(computed));
    if (d === null) this.pass();
    else this.fail(`${what}: ${d}`);
  }
  /** Runs `f`, turning anything it throws into one failure naming `what`. */
  guard(what: string, f: () => void): void {
    try {
      f();
    } catch (e) {
      this.fail(`${what} threw ${describeError(e)}`);
    }
  }
}

export function describeError(e: unknown): string {
  if (isCryptoError(e)) return `CryptoError ${e.code}`;
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

// --- reading recorded inputs ----------------------------------------------------------------

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const HEX_RE = /^(?:[0-9a-f]{2})*$/;

/** Typed access to one recorded JSON object; every getter names the field it failed on. */
export class In {
  constructor(
    readonly raw: JsonObject,
    private readonly path: string,
  ) {}

  static of(v: Json | undefined, path: string): In {
    if (!isObject(v)) throw new VectorShapeError(`${path} must be an object`);
    return new In(v, path);
  }
  private get(key: string): Json {
    const v = this.raw[key];
    if (v === undefined) throw new VectorShapeError(`${this.path}.${key} is missing`);
    return v;
  }
  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }
  hex(key: string): Uint8Array {
    const v = this.get(key);
    if (typeof v !== 'string' || !HEX_RE.test(v)) throw new VectorShapeError(`${this.path}.${key} must be lowercase hex`);
    return fromHex(v);
  }
  str(key: string): string {
    const v = this.get(key);
    if (typeof v !== 'string') throw new VectorShapeError(`${this.path}.${key} must be a string`);
    return v;
  }
  num(key: string): number {
    const v = this.get(key);
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new VectorShapeError(`${this.path}.${key} must be an integer`);
    return v;
  }
  /** An integer, or null. */
  optNum(key: string): number | null {
    return this.has(key) ? this.num(key) : null;
  }
  obj(key: string): In {
    return In.of(this.get(key), `${this.path}.${key}`);
  }
  arr(key: string): Json[] {
    const v = this.get(key);
    if (!Array.isArray(v)) throw new VectorShapeError(`${this.path}.${key} must be an array`);
    return v;
  }
  objs(key: string): In[] {
    return this.arr(key).map((v, i) => In.of(v, `${this.path}.${key}[${i}]`));
  }
  hexes(key: string): Uint8Array[] {
    return this.arr(key).map((v, i) => {
      if (typeof v !== 'string' || !HEX_RE.test(v)) throw new VectorShapeError(`${this.path}.${key}[${i}] must be lowercase hex`);
      return fromHex(v);
    });
  }
  nums(key: string): number[] {
    return this.arr(key).map((v, i) => {
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new VectorShapeError(`${this.path}.${key}[${i}] must be an integer`);
      return v;
    });
  }
}

/** The object an earlier case of the same file kept, by that case's name. */
export function earlierCase<T>(earlier: Earlier, name: string): T {
  if (!earlier.has(name)) throw new VectorShapeError(`no earlier case named "${name}"`);
  return earlier.get(name) as T;
}

// --- outputs ------------------------------------------------------------------------------

export const hex = toHex;

export function utf8Hex(s: string): string {
  return toHex(utf8(s));
}

/**
 * Runs the step a negative case is about and returns the CryptoError code it threw, or "none".
 * Anything but a CryptoError propagates: that is a broken computation, not an expected failure.
 */
export function errorCode(f: () => unknown): string {
  try {
    f();
    return 'none';
  } catch (e) {
    if (isCryptoError(e)) return e.code;
    throw e;
  }
}

/** Like errorCode, but keeps the value when the step succeeds. */
export function attempt<T>(f: () => T): { ok: true; value: T } | { ok: false; error: string } {
  try {
    return { ok: true, value: f() };
  } catch (e) {
    if (isCryptoError(e)) return { ok: false, error: e.code };
    throw e;
  }
}

// --- comparison -----------------------------------------------------------------------------

function firstDifference(recorded: string, computed: string): string | null {
  if (recorded === computed) return null;
  const hexLike = HEX_RE.test(recorded) && HEX_RE.test(computed);
  let i = 0;
  while (i < recorded.length && i < computed.length && recorded[i] === computed[i]) i++;
  if (hexLike) {
    const at = i >> 1;
    const show = (s: string) => (at * 2 < s.length ? s.slice(at * 2, at * 2 + 2) : 'end');
    const lens = recorded.length === computed.length ? '' : ` (lengths ${recorded.length / 2} vs ${computed.length / 2} bytes)`;
    return `byte ${at} differs: recorded ${show(recorded)}, computed ${show(computed)}${lens}`;
  }
  return `recorded ${JSON.stringify(recorded)}, computed ${JSON.stringify(computed)}`;
}

/** Compares a recorded JSON value with the recomputed one; each leaf is one check. */
export function compareJson(recorded: Json | undefined, computed: Json | undefined, path: string, t: Tally): void {
  if (Array.isArray(recorded) && Array.isArray(computed)) {
    if (recorded.length !== computed.length) {
      t.fail(`${path}: recorded ${recorded.length} entries, computed ${computed.length}`);
      return;
    }
    recorded.forEach((v, i) => compareJson(v, computed[i], `${path}[${i}]`, t));
    return;
  }
  if (isObject(recorded) && isObject(computed)) {
    for (const k of Object.keys(computed)) {
      if (!(k in recorded)) t.fail(`${path}.${k}: computed but not recorded`);
    }
    for (const k of Object.keys(recorded)) {
      if (!(k in computed)) t.fail(`${path}.${k}: recorded but not computed`);
      else compareJson(recorded[k], computed[k], `${path}.${k}`, t);
    }
    return;
  }
  if (typeof recorded === 'string' && typeof computed === 'string') {
    const d = firstDifference(recorded, computed);
    if (d === null) t.pass();
    else t.fail(`${path}: ${d}`);
    return;
  }
  if (recorded === computed) t.pass();
  else t.fail(`${path}: recorded ${JSON.stringify(recorded)}, computed ${JSON.stringify(computed)}`);
}

// --- edits: how a malformed or tampered input is made from a valid one ------------------------

/**
 * One edit, recorded as input:
 *   { "op": "xor", "offset": n, "mask": m }          byte n ^= m
 *   { "op": "set", "offset": n, "bytes": hex }       overwrite from byte n
 *   { "op": "truncate", "length": n }                keep the first n bytes
 *   { "op": "append", "bytes": hex }                 add bytes at the end
 */
export function applyEdit(bytes: Uint8Array, edit: In): Uint8Array {
  const op = edit.str('op');
  if (op === 'truncate') {
    const n = edit.num('length');
    if (n < 0 || n > bytes.length) throw new VectorShapeError('truncate length out of range');
    return bytes.slice(0, n);
  }
  if (op === 'append') {
    const extra = edit.hex('bytes');
    const out = new Uint8Array(bytes.length + extra.length);
    out.set(bytes);
    out.set(extra, bytes.length);
    return out;
  }
  const offset = edit.num('offset');
  const out = bytes.slice();
  if (op === 'xor') {
    const mask = edit.num('mask');
    if (offset < 0 || offset >= out.length || mask < 1 || mask > 255) throw new VectorShapeError('xor edit out of range');
    out[offset] = out[offset]! ^ mask;
    return out;
  }
  if (op === 'set') {
    const b = edit.hex('bytes');
    if (offset < 0 || offset + b.length > out.length) throw new VectorShapeError('set edit out of range');
    out.set(b, offset);
    return out;
  }
  throw new VectorShapeError(`unknown edit op ${op}`);
}

export const xorEdit = (offset: number, mask = 0x01): JsonObject => ({ op: 'xor', offset, mask });
export const setEdit = (offset: number, bytes: string): JsonObject => ({ op: 'set', offset, bytes });
export const truncateEdit = (length: number): JsonObject => ({ op: 'truncate', length });
export const appendEdit = (bytes: string): JsonObject => ({ op: 'append', bytes });

/** A fixed, readable seed: the UTF-8 bytes of a phrase (16..64 bytes, as seededRng wants). */
export function seedHex(phrase: string): string {
  return utf8Hex(phrase);
}

/**
 * Byte helpers and the one reader/writer pair every wire format uses. Decoding is
 * length → version → fields; running out of bytes is a `truncated` CryptoError and
 * leftover bytes a `trailing_bytes` one, so no decoder throws anything else.
 */
import { CryptoError } from './errors.ts';

export function concat(...parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Constant-time for equal lengths: the loop never exits early on a differing byte. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Lexicographic order; used only on public values (tie-breaks, sorting fingerprints). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX[b[i]!];
  return s;
}

export function fromHex(hex: string, field = 'hex'): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new CryptoError('invalid_argument', `${field} is not a hex string`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

const encoder = new TextEncoder();
// ignoreBOM: keep a leading U+FEFF as a character. By default TextDecoder strips it, so two
// different byte strings (with and without EF BB BF) would decode to the same user id or name.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

export function fromUtf8(b: Uint8Array, field: string): string {
  try {
    return decoder.decode(b);
  } catch {
    throw new CryptoError('malformed', `${field} is not valid UTF-8`);
  }
}

/** Checks a caller-supplied byte string's type and length, naming the field (noble's `abytes`). */
export function checkBytes(value: unknown, length: number | undefined, field: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new CryptoError('invalid_argument', `${field} must be a Uint8Array`);
  if (length !== undefined && value.length !== length) {
    throw new CryptoError('invalid_argument', `${field} must be ${length} bytes, got ${value.length}`);
  }
  return value;
}

/** Big-endian appender. Sizes are small, so it grows by doubling. */
export class Writer {
  private buf: Uint8Array;
  private view: DataView;
  private len = 0;
  constructor(capacity = 256) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }
  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): this {
    this.reserve(1);
    this.view.setUint8(this.len, v);
    this.len += 1;
    return this;
  }
  u16(v: number): this {
    this.reserve(2);
    this.view.setUint16(this.len, v);
    this.len += 2;
    return this;
  }
  u32(v: number): this {
    this.reserve(4);
    this.view.setUint32(this.len, v);
    this.len += 4;
    return this;
  }
  /** Unsigned 64-bit; JS numbers keep 53 bits, which is enough for millisecond times and counters. */
  u64(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new CryptoError('invalid_argument', 'u64 out of range');
    this.reserve(8);
    this.view.setBigUint64(this.len, BigInt(v));
    this.len += 8;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }
  /** u8 length prefix, then the bytes. */
  var8(b: Uint8Array): this {
    if (b.length > 0xff) throw new CryptoError('invalid_argument', 'field longer than 255 bytes');
    return this.u8(b.length).bytes(b);
  }
  /** u32 length prefix, then the bytes. */
  var32(b: Uint8Array): this {
    return this.u32(b.length).bytes(b);
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** Big-endian cursor. Every read is bounds-checked and returns a copy-free view. */
export class Reader {
  private off = 0;
  private readonly view: DataView;
  constructor(
    private readonly buf: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number, field: string): void {
    if (this.off + n > this.buf.length) {
      throw new CryptoError('truncated', `${this.what}: ${field} needs ${n} bytes at offset ${this.off}`);
    }
  }
  get remaining(): number {
    return this.buf.length - this.off;
  }
  u8(field: string): number {
    this.need(1, field);
    return this.view.getUint8(this.off++);
  }
  u16(field: string): number {
    this.need(2, field);
    const v = this.view.getUint16(this.off);
    this.off += 2;
    return v;
  }
  u32(field: string): number {
    this.need(4, field);
    const v = this.view.getUint32(this.off);
    this.off += 4;
    return v;
  }
  u64(field: string): number {
    this.need(8, field);
    const v = this.view.getBigUint64(this.off);
    this.off += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CryptoError('malformed', `${this.what}: ${field} too large`);
    return Number(v);
  }
  bytes(n: number, field: string): Uint8Array {
    this.need(n, field);
    const out = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return out;
  }
  var8(field: string): Uint8Array {
    return this.bytes(this.u8(field), field);
  }
  var32(field: string): Uint8Array {
    return this.bytes(this.u32(field), field);
  }
  rest(): Uint8Array {
    const out = this.buf.subarray(this.off);
    this.off = this.buf.length;
    return out;
  }
  /** The version byte: must be one of `known`, else `unknown_version`. */
  version(known: readonly number[]): number {
    if (this.buf.length === 0) throw new CryptoError('truncated', `${this.what}: empty`);
    const v = this.u8('version');
    if (!known.includes(v)) throw new CryptoError('unknown_version', `${this.what}: version ${v}`);
    return v;
  }
  end(): void {
    if (this.off !== this.buf.length) {
      throw new CryptoError('trailing_bytes', `${this.what}: ${this.buf.length - this.off} bytes after the last field`);
    }
  }
}

/**
 * The file store's on-disk encoding: values through V8's serializer (the structured-clone
 * format Chromium's own IndexedDB keeps on disk, documented by Node as backward-compatible and
 * safe to store), and records framed with a length and a checksum so a torn append is detected.
 *
 * Record layout (little-endian):
 *
 *   offset  size  field
 *   0       4     n = length of payload
 *   4       4     crc32(payload)
 *   8       n     payload = 0x01 (format version) || V8-serialized value
 *
 * Uint8Array values are written as host objects of our own (u32 length || raw bytes) rather than
 * Node's default (a table index of typed-array constructors): the format is then ours, and every
 * decoded array owns an exactly-sized buffer (Node's default decodes views into the whole record,
 * which would keep it alive and expose neighbouring bytes through `.buffer`).
 */
import v8 from 'node:v8';
import { crc32 } from 'node:zlib';

const FORMAT = 0x01;
const HEADER = 8;
/** Larger than any transaction we write; a bigger length field can only be a torn header. */
const MAX_RECORD = 1 << 30;

// The underscore hooks are Node's documented extension points (nodejs.org/api/v8.html, "class
// v8.Serializer"); @types/node does not declare them.
interface Hooks {
  _setTreatArrayBufferViewsAsHostObjects(flag: boolean): void;
}

class Serializer extends v8.Serializer {
  constructor() {
    super();
    (this as unknown as Hooks)._setTreatArrayBufferViewsAsHostObjects(true);
  }
  _writeHostObject(view: object): void {
    if (!(view instanceof Uint8Array)) throw new Error('the store keeps bytes only as Uint8Array');
    this.writeUint32(view.byteLength);
    this.writeRawBytes(view);
  }
}

class Deserializer extends v8.Deserializer {
  _readHostObject(): Uint8Array {
    const length = this.readUint32();
    return new Uint8Array(this.readRawBytes(length)); // a copy: its own buffer, exactly sized
  }
}

export function encodeValue(value: unknown): Buffer {
  const s = new Serializer();
  s.writeHeader();
  s.writeValue(value);
  return s.releaseBuffer();
}

export function decodeValue(bytes: Uint8Array): unknown {
  const d = new Deserializer(bytes);
  d.readHeader();
  return d.readValue();
}

/** One framed record holding `value`. */
export function frame(value: unknown): Buffer {
  const body = encodeValue(value);
  const out = Buffer.allocUnsafe(HEADER + 1 + body.length);
  out[HEADER] = FORMAT;
  body.copy(out, HEADER + 1);
  out.writeUInt32LE(body.length + 1, 0);
  out.writeUInt32LE(crc32(out.subarray(HEADER)), 4);
  return out;
}

/**
 * Decodes the complete records at the start of `buf`, calling `each` with every value; returns
 * the offset just past the last good record. Anything after it (a short header, a short
 * payload, a checksum mismatch) is the torn tail of an append that never completed.
 */
export function readRecords(buf: Buffer, each: (value: unknown) => void): number {
  let off = 0;
  while (off + HEADER <= buf.length) {
    const n = buf.readUInt32LE(off);
    // n = 0 with a zero checksum would pass crc32 (crc32 of nothing is 0): zero-filled space
    // left by a crash during an append must not read as a record.
    if (n < 1 || n > MAX_RECORD || off + HEADER + n > buf.length) break;
    const payload = buf.subarray(off + HEADER, off + HEADER + n);
    if (crc32(payload) !== buf.readUInt32LE(off + 4)) break;
    // A whole, checksummed record we cannot read is not a torn tail: cutting it off would
    // throw away acknowledged writes, so refuse instead.
    if (payload[0] !== FORMAT) throw new Error(`store record format ${payload[0]} is newer than this build understands`);
    each(decodeValue(payload.subarray(1)));
    off += HEADER + n;
  }
  return off;
}

/** The value of one record made by `frame` (a fresh copy: nothing shared with what was framed). */
export function decodeRecord(record: Buffer): unknown {
  return decodeValue(record.subarray(HEADER + 1));
}

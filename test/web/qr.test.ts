// Our QR encoder (web/ui/qr-encode.ts) against qrcode-generator, the library it replaced (kept as a
// devDependency for this test only): the same modules for the same data. qrcode-generator scores
// the masks with its own, non-standard penalty, so the test reads the mask it chose from its
// format information and draws ours with that mask; our own choice follows ISO/IEC 18004.
import qrcode from 'qrcode-generator';
import { crc32, inflateSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { qrDataUrl, qrEncode } from '../../web/ui/qr-encode.ts';

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Deterministic pseudo-random text (a linear congruential generator). */
function text(len: number, seed: number, alphabet = B64URL): string {
  let s = seed;
  let out = '';
  for (let i = 0; i < len; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    out += alphabet[(s >>> 8) % alphabet.length];
  }
  return out;
}

const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** qrcode-generator's modules (bytes: each character's low 8 bits) and the mask it chose. */
function reference(data: string): { modules: boolean[][]; mask: number } {
  const qr = qrcode(0, 'M');
  qr.addData(data);
  qr.make();
  const n = qr.getModuleCount();
  const modules = Array.from({ length: n }, (_, r) => Array.from({ length: n }, (_, c) => qr.isDark(r, c)));
  // The first copy of the format information has its bits 14..10 (level M = 00, then the mask)
  // at row 8, columns 0..4.
  let bits = 0;
  for (let i = 14; i >= 10; i--) bits = (bits << 1) | (modules[8]![14 - i]! ? 1 : 0);
  const mask = (bits ^ (0x5412 >>> 10)) & 7;
  return { modules, mask };
}

function same(data: string) {
  const ref = reference(data);
  const ours = qrEncode(latin1(data), ref.mask);
  expect(ours.length).toBe(ref.modules.length);
  expect(ours.map((row) => row.map((d) => (d ? '#' : '.')).join(''))).toEqual(
    ref.modules.map((row) => row.map((d) => (d ? '#' : '.')).join('')),
  );
}

describe('QR encoder', () => {
  test('base64url text of every length from 1 to 200 gives qrcode-generator’s modules', () => {
    for (let len = 1; len <= 200; len++) same(text(len, len));
  });

  test('binary-ish data gives qrcode-generator’s modules', () => {
    const all = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join('');
    for (const [len, seed] of [[1, 1], [17, 2], [65, 3], [100, 4], [213, 5]]) same(text(len!, seed!, all));
    same('\0'.repeat(50));
    same('\xff'.repeat(90));
    same(all.slice(0, 200));
  });

  test('longer data (versions 11 to 40) gives qrcode-generator’s modules', () => {
    for (const len of [214, 250, 331, 500, 777, 1000, 1500, 2000, 2331]) same(text(len, len));
  });

  test('the link code size takes the expected version', () => {
    expect(qrEncode(text(92, 7)).length).toBe(4 * 6 + 17); // 92 bytes: version 6-M (5-M holds 84)
    expect(qrEncode('').length).toBe(21);
  });

  test('chooses a valid mask and says so in the format information', () => {
    for (const len of [1, 20, 92, 150]) {
      const m = qrEncode(text(len, 11));
      const mask = ((m[8]![2]! ? 4 : 0) | (m[8]![3]! ? 2 : 0) | (m[8]![4]! ? 1 : 0)) ^ ((0x5412 >>> 10) & 7);
      expect(qrEncode(text(len, 11), mask)).toEqual(m);
    }
  });

  test('refuses data longer than version 40-M holds', () => {
    expect(() => qrEncode('x'.repeat(2332))).toThrow(/too long/);
  });

  test('draws a PNG with 4 px per module and a 4-module quiet zone', () => {
    const m = qrEncode(text(92, 7));
    const url = qrDataUrl(m, 4, 4);
    expect(url.startsWith('data:image/png;base64,')).toBe(true);
    const png = Buffer.from(url.slice(22), 'base64');
    const size = (m.length + 8) * 4;
    expect(png.readUInt32BE(16)).toBe(size);
    expect(png.readUInt32BE(20)).toBe(size);
    const idatLen = png.readUInt32BE(33);
    expect(png.toString('latin1', 37, 41)).toBe('IDAT');
    // Every chunk's CRC, which image decoders check; IEND closes the file.
    const types: string[] = [];
    for (let at = 8; at < png.length; ) {
      const len = png.readUInt32BE(at);
      types.push(png.toString('latin1', at + 4, at + 8));
      expect(png.readUInt32BE(at + 8 + len)).toBe(crc32(png.subarray(at + 4, at + 8 + len)));
      at += 12 + len;
    }
    expect(types).toEqual(['IHDR', 'IDAT', 'IEND']);
    const raw = inflateSync(png.subarray(41, 41 + idatLen)); // checks the Adler-32 too
    const stride = Math.ceil(size / 8) + 1;
    expect(raw.length).toBe(stride * size);
    const dark = (x: number, y: number) => ((raw[y * stride + 1 + (x >> 3)]! >> (7 - (x & 7))) & 1) === 0;
    for (let y = 0; y < size; y++) {
      expect(raw[y * stride]).toBe(0);
      for (let x = 0; x < size; x++) {
        const r = Math.floor(y / 4) - 4, c = Math.floor(x / 4) - 4;
        expect(dark(x, y)).toBe(!!m[r]?.[c]);
      }
    }
  });
});

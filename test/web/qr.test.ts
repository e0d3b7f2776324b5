// Our QR encoder (web/ui/qr-encode.ts) against qrcode-generator, the library it replaced (kept as a
// devDependency for this test only): the same modules for the same data. qrcode-generator scores
// the masks with its own, non-standard penalty, so the test reads the mask it chose from its
// format information and draws ours with that mask; our own choice follows ISO/IEC 18004.
import qrcode from 'qrcode-generator';
import { describe, expect, test } from 'vitest';
import { encodeLinkCode, generateAccountKey, generateDevice, publicPart, ready, safetyNumber, systemRng } from '../../crypto/index.ts';
import { toB64 } from '../../web/core/b64.ts';
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
  test('base64url text of every length from 1 to 106 (all it draws) gives qrcode-generator’s modules', () => {
    for (let len = 1; len <= 106; len++) same(text(len, len));
  });

  test('binary-ish data gives qrcode-generator’s modules', () => {
    const all = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join('');
    for (const [len, seed] of [[1, 1], [17, 2], [65, 3], [100, 4], [106, 5]]) same(text(len!, seed!, all));
    same('\0'.repeat(50));
    same('\xff'.repeat(90));
    same(all.slice(0, 106));
  });

  test('every version it draws (1 to 6) gives qrcode-generator’s modules', () => {
    for (const len of [14, 26, 42, 62, 84, 106]) same(text(len, len));
  });

  test('the codes the app draws fit the versions it draws: a link code and a safety number', async () => {
    await ready();
    const link = toB64(encodeLinkCode(publicPart(generateDevice(systemRng))));
    const sn = toB64(safetyNumber('alice', generateAccountKey(systemRng).publicKey, 'bob', generateAccountKey(systemRng).publicKey).qr);
    expect(qrEncode(link).length).toBe(4 * 6 + 17); // 92 characters
    expect(qrEncode(sn).length).toBe(4 * 6 + 17); // 87 characters
  });

  test('the link code size takes the expected version', () => {
    expect(qrEncode(text(92, 7)).length).toBe(4 * 6 + 17); // 92 bytes: version 6-M (5-M holds 84)
    expect(qrEncode('').length).toBe(21);
  });

  test('chooses a valid mask and says so in the format information', () => {
    for (const len of [1, 20, 92, 106]) {
      const m = qrEncode(text(len, 11));
      const mask = ((m[8]![2]! ? 4 : 0) | (m[8]![3]! ? 2 : 0) | (m[8]![4]! ? 1 : 0)) ^ ((0x5412 >>> 10) & 7);
      expect(qrEncode(text(len, 11), mask)).toEqual(m);
    }
  });

  test('refuses data longer than version 6-M holds (the largest it draws)', () => {
    expect(() => qrEncode('x'.repeat(107))).toThrow(/too long \(at most 106\)/);
  });

  test('draws an SVG image: a square per dark module, a white field, a 4-module quiet zone', () => {
    const m = qrEncode(text(92, 7));
    const url = qrDataUrl(m, 4);
    expect(url.startsWith('data:image/svg+xml,')).toBe(true);
    const svg = decodeURIComponent(url.slice('data:image/svg+xml,'.length));
    const n = m.length + 8;
    expect(svg).toContain(`viewBox="0 0 ${n} ${n}"`);
    expect(svg).toContain(`<rect width="${n}" height="${n}" fill="#fff"/>`);
    // Read the modules back from the path: exactly the dark ones, each a unit square, offset by the margin.
    const d = /<path d="([^"]*)"\/>/.exec(svg)![1]!;
    const squares = [...d.matchAll(/M(\d+) (\d+)h1v1h-1z/g)];
    expect(squares.map((x) => x[0]).join('')).toBe(d); // nothing else in the path
    const drawn = Array.from({ length: m.length }, () => Array<boolean>(m.length).fill(false));
    for (const [, x, y] of squares) drawn[Number(y) - 4]![Number(x) - 4] = true;
    expect(drawn).toEqual(m);
  });
});

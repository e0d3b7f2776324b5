/**
 * A small QR code encoder (ISO/IEC 18004), just what the app needs: byte mode, error correction
 * level M, the smallest version that fits (1–6), all eight masks scored with the standard
 * penalty rules. The code is drawn as an SVG image in a data: URL (the CSP allows img-src data:),
 * never as markup.
 */

/**
 * Error correction codewords per block, and number of blocks, for level M, versions 1–6: the
 * app's codes take version 6 (a link code is 92 bytes, a safety number 87; 6 holds 106). From
 * version 7 a code carries version information, and from 10 a longer count: none of that is
 * here. (Versions to 40, then to 10, were here and tested too; their tables and patterns cost
 * bytes in the app's budget for codes never drawn.)
 */
const ECC_PER_BLOCK = [10, 16, 26, 18, 24, 16];
const BLOCKS = [1, 1, 1, 2, 2, 4];
const MAX_VERSION = 6;

/** All codewords a version holds: its modules minus the function patterns, in bytes. */
function rawCodewords(ver: number): number {
  // One alignment pattern from version 2 (none in version 1); no version information below 7.
  return (((16 * ver + 128) * ver + 64 - (ver > 1 ? 25 : 0)) >> 3);
}

const dataCodewords = (ver: number) => rawCodewords(ver) - ECC_PER_BLOCK[ver - 1]! * BLOCKS[ver - 1]!;
/** Bytes of data a version takes in byte mode: mode (4 bits) and count (8 bits) come first. */
const capacity = (ver: number) => dataCodewords(ver) - 2;

// GF(256) with the QR polynomial x^8 + x^4 + x^3 + x^2 + 1.
const EXP = new Uint8Array(510);
const LOG = new Uint8Array(256);
for (let i = 0, x = 1; i < 255; i++, x = (x << 1) ^ (x & 0x80 ? 0x11d : 0)) {
  EXP[i] = EXP[i + 255] = x;
  LOG[x] = i;
}
const mul = (a: number, b: number) => (a && b ? EXP[LOG[a]! + LOG[b]!]! : 0);

/** The Reed–Solomon error correction codewords of `data`: the remainder by (x-α^0)…(x-α^(n-1)). */
function reedSolomon(data: Uint8Array, n: number): Uint8Array {
  const gen = new Uint8Array(n); // coefficients below the leading 1, highest first
  gen[n - 1] = 1;
  for (let i = 0, root = 1; i < n; i++, root = mul(root, 2)) {
    for (let j = 0; j < n; j++) gen[j] = mul(gen[j]!, root) ^ (gen[j + 1] ?? 0);
  }
  const rem = new Uint8Array(n);
  for (const b of data) {
    const factor = b ^ rem[0]!;
    rem.copyWithin(0, 1);
    rem[n - 1] = 0;
    for (let j = 0; j < n; j++) rem[j]! ^= mul(gen[j]!, factor);
  }
  return rem;
}

/** The data and error correction codewords of `bytes` in version `ver`, interleaved. */
function codewords(bytes: Uint8Array, ver: number): number[] {
  const size = dataCodewords(ver);
  const data = new Uint8Array(size);
  let bit = 0;
  const put = (value: number, len: number) => {
    for (let i = len - 1; i >= 0; i--, bit++) data[bit >> 3]! |= ((value >>> i) & 1) << (7 - (bit & 7));
  };
  put(4, 4); // byte mode
  put(bytes.length, 8);
  for (const b of bytes) put(b, 8);
  // The terminator and the padding to a whole byte are zero bits; then the pad bytes alternate.
  for (let i = (bit + 4 + 7) >> 3, pad = 0xec; i < size; i++, pad ^= 0xec ^ 0x11) data[i] = pad;

  const blocks = BLOCKS[ver - 1]!;
  const ecc = ECC_PER_BLOCK[ver - 1]!;
  const short = Math.floor(size / blocks); // data bytes in a short block; the last ones have one more
  const long = blocks - (size % blocks);
  const dataBlocks: Uint8Array[] = [];
  const eccBlocks: Uint8Array[] = [];
  for (let b = 0, at = 0; b < blocks; b++) {
    const block = data.subarray(at, (at += short + (b < long ? 0 : 1)));
    dataBlocks.push(block);
    eccBlocks.push(reedSolomon(block, ecc));
  }
  const out: number[] = [];
  for (let i = 0; i <= short; i++) for (const block of dataBlocks) if (i < block.length) out.push(block[i]!);
  for (let i = 0; i < ecc; i++) for (const block of eccBlocks) out.push(block[i]!);
  return out;
}

/** Where the alignment patterns' centres are, on both axes. */
function alignment(ver: number): number[] {
  return ver === 1 ? [] : [6, ver * 4 + 10];
}

const MASKS: ((r: number, c: number) => boolean)[] = [
  (r, c) => (r + c) % 2 === 0,
  (r) => r % 2 === 0,
  (_, c) => c % 3 === 0,
  (r, c) => (r + c) % 3 === 0,
  (r, c) => (Math.floor(r / 2) + Math.floor(c / 3)) % 2 === 0,
  (r, c) => ((r * c) % 2) + ((r * c) % 3) === 0,
  (r, c) => (((r * c) % 2) + ((r * c) % 3)) % 2 === 0,
  (r, c) => (((r + c) % 2) + ((r * c) % 3)) % 2 === 0,
];

/** `value` followed by its BCH check bits: the remainder by the generator `poly` of degree `deg`. */
function bch(value: number, poly: number, deg: number): number {
  let rem = value << deg;
  for (let i = 31 - Math.clz32(rem); i >= deg; i--) if ((rem >>> i) & 1) rem ^= poly << (i - deg);
  return (value << deg) | rem;
}

/** Standard penalty score of a finished matrix (ISO/IEC 18004:2015, 7.8.3.1). */
function penalty(m: boolean[][]): number {
  const n = m.length;
  let score = 0;
  let dark = 0;
  // The last seven runs, newest first; the light border around the code counts as light.
  const history = [0, 0, 0, 0, 0, 0, 0];
  const addRun = (len: number) => {
    history.pop();
    history.unshift(history[0] === 0 ? len + n : len);
  };
  // dark:light:dark:light:dark as 1:1:3:1:1 with 4 light modules before or after it
  const finders = () => {
    const [a, b, c, d, e, f, g] = history as [number, number, number, number, number, number, number];
    if (!(b > 0 && c === b && d === 3 * b && e === b && f === b)) return 0;
    return (a >= 4 * b && g >= b ? 1 : 0) + (g >= 4 * b && a >= b ? 1 : 0);
  };
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 0; i < n; i++) {
      history.fill(0);
      let color = false;
      let len = 0;
      for (let j = 0; j < n; j++) {
        const cell = pass ? m[j]![i]! : m[i]![j]!;
        if (cell === color) {
          len++;
          if (len === 5) score += 3;
          else if (len > 5) score++;
        } else {
          addRun(len);
          if (!color) score += 40 * finders();
          color = cell;
          len = 1;
        }
        if (!pass && cell) dark++;
      }
      if (color) {
        addRun(len);
        len = 0;
      }
      addRun(len + n);
      score += 40 * finders();
    }
  }
  for (let r = 0; r < n - 1; r++) {
    for (let c = 0; c < n - 1; c++) {
      const x = m[r]![c];
      if (x === m[r]![c + 1] && x === m[r + 1]![c] && x === m[r + 1]![c + 1]) score += 3;
    }
  }
  return score + (Math.ceil(Math.abs(dark * 20 - n * n * 10) / (n * n)) - 1) * 10;
}

/**
 * The modules of a QR code (true = dark) holding `data`, without the quiet zone. `mask` forces a
 * mask pattern (for tests); otherwise the one with the lowest penalty is used.
 */
export function qrEncode(data: string | Uint8Array, mask?: number): boolean[][] {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  let ver = 1;
  while (capacity(ver) < bytes.length) {
    if (++ver > MAX_VERSION) throw new RangeError(`QR code: ${bytes.length} bytes is too long (at most ${capacity(MAX_VERSION)})`);
  }
  const n = ver * 4 + 17;
  const m = Array.from({ length: n }, () => new Array<boolean>(n).fill(false));
  const fixed = Array.from({ length: n }, () => new Array<boolean>(n).fill(false));
  const set = (r: number, c: number, dark: boolean) => {
    m[r]![c] = dark;
    fixed[r]![c] = true;
  };

  // Timing patterns, then the finders (with their light separators) and alignment patterns over them.
  for (let i = 0; i < n; i++) {
    set(6, i, i % 2 === 0);
    set(i, 6, i % 2 === 0);
  }
  for (const [r0, c0] of [[3, 3], [n - 4, 3], [3, n - 4]] as const) {
    for (let dr = -4; dr <= 4; dr++) {
      for (let dc = -4; dc <= 4; dc++) {
        const r = r0 + dr, c = c0 + dc;
        const d = Math.max(Math.abs(dr), Math.abs(dc));
        if (r >= 0 && r < n && c >= 0 && c < n) set(r, c, d !== 2 && d !== 4);
      }
    }
  }
  const align = alignment(ver);
  const last = align.length - 1;
  align.forEach((r0, i) =>
    align.forEach((c0, j) => {
      if ((i === 0 && j === 0) || (i === 0 && j === last) || (i === last && j === 0)) return; // finders
      for (let dr = -2; dr <= 2; dr++) {
        for (let dc = -2; dc <= 2; dc++) set(r0 + dr, c0 + dc, Math.max(Math.abs(dr), Math.abs(dc)) !== 1);
      }
    }),
  );
  // Format information (level M is 00, then the mask): 15 bits, twice, and the dark module.
  const format = (k: number) => {
    const bits = bch(k, 0x537, 10) ^ 0x5412;
    const bit = (i: number) => ((bits >>> i) & 1) === 1;
    for (let i = 0; i < 6; i++) set(i, 8, bit(i));
    set(7, 8, bit(6));
    set(8, 8, bit(7));
    set(8, 7, bit(8));
    for (let i = 9; i < 15; i++) set(8, 14 - i, bit(i));
    for (let i = 0; i < 8; i++) set(8, n - 1 - i, bit(i));
    for (let i = 8; i < 15; i++) set(n - 15 + i, 8, bit(i));
    set(n - 8, 8, true);
  };
  format(0); // reserves the format areas

  // The codewords, in two-module columns zigzagging up and down from the bottom right.
  const words = codewords(bytes, ver);
  for (let right = n - 1, i = 0; right >= 1; right -= 2) {
    if (right === 6) right = 5; // skip the vertical timing pattern
    const up = ((right + 1) & 2) === 0;
    for (let k = 0; k < n; k++) {
      const r = up ? n - 1 - k : k;
      for (let c = right; c > right - 2; c--) {
        if (fixed[r]![c]) continue;
        m[r]![c] = i < words.length * 8 && ((words[i >> 3]! >>> (7 - (i & 7))) & 1) === 1;
        i++;
      }
    }
  }

  const apply = (k: number) => {
    const f = MASKS[k]!;
    for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) if (!fixed[r]![c] && f(r, c)) m[r]![c] = !m[r]![c];
  };
  if (mask === undefined) {
    let best = Infinity;
    for (let k = 0; k < 8; k++) {
      apply(k);
      format(k);
      const score = penalty(m);
      if (score < best) {
        best = score;
        mask = k;
      }
      apply(k); // undo
    }
  }
  apply(mask!);
  format(mask!);
  return m;
}

/**
 * A QR code's modules as a data: URL of an SVG image: a unit square per dark module on a white
 * field with a `margin`-module quiet zone; crispEdges keeps the module edges sharp at any size.
 * (It was a hand-written 1-bit PNG: CRC-32, zlib and bit packing, half a kilobyte of the app's
 * gzipped JavaScript, for what a path of squares says as well.)
 */
export function qrDataUrl(modules: boolean[][], margin = 4): string {
  const n = modules.length + 2 * margin;
  let d = '';
  modules.forEach((row, r) => row.forEach((dark, c) => dark && (d += `M${c + margin} ${r + margin}h1v1h-1z`)));
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${n} ${n}" shape-rendering="crispEdges"><rect width="${n}" height="${n}" fill="#fff"/><path d="${d}"/></svg>`;
  return `data:image/svg+xml,${encodeURIComponent(svg)}`;
}

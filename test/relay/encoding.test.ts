// Strict base64url (relay/encoding.ts): exactly the canonical unpadded encoding of some bytes is
// accepted, so no two strings stand for the same bytes (ids and keys are compared as strings).
import { randomBytes } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { fromB64, toB64 } from '../../relay/encoding.ts';

/** The definition: decodes, and encoding the result gives the same string back. */
const canonical = (s: string) => /^[A-Za-z0-9_-]*$/.test(s) && s.length % 4 !== 1 && Buffer.from(s, 'base64url').toString('base64url') === s;

describe('fromB64', () => {
  test('round-trips every length of bytes', () => {
    for (let n = 0; n < 40; n++) {
      const b = new Uint8Array(randomBytes(n));
      expect(fromB64(toB64(b))).toEqual(b);
    }
  });

  test('refuses padding, other alphabets, a lone last character and non-zero trailing bits', () => {
    for (const s of ['AQ==', 'AQ=', 'a+b/', 'ab c', 'A', 'AAAAA', 'AR', 'AQI', 'AQJ', '_w', '__8', '__-']) {
      expect(fromB64(s) !== undefined, s).toBe(canonical(s));
    }
    expect(fromB64('AR')).toBeUndefined(); // 0x01 with a trailing bit set: 'AQ' is its canonical form
    expect(fromB64('AQJ')).toBeUndefined(); // 'AQI' is canonical for 01 02
    expect(fromB64('AQ')).toEqual(new Uint8Array([1]));
    expect(fromB64('__8')).toEqual(new Uint8Array([0xff, 0xff]));
    for (const s of ['AQ==', 'a+b/', 'A', 'AAAAA', '__-']) expect(fromB64(s), s).toBeUndefined();
  });

  test('accepts exactly the canonical strings (random and mutated inputs)', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ ';
    for (let i = 0; i < 20_000; i++) {
      let s = i % 2 ? randomBytes(i % 23).toString('base64url') : Array.from({ length: i % 13 }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join('');
      if (i % 3 === 0 && s.length) {
        const k = Math.floor(Math.random() * s.length);
        s = s.slice(0, k) + alphabet[Math.floor(Math.random() * 64)] + s.slice(k + 1);
      }
      const got = fromB64(s);
      expect(got !== undefined, JSON.stringify(s)).toBe(canonical(s));
      if (got) expect(Buffer.from(got).toString('base64url')).toBe(s);
    }
  });
});

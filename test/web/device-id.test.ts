// A device's short id (web/core/device-id.ts): the string the PWA's Settings and the CLI's
// `devices` both show, and the distinct name a browser or a CLI profile gives itself.
import { describe, expect, test } from 'vitest';
import { deriveDeviceId, generateDevice, ready, systemRng } from '../../crypto/index.ts';
import { toB64 } from '../../web/core/b64.ts';
import { nameWithShortId, shortDeviceId } from '../../web/core/device-id.ts';
import { guessDeviceName } from '../../web/net/boot.ts';

const bytes = (...b: number[]) => new Uint8Array([...b, ...new Array(16 - b.length).fill(0xaa)]);

describe('shortDeviceId', () => {
  test('the first 40 bits in Crockford base32, grouped in fours; the rest of the id does not count', () => {
    expect(shortDeviceId(bytes(0, 0, 0, 0, 0))).toBe('0000 0000');
    expect(shortDeviceId(bytes(0xff, 0xff, 0xff, 0xff, 0xff))).toBe('ZZZZ ZZZZ');
    // 0x0123456789 = 00000 00100 10001 10100 01010 11001 11100 01001
    expect(shortDeviceId(bytes(0x01, 0x23, 0x45, 0x67, 0x89))).toBe('04HM ASW9');
    // Bit 39 alone: the top of a 40-bit number, beyond 32-bit arithmetic.
    expect(shortDeviceId(bytes(0x80, 0, 0, 0, 0))).toBe('G000 0000');
    expect(shortDeviceId(bytes(0, 0, 0, 0, 1))).toBe('0000 0001');
  });

  test('never uses I, L, O or U; base64url (as DeviceView carries ids) gives the same as the bytes', async () => {
    await ready();
    for (let i = 0; i < 200; i++) {
      const d = generateDevice(systemRng);
      const id = deriveDeviceId(d.signingKey, d.dhKey);
      const s = shortDeviceId(id);
      expect(s).toMatch(/^[0-9A-HJKMNP-TV-Z]{4} [0-9A-HJKMNP-TV-Z]{4}$/);
      expect(shortDeviceId(toB64(id))).toBe(s);
    }
  });

  test('refuses what is not an id', () => {
    expect(() => shortDeviceId('not base64url!')).toThrow();
    expect(() => shortDeviceId(new Uint8Array(4))).toThrow();
  });
});

describe('nameWithShortId', () => {
  test('the guessed name, then the short id’s first group', () => {
    expect(nameWithShortId('Chromium on Linux', 'K7QF 2MXA')).toBe('Chromium on Linux · K7QF');
    expect(nameWithShortId('  petrel CLI on\thost ', 'K7QF 2MXA')).toBe('petrel CLI on host · K7QF');
    expect(nameWithShortId('   ', 'K7QF 2MXA')).toBe('Device · K7QF');
  });

  test('a long name is cut, never the tag, to fit the device list’s 64 bytes', () => {
    const host = 'a-very-long-host-name.build-farm.example.internal.corp';
    const n = nameWithShortId(`petrel CLI on ${host}`, 'K7QF 2MXA');
    expect(n.endsWith(' · K7QF')).toBe(true);
    expect(new TextEncoder().encode(n).length).toBeLessThanOrEqual(64);
    expect(n.startsWith('petrel CLI on a-very-long')).toBe(true);
    const wide = nameWithShortId('📱'.repeat(40), 'K7QF 2MXA');
    expect(new TextEncoder().encode(wide).length).toBeLessThanOrEqual(64);
    expect(wide).toMatch(/^(📱)+ · K7QF$/u);
  });
});

describe('guessDeviceName', () => {
  test('browser and OS from the user agent', () => {
    expect(guessDeviceName('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36')).toBe('Chromium on Linux');
    expect(guessDeviceName('Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0')).toBe('Firefox on Windows');
    expect(guessDeviceName('Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1')).toBe('Safari on iOS');
  });
});

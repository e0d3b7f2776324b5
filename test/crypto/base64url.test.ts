// The base64url codec web/core and the relay's clients use (crypto/sodium.ts, libsodium's): unpadded
// and strict — a string two encoders could disagree on (padding, non-zero padding bits, another
// alphabet, whitespace) is refused, so one value has one text. Against Node's own encoder.
import { expect, test } from 'vitest';
import { CryptoError, fromBase64url, ready, toBase64url } from '../../crypto/index.ts';

test('not ready: not_ready, never a verdict on the text', () => {
  expect(() => fromBase64url('AQID')).toThrow(expect.objectContaining({ code: 'not_ready' }));
});

test('round trip for every length 0..64, the same text as Node’s encoder', async () => {
  await ready();
  for (let n = 0; n <= 64; n++) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 255);
    const text = toBase64url(bytes);
    expect(text).toBe(Buffer.from(bytes).toString('base64url'));
    expect(fromBase64url(text)).toEqual(bytes);
  }
});

test('strict: padding, non-zero padding bits, the other alphabet and stray characters are malformed', async () => {
  await ready();
  for (const bad of ['AQID=', 'AQ==', 'AQJ', 'AR', 'A', 'AQ+D', 'AQ/D', 'AQ I', 'AQID\n', 'é']) {
    let err: unknown;
    try {
      fromBase64url(bad);
    } catch (e) {
      err = e;
    }
    expect(err, bad).toBeInstanceOf(CryptoError);
    expect((err as CryptoError).code, bad).toBe('malformed');
  }
  expect(fromBase64url('')).toEqual(new Uint8Array(0));
});

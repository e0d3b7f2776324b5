import { beforeAll, describe, expect, it } from 'vitest';
import {
  decodeDeviceClaim,
  decodeLinkCode,
  DEVICE_CLAIM_BYTES,
  encodeLinkCode,
  generateDevice,
  isCryptoError,
  LINK_CODE_BYTES,
  publicPart,
  ready,
  seededRng,
  signDeviceClaim,
  toHex,
  verifyDeviceClaim,
} from '../../crypto/index.ts';

beforeAll(ready);

describe('link code', () => {
  it('round-trips the public keys and derives the id', () => {
    const d = generateDevice(seededRng(new Uint8Array(32).fill(1)));
    const code = encodeLinkCode(d);
    expect(code.length).toBe(LINK_CODE_BYTES);
    expect(code[0]).toBe(2);
    expect(toHex(code.subarray(65))).toBe(toHex(d.deviceId.subarray(0, 4)));
    const back = decodeLinkCode(code);
    expect(toHex(back.deviceId)).toBe(toHex(d.deviceId));
    expect(toHex(back.dhKey)).toBe(toHex(d.dhKey));
  });
  it('refuses other versions, truncation and trailing bytes', () => {
    const code = encodeLinkCode(generateDevice(seededRng(new Uint8Array(32).fill(2))));
    const v1 = code.slice(0, 65);
    v1[0] = 1; // the version without a check
    expect(() => decodeLinkCode(v1)).toThrow(/unknown_version/);
    expect(() => decodeLinkCode(code.subarray(0, 68))).toThrow(/truncated/);
    expect(() => decodeLinkCode(new Uint8Array([...code, 0]))).toThrow(/trailing_bytes/);
  });
  it('refuses every single-bit typo after the version byte (the check)', () => {
    const code = encodeLinkCode(generateDevice(seededRng(new Uint8Array(32).fill(5))));
    for (let i = 1; i < code.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const t = code.slice();
        t[i]! ^= 1 << bit;
        expect(() => decodeLinkCode(t), `byte ${i} bit ${bit}`).toThrow(/malformed/);
      }
    }
  });
});

describe('device claim', () => {
  const rng = seededRng(new Uint8Array(32).fill(3));
  it('verifies for its device within the window', () => {
    const d = generateDevice(rng);
    const claim = signDeviceClaim(d, 1_700_000_000_000);
    expect(claim.length).toBe(DEVICE_CLAIM_BYTES);
    const c = decodeDeviceClaim(claim);
    expect(() => verifyDeviceClaim(c, publicPart(d), 1_700_000_060_000, 300_000)).not.toThrow();
  });
  it('refuses a stale claim, another device, and every flipped bit', () => {
    const d = generateDevice(rng);
    const other = generateDevice(rng);
    const bytes = signDeviceClaim(d, 1_700_000_000_000);
    const stale = () => verifyDeviceClaim(decodeDeviceClaim(bytes), publicPart(d), 1_700_000_000_000 + 300_001, 300_000);
    expect(stale).toThrow(/invalid_argument/);
    expect(() => verifyDeviceClaim(decodeDeviceClaim(bytes), publicPart(other), 1_700_000_000_000, 300_000)).toThrow(/bad_signature/);
    for (let i = 1; i < bytes.length; i++) {
      const t = bytes.slice();
      t[i]! ^= 0x01;
      let caught = false;
      try {
        const c = decodeDeviceClaim(t);
        verifyDeviceClaim(c, publicPart(d), c.timestamp, 300_000);
      } catch (e) {
        caught = isCryptoError(e);
      }
      expect(caught, `bit flip in byte ${i}`).toBe(true);
    }
  });
});

describe('account backup', () => {
  it('opens with the same export key only, and refuses tampering', async () => {
    const { sealAccountBackup, openAccountBackup, generateAccountKey } = await import('../../crypto/index.ts');
    const rng = seededRng(new Uint8Array(32).fill(4));
    const account = generateAccountKey(rng);
    const exportKey = rng(64);
    const sealed = sealAccountBackup(exportKey, account.secretKey, rng);
    expect(toHex(openAccountBackup(exportKey, sealed))).toBe(toHex(account.secretKey));
    expect(() => openAccountBackup(rng(64), sealed)).toThrow(/decrypt_failed/);
    for (let i = 0; i < sealed.length; i++) {
      const t = sealed.slice();
      t[i]! ^= 0x80;
      expect(() => openAccountBackup(exportKey, t), `byte ${i}`).toThrow();
    }
  });
});

/**
 * A device's short identifier: the first 40 bits of its public device id (crypto/identity.ts's
 * deriveDeviceId, a hash of its keys) in Crockford base32, grouped in fours — "K7QF 2MXA". It is
 * what a person reads to tell two of their devices apart and to match a row in "Your devices" to
 * the device in their hand; the PWA and the CLI (`devices`) show the very same string. Stable for
 * the device's life (its keys never change), and not a secret: the device list is public.
 * Crockford's alphabet leaves out I, L, O and U, so nothing reads as another character.
 */
import { fromB64 } from './b64.ts';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** `deviceId`: the raw 16 bytes, or base64url as DeviceView and the relay carry them. */
export function shortDeviceId(deviceId: Uint8Array | string): string {
  const b = typeof deviceId === 'string' ? fromB64(deviceId) : deviceId;
  if (b.length < 5) throw new Error('device id too short');
  // 40 bits: more than a 32-bit int holds, so a float (exact up to 2^53).
  let n = 0;
  for (let i = 0; i < 5; i++) n = n * 256 + b[i]!;
  let s = '';
  for (let i = 7; i >= 0; i--) s += CROCKFORD[Math.floor(n / 2 ** (5 * i)) % 32]!;
  return `${s.slice(0, 4)} ${s.slice(4)}`;
}

/** Longest device name in a device list (crypto/device-list.ts), in UTF-8 bytes. */
const MAX_NAME_BYTES = 64;

/**
 * A name guessed for a new device (its browser and OS, a host name), made distinct: two alike
 * browsers on one account would otherwise both be "Chromium on Linux". The first group of the
 * short id follows, so the name also matches the id shown beside it: "Chromium on Linux · K7QF".
 * `base` is cut, never the tag, to stay within the list's 64 bytes.
 */
export function nameWithShortId(base: string, shortId: string): string {
  const tag = ` · ${shortId.slice(0, 4)}`;
  const enc = new TextEncoder();
  let b = base.trim().replace(/\s+/g, ' ');
  while (b && enc.encode(b + tag).length > MAX_NAME_BYTES) b = [...b].slice(0, -1).join('').trimEnd();
  return b ? b + tag : `Device${tag}`;
}

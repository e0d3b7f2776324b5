/**
 * Stored-state formats (PROTOCOL.md §10.2): what a device keeps at rest. Same rules as the
 * wire: version byte first, decoded length -> version -> fields, only CryptoError on failure.
 *
 * Session:
 *   | 1 version=0x01 | 1 flags (1 initiatedByUs, 2 confirmed, 4 has sending, 8 pending) |
 *   | u8-len ad | 32 baseKey | 32 rootKey | 32 our ratchet secret | 32 our ratchet public |
 *   | [32 sending chainKey | 4 sending index] | 4 previousCounter |
 *   | 1 n receiving | n x (32 ratchetKey | 32 chainKey | 4 index | 4 end) |
 *   | 2 m skipped | m x (32 ratchetKey | 4 index | 32 messageKey) |
 *   | [PrekeyHeader as in a prekey message] |
 *
 * DeviceSessions: | 1 version=0x01 | 1 has active | [u32-len session] | 1 n | n x u32-len session |
 * DeviceKeyPair:  | 1 version=0x01 | 32 signing seed | 32 dh secret |   (public parts re-derived)
 * PrekeySecret:   | 1 version=0x01 | 1 kind | 4 id | 32 secret |        (public part re-derived)
 */
import { Reader, Writer } from '../bytes.ts';
import { MAX_INACTIVE_SESSIONS, MAX_RECEIVING_CHAINS, MAX_SKIPPED_KEYS } from '../consts.ts';
import type { DeviceSessions } from '../device-sessions.ts';
import { CryptoError } from '../errors.ts';
import { type DeviceKeyPair, deviceFromSecrets } from '../identity.ts';
import { isPqKind, type PrekeyKind, type PrekeySecret } from '../prekeys.ts';
import type { ReceivingChain, Session, SkippedKey } from '../ratchet/session.ts';
import { x25519Base, xwingFromSeed } from '../sodium.ts';
import { readPrekeyHeader, writePrekeyHeader } from './messages.ts';

export const SESSION_STATE_VERSION = 0x01;
export const DEVICE_SESSIONS_VERSION = 0x01;
export const DEVICE_KEYS_VERSION = 0x01;
export const PREKEY_SECRET_VERSION = 0x01;

export function encodeSession(s: Session): Uint8Array {
  const flags = (s.initiatedByUs ? 1 : 0) | (s.confirmed ? 2 : 0) | (s.sending ? 4 : 0) | (s.pending ? 8 : 0);
  const w = new Writer(512 + s.skipped.length * 68 + (s.pending ? 1300 : 0));
  w.u8(SESSION_STATE_VERSION).u8(flags).var8(s.ad).bytes(s.baseKey).bytes(s.rootKey);
  w.bytes(s.ourRatchet.secret).bytes(s.ourRatchet.public);
  if (s.sending) w.bytes(s.sending.chainKey).u32(s.sending.index);
  w.u32(s.previousCounter).u8(s.receiving.length);
  for (const c of s.receiving) w.bytes(c.ratchetKey).bytes(c.chainKey).u32(c.index).u32(c.end);
  w.u16(s.skipped.length);
  for (const k of s.skipped) w.bytes(k.ratchetKey).u32(k.index).bytes(k.messageKey);
  if (s.pending) writePrekeyHeader(w, s.pending);
  return w.finish();
}

function readSession(r: Reader): Session {
  r.version([SESSION_STATE_VERSION]);
  const flags = r.u8('flags');
  if (flags > 15) throw new CryptoError('malformed', 'session: unknown flags');
  const ad = r.var8('ad').slice();
  if (ad.length !== 160) throw new CryptoError('malformed', 'session: ad length');
  const baseKey = r.bytes(32, 'baseKey').slice();
  const rootKey = r.bytes(32, 'rootKey').slice();
  const ourRatchet = { secret: r.bytes(32, 'ratchet secret').slice(), public: r.bytes(32, 'ratchet public').slice() };
  const sending = flags & 4 ? { chainKey: r.bytes(32, 'sending chainKey').slice(), index: r.u32('sending index') } : null;
  const previousCounter = r.u32('previousCounter');
  const nr = r.u8('receiving count');
  if (nr > MAX_RECEIVING_CHAINS) throw new CryptoError('malformed', 'session: too many receiving chains');
  const receiving: ReceivingChain[] = [];
  for (let i = 0; i < nr; i++) {
    receiving.push({
      ratchetKey: r.bytes(32, 'ratchetKey').slice(),
      chainKey: r.bytes(32, 'chainKey').slice(),
      index: r.u32('index'),
      end: r.u32('end'),
    });
  }
  const ns = r.u16('skipped count');
  if (ns > MAX_SKIPPED_KEYS) throw new CryptoError('malformed', 'session: too many skipped keys');
  const skipped: SkippedKey[] = [];
  for (let i = 0; i < ns; i++) {
    skipped.push({ ratchetKey: r.bytes(32, 'ratchetKey').slice(), index: r.u32('index'), messageKey: r.bytes(32, 'messageKey').slice() });
  }
  const pending = flags & 8 ? readPrekeyHeader(r) : null;
  return {
    ad,
    baseKey,
    initiatedByUs: (flags & 1) !== 0,
    confirmed: (flags & 2) !== 0,
    rootKey,
    ourRatchet,
    sending,
    previousCounter,
    receiving,
    skipped,
    pending,
  };
}

export function decodeSession(bytes: Uint8Array): Session {
  const r = new Reader(bytes, 'session');
  const s = readSession(r);
  r.end();
  return s;
}

export function encodeDeviceSessions(d: DeviceSessions): Uint8Array {
  const w = new Writer(1024).u8(DEVICE_SESSIONS_VERSION);
  if (d.active) w.u8(1).var32(encodeSession(d.active));
  else w.u8(0);
  w.u8(d.inactive.length);
  for (const s of d.inactive) w.var32(encodeSession(s));
  return w.finish();
}

export function decodeDeviceSessions(bytes: Uint8Array): DeviceSessions {
  const r = new Reader(bytes, 'device sessions');
  r.version([DEVICE_SESSIONS_VERSION]);
  const has = r.u8('has active');
  if (has > 1) throw new CryptoError('malformed', 'device sessions: flag');
  const active = has ? decodeSession(r.var32('active')) : null;
  const n = r.u8('inactive count');
  if (n > MAX_INACTIVE_SESSIONS) throw new CryptoError('malformed', 'device sessions: too many inactive');
  const inactive: Session[] = [];
  for (let i = 0; i < n; i++) inactive.push(decodeSession(r.var32('inactive')));
  r.end();
  return { active, inactive };
}

export function encodeDeviceKeyPair(d: DeviceKeyPair): Uint8Array {
  return new Writer(65).u8(DEVICE_KEYS_VERSION).bytes(d.signingSecret.subarray(0, 32)).bytes(d.dhSecret).finish();
}

export function decodeDeviceKeyPair(bytes: Uint8Array): DeviceKeyPair {
  const r = new Reader(bytes, 'device keys');
  r.version([DEVICE_KEYS_VERSION]);
  const seed = r.bytes(32, 'signing seed').slice();
  const dhSecret = r.bytes(32, 'dh secret').slice();
  r.end();
  return deviceFromSecrets(seed, dhSecret);
}

export function encodePrekeySecret(p: PrekeySecret): Uint8Array {
  return new Writer(38).u8(PREKEY_SECRET_VERSION).u8(p.kind).u32(p.id).bytes(p.secretKey).finish();
}

export function decodePrekeySecret(bytes: Uint8Array): PrekeySecret {
  const r = new Reader(bytes, 'prekey secret');
  r.version([PREKEY_SECRET_VERSION]);
  const kind = r.u8('kind');
  if (kind < 1 || kind > 4) throw new CryptoError('malformed', `prekey secret: kind ${kind}`);
  const id = r.u32('id');
  const secretKey = r.bytes(32, 'secret').slice();
  r.end();
  const k = kind as PrekeyKind;
  const publicKey = isPqKind(k) ? xwingFromSeed(secretKey).publicKey : x25519Base(secretKey);
  return { kind: k, id, secretKey, publicKey };
}

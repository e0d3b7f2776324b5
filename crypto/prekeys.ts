/**
 * Prekeys and bundles (PROTOCOL.md §5). Every prekey is signed by the device's Ed25519 key,
 * one-time X25519 keys included (Signal leaves those unsigned; signing them costs ~25 µs each
 * and stops a relay from slipping in keys that would make a first message undecryptable).
 *
 * Kinds:
 *   1 signed      X25519, medium-term, also the responder's first ratchet key
 *   2 one-time    X25519, used once then deleted
 *   3 pq-one-time X-Wing, used once then deleted
 *   4 pq-last-resort X-Wing, handed out when no pq-one-time key is left; not deleted on use
 *
 * Prekey layout: | 1 version=0x01 | 1 kind | 4 id (u32) | 32 or 1216 public key | 64 signature |
 * signed message: u8(len(ctx)) || ctx || deviceId(16) || kind || id || publicKey,
 * ctx = "Petrel/v1/sig/prekey".
 *
 * Bundle layout: | 1 version=0x01 | 16 deviceId | u16-len signed prekey | u16-len pq prekey |
 *                | 1 has-one-time (0/1) | u16-len one-time prekey if present |
 */
import { checkBytes, equalBytes, Reader, Writer } from './bytes.ts';
import { DEVICE_ID_BYTES, SIG_CONTEXT } from './consts.ts';
import { CryptoError } from './errors.ts';
import type { DeviceKeyPair, DevicePublic } from './identity.ts';
import { kdfLabel } from './kdf.ts';
import { ed25519Sign, ed25519Verify, type Rng, x25519Base, XWING_PUBLIC_BYTES, xwingFromSeed } from './sodium.ts';

export const PREKEY_VERSION = 0x01;
export const BUNDLE_VERSION = 0x01;

export const PrekeyKind = {
  signed: 1,
  oneTime: 2,
  pqOneTime: 3,
  pqLastResort: 4,
} as const;
export type PrekeyKind = (typeof PrekeyKind)[keyof typeof PrekeyKind];

export function isPqKind(kind: PrekeyKind): boolean {
  return kind === PrekeyKind.pqOneTime || kind === PrekeyKind.pqLastResort;
}

function publicKeyLength(kind: PrekeyKind): number {
  return isPqKind(kind) ? XWING_PUBLIC_BYTES : 32;
}

export interface PublicPrekey {
  readonly kind: PrekeyKind;
  readonly id: number;
  readonly publicKey: Uint8Array;
  readonly signature: Uint8Array;
}

/** The private half, kept on the device. For X-Wing kinds `secretKey` is the 32-byte seed. */
export interface PrekeySecret {
  readonly kind: PrekeyKind;
  readonly id: number;
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

function signedMessage(deviceId: Uint8Array, kind: number, id: number, publicKey: Uint8Array): Uint8Array {
  const ctx = kdfLabel(SIG_CONTEXT.prekey);
  return new Writer(ctx.length + 21 + publicKey.length).bytes(ctx).bytes(deviceId).u8(kind).u32(id).bytes(publicKey).finish();
}

function checkId(id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new CryptoError('invalid_argument', 'prekey id must be a u32');
}

export function generatePrekey(device: DeviceKeyPair, kind: PrekeyKind, id: number, rng: Rng): { public: PublicPrekey; secret: PrekeySecret } {
  checkId(id);
  const seed = rng(32);
  const publicKey = isPqKind(kind) ? xwingFromSeed(seed).publicKey : x25519Base(seed);
  const signature = ed25519Sign(signedMessage(device.deviceId, kind, id, publicKey), device.signingSecret);
  return { public: { kind, id, publicKey, signature }, secret: { kind, id, publicKey, secretKey: seed } };
}

/** A batch of `count` prekeys of one kind with consecutive ids starting at `firstId`. */
export function generatePrekeys(device: DeviceKeyPair, kind: PrekeyKind, firstId: number, count: number, rng: Rng) {
  const out: { public: PublicPrekey; secret: PrekeySecret }[] = [];
  for (let i = 0; i < count; i++) out.push(generatePrekey(device, kind, (firstId + i) >>> 0, rng));
  return out;
}

export function verifyPrekey(p: PublicPrekey, device: DevicePublic): void {
  if (!ed25519Verify(p.signature, signedMessage(device.deviceId, p.kind, p.id, p.publicKey), device.signingKey)) {
    throw new CryptoError('bad_signature', `prekey ${p.kind}/${p.id} signature`);
  }
}

export function encodePrekey(p: PublicPrekey): Uint8Array {
  return new Writer(80 + p.publicKey.length).u8(PREKEY_VERSION).u8(p.kind).u32(p.id).bytes(p.publicKey).bytes(p.signature).finish();
}

function readPrekey(r: Reader): PublicPrekey {
  r.version([PREKEY_VERSION]);
  const kind = r.u8('kind');
  if (kind < 1 || kind > 4) throw new CryptoError('malformed', `prekey: unknown kind ${kind}`);
  const k = kind as PrekeyKind;
  const id = r.u32('id');
  const publicKey = r.bytes(publicKeyLength(k), 'publicKey').slice();
  const signature = r.bytes(64, 'signature').slice();
  return { kind: k, id, publicKey, signature };
}

export function decodePrekey(bytes: Uint8Array): PublicPrekey {
  const r = new Reader(bytes, 'prekey');
  const p = readPrekey(r);
  r.end();
  return p;
}

/** What a sender fetches to start a session with one device. */
export interface PrekeyBundle {
  readonly deviceId: Uint8Array;
  readonly signedPrekey: PublicPrekey;
  readonly pqPrekey: PublicPrekey;
  readonly oneTimePrekey: PublicPrekey | null;
}

export function encodeBundle(b: PrekeyBundle): Uint8Array {
  const w = new Writer(1600).u8(BUNDLE_VERSION).bytes(b.deviceId);
  const sp = encodePrekey(b.signedPrekey);
  const pq = encodePrekey(b.pqPrekey);
  w.u16(sp.length).bytes(sp).u16(pq.length).bytes(pq);
  if (b.oneTimePrekey) {
    const ot = encodePrekey(b.oneTimePrekey);
    w.u8(1).u16(ot.length).bytes(ot);
  } else {
    w.u8(0);
  }
  return w.finish();
}

function sub(r: Reader, field: string): PublicPrekey {
  const bytes = r.bytes(r.u16(field), field);
  return decodePrekey(bytes);
}

export function decodeBundle(bytes: Uint8Array): PrekeyBundle {
  const r = new Reader(bytes, 'prekey bundle');
  r.version([BUNDLE_VERSION]);
  const deviceId = r.bytes(DEVICE_ID_BYTES, 'deviceId').slice();
  const signedPrekey = sub(r, 'signedPrekey');
  const pqPrekey = sub(r, 'pqPrekey');
  const has = r.u8('hasOneTime');
  if (has > 1) throw new CryptoError('malformed', 'prekey bundle: hasOneTime flag');
  const oneTimePrekey = has ? sub(r, 'oneTimePrekey') : null;
  r.end();
  return { deviceId, signedPrekey, pqPrekey, oneTimePrekey };
}

/**
 * Checks a bundle against the device's public keys taken from a verified device list:
 * same device, the right kind in each slot, every signature valid.
 */
export function verifyBundle(b: PrekeyBundle, device: DevicePublic): void {
  checkBytes(b.deviceId, DEVICE_ID_BYTES, 'bundle deviceId');
  if (!equalBytes(b.deviceId, device.deviceId)) throw new CryptoError('bundle_invalid', 'bundle is for another device');
  if (b.signedPrekey.kind !== PrekeyKind.signed) throw new CryptoError('bundle_invalid', 'signed prekey slot has the wrong kind');
  if (!isPqKind(b.pqPrekey.kind)) throw new CryptoError('bundle_invalid', 'pq prekey slot has the wrong kind');
  if (b.oneTimePrekey && b.oneTimePrekey.kind !== PrekeyKind.oneTime) {
    throw new CryptoError('bundle_invalid', 'one-time prekey slot has the wrong kind');
  }
  verifyPrekey(b.signedPrekey, device);
  verifyPrekey(b.pqPrekey, device);
  if (b.oneTimePrekey) verifyPrekey(b.oneTimePrekey, device);
}

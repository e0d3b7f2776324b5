/**
 * Wire formats of what travels between devices (PROTOCOL.md §10). Each starts with a version
 * byte; decoding checks length, then version, then fields, and throws only CryptoError.
 *
 * DeviceMessage (what one device sends one device):
 *   | 1 version=0x01 | 1 kind (0x01 ratchet, 0x02 prekey) | body |
 *
 * RatchetMessage (body of kind 0x01, and the tail of a prekey message):
 *   | 1 version=0x01 | 32 sender ratchet key | 4 PN (u32) | 4 N (u32) | ciphertext (>= 16) |
 *   The first 41 bytes are the header, authenticated as associated data.
 *
 * PrekeyMessage (body of kind 0x02):
 *   | 1 version=0x01 | 16 sender deviceId | 32 sender signingKey | 32 sender dhKey |
 *   | 32 base key (initiator's ephemeral X25519) | 4 signed prekey id | 1 pq kind (3|4) |
 *   | 4 pq prekey id | 1 has one-time (0|1) | 4 one-time id (only if has) |
 *   | 1120 X-Wing ciphertext | RatchetMessage (rest) |
 */
import { Reader, Writer } from '../bytes.ts';
import { CryptoError } from '../errors.ts';
import type { DevicePublic } from '../identity.ts';
import { PrekeyKind } from '../prekeys.ts';
import { AEAD_TAG_BYTES, XWING_CIPHERTEXT_BYTES } from '../sodium.ts';

export const DEVICE_MESSAGE_VERSION = 0x01;
export const RATCHET_MESSAGE_VERSION = 0x01;
export const PREKEY_MESSAGE_VERSION = 0x01;
export const RATCHET_HEADER_BYTES = 41;

export const MessageKind = { ratchet: 0x01, prekey: 0x02 } as const;

export interface RatchetHeader {
  readonly ratchetKey: Uint8Array;
  readonly previousCounter: number;
  readonly index: number;
}

export interface RatchetMessage extends RatchetHeader {
  /** The 41 header bytes exactly as received: they are the associated data. */
  readonly header: Uint8Array;
  readonly ciphertext: Uint8Array;
}

/** What a prekey message carries besides the ratchet message: all a responder needs. */
export interface PrekeyHeader {
  readonly sender: DevicePublic;
  readonly baseKey: Uint8Array;
  readonly signedPrekeyId: number;
  readonly pqKind: typeof PrekeyKind.pqOneTime | typeof PrekeyKind.pqLastResort;
  readonly pqPrekeyId: number;
  readonly oneTimePrekeyId: number | null;
  readonly pqCiphertext: Uint8Array;
}

export interface PrekeyMessage extends PrekeyHeader {
  readonly message: Uint8Array; // the embedded RatchetMessage bytes
}

export type DeviceMessage =
  | { readonly kind: typeof MessageKind.ratchet; readonly message: Uint8Array }
  | { readonly kind: typeof MessageKind.prekey; readonly prekey: PrekeyMessage };

/** Writes the 41-byte header into `out` at `offset` (the hot path builds AD and message in place). */
export function writeRatchetHeader(out: Uint8Array, offset: number, h: RatchetHeader): void {
  out[offset] = RATCHET_MESSAGE_VERSION;
  out.set(h.ratchetKey, offset + 1);
  const v = new DataView(out.buffer, out.byteOffset + offset + 33, 8);
  v.setUint32(0, h.previousCounter);
  v.setUint32(4, h.index);
}

export function decodeRatchetMessage(bytes: Uint8Array): RatchetMessage {
  const r = new Reader(bytes, 'ratchet message');
  r.version([RATCHET_MESSAGE_VERSION]);
  const ratchetKey = r.bytes(32, 'ratchetKey');
  const previousCounter = r.u32('previousCounter');
  const index = r.u32('index');
  const ciphertext = r.rest();
  if (ciphertext.length < AEAD_TAG_BYTES) throw new CryptoError('truncated', 'ratchet message: ciphertext shorter than its tag');
  return { ratchetKey, previousCounter, index, header: bytes.subarray(0, RATCHET_HEADER_BYTES), ciphertext };
}

export function writePrekeyHeader(w: Writer, h: PrekeyHeader): Writer {
  w.u8(PREKEY_MESSAGE_VERSION).bytes(h.sender.deviceId).bytes(h.sender.signingKey).bytes(h.sender.dhKey);
  w.bytes(h.baseKey).u32(h.signedPrekeyId).u8(h.pqKind).u32(h.pqPrekeyId);
  if (h.oneTimePrekeyId === null) w.u8(0);
  else w.u8(1).u32(h.oneTimePrekeyId);
  return w.bytes(h.pqCiphertext);
}

export function readPrekeyHeader(r: Reader): PrekeyHeader {
  r.version([PREKEY_MESSAGE_VERSION]);
  const sender: DevicePublic = {
    deviceId: r.bytes(16, 'sender deviceId').slice(),
    signingKey: r.bytes(32, 'sender signingKey').slice(),
    dhKey: r.bytes(32, 'sender dhKey').slice(),
  };
  const baseKey = r.bytes(32, 'baseKey').slice();
  const signedPrekeyId = r.u32('signedPrekeyId');
  const pqKind = r.u8('pqKind');
  if (pqKind !== PrekeyKind.pqOneTime && pqKind !== PrekeyKind.pqLastResort) {
    throw new CryptoError('malformed', `prekey message: pq kind ${pqKind}`);
  }
  const pqPrekeyId = r.u32('pqPrekeyId');
  const has = r.u8('hasOneTime');
  if (has > 1) throw new CryptoError('malformed', 'prekey message: hasOneTime flag');
  const oneTimePrekeyId = has ? r.u32('oneTimePrekeyId') : null;
  const pqCiphertext = r.bytes(XWING_CIPHERTEXT_BYTES, 'pqCiphertext').slice();
  return { sender, baseKey, signedPrekeyId, pqKind, pqPrekeyId, oneTimePrekeyId, pqCiphertext };
}

export function encodeDeviceMessage(m: DeviceMessage): Uint8Array {
  if (m.kind === MessageKind.ratchet) {
    const out = new Uint8Array(2 + m.message.length);
    out[0] = DEVICE_MESSAGE_VERSION;
    out[1] = MessageKind.ratchet;
    out.set(m.message, 2);
    return out;
  }
  const w = new Writer(1400 + m.prekey.message.length).u8(DEVICE_MESSAGE_VERSION).u8(MessageKind.prekey);
  return writePrekeyHeader(w, m.prekey).bytes(m.prekey.message).finish();
}

/** Decodes the envelope and, for a prekey message, its header; the ratchet part is checked too. */
export function decodeDeviceMessage(bytes: Uint8Array): DeviceMessage {
  const r = new Reader(bytes, 'device message');
  r.version([DEVICE_MESSAGE_VERSION]);
  const kind = r.u8('kind');
  if (kind === MessageKind.ratchet) {
    const message = r.rest();
    decodeRatchetMessage(message);
    return { kind, message };
  }
  if (kind === MessageKind.prekey) {
    const h = readPrekeyHeader(r);
    const message = r.rest();
    decodeRatchetMessage(message);
    return { kind, prekey: { ...h, message } };
  }
  throw new CryptoError('malformed', `device message: unknown kind ${kind}`);
}

// Decoding and re-encoding every wire and stored-state type with crypto/'s current code, for the
// wire vectors (test/vectors/wire.json) and the frozen golden encodings (test/fixtures/wire/).
// `decodeWire` returns a summary of the decoded fields and the bytes the current encoder writes
// for them: equal to the input for every type, so old encodings keep their exact meaning.
import {
  accountKeyFromSecret,
  decodeAttachmentPointer,
  decodeBundle,
  decodeDeviceKeyPair,
  decodeDeviceList,
  decodeDeviceMessage,
  decodeDeviceSessions,
  decodeKeyMessage,
  decodePrekey,
  decodePrekeySecret,
  decodeRatchetMessage,
  decodeSession,
  encodeAttachmentPointer,
  encodeBundle,
  encodeDeviceKeyPair,
  encodeDeviceMessage,
  encodeDeviceSessions,
  encodePrekey,
  encodePrekeySecret,
  encodeSession,
  fromHex,
  MessageKind,
  openPayload,
  RATCHET_HEADER_BYTES,
  type RatchetMessage,
  type Session,
  safetyNumber,
  sealPayload,
  signDeviceList,
  toHex,
  verifySafetyQr,
  writeRatchetHeader,
} from '../../crypto/index.ts';
import type { JsonObject } from './vectors/core.ts';

export const WIRE_TYPES = [
  'device-message',
  'ratchet-message',
  'prekey',
  'bundle',
  'device-list',
  'key-message',
  'payload',
  'attachment-pointer',
  'safety-qr',
  'session',
  'device-sessions',
  'device-keys',
  'prekey-secret',
] as const;
export type WireType = (typeof WIRE_TYPES)[number];

/**
 * What a type needs besides its bytes to be decoded and re-encoded (all hex / strings):
 * device-list: accountSecretKey (to re-sign); payload: keyMessage; key-message: payload;
 * safety-qr: userA, accountKeyA, userB, accountKeyB.
 */
export type WireContext = Readonly<Record<string, string>>;

export interface Decoded {
  readonly summary: JsonObject;
  readonly reencoded: Uint8Array;
}

function need(ctx: WireContext, key: string): string {
  const v = ctx[key];
  if (v === undefined) throw new Error(`decoding needs context.${key}`);
  return v;
}

function ratchetSummary(m: RatchetMessage): JsonObject {
  return { ratchetKey: toHex(m.ratchetKey), previousCounter: m.previousCounter, index: m.index, ciphertextLength: m.ciphertext.length };
}

/** A RatchetMessage's bytes from its fields: the 41-byte header, then the ciphertext. */
function encodeRatchetMessage(m: RatchetMessage): Uint8Array {
  const out = new Uint8Array(RATCHET_HEADER_BYTES + m.ciphertext.length);
  writeRatchetHeader(out, 0, m);
  out.set(m.ciphertext, RATCHET_HEADER_BYTES);
  return out;
}

function sessionSummary(s: Session): JsonObject {
  return {
    initiatedByUs: s.initiatedByUs,
    confirmed: s.confirmed,
    baseKey: toHex(s.baseKey),
    rootKey: toHex(s.rootKey),
    ratchetPublic: toHex(s.ourRatchet.public),
    sendingIndex: s.sending ? s.sending.index : null,
    previousCounter: s.previousCounter,
    receivingChains: s.receiving.map((c) => ({ ratchetKey: toHex(c.ratchetKey), index: c.index, end: c.end })),
    skippedKeys: s.skipped.map((k) => ({ ratchetKey: toHex(k.ratchetKey), index: k.index })),
    pending: s.pending !== null,
  };
}

function deviceMessage(bytes: Uint8Array): Decoded {
  const m = decodeDeviceMessage(bytes);
  if (m.kind === MessageKind.ratchet) return { summary: { kind: m.kind, ...ratchetSummary(decodeRatchetMessage(m.message)) }, reencoded: encodeDeviceMessage(m) };
  const p = m.prekey;
  const summary: JsonObject = {
    kind: m.kind,
    senderDeviceId: toHex(p.sender.deviceId),
    baseKey: toHex(p.baseKey),
    signedPrekeyId: p.signedPrekeyId,
    pqKind: p.pqKind,
    pqPrekeyId: p.pqPrekeyId,
    oneTimePrekeyId: p.oneTimePrekeyId,
    ...ratchetSummary(decodeRatchetMessage(p.message)),
  };
  return { summary, reencoded: encodeDeviceMessage(m) };
}

/** Sealing again with the decoded key reproduces both the payload and the key message. */
function payloadPair(payload: Uint8Array, keyMessage: Uint8Array): { plaintext: Uint8Array; payload: Uint8Array; keyMessage: Uint8Array } {
  const plaintext = openPayload(payload, keyMessage);
  const key = decodeKeyMessage(keyMessage).key.slice();
  return { plaintext, ...sealPayload(plaintext, () => key) };
}

export function decodeWire(type: WireType, bytes: Uint8Array, ctx: WireContext = {}): Decoded {
  switch (type) {
    case 'device-message':
      return deviceMessage(bytes);
    case 'ratchet-message': {
      const m = decodeRatchetMessage(bytes);
      return { summary: ratchetSummary(m), reencoded: encodeRatchetMessage(m) };
    }
    case 'prekey': {
      const p = decodePrekey(bytes);
      return { summary: { kind: p.kind, id: p.id, publicKey: toHex(p.publicKey), signature: toHex(p.signature) }, reencoded: encodePrekey(p) };
    }
    case 'bundle': {
      const b = decodeBundle(bytes);
      const summary = { deviceId: toHex(b.deviceId), signedPrekeyId: b.signedPrekey.id, pqKind: b.pqPrekey.kind, pqPrekeyId: b.pqPrekey.id, oneTimePrekeyId: b.oneTimePrekey?.id ?? null };
      return { summary, reencoded: encodeBundle(b) };
    }
    case 'device-list': {
      const l = decodeDeviceList(bytes);
      const devices = l.devices.map((d) => ({ deviceId: toHex(d.deviceId), name: d.name, addedAt: d.addedAt, removedAt: d.removedAt }));
      const account = accountKeyFromSecret(fromHex(need(ctx, 'accountSecretKey')));
      return { summary: { userId: l.userId, accountKey: toHex(l.accountKey), version: l.version, devices }, reencoded: signDeviceList(l, account).bytes };
    }
    case 'key-message': {
      const k = decodeKeyMessage(bytes);
      return { summary: { key: toHex(k.key), hash: toHex(k.hash) }, reencoded: payloadPair(fromHex(need(ctx, 'payload')), bytes).keyMessage };
    }
    case 'payload': {
      const p = payloadPair(bytes, fromHex(need(ctx, 'keyMessage')));
      return { summary: { plaintext: toHex(p.plaintext) }, reencoded: p.payload };
    }
    case 'attachment-pointer': {
      const p = decodeAttachmentPointer(bytes);
      return { summary: { key: toHex(p.key), chunkSize: p.chunkSize, size: p.size, hash: toHex(p.hash) }, reencoded: encodeAttachmentPointer(p) };
    }
    case 'safety-qr': {
      const sn = safetyNumber(need(ctx, 'userA'), fromHex(need(ctx, 'accountKeyA')), need(ctx, 'userB'), fromHex(need(ctx, 'accountKeyB')));
      return { summary: { matches: verifySafetyQr(sn, bytes), digits: sn.digits }, reencoded: sn.qr };
    }
    case 'session': {
      const s = decodeSession(bytes);
      return { summary: sessionSummary(s), reencoded: encodeSession(s) };
    }
    case 'device-sessions': {
      const d = decodeDeviceSessions(bytes);
      const summary = { active: d.active ? sessionSummary(d.active) : null, inactive: d.inactive.map(sessionSummary) };
      return { summary, reencoded: encodeDeviceSessions(d) };
    }
    case 'device-keys': {
      const d = decodeDeviceKeyPair(bytes);
      return { summary: { deviceId: toHex(d.deviceId), signingKey: toHex(d.signingKey), dhKey: toHex(d.dhKey) }, reencoded: encodeDeviceKeyPair(d) };
    }
    case 'prekey-secret': {
      const p = decodePrekeySecret(bytes);
      return { summary: { kind: p.kind, id: p.id, publicKey: toHex(p.publicKey) }, reencoded: encodePrekeySecret(p) };
    }
  }
}

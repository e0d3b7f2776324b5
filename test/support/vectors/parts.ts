// Small pieces several vector topics share: spec-level byte builders (L(label), u32), the JSON
// form of keys and devices, and the message key of a chain key re-derived with crypto's `kdf`.
import {
  concat,
  type DeviceKeyPair,
  type DevicePublic,
  kdf,
  LABEL,
  type PrekeyKind,
  type PrekeyLookup,
  type PrekeySecret,
  seededRng,
  utf8,
} from '../../../crypto/index.ts';
import { hex, type JsonObject } from './core.ts';

/** L(label) = u8(len(label)) || label (PROTOCOL.md §1). */
export function labelPrefix(label: string): Uint8Array {
  const b = utf8(label);
  return concat(Uint8Array.of(b.length), b);
}

export function u32(v: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, v);
  return out;
}

export function u16(v: number): Uint8Array {
  return Uint8Array.of(v >> 8, v & 0xff);
}

/** KDF_CK's message-key half (PROTOCOL.md §7.1): BLAKE2b(64, key = CK, L("Petrel/v1/chain"))[0..32]. */
export function messageKeyOf(chainKey: Uint8Array): Uint8Array {
  return kdf(LABEL.chainStep, new Uint8Array(0), 64, chainKey).slice(0, 32);
}

/** The draws `lengths` take from seededRng(seed): what an implementer's RNG must yield. */
export function draws(seed: Uint8Array, lengths: readonly number[]): Uint8Array[] {
  const rng = seededRng(seed);
  return lengths.map((n) => rng(n));
}

export function devicePublicJson(d: DevicePublic): JsonObject {
  return { deviceId: hex(d.deviceId), signingKey: hex(d.signingKey), dhKey: hex(d.dhKey) };
}

/** A device with its secrets: the Ed25519 seed (first half of libsodium's 64-byte secret) and the X25519 secret. */
export function deviceJson(d: DeviceKeyPair): JsonObject {
  return { signingSeed: hex(d.signingSecret.subarray(0, 32)), dhSecret: hex(d.dhSecret), ...devicePublicJson(d) };
}

export function lookupIn(secrets: readonly PrekeySecret[]): PrekeyLookup {
  return (kind: PrekeyKind, id: number) => secrets.find((s) => s.kind === kind && s.id === id);
}

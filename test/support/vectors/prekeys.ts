// prekeys.json: each prekey kind from a seed, its signature and encodings, and bundles built from
// them, valid and not (PROTOCOL.md §5).
import {
  concat,
  decodeBundle,
  decodePrekey,
  decodePrekeySecret,
  type DeviceKeyPair,
  encodeBundle,
  encodePrekey,
  encodePrekeySecret,
  generateDevice,
  generatePrekey,
  type PrekeyBundle,
  PrekeyKind,
  type PublicPrekey,
  SIG_CONTEXT,
  seededRng,
  verifyBundle,
} from '../../../crypto/index.ts';
import {
  applyEdit,
  attempt,
  type CaseSpec,
  type Computed,
  earlierCase,
  hex,
  In,
  type JsonObject,
  seedHex,
  type Tally,
  type Topic,
  type VectorCase,
  VectorShapeError,
  xorEdit,
} from './core.ts';
import { ed25519Verify, x25519Public } from './independent.ts';
import { devicePublicJson, labelPrefix, u32 } from './parts.ts';

interface Kept {
  readonly device: DeviceKeyPair;
  readonly other: DeviceKeyPair;
  readonly prekeys: readonly PublicPrekey[];
}

/** The signed message of a prekey, built from the spec: L(ctx) || deviceId || u8(kind) || u32(id) || publicKey. */
export function prekeySignedMessage(deviceId: Uint8Array, kind: number, id: number, publicKey: Uint8Array): Uint8Array {
  return concat(labelPrefix(SIG_CONTEXT.prekey), deviceId, Uint8Array.of(kind), u32(id), publicKey);
}

function computePrekeys(i: In): Computed {
  const rng = seededRng(i.hex('seed'));
  const device = generateDevice(rng);
  const other = generateDevice(rng);
  const made = i.objs('prekeys').map((p) => generatePrekey(device, p.num('kind') as PrekeyKind, p.num('id'), rng));
  return {
    output: {
      device: devicePublicJson(device),
      otherDevice: devicePublicJson(other),
      prekeys: made.map(({ public: p, secret: s }) => ({
        kind: p.kind,
        id: p.id,
        secret: hex(s.secretKey),
        publicKey: hex(p.publicKey),
        signedMessage: hex(prekeySignedMessage(device.deviceId, p.kind, p.id, p.publicKey)),
        signature: hex(p.signature),
        encoded: hex(encodePrekey(p)),
        secretEncoded: hex(encodePrekeySecret(s)),
      })),
    },
    keep: { device, other, prekeys: made.map((m) => m.public) } satisfies Kept,
  };
}

function computeBundle(i: In, k: Kept): Computed {
  const pick = (n: number): PublicPrekey => {
    const p = k.prekeys[n];
    if (!p) throw new VectorShapeError(`no prekey ${n}`);
    return p;
  };
  const oneTime = i.optNum('oneTime');
  const bundle: PrekeyBundle = {
    deviceId: k.device.deviceId,
    signedPrekey: pick(i.num('signed')),
    pqPrekey: pick(i.num('pq')),
    oneTimePrekey: oneTime === null ? null : pick(oneTime),
  };
  const bytes = i.has('edit') ? applyEdit(encodeBundle(bundle), i.obj('edit')) : encodeBundle(bundle);
  const against = i.str('checkedAgainst') === 'other' ? k.other : k.device;
  const r = attempt(() => verifyBundle(decodeBundle(bytes), against));
  const output: JsonObject = { bytes: hex(bytes) };
  if (r.ok) output.valid = true;
  else output.error = r.error;
  return { output };
}

function bundleCase(name: string, input: JsonObject, expect?: string): CaseSpec {
  return { name, input: { from: 'prekeys', checkedAgainst: 'self', oneTime: null, ...input }, ...(expect ? { expect } : {}) };
}

// Offset of the signed prekey's signature inside a bundle: version, deviceId, u16 length, then
// the prekey's version, kind, id and 32-byte key.
const SIGNED_PREKEY_SIGNATURE_AT = 1 + 16 + 2 + 1 + 1 + 4 + 32;

export const prekeysTopic: Topic = {
  file: 'prekeys.json',
  description:
    'Prekeys: rng = seededRng(seed) draws the device keys, a second ("other") device\'s keys, then one seed = rng(32) per prekey. ' +
    'X25519 kinds (1 signed, 2 one-time): secret = seed, publicKey = X25519(seed, 9); X-Wing kinds (3 pq one-time, 4 pq last resort): ' +
    'publicKey = crypto_kem_xwing_seed_keypair(seed).publicKey. signature = Ed25519(device signing key, signedMessage), ' +
    'signedMessage = u8(len(ctx)) || ctx || deviceId || u8(kind) || u32(id) || publicKey, ctx = "Petrel/v1/sig/prekey". ' +
    'encoded is the Prekey wire format, secretEncoded the stored PrekeySecret. Bundle cases assemble prekeys (by index) into a bundle ' +
    'for the device, optionally edit its bytes, and verify it against the device (or the other one): valid, or the error.',
  spec: 'crypto/PROTOCOL.md §5, §10.2 (PrekeySecret)',
  cases() {
    return [
      {
        name: 'prekeys',
        input: {
          seed: seedHex('Petrel test vectors: prekeys'),
          prekeys: [
            { kind: PrekeyKind.signed, id: 1 },
            { kind: PrekeyKind.oneTime, id: 100 },
            { kind: PrekeyKind.pqOneTime, id: 200 },
            { kind: PrekeyKind.pqLastResort, id: 0xfffffffe },
          ],
        },
      },
      bundleCase('bundle with a one-time prekey and a pq one-time prekey', { signed: 0, pq: 2, oneTime: 1 }),
      bundleCase('bundle with the pq last-resort prekey and no one-time prekey', { signed: 0, pq: 3 }),
      bundleCase('one-time prekey in the signed slot', { signed: 1, pq: 2 }, 'bundle_invalid'),
      bundleCase('X25519 prekey in the pq slot', { signed: 0, pq: 1 }, 'bundle_invalid'),
      bundleCase('pq prekey in the one-time slot', { signed: 0, pq: 2, oneTime: 3 }, 'bundle_invalid'),
      bundleCase('bundle checked against another device', { signed: 0, pq: 2, oneTime: 1, checkedAgainst: 'other' }, 'bundle_invalid'),
      bundleCase('tampered signed-prekey signature', { signed: 0, pq: 2, oneTime: 1, edit: xorEdit(SIGNED_PREKEY_SIGNATURE_AT + 5, 0x10) }, 'bad_signature'),
      bundleCase('tampered signed-prekey key', { signed: 0, pq: 3, edit: xorEdit(SIGNED_PREKEY_SIGNATURE_AT - 1, 0x01) }, 'bad_signature'),
    ];
  },
  compute(c, earlier) {
    const i = In.of(c.input, 'input');
    return i.has('from') ? computeBundle(i, earlierCase<Kept>(earlier, i.str('from'))) : computePrekeys(i);
  },
  crossCheck(c: VectorCase, _kept, t: Tally) {
    const o = In.of(c.output, 'output');
    if (o.has('valid')) t.bytes(o.hex('bytes'), encodeBundle(decodeBundle(o.hex('bytes'))), 'bundle decodes and re-encodes');
    if (!o.has('prekeys')) return;
    const device = o.obj('device');
    for (const p of o.objs('prekeys')) {
      const kind = p.num('kind');
      const what = `prekey ${kind}/${p.num('id')}`;
      const message = prekeySignedMessage(device.hex('deviceId'), kind, p.num('id'), p.hex('publicKey'));
      t.bytes(p.hex('signedMessage'), message, `${what} signedMessage from the spec`);
      t.expect(ed25519Verify(p.hex('signature'), message, device.hex('signingKey')), `${what} signature vs OpenSSL`);
      t.bytes(p.hex('encoded'), concat(Uint8Array.of(1, kind), u32(p.num('id')), p.hex('publicKey'), p.hex('signature')), `${what} encoding from the spec`);
      t.bytes(p.hex('encoded'), encodePrekey(decodePrekey(p.hex('encoded'))), `${what} decodes and re-encodes`);
      const secret = decodePrekeySecret(p.hex('secretEncoded'));
      t.bytes(p.hex('publicKey'), secret.publicKey, `${what} public key from the stored secret`);
      if (kind <= 2) t.bytes(p.hex('publicKey'), x25519Public(p.hex('secret')), `${what} public key vs OpenSSL`);
    }
  },
};

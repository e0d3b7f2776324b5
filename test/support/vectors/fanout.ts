// fanout.json: one message to three devices (the sender's other device and two of the recipient's),
// as one payload plus one key message per device (PROTOCOL.md §11).
import {
  concat,
  decodeKeyMessage,
  decodeSession,
  decryptFromDevice,
  type DeviceKeyPair,
  type DeviceSessions,
  EMPTY_DEVICE_SESSIONS,
  encodeSession,
  encryptForDevice,
  fanoutDecrypt,
  fanoutEncrypt,
  generateDevice,
  generatePrekey,
  openPayload,
  PrekeyKind,
  type PrekeySecret,
  publicPart,
  type Rng,
  seededRng,
  startSession,
} from '../../../crypto/index.ts';
import { applyEdit, type CaseSpec, type Computed, earlierCase, errorCode, hex, In, seedHex, type Tally, type Topic, utf8Hex, type VectorCase, VectorShapeError, xorEdit } from './core.ts';
import { devicePublicJson, lookupIn } from './parts.ts';

interface Target {
  readonly device: DeviceKeyPair;
  readonly rng: Rng;
  readonly secrets: readonly PrekeySecret[];
  senderRecord: DeviceSessions;
  record: DeviceSessions;
}

interface Kept {
  readonly sender: DeviceKeyPair;
  readonly targets: readonly Target[];
  readonly payload: Uint8Array;
  readonly messages: readonly Uint8Array[];
}

function throwawayRng(): Rng {
  return seededRng(new Uint8Array(16));
}

/** One target device: its keys and prekeys from its seed, then a confirmed session with the sender. */
function connect(sender: DeviceKeyPair, senderRng: Rng, seed: Uint8Array, hello: Uint8Array, ack: Uint8Array): Target {
  const rng = seededRng(seed);
  const device = generateDevice(rng);
  const spk = generatePrekey(device, PrekeyKind.signed, 1, rng);
  const otk = generatePrekey(device, PrekeyKind.oneTime, 100, rng);
  const pq = generatePrekey(device, PrekeyKind.pqOneTime, 200, rng);
  const secrets = [spk.secret, otk.secret, pq.secret];
  const bundle = { deviceId: device.deviceId, signedPrekey: spk.public, pqPrekey: pq.public, oneTimePrekey: otk.public };
  const started = encryptForDevice(startSession(EMPTY_DEVICE_SESSIONS, sender, publicPart(device), bundle, senderRng), hello);
  const got = decryptFromDevice(EMPTY_DEVICE_SESSIONS, started.message, device, publicPart(sender), lookupIn(secrets), rng);
  const back = encryptForDevice(got.record, ack);
  const confirmed = decryptFromDevice(started.record, back.message, sender, publicPart(device), lookupIn([]), senderRng);
  return { device, rng, secrets, senderRecord: confirmed.record, record: back.record };
}

function computeFanout(i: In): Computed {
  const senderSeed = i.hex('sender');
  const senderRng = seededRng(senderSeed);
  const sender = generateDevice(senderRng);
  const targets = i.hexes('targets').map((seed) => connect(sender, senderRng, seed, i.hex('hello'), i.hex('ack')));
  const before = targets.map((t) => ({ sender: encodeSession(t.senderRecord.active!), recipient: encodeSession(t.record.active!) }));
  const out = fanoutEncrypt(i.hex('plaintext'), targets.map((t) => ({ address: t, record: t.senderRecord })), senderRng);
  const devices = out.messages.map((m, n) => {
    const t = targets[n]!;
    const r = fanoutDecrypt(t.record, m.message, out.payload, t.device, publicPart(sender), lookupIn(t.secrets), t.rng);
    return {
      device: devicePublicJson(t.device),
      senderState: hex(before[n]!.sender),
      recipientState: hex(before[n]!.recipient),
      message: hex(m.message),
      plaintext: hex(r.plaintext),
    };
  });
  // The key message is what every device message carries: decrypt the first one again to show it
  // (on the record from before, with a throwaway rng: nothing of this decryption is kept).
  const t0 = targets[0]!;
  const keyMessage = decryptFromDevice(t0.record, out.messages[0]!.message, t0.device, publicPart(sender), lookupIn(t0.secrets), throwawayRng()).plaintext;
  const { key, hash } = decodeKeyMessage(keyMessage);
  const keep: Kept = { sender, targets, payload: out.payload, messages: out.messages.map((m) => m.message) };
  return {
    output: { sender: devicePublicJson(sender), payload: hex(out.payload), contentKey: hex(key), payloadHash: hex(hash), keyMessage: hex(keyMessage), devices },
    keep,
  };
}

/** Negative cases: a device's message with an edited payload, or another device's message. */
function computeRejected(i: In, k: Kept): Computed {
  const n = i.num('device');
  const t = k.targets[n];
  const message = k.messages[i.has('messageOf') ? i.num('messageOf') : n];
  if (!t || !message) throw new VectorShapeError('no such device');
  const payload = i.has('editPayload') ? applyEdit(k.payload, i.obj('editPayload')) : k.payload;
  // A refused decrypt commits nothing, so its randomness does not matter.
  const error = errorCode(() => fanoutDecrypt(t.record, message, payload, t.device, publicPart(k.sender), lookupIn(t.secrets), throwawayRng()));
  return { output: i.has('editPayload') ? { payload: hex(payload), error } : { error } };
}

function rejected(name: string, input: CaseSpec['input'], expect: string): CaseSpec {
  return { name, input: { from: 'fan-out to three devices', ...input }, expect };
}

export const fanoutTopic: Topic = {
  file: 'fanout.json',
  description:
    'Fan-out. The sender device = generateDevice(rng_s = seededRng(sender)); each target device = generateDevice(rng_t = seededRng(target)) with ' +
    'prekeys from rng_t (signed id 1, one-time id 100, pq one-time id 200). For each target in order the sender starts a session (rng_s), sends ' +
    '`hello`, the target replies `ack` (its rng_t), the sender decrypts it (rng_s): the sessions are confirmed. Then the content key ' +
    'K = rng_s(32); payload = 0x01 || XChaCha20-Poly1305(K, nonce 0^24, ad "Petrel/v1/payload", plaintext); keyMessage = 0x01 || K || ' +
    'BLAKE2b-256(payload); each device\'s message is its session\'s ratchet encryption of keyMessage (senderState before it); the recipient ' +
    '(recipientState before, its rng_t) decrypts and opens the payload. Negative cases: an edited payload, another device\'s message.',
  spec: 'crypto/PROTOCOL.md §11',
  cases() {
    return [
      {
        name: 'fan-out to three devices',
        input: {
          sender: seedHex('Petrel test vectors: fan-out sender (alice 1)'),
          targets: [seedHex('Petrel test vectors: fan-out alice 2'), seedHex('Petrel test vectors: fan-out bob 1'), seedHex('Petrel test vectors: fan-out bob 2')],
          hello: utf8Hex('hello'),
          ack: utf8Hex('ack'),
          plaintext: utf8Hex('One payload, encrypted once, for every device of everyone in the conversation.'),
        },
      },
      rejected('payload edited by the relay', { device: 1, editPayload: xorEdit(20, 0x01) }, 'hash_mismatch'),
      rejected('payload version edited', { device: 2, editPayload: xorEdit(0, 0x03) }, 'hash_mismatch'),
      rejected('message of another device', { device: 1, messageOf: 2 }, 'decrypt_failed'),
    ];
  },
  compute(c, earlier) {
    const i = In.of(c.input, 'input');
    return i.has('from') ? computeRejected(i, earlierCase<Kept>(earlier, i.str('from'))) : computeFanout(i);
  },
  crossCheck(c: VectorCase, _kept, t: Tally) {
    const o = In.of(c.output, 'output');
    if (!o.has('keyMessage')) return;
    const i = In.of(c.input, 'input');
    t.bytes(o.hex('keyMessage'), concat(Uint8Array.of(1), o.hex('contentKey'), o.hex('payloadHash')), 'keyMessage = 0x01 || K || hash');
    t.bytes(openPayload(o.hex('payload'), o.hex('keyMessage')), i.hex('plaintext'), 'the recorded payload opens with the recorded key message');
    t.expect(o.hex('payload').length === 1 + i.hex('plaintext').length + 16, 'payload length = 1 + plaintext + 16');
    for (const d of o.objs('devices')) {
      t.bytes(d.hex('plaintext'), i.hex('plaintext'), 'each device reads the plaintext');
      for (const k of ['senderState', 'recipientState']) t.bytes(d.hex(k), encodeSession(decodeSession(d.hex(k))), `${k} decodes and re-encodes`);
    }
  },
};

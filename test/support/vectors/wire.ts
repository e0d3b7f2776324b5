// wire.json: one encoding of every wire and stored-state type, all from one seeded scenario, and
// malformed inputs made from them by small edits, each with the CryptoError code its decoder
// gives (PROTOCOL.md §10: length, then version, then fields; leftovers are trailing_bytes).
import {
  type DeviceSessions,
  decodeDeviceMessage,
  decryptFromDevice,
  EMPTY_DEVICE_SESSIONS,
  encodeAttachmentPointer,
  encodeBundle,
  encodeDeviceKeyPair,
  encodeDeviceSessions,
  encodePrekey,
  encodePrekeySecret,
  encodeSession,
  encryptAttachment,
  encryptForDevice,
  generateAccountKey,
  generateDevice,
  generatePrekey,
  MessageKind,
  newDeviceList,
  type PrekeyBundle,
  PrekeyKind,
  publicPart,
  safetyNumber,
  sealPayload,
  seededRng,
  signDeviceList,
  startSession,
  withDeviceAdded,
  withDeviceRemoved,
} from '../../../crypto/index.ts';
import { decodeWire, WIRE_TYPES, type WireType } from '../wire-codecs.ts';
import {
  applyEdit,
  appendEdit,
  type CaseSpec,
  type Computed,
  earlierCase,
  errorCode,
  hex,
  In,
  type JsonObject,
  seedHex,
  setEdit,
  type Tally,
  truncateEdit,
  type Topic,
  utf8Hex,
  type VectorCase,
  VectorShapeError,
} from './core.ts';
import { lookupIn } from './parts.ts';

interface Encoding {
  readonly name: string;
  readonly type: WireType;
  readonly bytes: Uint8Array;
  readonly context?: Record<string, string>;
}

/** The device list's base time (ms): the first device's addedAt; the second is added 1 s later and removed 2 s later. */
const T0 = 1_700_000_000_000;

function parties(i: In) {
  // Draw order: alice's rng gives her account key, device, second device; bob's his account key, device,
  // then his prekeys (signed, one-time, pq one-time, pq last resort) with the ids in bobPrekeyIds.
  const aliceRng = seededRng(i.hex('alice'));
  const aliceAccount = generateAccountKey(aliceRng);
  const alice = generateDevice(aliceRng);
  const alice2 = generateDevice(aliceRng);
  const bobRng = seededRng(i.hex('bob'));
  const bobAccount = generateAccountKey(bobRng);
  const bob = generateDevice(bobRng);
  const ids = i.obj('bobPrekeyIds');
  const spk = generatePrekey(bob, PrekeyKind.signed, ids.num('signed'), bobRng);
  const otk = generatePrekey(bob, PrekeyKind.oneTime, ids.num('oneTime'), bobRng);
  const pq = generatePrekey(bob, PrekeyKind.pqOneTime, ids.num('pqOneTime'), bobRng);
  const last = generatePrekey(bob, PrekeyKind.pqLastResort, ids.num('pqLastResort'), bobRng);
  const bundle: PrekeyBundle = { deviceId: bob.deviceId, signedPrekey: spk.public, pqPrekey: pq.public, oneTimePrekey: otk.public };
  const bundleLast: PrekeyBundle = { deviceId: bob.deviceId, signedPrekey: spk.public, pqPrekey: last.public, oneTimePrekey: null };
  return { aliceRng, aliceAccount, alice, alice2, bobRng, bobAccount, bob, spk, otk, pq, last, bundle, bundleLast, secrets: [spk.secret, otk.secret, pq.secret, last.secret] };
}
type Parties = ReturnType<typeof parties>;

/**
 * Session 1: alice sends a0, a1 (prekey messages); bob gets a1 first and replies b0, b1; alice gets
 * b1 first and sends a2. Session 2 (as after a restore): alice starts again from the last-resort
 * bundle and sends a3; bob keeps session 1 inactive.
 */
function conversation(p: Parties, i: In, transcript: Record<string, string>): Encoding[] {
  const text = i.obj('plaintexts');
  const [aPub, bPub] = [publicPart(p.alice), publicPart(p.bob)];
  const fromBob = (r: DeviceSessions, m: Uint8Array) => decryptFromDevice(r, m, p.alice, bPub, lookupIn([]), p.aliceRng).record;
  const fromAlice = (r: DeviceSessions, m: Uint8Array) => decryptFromDevice(r, m, p.bob, aPub, lookupIn(p.secrets), p.bobRng).record;
  let a = startSession(EMPTY_DEVICE_SESSIONS, p.alice, bPub, p.bundle, p.aliceRng);
  const pendingSession = encodeSession(a.active!);
  const a0 = encryptForDevice(a, text.hex('a0'));
  const a1 = encryptForDevice(a0.record, text.hex('a1'));
  let b = fromAlice(EMPTY_DEVICE_SESSIONS, a1.message);
  const b0 = encryptForDevice(b, text.hex('b0'));
  const b1 = encryptForDevice(b0.record, text.hex('b1'));
  a = fromBob(a1.record, b1.message);
  const a2 = encryptForDevice(a, text.hex('a2'));
  b = fromAlice(b1.record, a2.message);
  const confirmedSession = encodeSession(b.active!);
  const a3 = encryptForDevice(startSession(a2.record, p.alice, bPub, p.bundleLast, p.aliceRng), text.hex('a3'));
  b = fromAlice(b, a3.message);
  for (const [name, sent] of Object.entries({ a0, a1, b0, b1, a2, a3 })) transcript[name] = hex(sent.message);
  const b1Body = decodeDeviceMessage(b1.message);
  if (b1Body.kind !== MessageKind.ratchet) throw new VectorShapeError('b1 is not a ratchet message');
  return [
    { name: 'device message, ratchet', type: 'device-message', bytes: b1.message },
    { name: 'device message, prekey with a one-time prekey', type: 'device-message', bytes: a0.message },
    { name: 'device message, prekey without a one-time prekey', type: 'device-message', bytes: a3.message },
    { name: 'ratchet message', type: 'ratchet-message', bytes: b1Body.message },
    { name: 'session, initiator with a pending prekey header', type: 'session', bytes: pendingSession },
    { name: 'session, confirmed, two receiving chains and a skipped key', type: 'session', bytes: confirmedSession },
    { name: 'device sessions, active and inactive', type: 'device-sessions', bytes: encodeDeviceSessions(b) },
  ];
}

/** Everything else, after the conversation (alice's remaining draws: the payload key, the attachment key). */
function artifacts(i: In, p: Parties): Encoding[] {
  const [userA, userB] = [i.str('aliceUserId'), i.str('bobUserId')];
  const l = i.obj('deviceList');
  let list = newDeviceList(userA, p.aliceAccount.publicKey, p.alice, l.str('firstName'), l.num('firstAddedAt'));
  list = withDeviceRemoved(withDeviceAdded(list, p.alice2, l.str('secondName'), l.num('secondAddedAt')), p.alice2.deviceId, l.num('secondRemovedAt'));
  const sealed = sealPayload(i.hex('payload'), p.aliceRng);
  const attachment = encryptAttachment(i.hex('attachment'), p.aliceRng, i.num('chunkSize'));
  const qr = safetyNumber(userA, p.aliceAccount.publicKey, userB, p.bobAccount.publicKey).qr;
  const qrContext = { userA, accountKeyA: hex(p.aliceAccount.publicKey), userB, accountKeyB: hex(p.bobAccount.publicKey) };
  return [
    { name: 'prekey, X25519 (signed)', type: 'prekey', bytes: encodePrekey(p.spk.public) },
    { name: 'prekey, X-Wing (pq one-time)', type: 'prekey', bytes: encodePrekey(p.pq.public) },
    { name: 'bundle with a one-time prekey', type: 'bundle', bytes: encodeBundle(p.bundle) },
    { name: 'bundle without a one-time prekey', type: 'bundle', bytes: encodeBundle(p.bundleLast) },
    { name: 'device list', type: 'device-list', bytes: signDeviceList(list, p.aliceAccount).bytes, context: { accountSecretKey: hex(p.aliceAccount.secretKey) } },
    { name: 'key message', type: 'key-message', bytes: sealed.keyMessage, context: { payload: hex(sealed.payload) } },
    { name: 'payload', type: 'payload', bytes: sealed.payload, context: { keyMessage: hex(sealed.keyMessage) } },
    { name: 'attachment pointer', type: 'attachment-pointer', bytes: encodeAttachmentPointer(attachment.pointer) },
    { name: 'safety QR', type: 'safety-qr', bytes: qr, context: qrContext },
    { name: 'device keys', type: 'device-keys', bytes: encodeDeviceKeyPair(p.alice) },
    { name: 'prekey secret, X25519 (one-time)', type: 'prekey-secret', bytes: encodePrekeySecret(p.otk.secret) },
    { name: 'prekey secret, X-Wing (last resort)', type: 'prekey-secret', bytes: encodePrekeySecret(p.last.secret) },
  ];
}

/** The scenario: two devices talk, a session is replaced, and every type gets encoded once. */
function encodings(i: In, transcript: Record<string, string> = {}): Encoding[] {
  const p = parties(i);
  // Listed in the order of WIRE_TYPES (sort is stable: variants keep their order).
  return [...conversation(p, i, transcript), ...artifacts(i, p)].sort((x, y) => WIRE_TYPES.indexOf(x.type) - WIRE_TYPES.indexOf(y.type));
}

function computeEncodings(i: In): Computed {
  const transcript: Record<string, string> = {};
  const all = encodings(i, transcript);
  const output = all.map((e) => ({ name: e.name, type: e.type, bytes: hex(e.bytes), ...(e.context ? { context: e.context } : {}) }));
  // transcript: every DeviceMessage the scenario's conversation sent, by the name of its plaintext.
  return { output: { encodings: output, transcript }, keep: all };
}

function computeMalformed(i: In, all: readonly Encoding[]): Computed {
  const e = all.find((x) => x.name === i.str('encoding'));
  if (!e) throw new VectorShapeError(`no encoding named ${i.str('encoding')}`);
  const bytes = applyEdit(e.bytes, i.obj('edit'));
  return { output: { type: e.type, bytes: hex(bytes), error: errorCode(() => decodeWire(e.type, bytes, e.context)) } };
}

export const wireTopic: Topic = {
  file: 'wire.json',
  description:
    'Every wire and stored-state type (PROTOCOL.md §10), encoded once in one scenario whose inputs are all in case "encodings". ' +
    'rng_a = seededRng(alice) draws alice\'s account key, her device, her second device; rng_b = seededRng(bob) draws bob\'s account key, ' +
    'his device, then his prekeys with the ids of bobPrekeyIds in the order signed, oneTime, pqOneTime, pqLastResort. ' +
    'Session 1 (Sesame, §8; alice\'s draws from rng_a, bob\'s from rng_b): alice startSession with the bundle (signed, pqOneTime, oneTime) — ' +
    'her Session right then is "session, initiator with a pending prekey header"; she encrypts plaintexts a0 then a1 (prekey messages); ' +
    'bob decryptFromDevice a1 first (a0\'s key is skipped), encrypts b0 then b1; alice decrypts b1 (b0 never arrives) and encrypts a2; ' +
    'bob decrypts a2 — his active Session is then "session, confirmed, ...". Session 2 (as after a restore): alice startSession again with ' +
    'the bundle (signed, pqLastResort, no one-time prekey) and encrypts a3; bob decrypts a3, which becomes his active session, session 1 ' +
    'inactive: his DeviceSessions is "device sessions, active and inactive". Encodings from it: b1 (device message, ratchet, and its body as ' +
    'ratchet message), a0 (prekey with a one-time prekey), a3 (prekey without). Then: alice\'s device list = newDeviceList(aliceUserId, ' +
    'her account key, her device, deviceList.firstName, deviceList.firstAddedAt), her second device added as secondName at secondAddedAt ' +
    'and removed at secondRemovedAt (version 3, signed by her account key); sealPayload(payload, rng_a); encryptAttachment(attachment, ' +
    'rng_a, chunkSize); the safety QR of (aliceUserId, alice\'s account key, bobUserId, bob\'s account key); alice\'s DeviceKeyPair; ' +
    'bob\'s one-time and last-resort PrekeySecrets; his signed and pq one-time Prekeys and both bundles. Encodings are listed grouped by type; ' +
    'transcript records every DeviceMessage of the conversation (a0..a3, b0, b1). ' +
    'Each encoding decodes and re-encodes to the same bytes (context gives what a type needs besides its bytes). Malformed cases edit one encoding and record the CryptoError code its decoder ' +
    'throws: truncated, trailing_bytes, unknown_version or malformed (and hash_mismatch for a payload, whose hash is checked first).',
  spec: 'crypto/PROTOCOL.md §10, §4, §5, §11, §12, §13',
  cases() {
    const base: CaseSpec = {
      name: 'encodings',
      input: {
        alice: seedHex('Petrel test vectors: wire alice'),
        bob: seedHex('Petrel test vectors: wire bob'),
        aliceUserId: 'alice@petrel.example',
        bobUserId: 'bob@petrel.example',
        payload: utf8Hex('a payload'),
        attachment: utf8Hex('an attachment of forty-two bytes, or so...'),
        chunkSize: 16,
        bobPrekeyIds: { signed: 1, oneTime: 100, pqOneTime: 200, pqLastResort: 300 },
        plaintexts: { a0: utf8Hex('a0'), a1: utf8Hex('a1'), b0: utf8Hex('b0'), b1: utf8Hex('b1'), a2: utf8Hex('a2'), a3: utf8Hex('a3') },
        deviceList: { firstName: 'laptop', firstAddedAt: T0, secondName: 'phone', secondAddedAt: T0 + 1000, secondRemovedAt: T0 + 2000 },
      },
    };
    // Offsets that depend on the scenario's own lengths come from its encodings.
    const all = encodings(In.of(base.input, 'input'));
    return [base, ...malformed((name) => all.find((e) => e.name === name)!.bytes)];
  },
  compute(c, earlier) {
    const i = In.of(c.input, 'input');
    return i.has('from') ? computeMalformed(i, earlierCase<Encoding[]>(earlier, i.str('from'))) : computeEncodings(i);
  },
  crossCheck(c: VectorCase, _kept, t: Tally) {
    const o = In.of(c.output, 'output');
    if (!o.has('encodings')) return;
    const seen = new Set<string>();
    for (const e of o.objs('encodings')) {
      const type = e.str('type') as WireType;
      seen.add(type);
      const context = e.has('context') ? (e.obj('context').raw as Record<string, string>) : {};
      t.guard(`decoding ${e.str('name')}`, () => t.bytes(e.hex('bytes'), decodeWire(type, e.hex('bytes'), context).reencoded, `${e.str('name')} decodes and re-encodes`));
    }
    t.expect(WIRE_TYPES.every((w) => seen.has(w)), 'every wire type has an encoding');
  },
};

/** The malformed inputs, each an edit of one encoding (byte layouts: PROTOCOL.md §10). */
function malformed(bytesOf: (name: string) => Uint8Array): CaseSpec[] {
  const m = (encoding: string, what: string, edit: JsonObject, expect: string): CaseSpec => ({
    name: `${encoding}: ${what}`,
    input: { from: 'encodings', encoding, edit },
    expect,
  });
  const RM = 'device message, ratchet';
  const PM = 'device message, prekey with a one-time prekey';
  // Prekey DeviceMessage: envelope 2, version 1, sender 80, base key 32, spk id 4, pq kind 1, pq id 4, has 1, otk id 4, ciphertext 1120.
  const PQ_KIND_AT = 2 + 1 + 80 + 32 + 4;
  const HAS_OTK_AT = PQ_KIND_AT + 1 + 4;
  const EMBEDDED_AT = HAS_OTK_AT + 1 + 4 + 1120;
  // Bundle: version 1, deviceId 16, u16 + signed prekey 102, u16 + X-Wing prekey 1286, has 1, u16 + one-time prekey 102.
  const BUNDLE_HAS_AT = 1 + 16 + 2 + 102 + 2 + 1286;
  // Device list: version, var8 userId, account key 32, version u64, count u16.
  const LIST_COUNT_AT = 1 + 1 + 'alice@petrel.example'.length + 32 + 8;
  const LIST_FIRST_NAME_AT = LIST_COUNT_AT + 2 + 16 + 32 + 32 + 1;
  // Session (responder, confirmed, with a sending chain): version, flags, var8 ad 160, 4 x 32 keys, CKs 32 + Ns 4, PN 4, n.
  const S = 'session, confirmed, two receiving chains and a skipped key';
  const RECEIVING_COUNT_AT = 1 + 1 + 1 + 160 + 4 * 32 + 36 + 4;
  const SKIPPED_COUNT_AT = RECEIVING_COUNT_AT + 1 + 2 * 72;
  // DeviceSessions: version, has-active, u32 length + active session, inactive count.
  const DS = 'device sessions, active and inactive';
  const ds = bytesOf(DS);
  const INACTIVE_COUNT_AT = 2 + 4 + new DataView(ds.buffer, ds.byteOffset, ds.byteLength).getUint32(2);
  return [
    m(RM, 'empty', truncateEdit(0), 'truncated'),
    m(RM, 'version 0', setEdit(0, '00'), 'unknown_version'),
    m(RM, 'version 2', setEdit(0, '02'), 'unknown_version'),
    m(RM, 'kind 0', setEdit(1, '00'), 'malformed'),
    m(RM, 'kind 3', setEdit(1, '03'), 'malformed'),
    m(RM, 'envelope only', truncateEdit(2), 'truncated'),
    m(RM, 'ratchet message version 2', setEdit(2, '02'), 'unknown_version'),
    m(RM, 'header only', truncateEdit(2 + 41), 'truncated'),
    m(RM, 'ciphertext shorter than its tag', truncateEdit(2 + 41 + 15), 'truncated'),
    m(PM, 'prekey message version 2', setEdit(2, '02'), 'unknown_version'),
    m(PM, 'pq kind 2', setEdit(PQ_KIND_AT, '02'), 'malformed'),
    m(PM, 'pq kind 5', setEdit(PQ_KIND_AT, '05'), 'malformed'),
    m(PM, 'has-one-time flag 2', setEdit(HAS_OTK_AT, '02'), 'malformed'),
    m(PM, 'cut in the X-Wing ciphertext', truncateEdit(1000), 'truncated'),
    m(PM, 'no embedded ratchet message', truncateEdit(EMBEDDED_AT), 'truncated'),
    m('ratchet message', 'version 2', setEdit(0, '02'), 'unknown_version'),
    m('ratchet message', 'ciphertext shorter than its tag', truncateEdit(41 + 15), 'truncated'),
    m('prekey, X25519 (signed)', 'version 2', setEdit(0, '02'), 'unknown_version'),
    m('prekey, X25519 (signed)', 'kind 0', setEdit(1, '00'), 'malformed'),
    m('prekey, X25519 (signed)', 'kind 5', setEdit(1, '05'), 'malformed'),
    m('prekey, X25519 (signed)', 'kind 3 (an X-Wing key would be longer)', setEdit(1, '03'), 'truncated'),
    m('prekey, X25519 (signed)', 'one byte short', truncateEdit(101), 'truncated'),
    m('prekey, X25519 (signed)', 'a byte after the signature', appendEdit('00'), 'trailing_bytes'),
    m('prekey, X-Wing (pq one-time)', 'kind 1 (an X25519 key is shorter)', setEdit(1, '01'), 'trailing_bytes'),
    m('bundle with a one-time prekey', 'version 2', setEdit(0, '02'), 'unknown_version'),
    m('bundle with a one-time prekey', 'has-one-time flag 2', setEdit(BUNDLE_HAS_AT, '02'), 'malformed'),
    m('bundle with a one-time prekey', 'signed prekey length one too long', setEdit(17, '0067'), 'trailing_bytes'),
    m('bundle with a one-time prekey', 'signed prekey length one too short', setEdit(17, '0065'), 'truncated'),
    m('bundle with a one-time prekey', 'flag set but the one-time prekey missing', truncateEdit(BUNDLE_HAS_AT + 1), 'truncated'),
    m('bundle with a one-time prekey', 'a byte after the last prekey', appendEdit('00'), 'trailing_bytes'),
    m('device list', 'shorter than a signature', truncateEdit(64), 'truncated'),
    m('device list', 'version 2', setEdit(0, '02'), 'unknown_version'),
    m('device list', '257 entries', setEdit(LIST_COUNT_AT, '0101'), 'malformed'),
    m('device list', 'device name not UTF-8', setEdit(LIST_FIRST_NAME_AT, 'ff'), 'malformed'),
    m('device list', 'a byte after the signature', appendEdit('00'), 'trailing_bytes'),
    m('key message', 'version 2', setEdit(0, '02'), 'unknown_version'),
    m('key message', 'one byte short', truncateEdit(64), 'truncated'),
    m('key message', 'a byte after the hash', appendEdit('00'), 'trailing_bytes'),
    m('payload', 'version 2 (the hash is checked first)', setEdit(0, '02'), 'hash_mismatch'),
    m('attachment pointer', 'version 2', setEdit(0, '02'), 'unknown_version'),
    m('attachment pointer', 'chunk size 0', setEdit(33, '00000000'), 'malformed'),
    m('attachment pointer', 'size above 2^53 - 1', setEdit(37, '0020000000000000'), 'malformed'),
    m('attachment pointer', 'one byte short', truncateEdit(76), 'truncated'),
    m('attachment pointer', 'a byte after the hash', appendEdit('00'), 'trailing_bytes'),
    m('safety QR', 'version 2', setEdit(0, '02'), 'unknown_version'),
    m('safety QR', 'one byte short', truncateEdit(64), 'truncated'),
    m('safety QR', 'a byte after the fingerprints', appendEdit('00'), 'trailing_bytes'),
    m(S, 'version 2', setEdit(0, '02'), 'unknown_version'),
    m(S, 'unknown flag 16', setEdit(1, '10'), 'malformed'),
    m(S, 'pending flag without a prekey header', setEdit(1, '0e'), 'truncated'),
    m(S, 'AD of 159 bytes', setEdit(2, '9f'), 'malformed'),
    m(S, '6 receiving chains', setEdit(RECEIVING_COUNT_AT, '06'), 'malformed'),
    m(S, '2001 skipped keys', setEdit(SKIPPED_COUNT_AT, '07d1'), 'malformed'),
    m(S, 'cut in the receiving chains', truncateEdit(RECEIVING_COUNT_AT + 50), 'truncated'),
    m(S, 'a byte after the last field', appendEdit('00'), 'trailing_bytes'),
    m(DS, 'version 2', setEdit(0, '02'), 'unknown_version'),
    m(DS, 'has-active flag 2', setEdit(1, '02'), 'malformed'),
    m(DS, 'active session longer than the rest', setEdit(2, 'ffffffff'), 'truncated'),
    m(DS, '6 inactive sessions', setEdit(INACTIVE_COUNT_AT, '06'), 'malformed'),
    m(DS, 'a byte after the last session', appendEdit('00'), 'trailing_bytes'),
    m('device keys', 'version 2', setEdit(0, '02'), 'unknown_version'),
    m('device keys', 'one byte short', truncateEdit(64), 'truncated'),
    m('device keys', 'a byte after the X25519 secret', appendEdit('00'), 'trailing_bytes'),
    m('prekey secret, X25519 (one-time)', 'kind 0', setEdit(1, '00'), 'malformed'),
    m('prekey secret, X25519 (one-time)', 'kind 5', setEdit(1, '05'), 'malformed'),
    m('prekey secret, X25519 (one-time)', 'one byte short', truncateEdit(37), 'truncated'),
    m('prekey secret, X-Wing (last resort)', 'a byte after the secret', appendEdit('00'), 'trailing_bytes'),
  ];
}

// session-setup.json: PQXDH from both sides (PROTOCOL.md §6). The initiator's random draws, the
// DH outputs, SK, AD and the first ratchet keys are recorded so an implementer can find the first
// step where they disagree; the responder's derived session and first plaintext close the loop.
import {
  concat,
  type DeviceKeyPair,
  decodeDeviceMessage,
  decodeSession,
  decryptFromDevice,
  EMPTY_DEVICE_SESSIONS,
  encodeBundle,
  encodeSession,
  generateDevice,
  generatePrekey,
  initiateSession,
  kdf,
  LABEL,
  MessageKind,
  type PrekeyBundle,
  PrekeyKind,
  type PrekeySecret,
  type PublicPrekey,
  publicPart,
  ratchetDecrypt,
  ratchetEncrypt,
  respondToPrekey,
  type Session,
  seededRng,
  utf8,
} from '../../../crypto/index.ts';
import {
  applyEdit,
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
  type Topic,
  utf8Hex,
  type VectorCase,
  VectorShapeError,
  xorEdit,
} from './core.ts';
import { ed25519Sign, x25519, x25519Public } from './independent.ts';
import { prekeySignedMessage } from './prekeys.ts';
import { deviceJson, devicePublicJson, draws, lookupIn, messageKeyOf } from './parts.ts';

interface Parties {
  readonly alice: DeviceKeyPair;
  readonly bob: DeviceKeyPair;
  readonly mallory: DeviceKeyPair;
  readonly secrets: readonly PrekeySecret[];
  readonly publics: readonly PublicPrekey[];
}

interface Handshake {
  readonly parties: Parties;
  readonly bundle: PrekeyBundle;
  readonly prekeyMessage: Uint8Array;
  readonly responderSeed: Uint8Array;
}

function computeParties(i: In): Computed {
  const alice = generateDevice(seededRng(i.hex('alice')));
  const bobRng = seededRng(i.hex('bob'));
  const bob = generateDevice(bobRng);
  const mallory = generateDevice(seededRng(i.hex('mallory')));
  const made = i.objs('bobPrekeys').map((p) => generatePrekey(bob, p.num('kind') as PrekeyKind, p.num('id'), bobRng));
  const keep: Parties = { alice, bob, mallory, secrets: made.map((m) => m.secret), publics: made.map((m) => m.public) };
  return {
    output: {
      alice: deviceJson(alice),
      bob: deviceJson(bob),
      mallory: devicePublicJson(mallory),
      bobPrekeys: made.map((m) => ({ kind: m.public.kind, id: m.public.id, secret: hex(m.secret.secretKey), publicKey: hex(m.public.publicKey), signature: hex(m.public.signature) })),
    },
    keep,
  };
}

function bundleOf(i: In, p: Parties): PrekeyBundle {
  const pick = (n: number): PublicPrekey => {
    const k = p.publics[n];
    if (!k) throw new VectorShapeError(`no prekey ${n}`);
    return k;
  };
  const oneTime = i.optNum('oneTime');
  return { deviceId: p.bob.deviceId, signedPrekey: pick(i.num('signed')), pqPrekey: pick(i.num('pq')), oneTimePrekey: oneTime === null ? null : pick(oneTime) };
}

function state(s: Session): string {
  return hex(encodeSession(s));
}

/** The initiator's side: session, first prekey message, and every intermediate value of §6. */
function initiatorSide(i: In, p: Parties, bundle: PrekeyBundle) {
  const initiatorSeed = i.hex('initiatorSeed');
  const rng = seededRng(initiatorSeed);
  const s0 = initiateSession(p.alice, publicPart(p.bob), bundle, rng);
  const [ek, encapsSeed, ratchetSecret] = draws(initiatorSeed, [32, 64, 32]) as [Uint8Array, Uint8Array, Uint8Array];
  const spk = bundle.signedPrekey.publicKey;
  const sent = ratchetEncrypt(s0, i.hex('plaintext'));
  const output: JsonObject = {
    ek: hex(ek),
    baseKey: hex(s0.baseKey),
    encapsSeed: hex(encapsSeed),
    ratchetSecret: hex(ratchetSecret),
    ratchetPublic: hex(s0.ourRatchet.public),
    dh1: hex(x25519(p.alice.dhSecret, spk)),
    dh2: hex(x25519(ek, p.bob.dhKey)),
    dh3: hex(x25519(ek, spk)),
    dh4: bundle.oneTimePrekey ? hex(x25519(ek, bundle.oneTimePrekey.publicKey)) : null,
    ad: hex(s0.ad),
    rootKey: hex(s0.rootKey),
    sendingChainKey: hex(s0.sending!.chainKey),
    messageKey: hex(messageKeyOf(s0.sending!.chainKey)),
    state: state(sent.session),
  };
  return { rng, session: sent.session, message: sent.message, output };
}

function computeHandshake(i: In, p: Parties): Computed {
  const bundle = bundleOf(i, p);
  const alice = initiatorSide(i, p, bundle);
  const m = decodeDeviceMessage(alice.message);
  if (m.kind !== MessageKind.prekey) throw new VectorShapeError('first message is not a prekey message');
  const responderSeed = i.hex('responderSeed');
  const setup = respondToPrekey(p.bob, publicPart(p.alice), m.prekey, lookupIn(p.secrets));
  const got = ratchetDecrypt(setup.session, m.prekey.message, seededRng(responderSeed));
  const reply = ratchetEncrypt(got.session, i.hex('reply'));
  const back = decodeDeviceMessage(reply.message);
  if (back.kind !== MessageKind.ratchet) throw new VectorShapeError('reply is not a ratchet message');
  const confirmed = ratchetDecrypt(alice.session, back.message, alice.rng);
  const output: JsonObject = {
    bundle: hex(encodeBundle(bundle)),
    initiator: alice.output,
    prekeyMessage: hex(alice.message),
    pqCiphertext: hex(m.prekey.pqCiphertext),
    responder: {
      sk: hex(setup.session.rootKey),
      stateBefore: state(setup.session),
      ratchetSecret: hex(draws(responderSeed, [32])[0]!),
      rootKey: hex(got.session.rootKey),
      sendingChainKey: hex(got.session.sending!.chainKey),
      plaintext: hex(got.plaintext),
      usedOneTimePrekey: setup.used.oneTimePrekeyId,
      usedPqOneTimePrekey: setup.used.pqOneTimePrekeyId,
      state: state(got.session),
    },
    reply: { message: hex(reply.message), plaintext: hex(confirmed.plaintext), initiatorState: state(confirmed.session) },
  };
  const keep: Handshake = { parties: p, bundle, prekeyMessage: alice.message, responderSeed };
  return { output, keep };
}

/**
 * A negative case on the initiator's side: the bundle's pq prekey replaced by an X-Wing key libsodium
 * refuses (edited, then signed again by bob's device key so the bundle still verifies, §5).
 */
function computeRejectedPqKey(i: In, p: Parties): Computed {
  const good = bundleOf(i, p);
  const publicKey = applyEdit(good.pqPrekey.publicKey, i.obj('editPqKey'));
  const signature = ed25519Sign(p.bob.signingSecret.subarray(0, 32), prekeySignedMessage(p.bob.deviceId, good.pqPrekey.kind, good.pqPrekey.id, publicKey));
  const bundle: PrekeyBundle = { ...good, pqPrekey: { ...good.pqPrekey, publicKey, signature } };
  // Any RNG: the key is refused whatever ek = rng(32) was, so the case records no seed.
  const error = errorCode(() => initiateSession(p.alice, publicPart(p.bob), bundle, seededRng(utf8('Petrel test vectors: any initiator'))));
  return { output: { bundle: hex(encodeBundle(bundle)), error } };
}

/** A negative case: the responder's side on an edited prekey message, a smaller key store or another listed sender. */
function computeRejected(i: In, h: Handshake): Computed {
  const message = i.has('edit') ? applyEdit(h.prekeyMessage, i.obj('edit')) : h.prekeyMessage;
  const drop = i.has('drop') ? i.str('drop') : null;
  const secrets = h.parties.secrets.filter((s) => {
    if (drop === 'oneTime') return s.kind !== PrekeyKind.oneTime;
    if (drop === 'pq') return s.kind !== PrekeyKind.pqOneTime && s.kind !== PrekeyKind.pqLastResort;
    return true;
  });
  const sender = i.has('listedSender') && i.str('listedSender') === 'mallory' ? h.parties.mallory : h.parties.alice;
  const error = errorCode(() => {
    const m = decodeDeviceMessage(message);
    if (m.kind !== MessageKind.prekey) throw new VectorShapeError('not a prekey message');
    const setup = respondToPrekey(h.parties.bob, publicPart(sender), m.prekey, lookupIn(secrets));
    ratchetDecrypt(setup.session, m.prekey.message, seededRng(h.responderSeed));
  });
  return { output: i.has('edit') ? { message: hex(message), error } : { error } };
}

// Byte offsets in a DeviceMessage of kind prekey with a one-time prekey id (PROTOCOL.md §10.1).
const BASE_KEY_AT = 2 + 1 + 16 + 32 + 32;
const PQ_CIPHERTEXT_AT = BASE_KEY_AT + 32 + 4 + 1 + 4 + 1 + 4;

function rejected(name: string, input: JsonObject, expect: string): CaseSpec {
  return { name, input: { from: 'with a one-time prekey', ...input }, expect };
}

export const sessionSetupTopic: Topic = {
  file: 'session-setup.json',
  description:
    'PQXDH. Case "parties": alice = generateDevice(seededRng(alice)); bob = generateDevice(rng_b = seededRng(bob)) then his prekeys from rng_b; ' +
    'mallory is a third device. Handshake cases: the bundle of the chosen prekeys (by index); initiator rng = seededRng(initiatorSeed) draws ' +
    'ek (32), the X-Wing encapsulation seed (64), the first ratchet secret (32); DH1 = X25519(IK_A, SPK), DH2 = X25519(ek, IK_B), ' +
    'DH3 = X25519(ek, SPK), DH4 = X25519(ek, OPK) or null; SK = KDF("Petrel/v1/PQXDH", 0xff*32 || DH1 || DH2 || DH3 [|| DH4] || SS, 32) ' +
    'is responder.sk (SS is X-Wing.Decaps(pqCiphertext, pq prekey secret)); (rootKey, sendingChainKey) = KDF_RK(SK, X25519(ratchetSecret, SPK)); ' +
    'messageKey encrypts the first message (plaintext); initiator.state is the initiator\'s Session after that first message is encrypted ' +
    '(sending index 1, pending prekey header kept). The responder decrypts it with rng = seededRng(responderSeed) (first draw: its new ' +
    'ratchet secret), then replies and the initiator decrypts the reply, confirming the session. States are Session encodings (§10.2). ' +
    'Negative cases edit the first prekey message or take keys away from the responder: a base key that is low-order, has its top bit ' +
    '(bit 7 of byte 31) set, or equals the signed prekey is invalid_public_key (§6 step 2). The case with editPqKey edits bob\'s pq prekey ' +
    'public key, signs it again with bob\'s device key (so the bundle verifies) and has the initiator start a session: libsodium refuses ' +
    'the X-Wing key (its first ML-KEM coefficient is 0xfff >= q = 3329), invalid_public_key, after ek = rng(32) was drawn.',
  spec: 'crypto/PROTOCOL.md §6, §7',
  cases() {
    const hs = (name: string, oneTime: number | null, pq: number, n: number): CaseSpec => ({
      name,
      input: {
        from: 'parties',
        signed: 0,
        pq,
        oneTime,
        initiatorSeed: seedHex(`Petrel test vectors: initiator ${n}`),
        responderSeed: seedHex(`Petrel test vectors: responder ${n}`),
        plaintext: utf8Hex(`first message of handshake ${n}`),
        reply: utf8Hex(`reply ${n}`),
      },
    });
    const partiesInput = {
      alice: seedHex('Petrel test vectors: alice'),
      bob: seedHex('Petrel test vectors: bob'),
      mallory: seedHex('Petrel test vectors: mallory'),
      bobPrekeys: [
        { kind: PrekeyKind.signed, id: 7 },
        { kind: PrekeyKind.oneTime, id: 1001 },
        { kind: PrekeyKind.pqOneTime, id: 2001 },
        { kind: PrekeyKind.pqLastResort, id: 3000 },
      ],
    };
    // The signed prekey's public key, for the case that sends it back as the base key.
    const signedPrekeyHex = hex((computeParties(In.of(partiesInput, 'input')).keep as Parties).publics[0]!.publicKey);
    return [
      { name: 'parties', input: partiesInput },
      hs('with a one-time prekey', 1, 2, 1),
      hs('without a one-time prekey, pq last resort', null, 3, 2),
      rejected('tampered X-Wing ciphertext', { edit: xorEdit(PQ_CIPHERTEXT_AT + 100, 0x01) }, 'decrypt_failed'),
      rejected('tampered embedded ratchet message', { edit: xorEdit(PQ_CIPHERTEXT_AT + 1120 + 41, 0x01) }, 'decrypt_failed'),
      rejected('one-time prekey no longer held', { drop: 'oneTime' }, 'unknown_prekey'),
      rejected('pq prekey no longer held', { drop: 'pq' }, 'unknown_prekey'),
      rejected('sender is not the listed device', { listedSender: 'mallory' }, 'identity_mismatch'),
      rejected('all-zero (low-order) base key', { edit: setEdit(BASE_KEY_AT, '00'.repeat(32)) }, 'invalid_public_key'),
      rejected('base key with its top bit set', { edit: xorEdit(BASE_KEY_AT + 31, 0x80) }, 'invalid_public_key'),
      rejected('base key equal to the signed prekey', { edit: setEdit(BASE_KEY_AT, signedPrekeyHex) }, 'invalid_public_key'),
      {
        name: 'X-Wing prekey with an ML-KEM coefficient >= q, signed',
        input: { from: 'parties', signed: 0, pq: 2, oneTime: 1, editPqKey: setEdit(0, 'ffffff') },
        expect: 'invalid_public_key',
      },
    ];
  },
  compute(c, earlier) {
    const i = In.of(c.input, 'input');
    if (!i.has('from')) return computeParties(i);
    if (i.str('from') === 'parties') {
      const p = earlierCase<Parties>(earlier, 'parties');
      return i.has('editPqKey') ? computeRejectedPqKey(i, p) : computeHandshake(i, p);
    }
    return computeRejected(i, earlierCase<Handshake>(earlier, i.str('from')));
  },
  crossCheck(c: VectorCase, kept, t: Tally) {
    const o = In.of(c.output, 'output');
    if (!o.has('initiator')) return;
    const h = kept as Handshake;
    const a = o.obj('initiator');
    const r = o.obj('responder');
    const spk = h.parties.secrets.find((s) => s.kind === PrekeyKind.signed && s.id === h.bundle.signedPrekey.id)!;
    const opk = h.bundle.oneTimePrekey && h.parties.secrets.find((s) => s.kind === PrekeyKind.oneTime && s.id === h.bundle.oneTimePrekey!.id);
    // The responder's DH computations (OpenSSL) give the initiator's recorded values.
    t.bytes(a.hex('dh1'), x25519(spk.secretKey, h.parties.alice.dhKey), 'DH1 from the responder side');
    t.bytes(a.hex('dh2'), x25519(h.parties.bob.dhSecret, a.hex('baseKey')), 'DH2 from the responder side');
    t.bytes(a.hex('dh3'), x25519(spk.secretKey, a.hex('baseKey')), 'DH3 from the responder side');
    if (opk) t.bytes(a.hex('dh4'), x25519(opk.secretKey, a.hex('baseKey')), 'DH4 from the responder side');
    t.bytes(a.hex('baseKey'), x25519Public(a.hex('ek')), 'baseKey = X25519(ek, 9)');
    t.bytes(a.hex('ratchetPublic'), x25519Public(a.hex('ratchetSecret')), 'ratchetPublic = X25519(ratchetSecret, 9)');
    // KDF_RK(SK, DH(ratchetSecret, SPK)) from the recorded SK gives the initiator's first chain.
    const rk = kdf(LABEL.rootStep, x25519(a.hex('ratchetSecret'), spk.publicKey), 64, r.hex('sk'));
    t.bytes(concat(a.hex('rootKey'), a.hex('sendingChainKey')), rk, 'KDF_RK(SK, DH(ratchetSecret, SPK))');
    t.bytes(a.hex('messageKey'), messageKeyOf(a.hex('sendingChainKey')), 'messageKey = KDF_CK(sendingChainKey)[0..32]');
    const ad = concat(h.parties.alice.deviceId, h.parties.alice.signingKey, h.parties.alice.dhKey, h.parties.bob.deviceId, h.parties.bob.signingKey, h.parties.bob.dhKey);
    t.bytes(a.hex('ad'), ad, 'AD from the two devices');
    for (const [s, what] of [
      [a.hex('state'), 'initiator state'],
      [r.hex('stateBefore'), 'responder stateBefore'],
      [r.hex('state'), 'responder state'],
      [o.obj('reply').hex('initiatorState'), 'initiator state after the reply'],
    ] as const) {
      t.bytes(s, encodeSession(decodeSession(s)), `${what} decodes and re-encodes`);
    }
    // Sesame's entry point, fed the recorded prekey message, reaches the recorded responder state.
    const d = decryptFromDevice(EMPTY_DEVICE_SESSIONS, o.hex('prekeyMessage'), h.parties.bob, publicPart(h.parties.alice), lookupIn(h.parties.secrets), seededRng(h.responderSeed));
    t.bytes(r.hex('state'), encodeSession(d.record.active!), 'decryptFromDevice on the recorded prekey message');
    t.bytes(r.hex('plaintext'), d.plaintext, 'decryptFromDevice plaintext');
  },
};

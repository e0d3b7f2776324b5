// ratchet.json: one conversation of 20 messages through the double ratchet (PROTOCOL.md §7):
// both directions, out-of-order delivery, a replay, a late message from an older receiving chain
// (derived on demand), and refused forgeries that leave the state exactly as it was.
import {
  type DeviceKeyPair,
  decodeDeviceMessage,
  decodeSession,
  encodeBundle,
  encodeDeviceMessage,
  encodeSession,
  generateDevice,
  generatePrekey,
  initiateSession,
  MessageKind,
  type PrekeyBundle,
  PrekeyKind,
  type PrekeySecret,
  publicPart,
  ratchetDecrypt,
  ratchetEncrypt,
  respondToPrekey,
  type Rng,
  type Session,
  seededRng,
} from '../../../crypto/index.ts';
import { applyEdit, attempt, type Computed, hex, In, type Json, type JsonObject, seedHex, setEdit, type Tally, type Topic, utf8Hex, type VectorCase, VectorShapeError, xorEdit } from './core.ts';
import { deviceJson, draws, lookupIn, messageKeyOf } from './parts.ts';

type PartyName = 'alice' | 'bob';

interface Party {
  readonly device: DeviceKeyPair;
  readonly rng: Rng;
  session: Session | null;
}

interface Conversation {
  readonly alice: Party;
  readonly bob: Party;
  readonly secrets: readonly PrekeySecret[];
  readonly bundle: PrekeyBundle;
}

function setUp(i: In): Conversation {
  const aliceRng = seededRng(i.hex('alice'));
  const alice = generateDevice(aliceRng);
  const bobRng = seededRng(i.hex('bob'));
  const bob = generateDevice(bobRng);
  // bobPrekeys: the ids of his signed, one-time and pq one-time prekeys, generated in that order.
  const [spkId, otkId, pqId] = i.nums('bobPrekeyIds') as [number, number, number];
  const spk = generatePrekey(bob, PrekeyKind.signed, spkId, bobRng);
  const otk = generatePrekey(bob, PrekeyKind.oneTime, otkId, bobRng);
  const pq = generatePrekey(bob, PrekeyKind.pqOneTime, pqId, bobRng);
  const bundle: PrekeyBundle = { deviceId: bob.deviceId, signedPrekey: spk.public, pqPrekey: pq.public, oneTimePrekey: otk.public };
  return {
    alice: { device: alice, rng: aliceRng, session: initiateSession(alice, publicPart(bob), bundle, aliceRng) },
    bob: { device: bob, rng: bobRng, session: null },
    secrets: [spk.secret, otk.secret, pq.secret],
    bundle,
  };
}

/** Receives a DeviceMessage; the responder's first prekey message creates its session (§6). */
function receive(c: Conversation, me: Party, them: Party, bytes: Uint8Array): { session: Session; plaintext: Uint8Array } {
  const m = decodeDeviceMessage(bytes);
  if (m.kind === MessageKind.prekey) {
    const base = me.session ?? respondToPrekey(me.device, publicPart(them.device), m.prekey, lookupIn(c.secrets)).session;
    return ratchetDecrypt(base, m.prekey.message, me.rng);
  }
  if (!me.session) throw new VectorShapeError('a ratchet message before any session');
  return ratchetDecrypt(me.session, m.message, me.rng);
}

function stateOf(p: Party): Json {
  return p.session ? hex(encodeSession(p.session)) : null;
}

function step(c: Conversation, s: In, sent: Uint8Array[]): JsonObject {
  const name = s.str('party');
  if (name !== 'alice' && name !== 'bob') throw new VectorShapeError('party must be alice or bob');
  const me = c[name as PartyName];
  const them = name === 'alice' ? c.bob : c.alice;
  if (s.has('send')) {
    if (!me.session?.sending) throw new VectorShapeError(`${name} cannot send yet`);
    const messageKey = messageKeyOf(me.session.sending.chainKey);
    const r = ratchetEncrypt(me.session, s.hex('send'));
    me.session = r.session;
    sent.push(r.message);
    return { message: hex(r.message), messageKey: hex(messageKey), state: stateOf(me) };
  }
  const original = sent[s.num('receive')];
  if (!original) throw new VectorShapeError('receive names a message not sent yet');
  const bytes = s.has('edit') ? applyEdit(original, s.obj('edit')) : original;
  const r = attempt(() => receive(c, me, them, bytes));
  if (r.ok) me.session = r.value.session;
  const out: JsonObject = s.has('edit') ? { message: hex(bytes) } : {};
  return r.ok ? { ...out, plaintext: hex(r.value.plaintext), state: stateOf(me) } : { ...out, error: r.error, state: stateOf(me) };
}

// In a DeviceMessage of kind ratchet: 2 envelope bytes, version, 32-byte ratchet key, u32 PN, u32 N, ciphertext.
const INDEX_AT = 2 + 1 + 32 + 4;
const CIPHERTEXT_AT = INDEX_AT + 4;

type StepInput = { party: PartyName; send?: string; receive?: number; edit?: JsonObject };

function script(): StepInput[] {
  let n = 0;
  const send = (party: PartyName): StepInput => ({ party, send: utf8Hex(`${party} says #${n++}${n % 3 === 0 ? ', with a longer body to vary lengths' : ''}`) });
  const recv = (party: PartyName, receive: number, edit?: JsonObject): StepInput => ({ party, receive, ...(edit ? { edit } : {}) });
  return [
    send('alice'), send('alice'), send('alice'), // m0..m2: prekey messages
    recv('bob', 1), // out of order: creates bob's session, m0's key is skipped
    recv('bob', 0), // from the skipped key
    recv('bob', 0), // replay: duplicate_message
    send('bob'), send('bob'), // m3, m4
    recv('bob', 2),
    recv('alice', 4), // alice's DH step; m3 skipped; confirmed, prekey header dropped
    send('alice'), send('alice'), send('alice'), // m5..m7: ratchet messages on alice's second chain
    recv('alice', 3),
    recv('bob', 5), // bob's DH step
    send('bob'), // m8
    recv('alice', 8), // alice's DH step: her chain with m5..m7 ends at PN = 3
    send('alice'), // m9
    recv('bob', 9), // bob's DH step closes alice's older chain at 3
    recv('bob', 7), // late message from the older chain, its key derived now; m6 becomes skipped
    recv('bob', 7, setEdit(INDEX_AT, '00000003')), // forged index at the closed chain's end: decrypt_failed
    recv('bob', 6), // late, from the skipped keys of the older chain
    send('bob'), send('bob'), send('bob'), // m10..m12
    recv('alice', 12), // DH step; m10, m11 skipped
    recv('alice', 11, xorEdit(CIPHERTEXT_AT, 0x01)), // tampered: decrypt_failed, skipped key kept
    recv('alice', 11),
    send('alice'), // m13
    send('bob'), // m14: crossing in flight
    recv('alice', 14),
    recv('bob', 13), // DH step
    recv('alice', 10), // the last skipped key
    send('alice'), send('alice'), // m15, m16
    recv('bob', 16, setEdit(INDEX_AT, '00000834')), // index 2100: too_many_skipped
    recv('bob', 16),
    recv('bob', 15),
    send('bob'), // m17
    recv('alice', 17),
    send('alice'), // m18
    recv('bob', 18),
    send('bob'), // m19
    recv('alice', 19),
  ];
}

/**
 * A refused message that carries a new ratchet key, then the same message intact (§7.4): the refused
 * one's DH step draws rng(32) before authentication fails and the draw is not undone, so the accepted
 * one's DH step takes the next 32 bytes. Then the MAX_SKIP bound on a chain already held.
 */
function refusedScript(): StepInput[] {
  const send = (party: PartyName, text: string): StepInput => ({ party, send: utf8Hex(text) });
  const recv = (party: PartyName, receive: number, edit?: JsonObject): StepInput => ({ party, receive, ...(edit ? { edit } : {}) });
  return [
    send('alice', 'alice: first'), // m0, prekey message
    recv('bob', 0), // bob's session; his DH step draws his first 32 bytes
    send('bob', 'bob: reply on a new ratchet key'), // m1
    recv('alice', 1, xorEdit(CIPHERTEXT_AT, 0x01)), // new ratchet key, tampered: the DH step draws, then decrypt_failed
    recv('alice', 1), // accepted: this DH step's ratchet secret is alice's *second* draw after setup
    send('alice', 'alice: on the ratchet key from the second draw'), // m2 carries that key
    recv('bob', 2),
    send('bob', 'bob: m3'), // m3, on bob's next chain
    recv('alice', 3), // alice's chain for bob's key now expects index 1
    send('bob', 'bob: m4'), // m4, index 1
    recv('alice', 4, setEdit(INDEX_AT, '000007d2')), // index 2002 on a held chain: 2001 keys to derive, too_many_skipped
    recv('alice', 4, setEdit(INDEX_AT, '000007d1')), // index 2001: 2000 keys is allowed, then decrypt_failed
    recv('alice', 4),
  ];
}

function computeConversation(i: In): Computed {
  const c = setUp(i);
  const setup = {
    alice: deviceJson(c.alice.device),
    bob: deviceJson(c.bob.device),
    bobPrekeys: c.secrets.map((s) => ({ kind: s.kind, id: s.id, secret: hex(s.secretKey) })),
    bundle: hex(encodeBundle(c.bundle)),
    aliceState: stateOf(c.alice),
  };
  const sent: Uint8Array[] = [];
  const steps = i.objs('steps').map((s) => step(c, s, sent));
  return { output: { setup, steps } };
}

export const ratchetTopic: Topic = {
  file: 'ratchet.json',
  description:
    'A conversation through the double ratchet. alice = generateDevice(rng_a = seededRng(alice)); bob = generateDevice(rng_b = seededRng(bob)), ' +
    'then from rng_b his prekeys: signed id 1, one-time id 100, pq one-time id 200; alice initiates with that bundle (§6) from rng_a. ' +
    'Each step: `party` sends `send` (output: the DeviceMessage, the message key it used, the sender\'s Session state after) or receives the ' +
    '`receive`-th message sent, optionally edited (output: plaintext or error, and the receiver\'s state after, unchanged on error). ' +
    'Each party\'s DH ratchet steps draw from its own rng; bob\'s first prekey message creates his session (respondToPrekey). ' +
    'bobPrekeyIds are the ids of his signed, one-time and pq one-time prekeys (generated in that order). ' +
    'In case "conversation" no refused step carries a new ratchet key, so refused steps draw nothing. In case "refused message with a new ' +
    'ratchet key" step 3 does: its DH step draws rng(32) before authentication fails, the draw is not undone, and the DH step of step 4 ' +
    '(the same message intact) takes the next 32 bytes; an implementation that undoes the draw gets another ratchet key from step 4 on (§7.4). ' +
    'That case also refuses index 2002 on a chain already held (too_many_skipped: 2001 keys to derive) and accepts the bound ' +
    '(index 2001: 2000 keys, then decrypt_failed on the forged header).',
  spec: 'crypto/PROTOCOL.md §7, §10.1, §10.2',
  cases() {
    const bobPrekeyIds = [1, 100, 200];
    return [
      { name: 'conversation', input: { alice: seedHex('Petrel test vectors: ratchet alice'), bob: seedHex('Petrel test vectors: ratchet bob'), bobPrekeyIds, steps: script() } },
      {
        name: 'refused message with a new ratchet key',
        input: { alice: seedHex('Petrel test vectors: ratchet refused alice'), bob: seedHex('Petrel test vectors: ratchet refused bob'), bobPrekeyIds, steps: refusedScript() },
      },
    ];
  },
  compute(c) {
    return computeConversation(In.of(c.input, 'input'));
  },
  crossCheck(c: VectorCase, _kept, t: Tally) {
    const steps = In.of(c.input, 'input').objs('steps');
    const out = In.of(c.output, 'output').objs('steps');
    const last: Record<string, Uint8Array | null> = { alice: In.of(c.output, 'output').obj('setup').hex('aliceState'), bob: null };
    steps.forEach((s, n) => {
      const o = out[n];
      if (!o) return t.fail(`no output for step ${n}`);
      const party = s.str('party');
      const state = o.has('state') ? o.hex('state') : null;
      if (state) t.bytes(state, encodeSession(decodeSession(state)), `step ${n} state decodes and re-encodes`);
      if (o.has('message')) t.bytes(o.hex('message'), encodeDeviceMessage(decodeDeviceMessage(o.hex('message'))), `step ${n} message decodes and re-encodes`);
      if (s.has('send')) {
        // The message key is KDF_CK of the sending chain key in the sender's previous recorded state.
        const prev = last[party] ? decodeSession(last[party]!) : null;
        if (!prev?.sending) return t.fail(`step ${n}: no earlier state with a sending chain`);
        t.bytes(o.hex('messageKey'), messageKeyOf(prev.sending.chainKey), `step ${n} messageKey from the previous state`);
      }
      if (o.has('error') && last[party]) t.bytes(state ?? new Uint8Array(0), last[party]!, `step ${n} refused: state unchanged`);
      last[party] = state;
    });
    if (c.name === 'refused message with a new ratchet key') {
      // alice's draws: device (32, 32), session setup (ek 32, X-Wing 64, ratchet 32), the refused
      // step's DH step (32), the accepted one's (32). Her state after step 4 holds the last of them.
      const secret = draws(In.of(c.input, 'input').hex('alice'), [32, 32, 32, 64, 32, 32, 32])[6]!;
      const after = out[4]?.has('state') ? decodeSession(out[4].hex('state')) : null;
      t.bytes(after?.ourRatchet.secret ?? new Uint8Array(0), secret, 'step 4 ratchet secret is alice\'s draw after the refused step\'s');
    }
  },
};

// sesame.json: per-device session management (PROTOCOL.md §8) in scripted scenarios between two or
// three devices: which session sends, when a received message makes a session active, the
// simultaneous-start tie-break, the bound on inactive sessions and which one is dropped, and
// refusals (which error, which RNG draws they still take, the record left unchanged).
// sesame-report.json: the same scripts with two more kinds of step, for rule 7 (a peer's report of
// the sessions it refused): a device forgetting a prekey secret (a signed prekey replaced), and a report.
import {
  decryptFromDevice,
  type DeviceKeyPair,
  dropRefused,
  type DeviceSessions,
  EMPTY_DEVICE_SESSIONS,
  encodeDeviceSessions,
  encodeSession,
  encryptForDevice,
  equalBytes,
  generateDevice,
  generatePrekey,
  MAX_INACTIVE_SESSIONS,
  MessageKind,
  type PrekeyBundle,
  PrekeyKind,
  type PrekeySecret,
  type PublicPrekey,
  publicPart,
  type Rng,
  type Session,
  seededRng,
  startSession,
} from '../../../crypto/index.ts';
import { applyEdit, attempt, type Computed, hex, In, type JsonObject, seedHex, setEdit, type Tally, type Topic, truncateEdit, utf8Hex, type VectorCase, VectorShapeError, xorEdit } from './core.ts';
import { blake2b512, x25519Public } from './independent.ts';
import { deviceJson, draws } from './parts.ts';

// --- running a scenario ---------------------------------------------------------------------

interface Device {
  readonly name: string;
  readonly keys: DeviceKeyPair;
  /** seededRng(seed), counting the bytes it hands out in `drawn`. */
  readonly rng: Rng;
  drawn: number;
  readonly secrets: Map<string, PrekeySecret>;
  readonly publics: Map<number, PublicPrekey>;
  readonly records: Map<string, DeviceSessions>;
}

function makeDevice(d: In): Device {
  const base = seededRng(d.hex('seed'));
  const dev = { drawn: 0 } as { drawn: number };
  const rng: Rng = (n) => {
    dev.drawn += n;
    return base(n);
  };
  const keys = generateDevice(rng);
  const secrets = new Map<string, PrekeySecret>();
  const publics = new Map<number, PublicPrekey>();
  for (const p of d.objs('prekeys')) {
    const id = p.num('id');
    if (publics.has(id)) throw new VectorShapeError(`prekey id ${id} twice`);
    const made = generatePrekey(keys, p.num('kind') as PrekeyKind, id, rng);
    secrets.set(`${made.secret.kind}/${id}`, made.secret);
    publics.set(id, made.public);
  }
  return Object.assign(dev, { name: d.str('name'), keys, rng, secrets, publics, records: new Map<string, DeviceSessions>() });
}

function bundleOf(peer: Device, b: In): PrekeyBundle {
  const pick = (id: number, kinds: readonly PrekeyKind[]): PublicPrekey => {
    const k = peer.publics.get(id);
    if (!k || !kinds.includes(k.kind)) throw new VectorShapeError(`${peer.name} has no prekey ${id} of kind ${kinds.join(' or ')}`);
    return k;
  };
  const oneTime = b.optNum('oneTime');
  return {
    deviceId: peer.keys.deviceId,
    signedPrekey: pick(b.num('signed'), [PrekeyKind.signed]),
    pqPrekey: pick(b.num('pq'), [PrekeyKind.pqOneTime, PrekeyKind.pqLastResort]),
    oneTimePrekey: oneTime === null ? null : pick(oneTime, [PrekeyKind.oneTime]),
  };
}

function held(r: DeviceSessions): Session[] {
  return [r.active, ...r.inactive].filter((s): s is Session => s !== null);
}

function sessionJson(s: Session): JsonObject {
  return { baseKey: hex(s.baseKey), initiatedByUs: s.initiatedByUs, confirmed: s.confirmed };
}

/** The observable record after a step: active, inactive in order, what the step dropped, and a digest of all of it. */
function recordJson(before: DeviceSessions, after: DeviceSessions): JsonObject {
  const kept = new Set(held(after).map((s) => hex(s.baseKey)));
  return {
    active: after.active ? sessionJson(after.active) : null,
    inactive: after.inactive.map((s) => hex(s.baseKey)),
    dropped: held(before)
      .map((s) => hex(s.baseKey))
      .filter((k) => !kept.has(k)),
    hash: hex(blake2b512(encodeDeviceSessions(after))),
  };
}

/** The one session a successful decrypt changed or created. */
function changedSession(before: DeviceSessions, after: DeviceSessions): { session: Session; created: boolean } {
  const changed = held(after).flatMap((s) => {
    const old = held(before).find((o) => equalBytes(o.baseKey, s.baseKey));
    if (!old) return [{ session: s, created: true }];
    return equalBytes(encodeSession(old), encodeSession(s)) ? [] : [{ session: s, created: false }];
  });
  if (changed.length !== 1) throw new VectorShapeError(`a decrypt changed ${changed.length} sessions`);
  return changed[0]!;
}

const KIND_NAME: Record<number, string> = { [MessageKind.ratchet]: 'ratchet', [MessageKind.prekey]: 'prekey' };

function runStep(devices: Map<string, Device>, s: In, sent: Uint8Array[], earlier: readonly { step: In; out: JsonObject }[]): JsonObject {
  const device = (key: string): Device => {
    const d = devices.get(s.str(key));
    if (!d) throw new VectorShapeError(`no device ${s.str(key)}`);
    return d;
  };
  const me = device('party');
  const peer = device('peer');
  if (me === peer) throw new VectorShapeError('party and peer are the same device');
  const before = me.records.get(peer.name) ?? EMPTY_DEVICE_SESSIONS;
  const drawnBefore = me.drawn;
  const commit = (after: DeviceSessions): JsonObject => {
    if (after !== before) me.records.set(peer.name, after);
    return recordJson(before, after);
  };

  if (s.has('forget')) {
    // The party no longer holds this prekey's secret (a signed prekey replaced, say).
    const f = s.obj('forget');
    if (!me.secrets.delete(`${f.num('kind')}/${f.num('id')}`)) throw new VectorShapeError(`${me.name} holds no prekey ${f.num('kind')}/${f.num('id')}`);
    return { record: commit(before) };
  }
  if (s.has('report')) {
    // §8 rule 7: `peer` reported the base keys of `refused` (messages sent in this case, prekey
    // messages from the party), in a message the party decrypted at step `carrier`.
    const r = s.obj('report');
    const refused = r.nums('refused').map((n) => {
      const m = sent[n];
      if (!m || m[1] !== MessageKind.prekey) throw new VectorShapeError(`report names message ${n}, not a prekey message sent yet`);
      return m.slice(BASE_KEY_AT, BASE_KEY_AT + 32);
    });
    const at = earlier[r.num('carrier')];
    if (!at || !at.step.has('receive') || at.step.str('party') !== me.name || at.step.str('peer') !== peer.name || typeof at.out.session !== 'string') {
      throw new VectorShapeError('carrier names no earlier successful receive by the party from the peer');
    }
    const carrier = In.of(at.out, 'carrier step').hex('session');
    const after = dropRefused(before, refused, carrier);
    return { refused: refused.map(hex), carrier: hex(carrier), rngBytes: me.drawn - drawnBefore, record: commit(after) };
  }
  if (s.has('start')) {
    const after = startSession(before, me.keys, publicPart(peer.keys), bundleOf(peer, s.obj('start')), me.rng);
    return { baseKey: hex(after.active!.baseKey), rngBytes: me.drawn - drawnBefore, record: commit(after) };
  }
  if (s.has('send')) {
    const r = attempt(() => encryptForDevice(before, s.hex('send')));
    if (!r.ok) return { error: r.error, record: commit(before) };
    sent.push(r.value.message);
    return { message: hex(r.value.message), kind: KIND_NAME[r.value.message[1]!]!, record: commit(r.value.record) };
  }
  const original = sent[s.num('receive')];
  if (!original) throw new VectorShapeError('receive names a message not sent yet');
  const bytes = s.has('edit') ? applyEdit(original, s.obj('edit')) : original;
  const lookup = (kind: PrekeyKind, id: number) => me.secrets.get(`${kind}/${id}`);
  const r = attempt(() => decryptFromDevice(before, bytes, me.keys, publicPart(peer.keys), lookup, me.rng));
  const edited: JsonObject = s.has('edit') ? { message: hex(bytes) } : {};
  if (!r.ok) return { ...edited, error: r.error, rngBytes: me.drawn - drawnBefore, record: commit(before) };
  // The caller commits the record and deletes the one-time prekeys the message used, together (§6 step 5).
  const used = r.value.used;
  if (used?.oneTimePrekeyId != null) me.secrets.delete(`${PrekeyKind.oneTime}/${used.oneTimePrekeyId}`);
  if (used?.pqOneTimePrekeyId != null) me.secrets.delete(`${PrekeyKind.pqOneTime}/${used.pqOneTimePrekeyId}`);
  const on = changedSession(before, r.value.record);
  return {
    ...edited,
    plaintext: hex(r.value.plaintext),
    session: hex(on.session.baseKey),
    created: on.created,
    used: used ? { oneTime: used.oneTimePrekeyId, pqOneTime: used.pqOneTimePrekeyId } : null,
    rngBytes: me.drawn - drawnBefore,
    record: commit(r.value.record),
  };
}

function computeScenario(i: In): Computed {
  const devices = new Map<string, Device>();
  for (const d of i.objs('devices')) {
    const dev = makeDevice(d);
    if (devices.has(dev.name)) throw new VectorShapeError(`device ${dev.name} twice`);
    devices.set(dev.name, dev);
  }
  const setup = [...devices.values()].map((d) => ({
    name: d.name,
    ...deviceJson(d.keys),
    prekeys: [...d.secrets.values()].map((p) => ({ kind: p.kind, id: p.id, secret: hex(p.secretKey) })),
  }));
  const sent: Uint8Array[] = [];
  const earlier: { step: In; out: JsonObject }[] = [];
  for (const s of i.objs('steps')) earlier.push({ step: s, out: runStep(devices, s, sent, earlier) });
  const steps = earlier.map((e) => e.out);
  return { output: { setup, steps }, keep: devices };
}

// --- the scenarios --------------------------------------------------------------------------

type StepInput = JsonObject;
type Bundle = { signed: number; pq: number; oneTime: number | null };

/** Signed id 1, pq last resort id 1000, then `n` pairs: one-time 100 + k, pq one-time 200 + k. */
function prekeyList(n: number): JsonObject[] {
  const out: JsonObject[] = [
    { kind: PrekeyKind.signed, id: 1 },
    { kind: PrekeyKind.pqLastResort, id: 1000 },
  ];
  for (let k = 0; k < n; k++) out.push({ kind: PrekeyKind.oneTime, id: 100 + k }, { kind: PrekeyKind.pqOneTime, id: 200 + k });
  return out;
}

/** The k-th bundle a relay serves: one-time keys while there are any, then the last-resort pq key alone. */
function bundle(k: number | 'last resort'): Bundle {
  return k === 'last resort' ? { signed: 1, pq: 1000, oneTime: null } : { signed: 1, pq: 200 + k, oneTime: 100 + k };
}

function device(name: string, scenario: string, oneTimePairs: number): JsonObject {
  return { name, seed: seedHex(`Petrel test vectors: sesame ${scenario} ${name}`), prekeys: prekeyList(oneTimePairs) };
}

/** Step builders. `receive` names a message by its position among the messages sent so far (0-based). */
const start = (party: string, peer: string, b: Bundle): StepInput => ({ party, peer, start: b });
const send = (party: string, peer: string, text: string): StepInput => ({ party, peer, send: utf8Hex(text) });
const recv = (party: string, peer: string, receive: number, edit?: JsonObject): StepInput => ({ party, peer, receive, ...(edit ? { edit } : {}) });
/** `party` no longer holds its prekey (kind, id): a signed prekey replaced, say. */
const forget = (party: string, peer: string, kind: PrekeyKind, id: number): StepInput => ({ party, peer, forget: { kind, id } });
/** Rule 7: `peer` reports the base keys of the prekey messages `refused` (by number), in the message `party` received at step `carrier`. */
const report = (party: string, peer: string, refused: number[], carrier: number): StepInput => ({ party, peer, report: { refused, carrier } });

// Offsets in a DeviceMessage (PROTOCOL.md §10.1): 2 envelope bytes, then the body.
const PREKEY_SENDER_AT = 2 + 1; // a prekey message's sender deviceId
const BASE_KEY_AT = PREKEY_SENDER_AT + 16 + 32 + 32; // its base key
const RATCHET_KEY_AT = 2 + 1; // a ratchet message's ratchet key
const INDEX_AT = RATCHET_KEY_AT + 32 + 4; // its N
const CIPHERTEXT_AT = INDEX_AT + 4;

function firstContact(): StepInput[] {
  const [a, b, c] = ['alice', 'bob', 'carol'];
  return [
    send(b, a, 'bob: before any session'), // no_session
    start(a, b, bundle(0)),
    send(a, b, 'alice: #0'), // m0..m2: prekey messages, all on the same session
    send(a, b, 'alice: #1'),
    send(a, b, 'alice: #2'),
    recv(b, a, 1), // creates the session; one-time prekeys 100 and 200 used
    recv(b, a, 0), // same base key: decrypts on that session, nothing created, nothing used
    recv(b, a, 0), // replay: duplicate_message
    recv(b, a, 2, xorEdit(PREKEY_SENDER_AT, 0x01)), // held base key, other sender keys: identity_mismatch comes first
    recv(b, a, 2),
    send(b, a, 'bob: reply'), // m3: a ratchet message (bob responded)
    recv(a, b, 3), // alice's session is confirmed
    send(a, b, 'alice: #3'), // m4: a ratchet message now
    recv(b, c, 4), // bob has no session with carol: no_session
    recv(b, a, 4),
  ];
}

function simultaneous(): StepInput[] {
  const [a, b] = ['alice', 'bob'];
  return [
    start(a, b, bundle(0)),
    start(b, a, bundle(0)),
    send(a, b, 'alice: a0'), // m0, m1 on alice's session
    send(a, b, 'alice: a1'),
    send(b, a, 'bob: b0'), // m2, m3 on bob's session
    send(b, a, 'bob: b1'),
    recv(a, b, 2), // a new base key while alice's own session is pending: the tie-break
    recv(b, a, 0), // the same comparison on bob's side: both keep the same session
    recv(a, b, 3), // held base key: the same tie-break, the record's order unchanged
    recv(b, a, 1),
    send(a, b, 'alice: a2'), // m4
    recv(b, a, 4),
    send(b, a, 'bob: b2'), // m5
    recv(a, b, 5),
    send(a, b, 'alice: a3'), // m6: a ratchet message from here on, on either side
    recv(b, a, 6),
    send(b, a, 'bob: b3'), // m7
    recv(a, b, 7),
  ];
}

function lateAfterConfirmed(): StepInput[] {
  const [a, b] = ['alice', 'bob'];
  return [
    start(a, b, bundle(0)),
    start(b, a, bundle(0)),
    send(a, b, 'alice: a0'), // m0
    send(b, a, 'bob: b0'), // m1, delayed
    recv(b, a, 0), // bob moves to alice's session (its base key is the smaller)
    send(b, a, 'bob: b1 on alice\u2019s session'), // m2: a ratchet message
    recv(a, b, 2), // alice's session is confirmed
    recv(a, b, 1), // bob's late prekey message: no tie-break for a confirmed session, it becomes active
    send(a, b, 'alice: a1 on bob\u2019s session'), // m3
    recv(b, a, 3), // tried on bob's active session first (a DH step, drawn, refused), then his own: promoted
    send(b, a, 'bob: b2'), // m4
    recv(a, b, 4),
    send(a, b, 'alice: a2'), // m5
    recv(b, a, 5),
  ];
}

function restart(): StepInput[] {
  const [p, q] = ['p', 'q'];
  return [
    start(p, q, bundle(0)), // S1
    send(p, q, 'p: p0 on S1'), // m0
    recv(q, p, 0),
    send(q, p, 'q: reply on S1, never delivered'), // m1
    start(q, p, bundle(0)), // S2: q restarts (a repair, a re-fetched bundle)
    send(q, p, 'q: q0 on S2'), // m2
    recv(p, q, 2), // p still waits on S1: the tie-break decides
    send(p, q, 'p: p1'), // m3
    recv(q, p, 3),
    send(q, p, 'q: q1'), // m4
    recv(p, q, 4),
    send(p, q, 'p: p2'), // m5
    recv(q, p, 5),
    send(q, p, 'q: q2'), // m6
    recv(p, q, 6),
  ];
}

function promotion(): StepInput[] {
  const [a, b] = ['alice', 'bob'];
  return [
    start(a, b, bundle(0)), // S1
    send(a, b, 'alice: on S1'), // m0
    recv(b, a, 0),
    send(b, a, 'bob: on S1'), // m1
    recv(a, b, 1),
    start(a, b, bundle(1)), // S2: S1 becomes inactive
    send(a, b, 'alice: first on S2, delayed'), // m2
    send(b, a, 'bob: still on S1'), // m3: bob has not heard of S2
    recv(a, b, 3), // tried on S2 (a DH step: rng(32), then refused), then S1: promoted
    send(a, b, 'alice: back on S1'), // m4: a ratchet message on S1
    recv(b, a, 4),
    recv(b, a, 2), // the delayed prekey message: bob's active session is not his own pending one, so S2 becomes active
    send(b, a, 'bob: on S2'), // m5
    recv(a, b, 5), // tried on S1 (DH step drawn, refused), then S2 (DH step drawn): two draws, the second is S2's ratchet key
    send(a, b, 'alice: on S2, ratchet key from the second draw'), // m6
    recv(b, a, 6),
  ];
}

function bound(): StepInput[] {
  const [a, b] = ['alice', 'bob'];
  const n = MAX_INACTIVE_SESSIONS + 3; // sessions S0..S7: two more than a record holds
  const steps: StepInput[] = [];
  for (let k = 0; k < n; k++) {
    // S7 from the last-resort bundle (no one-time keys left). One message on each, m0..m7; a second on S3, m8.
    steps.push(start(a, b, bundle(k < n - 1 ? k : 'last resort')), send(a, b, `alice: S${k}`));
    if (k === 3) steps.push(send(a, b, 'alice: S3 again'));
  }
  const first = (k: number) => (k <= 3 ? k : k + 1); // the message number of S_k's first message
  for (let k = 0; k < n; k++) steps.push(recv(b, a, first(k))); // each a new session; from the seventh on, the last inactive is dropped
  steps.push(
    recv(b, a, 4), // S3's second message: a held, inactive session becomes active; nothing dropped
    recv(b, a, first(0)), // S0 was dropped and its one-time prekeys deleted: unknown_prekey
    recv(b, a, first(1)), // S1 too
    recv(b, a, first(2)), // S2 is still held: a replay, duplicate_message
    send(b, a, 'bob: on S3'), // m9: bob answers on his active S3
    recv(a, b, 9), // S3 is inactive at alice, fourth in line: tried after S7, S6, S5, S4 (each a refused DH step), promoted
    send(a, b, 'alice: on S3'), // m10: its ratchet key from the fifth draw of that receive
    recv(b, a, 10),
  );
  return steps;
}

function refusals(): StepInput[] {
  const [a, b] = ['alice', 'bob'];
  return [
    start(a, b, bundle(0)), // S1
    send(a, b, 'alice: on S1'), // m0
    recv(b, a, 0),
    send(b, a, 'bob: b0 on S1'), // m1
    recv(a, b, 1), // alice holds bob's chain on S1 at index 1
    start(a, b, bundle(1)), // S2 active, S1 inactive
    send(b, a, 'bob: b1 on S1'), // m2: same chain, index 1
    recv(a, b, 2, setEdit(INDEX_AT, '000007d1')), // N = 2001: S2 (new key) too_many_skipped; S1 (2000 keys) decrypt_failed; the first error is reported
    recv(a, b, 2, setEdit(RATCHET_KEY_AT, '00'.repeat(32))), // a low-order ratchet key: invalid_public_key on every session, nothing drawn
    recv(a, b, 2, xorEdit(CIPHERTEXT_AT, 0x01)), // tampered: a DH step on S2 draws, then both refuse: decrypt_failed, 32 bytes drawn
    recv(a, b, 2, truncateEdit(CIPHERTEXT_AT + 15)), // too short to decode: truncated, nothing tried
    recv(a, b, 2), // intact: S2 draws and refuses, S1 decrypts and becomes active
    recv(a, b, 1), // a replay on S1 (active): duplicate_message
    send(a, b, 'alice: on S2'), // m3: S1 is active again, a ratchet message on S1
    recv(b, a, 3),
    start(a, b, bundle(2)), // S3 active; S1 inactive again
    recv(a, b, 2), // replay of a message on inactive S1: S3 draws and refuses, S1 says duplicate_message, which is final
  ];
}

/**
 * Rule 7's situation: alice's session S_A is refused by bob (he replaced the signed prekey it names),
 * he repairs with S_B, and reports S_A in his second message on it. Before the report, with S_A the
 * smaller, the tie-break keeps alice on S_A, where bob refuses everything.
 */
function refusedStart(): StepInput[] {
  const [a, b] = ['alice', 'bob'];
  return [
    start(a, b, bundle(0)), // S_A
    send(a, b, 'alice: a0 on S_A'), // m0
    forget(b, a, PrekeyKind.signed, 1), // bob replaces his signed prekey
    recv(b, a, 0), // unknown_prekey
    start(b, a, bundle(0)), // S_B: bob's repair
    send(b, a, 'bob: b0 on S_B'), // m1
    recv(a, b, 1), // alice still waits on S_A: the tie-break decides
    send(a, b, 'alice: a1'), // m2: a prekey message on S_A if the tie-break kept it, else a ratchet message on S_B
    recv(b, a, 2), // unknown_prekey again on S_A; decrypts on S_B otherwise
    send(b, a, 'bob: b1, reporting S_A'), // m3
    recv(a, b, 3), // step 10: on S_B (held; inactive while the tie-break holds)
    report(a, b, [0], 10), // S_A dropped; S_B active
    send(a, b, 'alice: a2 on S_B'), // m4: a ratchet message
    recv(b, a, 4),
    send(b, a, 'bob: b2'), // m5
    recv(a, b, 5),
    recv(b, a, 0), // S_A is forgotten on both sides: its first message is still refused
  ];
}

/** Which sessions a report drops and which it leaves: confirmed ones, the peer's, inactive ones, the active one. */
function reports(): StepInput[] {
  const [a, b] = ['alice', 'bob'];
  return [
    start(a, b, bundle(0)), // S1
    send(a, b, 'alice: on S1'), // m0
    recv(b, a, 0),
    send(b, a, 'bob: on S1'), // m1
    recv(a, b, 1), // step 4: S1 confirmed
    start(b, a, bundle(0)), // S2, bob's
    send(b, a, 'bob: on S2'), // m2
    recv(a, b, 2), // step 7: alice's active S1 is confirmed, so S2 becomes active
    start(a, b, bundle(1)), // S3
    send(a, b, 'alice: on S3'), // m3
    start(a, b, bundle(2)), // S4: alice holds S4, S3, S2, S1
    send(a, b, 'alice: on S4'), // m4
    report(a, b, [0, 2], 7), // S1 is confirmed, S2 is bob's: nothing dropped, the record unchanged
    report(a, b, [3], 7), // S3: an inactive session, dropped; S4 stays active
    report(a, b, [4], 4), // S4, the active one: dropped, and S1 (the carrier) made active
    send(a, b, 'alice: on S1 again'), // m5: a ratchet message
    recv(b, a, 5), // S1 is inactive at bob (he started S2): promoted
  ];
}

// --- cross-checks ---------------------------------------------------------------------------

interface Record8 {
  readonly active: { readonly baseKey: string; readonly initiatedByUs: boolean; readonly confirmed: boolean } | null;
  readonly inactive: readonly string[];
  readonly hash: string;
}

const EMPTY_HASH = hex(blake2b512(encodeDeviceSessions(EMPTY_DEVICE_SESSIONS)));
const EMPTY: Record8 = { active: null, inactive: [], hash: EMPTY_HASH };

function readRecord(o: In): Record8 {
  const r = o.obj('record');
  const a = r.has('active') ? r.obj('active') : null;
  const flag = (x: In, k: string): boolean => {
    if (typeof x.raw[k] !== 'boolean') throw new VectorShapeError(`${k} must be true or false`);
    return x.raw[k] as boolean;
  };
  return {
    active: a ? { baseKey: hex(a.hex('baseKey')), initiatedByUs: flag(a, 'initiatedByUs'), confirmed: flag(a, 'confirmed') } : null,
    inactive: r.hexes('inactive').map(hex),
    hash: hex(r.hex('hash')),
  };
}

/** A prekey DeviceMessage's base key, read at its offset (§10.1): after 2 envelope bytes, the version and the sender's id and keys. */
function baseKeyOf(m: Uint8Array): Uint8Array {
  return m.subarray(BASE_KEY_AT, BASE_KEY_AT + 32);
}

const held8 = (r: Record8): string[] => (r.active ? [r.active.baseKey, ...r.inactive] : [...r.inactive]);

/** §8's tie-break: our active session is one we initiated, unconfirmed, and its base key is the smaller (bytewise). */
function keepsOurs8(r: Record8, incoming: string): boolean {
  return r.active !== null && r.active.initiatedByUs && !r.active.confirmed && r.active.baseKey < incoming;
}

/** §8's "make active": the old active first among the inactive, the one made active taken out, cut at the bound. */
function makeActive8(r: Record8, key: string): string[] {
  return [key, ...held8(r).filter((k) => k !== key)].slice(0, 1 + MAX_INACTIVE_SESSIONS);
}

/**
 * §8's rules, written from the spec text (not from crypto/device-sessions.ts), applied to the recorded
 * record before each step and the recorded outcome, must give the recorded record after it.
 */
function crossCheckRules(c: VectorCase, t: Tally): void {
  const steps = In.of(c.input, 'input').objs('steps');
  const out = In.of(c.output, 'output').objs('steps');
  const records = new Map<string, Record8>();
  const sent: Uint8Array[] = [];
  // Per party and peer, what §7.2 says of each session: started by the party, confirmed (needed by rule 7).
  const flags = new Map<string, Map<string, { ours: boolean; confirmed: boolean }>>();
  steps.forEach((s, n) => {
    const r = out[n];
    if (!r) return t.fail(`no output for step ${n}`);
    const pair = `${s.str('party')}/${s.str('peer')}`;
    const f = flags.get(pair) ?? new Map<string, { ours: boolean; confirmed: boolean }>();
    flags.set(pair, f);
    const before = records.get(pair) ?? EMPTY;
    const after = readRecord(r);
    records.set(pair, after);
    const got = held8(after);
    const dropped = r.obj('record').hexes('dropped').map(hex);
    t.expect(JSON.stringify(dropped) === JSON.stringify(held8(before).filter((k) => !got.includes(k))), `step ${n}: dropped = held before and not after, in order`);
    t.expect(after.inactive.length <= MAX_INACTIVE_SESSIONS && new Set(got).size === got.length, `step ${n}: at most MAX_INACTIVE_SESSIONS inactive, no base key twice`);
    const refused = r.has('error');
    const unchanged = refused || s.has('forget') || (s.has('report') && dropped.length === 0);
    t.expect(unchanged === (after.hash === before.hash), `step ${n}: the record changes exactly when the step is not refused (nor a report that drops nothing)`);
    let expected = held8(before);
    if (s.has('forget')) {
      t.expect(!refused, `step ${n}: forgetting a prekey changes no record`);
    } else if (s.has('report')) {
      const rep = s.obj('report');
      const keys = r.hexes('refused').map(hex);
      const named = rep.nums('refused').map((k) => sent[k]);
      t.expect(named.length === keys.length && named.every((m, k) => m !== undefined && m[1] === MessageKind.prekey && hex(baseKeyOf(m)) === keys[k]), `step ${n}: the reported base keys are those of the prekey messages named`);
      const carrier = hex(r.hex('carrier'));
      const at = out[rep.num('carrier')];
      t.expect(rep.num('carrier') < n && at?.has('session') === true && hex(at.hex('session')) === carrier, `step ${n}: the carrier is the session the named receive decrypted on`);
      t.expect(r.num('rngBytes') === 0, `step ${n}: a report draws nothing`);
      // Rule 7, from the text: drop the named sessions we started and that are not confirmed; if the
      // active one went, the carrier (if held) becomes active, the rest keep their order.
      const drops = held8(before).filter((k) => keys.includes(k) && f.get(k)?.ours === true && f.get(k)?.confirmed === false);
      const rest = before.inactive.filter((k) => !drops.includes(k));
      if (before.active && drops.includes(before.active.baseKey)) {
        expected = rest.includes(carrier) ? [carrier, ...rest.filter((k) => k !== carrier)] : rest;
        t.expect((after.active?.baseKey ?? null) === (rest.includes(carrier) ? carrier : null), `step ${n}: the carrier is active, or nothing is`);
      } else {
        expected = before.active ? [before.active.baseKey, ...rest] : rest;
      }
      if (after.active) {
        const g = f.get(after.active.baseKey);
        t.expect(g !== undefined && g.ours === after.active.initiatedByUs && g.confirmed === after.active.confirmed, `step ${n}: the active session's flags as its history says`);
      }
    } else if (s.has('start')) {
      f.set(hex(r.hex('baseKey')), { ours: true, confirmed: false });
      expected = makeActive8(before, hex(r.hex('baseKey')));
      t.expect(after.active?.initiatedByUs === true && after.active.confirmed === false, `step ${n}: a started session is ours and unconfirmed`);
    } else if (s.has('send')) {
      if (refused) {
        t.expect(before.active === null && r.str('error') === 'no_session', `step ${n}: no_session exactly without an active session`);
      } else {
        const m = r.hex('message');
        sent.push(m);
        const pending = before.active !== null && before.active.initiatedByUs && !before.active.confirmed;
        t.expect(m[1] === (pending ? MessageKind.prekey : MessageKind.ratchet) && r.str('kind') === KIND_NAME[m[1]!], `step ${n}: a prekey message exactly while the active session is ours and unconfirmed`);
        if (m[1] === MessageKind.prekey) t.expect(hex(baseKeyOf(m)) === before.active?.baseKey, `step ${n}: sent on the active session`);
      }
    } else if (refused) {
      if (r.str('error') === 'no_session') t.expect(got.length === 0, `step ${n}: no_session exactly when no session is held`);
    } else {
      const original = sent[s.num('receive')];
      if (!original) return t.fail(`step ${n}: no such message`);
      const m = s.has('edit') ? applyEdit(original, s.obj('edit')) : original;
      const on = hex(r.hex('session'));
      const wasHeld = held8(before).includes(on);
      f.set(on, { ours: wasHeld ? (f.get(on)?.ours ?? false) : false, confirmed: true });
      t.expect(r.raw.created === !wasHeld, `step ${n}: created exactly when no held session has that base key`);
      if (m[1] === MessageKind.prekey) {
        t.expect(hex(baseKeyOf(m)) === on, `step ${n}: a prekey message decrypts on the session of its base key`);
        t.expect((r.raw.used === null) === wasHeld, `step ${n}: one-time prekeys are used by a new session only`);
        if (!wasHeld) expected = keepsOurs8(before, on) ? [before.active!.baseKey, on, ...before.inactive].slice(0, 1 + MAX_INACTIVE_SESSIONS) : makeActive8(before, on);
        else if (on !== before.active?.baseKey && !keepsOurs8(before, on)) expected = makeActive8(before, on);
      } else {
        t.expect(wasHeld, `step ${n}: a ratchet message decrypts on a held session`);
        if (on !== before.active?.baseKey) expected = makeActive8(before, on);
      }
      if (after.active?.baseKey === on) t.expect(after.active.confirmed, `step ${n}: the session that decrypted is confirmed`);
    }
    t.expect(JSON.stringify(got) === JSON.stringify(expected), `step ${n}: active and inactive sessions as §8 says`);
  });
}

/**
 * Receives whose last draw becomes the ratchet key of the next message sent on the session they
 * decrypted on: a ratchet message tried first on sessions that took a DH step and refused it (each
 * drew 32 bytes, not given back), then accepted with a DH step of its own, which takes the last 32.
 * Entries: case, the receive step, the send step after it.
 */
const DRAW_CHECKS: readonly [string, number, number][] = [
  ['late prekey message on the losing session', 9, 10],
  ['promotion of an inactive session', 13, 14],
  ['bound on inactive sessions', 30, 31],
];

/** X25519(secret, 9) by OpenSSL, remembered: the tests verify this file hundreds of times over. */
const publicOf = new Map<string, Uint8Array>();
function x25519PublicOf(secret: Uint8Array): Uint8Array {
  const key = hex(secret);
  let p = publicOf.get(key);
  if (!p) publicOf.set(key, (p = x25519Public(secret)));
  return p;
}

/** Draws against the seeded stream (§2.3), redone with OpenSSL's X25519. */
function crossCheckDraws(c: VectorCase, t: Tally): void {
  const i = In.of(c.input, 'input');
  const steps = i.objs('steps');
  const out = In.of(c.output, 'output').objs('steps');
  const devices = new Map(i.objs('devices').map((d) => [d.str('name'), { seed: d.hex('seed'), at: 64 + 32 * d.objs('prekeys').length }]));
  const drawnIn = steps.map((s, n) => {
    const d = devices.get(s.str('party'));
    if (!d) throw new VectorShapeError(`no device ${s.str('party')}`);
    const from = d.at;
    d.at += out[n]?.has('rngBytes') ? out[n]!.num('rngBytes') : 0;
    return { d, from, to: d.at };
  });
  const streams = new Map([...devices.values()].map((d) => [d, draws(d.seed, [d.at])[0]!]));
  const drawn = (n: number): Uint8Array => streams.get(drawnIn[n]!.d)!.subarray(drawnIn[n]!.from, drawnIn[n]!.to);
  // Each device's last start: its base key is X25519 of the first draw of that step, so the rng bytes
  // recorded for every earlier step of that device add up.
  const lastStart = new Map<string, number>();
  steps.forEach((s, n) => {
    if (s.has('start')) lastStart.set(s.str('party'), n);
  });
  for (const n of lastStart.values()) t.bytes(out[n]!.hex('baseKey'), x25519PublicOf(drawn(n).subarray(0, 32)), `step ${n}: base key = X25519(ek), ek the start's first draw`);
  for (const [name, recvAt, sendAt] of DRAW_CHECKS) {
    if (name !== c.name) continue;
    const d = drawn(recvAt);
    const message = out[sendAt]?.has('message') ? out[sendAt]!.hex('message') : new Uint8Array(0);
    t.expect(d.length >= 64 && message[1] === MessageKind.ratchet, `step ${recvAt} drew for refused tries and step ${sendAt} sent a ratchet message`);
    t.bytes(message.subarray(RATCHET_KEY_AT, RATCHET_KEY_AT + 32), x25519PublicOf(d.subarray(d.length - 32)), `step ${sendAt}: ratchet key from the last draw of step ${recvAt}`);
  }
}

/** The cases are the situations their names say: which of two started sessions has the smaller base key. */
const ORDER_CHECKS: readonly [string, number, number][] = [
  // case, the step that started the session with the smaller base key, the other start
  ['simultaneous start, alice\u2019s base key smaller', 0, 1],
  ['simultaneous start, bob\u2019s base key smaller', 1, 0],
  ['late prekey message on the losing session', 0, 1],
  ['restart, the waiting session smaller', 0, 4],
  ['restart, the new session smaller', 4, 0],
  ['a refused start reported, the refused session smaller', 0, 4],
  ['a refused start reported, the repair session smaller', 4, 0],
];

function crossCheckOrder(c: VectorCase, t: Tally): void {
  const out = In.of(c.output, 'output').objs('steps');
  for (const [name, small, large] of ORDER_CHECKS) {
    if (name === c.name) t.expect(hex(out[small]!.hex('baseKey')) < hex(out[large]!.hex('baseKey')), `step ${small} started the session with the smaller base key`);
  }
}

/** Recently computed cases by their input's JSON (least recently used first). */
const computed = new Map<string, Computed>();

export const sesameTopic: Topic = {
  file: 'sesame.json',
  description:
    'Per-device session management (Sesame). Each case is a script between devices; each device = generateDevice(rng_d = seededRng(seed)), ' +
    'then its prekeys from rng_d in the listed order (kind 1 signed, 2 one-time, 3 pq one-time, 4 pq last resort; output.setup has the ' +
    'keys and prekey secrets); every later draw of that device (session starts, DH ratchet steps) comes from the same rng_d, whatever the ' +
    'peer, so its steps\' rngBytes add up to its position in that stream. A device keeps one DeviceSessions record per ' +
    'peer, empty at first. Each step is by `party`, on its record for `peer` (a message it receives is from `peer`\'s listed keys): ' +
    '`start` starts a session from the bundle of `peer`\'s prekeys with those ids (output: the new session\'s base key, rng bytes drawn); ' +
    '`send` encrypts on the record, i.e. on its active session (output: the DeviceMessage and its kind, or error no_session); ' +
    '`receive` decrypts the receive-th message sent in the case (0-based, counting messages only), edited if `edit` is given ' +
    '(output: plaintext, the base key of the session it decrypted on, whether that session was created, the one-time prekeys it used, ' +
    'which the party deletes at once, and rng bytes drawn; or error, with the rng bytes drawn all the same: draws are not undone). ' +
    'After every step `record` is the party\'s record for the peer: the active session (base key, initiatedByUs, confirmed), the base keys ' +
    'of the inactive ones in order, the base keys this step dropped, and hash = BLAKE2b-512 of the record\'s DeviceSessions encoding ' +
    '(§10.2), which changes whenever any state in it does and never on a refusal. ' +
    'Cases: a first contact with retransmitted, replayed and refused prekey messages; simultaneous starts with either base key the ' +
    'smaller (the tie-break); a late prekey message on the losing session after the winner is confirmed; a restart while the peer waits on ' +
    'its own session, either base key the smaller; an inactive session promoted by a ratchet message (tries on other sessions draw); ' +
    'MAX_INACTIVE_SESSIONS and which session is dropped; refusals on a record of several sessions (which error is reported, what is drawn).',
  spec: 'crypto/PROTOCOL.md §8 (with §6, §7.4, §10.2)',
  cases() {
    const two = (scenario: string, a: string, b: string, pairs = 1) => [device(a, scenario, pairs), device(b, scenario, pairs)];
    return [
      {
        name: 'first contact, retransmission and refusals',
        input: { devices: [...two('first contact', 'alice', 'bob'), { ...device('carol', 'first contact', 0), prekeys: [] }], steps: firstContact() },
      },
      { name: 'simultaneous start, alice\u2019s base key smaller', input: { devices: two('simultaneous 1', 'alice', 'bob'), steps: simultaneous() } },
      { name: 'simultaneous start, bob\u2019s base key smaller', input: { devices: two('simultaneous 3', 'alice', 'bob'), steps: simultaneous() } },
      { name: 'late prekey message on the losing session', input: { devices: two('late', 'alice', 'bob'), steps: lateAfterConfirmed() } },
      { name: 'restart, the waiting session smaller', input: { devices: two('restart 3', 'p', 'q'), steps: restart() } },
      { name: 'restart, the new session smaller', input: { devices: two('restart 2', 'p', 'q'), steps: restart() } },
      { name: 'promotion of an inactive session', input: { devices: two('promotion', 'alice', 'bob', 2), steps: promotion() } },
      { name: 'bound on inactive sessions', input: { devices: two('bound', 'alice', 'bob', MAX_INACTIVE_SESSIONS + 2), steps: bound() } },
      { name: 'refusals on a record of several sessions', input: { devices: two('refusals', 'alice', 'bob', 3), steps: refusals() } },
    ];
  },
  compute(c) {
    // A case is a pure function of its input (no case builds on another), and recomputing one takes
    // tens of milliseconds of X-Wing and ratchet steps: the same input, byte for byte, gives the same
    // output object again. Only the tests that verify the file hundreds of times with one output
    // changed notice the difference (in time).
    const key = JSON.stringify(c.input);
    const hit = computed.get(key);
    if (hit) {
      computed.delete(key);
      computed.set(key, hit);
      return hit;
    }
    const r = computeScenario(In.of(c.input, 'input'));
    computed.set(key, r);
    if (computed.size > 32) computed.delete(computed.keys().next().value!);
    return r;
  },
  crossCheck(c: VectorCase, _kept, t: Tally) {
    crossCheckRules(c, t);
    crossCheckDraws(c, t);
    crossCheckOrder(c, t);
  },
};

export const sesameReportTopic: Topic = {
  file: 'sesame-report.json',
  description:
    'Per-device session management (Sesame), rule 7: a peer\'s report of the sessions it refused. The cases are scripts run exactly as ' +
    'in sesame.json (devices, seeds, prekeys, the steps start / send / receive and their outputs, and `record` after every step, are ' +
    'as that file\'s description says), with two more kinds of step. `forget` {kind, id}: the party deletes that prekey secret (a ' +
    'signed prekey replaced), so a prekey message naming it is refused with unknown_prekey; output: the record, unchanged. ' +
    '`report` {refused, carrier}: `peer` reported, in the message the party decrypted at step `carrier` (a successful receive by the ' +
    'party from the peer), the base keys of the prekey messages numbered `refused` (0-based among the messages sent in the case); ' +
    'the party applies dropRefused(record, those base keys, the base key of the session that receive decrypted on). Output: the ' +
    'base keys reported (`refused`), the carrier\'s base key, rngBytes (always 0) and the record after it, with the sessions it ' +
    'dropped. Cases: a session refused because its signed prekey was replaced, the refusing device\'s repair session and its report, ' +
    'with the refused session\'s base key the smaller (the tie-break keeps it active until the report) and the larger; reports that ' +
    'drop nothing (a confirmed session, one the peer started), an inactive session, and the active one (the carrier becomes active).',
  spec: 'crypto/PROTOCOL.md §8 rule 7 (with rules 1 to 6, §6, §7.4, §10.2)',
  cases() {
    const two = (scenario: string, pairs = 1) => [device('alice', scenario, pairs), device('bob', scenario, pairs)];
    return [
      { name: 'a refused start reported, the refused session smaller', input: { devices: two('report 1'), steps: refusedStart() } },
      { name: 'a refused start reported, the repair session smaller', input: { devices: two('report 3'), steps: refusedStart() } },
      { name: 'what a report drops and what it leaves', input: { devices: two('reports', 3), steps: reports() } },
    ];
  },
  compute: (c, earlier) => sesameTopic.compute(c, earlier),
  crossCheck: (c, kept, t) => sesameTopic.crossCheck!(c, kept, t),
};

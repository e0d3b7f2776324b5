// Randomised property test with an exact oracle. Unlike randomized.test.ts, the delay of a message is
// NOT bounded and devices now and then start a fresh session with a peer that already has one, so
// messages do fall behind the limits: a receiving chain older than MAX_RECEIVING_CHAINS epochs, a
// session pushed out past MAX_INACTIVE_SESSIONS, a one-time prekey already consumed. Before every
// delivery the oracle reads the receiver's record and the sender's history and says whether the
// message must decrypt, and if not, which documented limit it hit. Properties:
//   - a message the oracle calls decryptable decrypts, exactly once, to the plaintext sent;
//   - a message the oracle calls lost fails with the code that limit produces, and changes nothing;
//   - a second delivery never decrypts: duplicate_message while its chain is held, otherwise the
//     code of the limit that also stops a first delivery;
//   - after the network drains, ping-pong (plus the app's recovery: start a new session when a
//     message cannot be decrypted) leaves every pair on one active session.
import { beforeAll, expect, test } from 'vitest';
import {
  CryptoError,
  type CryptoErrorCode,
  decodeDeviceMessage,
  type DeviceSessions,
  EMPTY_DEVICE_SESSIONS,
  encodeDeviceSessions,
  fanoutDecrypt,
  fanoutEncrypt,
  fromUtf8,
  generateAccountKey,
  MAX_INACTIVE_SESSIONS,
  MAX_SKIPPED_KEYS,
  MessageKind,
  ready,
  type Rng,
  type Session,
  seededRng,
  startSession,
  toHex,
  utf8,
} from '../../crypto/index.ts';
import { makeParty, type Party, takeBundle } from '../support/parties.ts';

beforeAll(ready);

const USERS = 3;
const DEVICES_PER_USER = 2;
const STEPS = 2000;
/** One-time prekeys per device: more than the sessions a run starts, so every bundle has one (see below). */
const ONE_TIME = 60;
/** Chance that a send to a device starts a new session although one exists (a reset, a restore). */
const RESTART = 0.03;

class Dice {
  private readonly rng: Rng;
  constructor(seed: number) {
    this.rng = seededRng(new Uint8Array(32).fill(200 + seed));
  }
  int(n: number): number {
    const b = this.rng(4);
    return (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0) % n;
  }
  chance(p: number): boolean {
    return this.int(1_000_000) < p * 1_000_000;
  }
}

interface Packet {
  readonly id: number;
  readonly from: number;
  readonly to: number;
  readonly message: Uint8Array;
  readonly payload: Uint8Array;
  readonly text: string;
  /** What the sender's session looked like when it encrypted this message. */
  readonly baseKey: string;
  readonly ratchetKey: string;
  readonly index: number;
  readonly prekey: boolean;
}

/** Why the oracle expects a message to fail, or 'decrypts'. */
type Verdict = 'decrypts' | 'chain-dropped' | 'session-dropped' | 'prekey-consumed' | 'key-used';

/** The code each limit produces (PROTOCOL.md §7.4, §8, §6). */
const CODE_FOR: Record<Exclude<Verdict, 'decrypts'>, CryptoErrorCode> = {
  // The message's ratchet key is no longer a receiving chain: it takes the new-epoch path, whose
  // DH step with our current key derives a wrong key.
  'chain-dropped': 'decrypt_failed',
  // No session with that base key: every held session fails to authenticate it.
  'session-dropped': 'decrypt_failed',
  // A prekey message for a dropped session whose one-time prekey was deleted when it was first used.
  'prekey-consumed': 'unknown_prekey',
  // The chain is held but already past this index and there is no skipped key: a replay.
  'key-used': 'duplicate_message',
};

function world(seed: number) {
  const rng = seededRng(new Uint8Array(32).fill(100 + seed));
  const parties: Party[] = [];
  const userOf: number[] = [];
  for (let u = 0; u < USERS; u++) {
    const account = generateAccountKey(rng);
    for (let d = 0; d < DEVICES_PER_USER; d++) {
      parties.push(makeParty(`u${u}d${d}`, rng, ONE_TIME, account));
      userOf.push(u);
    }
  }
  return { rng, parties, userOf };
}

test.each([0, 1])('unbounded reordering, loss, duplication and session restarts, checked against an oracle (world %i)', (seed) => {
  const { rng, parties, userOf } = world(seed);
  const dice = new Dice(seed);
  const records = new Map<string, DeviceSessions>();
  const rec = (me: number, them: number) => records.get(`${me}>${them}`) ?? EMPTY_DEVICE_SESSIONS;
  /** Epoch number of every ratchet key a sender used, counted per (sender, session). */
  const epochOf = new Map<string, number>();
  const epochsIn = new Map<string, number>();
  const decrypted = new Set<string>();
  const inflight: Packet[] = [];
  const tally: Record<string, number> = {};
  const count = (k: string) => (tally[k] = (tally[k] ?? 0) + 1);
  let nextId = 0;

  const commitReceive = (to: number, from: number, r: { record: DeviceSessions; used: { oneTimePrekeyId: number | null; pqOneTimePrekeyId: number | null } | null }) => {
    expect(r.record.inactive.length).toBeLessThanOrEqual(MAX_INACTIVE_SESSIONS);
    records.set(`${to}>${from}`, r.record);
    if (r.used?.oneTimePrekeyId != null) parties[to]!.prekeys.delete(`2/${r.used.oneTimePrekeyId}`);
    if (r.used?.pqOneTimePrekeyId != null) parties[to]!.prekeys.delete(`3/${r.used.pqOneTimePrekeyId}`);
  };

  const start = (from: number, to: number, record: DeviceSessions): DeviceSessions => {
    const bundle = takeBundle(parties[to]!);
    // Exactly-once needs a one-time prekey: a replayed first message of a session that was since
    // dropped would otherwise open a new session again (the last-resort key is never deleted).
    expect(bundle.oneTimePrekey, 'ran out of one-time prekeys').not.toBeNull();
    count('starts');
    return startSession(record, parties[from]!.device, parties[to]!.pub, bundle, rng);
  };

  const send = (from: number) => {
    const toUser = (userOf[from]! + 1 + dice.int(USERS - 1)) % USERS;
    const targets = parties.map((_, i) => i).filter((i) => i !== from && (userOf[i] === toUser || userOf[i] === userOf[from]));
    const withRecords = targets.map((to) => {
      let record = rec(from, to);
      if (!record.active || dice.chance(RESTART)) record = start(from, to, record);
      return { address: to, record };
    });
    const id = nextId++;
    const text = `#${id} from ${from}`;
    const out = fanoutEncrypt(utf8(text), withRecords, rng);
    out.messages.forEach((m, i) => {
      const s = withRecords[i]!.record.active!;
      const baseKey = toHex(s.baseKey);
      const ratchetKey = toHex(s.ourRatchet.public);
      const lane = `${from}>${baseKey}`;
      if (!epochOf.has(ratchetKey)) {
        epochOf.set(ratchetKey, epochsIn.get(lane) ?? 0);
        epochsIn.set(lane, (epochsIn.get(lane) ?? 0) + 1);
      }
      records.set(`${from}>${m.address}`, m.record);
      const p: Packet = { id, from, to: m.address, message: m.message, payload: out.payload, text, baseKey, ratchetKey, index: s.sending!.index, prekey: m.message[1] === MessageKind.prekey };
      if (dice.chance(0.12)) return count('lost');
      inflight.push(p);
      if (dice.chance(0.1)) inflight.push(p);
    });
  };

  /** `replay`: this exact message already decrypted once at this device. */
  const verdict = (p: Packet, replay: boolean): Verdict => {
    const r = rec(p.to, p.from);
    const s = [r.active, ...r.inactive].find((x): x is Session => x !== null && toHex(x.baseKey) === p.baseKey);
    if (!s) {
      if (!p.prekey) return 'session-dropped';
      const m = decodeDeviceMessage(p.message);
      if (m.kind !== MessageKind.prekey) throw new Error('unreachable');
      return parties[p.to]!.lookup(2, m.prekey.oneTimePrekeyId!) ? 'decrypts' : 'prekey-consumed';
    }
    if (s.skipped.some((k) => toHex(k.ratchetKey) === p.ratchetKey && k.index === p.index)) return 'decrypts';
    const chain = s.receiving.find((c) => toHex(c.ratchetKey) === p.ratchetKey);
    if (chain) {
      if (p.index >= chain.index) return 'decrypts';
      // Below the chain's index with no skipped key: used (a replay), or evicted past MAX_SKIPPED_KEYS.
      if (!replay) expect(s.skipped.length, 'a skipped key vanished without eviction').toBe(MAX_SKIPPED_KEYS);
      return 'key-used';
    }
    const epoch = epochOf.get(p.ratchetKey)!;
    return s.receiving.some((c) => (epochOf.get(toHex(c.ratchetKey)) ?? -1) > epoch) ? 'chain-dropped' : 'decrypts';
  };

  const deliver = (p: Packet) => {
    const key = `${p.id}>${p.to}`;
    const v = verdict(p, decrypted.has(key));
    const record = rec(p.to, p.from);
    const before = toHex(encodeDeviceSessions(record));
    const me = parties[p.to]!;
    let code: CryptoErrorCode | 'ok';
    try {
      const r = fanoutDecrypt(record, p.message, p.payload, me.device, parties[p.from]!.pub, me.lookup, rng);
      expect(fromUtf8(r.plaintext, 'plaintext'), key).toBe(p.text);
      commitReceive(p.to, p.from, r);
      code = 'ok';
    } catch (e) {
      if (!(e instanceof CryptoError)) throw e;
      expect(toHex(encodeDeviceSessions(record)), `${key}: a refused message changed the record`).toBe(before);
      code = e.code;
    }
    if (decrypted.has(key)) {
      // A second delivery: refused as a replay while its chain is held, else by the limit it hit.
      expect(code, `${key} decrypted twice`).not.toBe('ok');
      expect(v, `${key} replayed`).not.toBe('decrypts');
      expect(code, `${key} replayed (${v})`).toBe(CODE_FOR[v as Exclude<Verdict, 'decrypts'>]);
      count(`replay refused: ${code}`);
      return;
    }
    if (v === 'decrypts') {
      expect(code, `${key}: the oracle says it decrypts`).toBe('ok');
      decrypted.add(key);
      count('decrypted');
    } else {
      expect(code, `${key}: lost to ${v}`).toBe(CODE_FOR[v]);
      count(`lost to ${v}`);
    }
  };

  for (let step = 0; step < STEPS; step++) {
    if (step < 30 || inflight.length === 0 || dice.chance(0.35)) send(dice.int(parties.length));
    // Mostly one of the newest packets, sometimes any: old ones linger for an unbounded time while
    // conversations move on many ratchet epochs.
    else {
      const newest = Math.min(inflight.length, 20);
      const at = dice.chance(0.9) ? inflight.length - 1 - dice.int(newest) : dice.int(inflight.length);
      deliver(inflight.splice(at, 1)[0]!);
    }
  }
  while (inflight.length) deliver(inflight.splice(dice.int(inflight.length), 1)[0]!);

  // Convergence. A ping the receiver cannot decrypt (its session was dropped) makes it start a new
  // session, as a client does; after that, every pair settles on one active session.
  for (let a = 0; a < parties.length; a++) {
    for (let b = a + 1; b < parties.length; b++) {
      for (let round = 0; round < 3; round++) {
        for (const [x, y] of [[a, b], [b, a]] as const) {
          let record = rec(x, y);
          if (!record.active) record = start(x, y, record);
          const out = fanoutEncrypt(utf8('ping'), [{ address: y, record }], rng);
          records.set(`${x}>${y}`, out.messages[0]!.record);
          const s = record.active!;
          const p: Packet = { id: nextId++, from: x, to: y, message: out.messages[0]!.message, payload: out.payload, text: 'ping', baseKey: toHex(s.baseKey), ratchetKey: toHex(s.ourRatchet.public), index: s.sending!.index, prekey: out.messages[0]!.message[1] === MessageKind.prekey };
          const v = verdict(p, false);
          deliver(p);
          if (v !== 'decrypts') records.set(`${y}>${x}`, start(y, x, rec(y, x)));
        }
      }
      expect(toHex(rec(a, b).active!.baseKey), `${a} <-> ${b}`).toBe(toHex(rec(b, a).active!.baseKey));
    }
  }

  console.log(`network oracle ${seed}:`, JSON.stringify(tally));
  // The run reached the regimes it is about.
  expect(tally.decrypted!).toBeGreaterThan(1500);
  expect(tally['lost to chain-dropped'] ?? 0).toBeGreaterThan(20);
  expect(tally['lost to session-dropped'] ?? 0).toBeGreaterThan(0);
  expect(tally['replay refused: duplicate_message'] ?? 0).toBeGreaterThan(100);
  expect(tally['lost to prekey-consumed'] ?? 0).toBeGreaterThan(0);
  expect(tally.lost!).toBeGreaterThan(200);
});

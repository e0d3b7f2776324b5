// Randomised property test: 3 users x 2 devices exchange fan-out messages (prekey messages first,
// ratchet messages later, simultaneous session starts included) through a simulated network with
// seeded loss, duplication and reordering. Every record is stored encoded and decoded again on each
// use, as a client stores it. Properties:
//   - every delivered message decrypts exactly once, to the plaintext that was sent;
//   - every second delivery of a message is duplicate_message and changes nothing;
//   - records stay within the Sesame bounds;
//   - after the network drains, one ping-pong per pair leaves both sides on the same active session.
// Delivery delay is bounded (MAX_DELAY steps), so no message can fall further behind than the
// MAX_RECEIVING_CHAINS epochs the ratchet keeps (that limit is tested on its own in ratchet.test.ts).
import { beforeAll, expect, test } from 'vitest';
import {
  activeDevices,
  CryptoError,
  decodeDeviceSessions,
  type DeviceSessions,
  EMPTY_DEVICE_SESSIONS,
  encodeDeviceSessions,
  equalBytes,
  fanoutDecrypt,
  fanoutEncrypt,
  generateAccountKey,
  hasSession,
  MAX_INACTIVE_SESSIONS,
  MessageKind,
  newDeviceList,
  ready,
  signDeviceList,
  startSession,
  utf8,
  verifyDeviceList,
  withDeviceAdded,
} from '../../crypto/index.ts';
import { makeParty, type Party, takeBundle } from '../support/parties.ts';
import { Dice, hexOf, rngFor, sodium, text } from './helpers.ts';

beforeAll(async () => {
  await ready();
  await sodium.ready;
});

const USERS = 3;
const DEVICES_PER_USER = 2;
const STEPS = 2500;
const WORLDS = 4;
/** The first steps only send, so that many devices start sessions with each other at once. */
const BURST = 40;
const MAX_DELAY = 15;

interface Device {
  readonly name: string;
  readonly user: string;
  readonly party: Party;
  /** Encoded DeviceSessions per peer device name: what a client keeps in storage. */
  readonly store: Map<string, Uint8Array>;
}

interface Packet {
  readonly id: number;
  readonly from: Device;
  readonly to: Device;
  readonly message: Uint8Array;
  readonly payload: Uint8Array;
  readonly text: string;
  readonly due: number;
  readonly copy: boolean;
}

function load(me: Device, peer: Device): DeviceSessions {
  const b = me.store.get(peer.name);
  return b ? decodeDeviceSessions(b) : EMPTY_DEVICE_SESSIONS;
}

function save(me: Device, peer: Device, r: DeviceSessions): void {
  expect(r.inactive.length).toBeLessThanOrEqual(MAX_INACTIVE_SESSIONS);
  me.store.set(peer.name, encodeDeviceSessions(r));
}

function world(label: string) {
  const rng = rngFor(label);
  const devices: Device[] = [];
  const lists = new Map<string, Uint8Array>();
  for (let u = 0; u < USERS; u++) {
    const user = `user${u}`;
    const account = generateAccountKey(rng);
    const mine: Device[] = [];
    for (let k = 0; k < DEVICES_PER_USER; k++) {
      const name = `${user}/d${k}`;
      mine.push({ name, user, party: makeParty(name, rng, 6, account), store: new Map() });
    }
    let list = newDeviceList(user, account.publicKey, mine[0]!.party.pub, 'd0', 1);
    for (const d of mine.slice(1)) list = withDeviceAdded(list, d.party.pub, d.name, 2);
    lists.set(user, signDeviceList(list, account).bytes);
    devices.push(...mine);
  }
  /** The active devices of `user`, from its verified, signed device list (§9). */
  const devicesOf = (user: string): Device[] =>
    activeDevices(verifyDeviceList(lists.get(user)!, { userId: user })).map((e) => devices.find((d) => equalBytes(d.party.device.deviceId, e.deviceId))!);
  return { rng, devices, devicesOf };
}

const simultaneousStarts: number[] = [];

test.each(Array.from({ length: WORLDS }, (_, i) => i))('3 users x 2 devices over a lossy, duplicating, reordering network (world %i)', (seed) => {
  const w = world(`randomized/network/${seed}`);
  const dice = new Dice(`randomized/network/${seed}`);
  const inflight: Packet[] = [];
  const delivered = new Set<string>();
  const stats = { sent: 0, messages: 0, delivered: 0, duplicates: 0, lost: 0, prekey: 0, reordered: 0, starts: 0 };
  const lastSeen = new Map<string, number>();
  let nextId = 0;

  const send = (step: number, from: Device, toUser: string, body: string) => {
    const targets = [...w.devicesOf(toUser), ...w.devicesOf(from.user).filter((d) => d !== from)];
    const withRecords = targets.map((t) => {
      let record = load(from, t);
      if (!hasSession(record)) {
        record = startSession(record, from.party.device, t.party.pub, takeBundle(t.party), w.rng);
        stats.starts++;
      }
      return { address: t, record };
    });
    const out = fanoutEncrypt(utf8(body), withRecords, w.rng);
    const id = nextId++;
    stats.sent++;
    for (const m of out.messages) {
      save(from, m.address, m.record);
      expect(m.message.length).toBeGreaterThan(0);
      inflight.push({ id, from, to: m.address, message: m.message, payload: out.payload, text: body, due: step + dice.int(MAX_DELAY + 1), copy: false });
      stats.messages++;
    }
  };

  const receive = (p: Packet) => {
    const key = `${p.id}>${p.to.name}`;
    const record = load(p.to, p.from);
    const before = p.to.store.get(p.from.name);
    let result;
    try {
      result = fanoutDecrypt(record, p.message, p.payload, p.to.party.device, p.from.party.pub, p.to.party.lookup, w.rng);
    } catch (e) {
      if (!(e instanceof CryptoError)) throw e;
      expect(delivered.has(key), `${key} (${p.copy ? 'copy' : 'original'}) failed with ${e.code}`).toBe(true);
      expect(e.code, key).toBe('duplicate_message');
      expect(p.to.store.get(p.from.name)).toBe(before);
      stats.duplicates++;
      return;
    }
    expect(delivered.has(key), `${key} decrypted twice`).toBe(false);
    expect(text(result.plaintext)).toBe(p.text);
    delivered.add(key);
    stats.delivered++;
    if (p.message[1] === MessageKind.prekey) stats.prekey++;
    const lane = `${p.from.name}>${p.to.name}`;
    if ((lastSeen.get(lane) ?? -1) > p.id) stats.reordered++;
    lastSeen.set(lane, Math.max(lastSeen.get(lane) ?? -1, p.id));
    save(p.to, p.from, result.record);
    if (result.used) {
      if (result.used.oneTimePrekeyId !== null) p.to.party.prekeys.delete(`2/${result.used.oneTimePrekeyId}`);
      if (result.used.pqOneTimePrekeyId !== null) p.to.party.prekeys.delete(`3/${result.used.pqOneTimePrekeyId}`);
    }
  };

  const deliver = (step: number, p: Packet, lossy: boolean) => {
    inflight.splice(inflight.indexOf(p), 1);
    if (lossy && dice.chance(0.1)) {
      stats.lost++;
      return;
    }
    if (lossy && dice.chance(0.1)) inflight.push({ ...p, due: step + 1 + dice.int(MAX_DELAY), copy: true });
    receive(p);
  };

  for (let step = 0; step < STEPS; step++) {
    for (const p of inflight.filter((x) => x.due <= step)) deliver(step, p, true);
    if (step < BURST || inflight.length === 0 || dice.chance(0.3)) {
      const from = dice.pick(w.devices);
      const others = [...new Set(w.devices.map((d) => d.user))].filter((u) => u !== from.user);
      send(step, from, dice.pick(others), `#${nextId} from ${from.name} at ${step}`);
    } else {
      deliver(step, dice.pick(inflight), true);
    }
  }
  // Drain: what is still in flight arrives (duplicates included), in random order.
  while (inflight.length) deliver(STEPS, dice.pick(inflight), false);

  // Convergence: one ping-pong per pair, delivered in order, leaves both on one active session.
  let step = STEPS + 1;
  for (const a of w.devices) {
    for (const b of w.devices) {
      if (a.user >= b.user) continue;
      for (const [x, y] of [[a, b], [b, a]] as const) {
        const record = load(x, y);
        const r = fanoutEncrypt(utf8(`ping ${x.name}`), [{ address: y, record: hasSession(record) ? record : startSession(record, x.party.device, y.party.pub, takeBundle(y.party), w.rng) }], w.rng);
        save(x, y, r.messages[0]!.record);
        receive({ id: nextId++, from: x, to: y, message: r.messages[0]!.message, payload: r.payload, text: `ping ${x.name}`, due: step++, copy: false });
      }
      expect(hexOf(load(a, b).active!.baseKey), `${a.name} <-> ${b.name}`).toBe(hexOf(load(b, a).active!.baseKey));
    }
  }

  // The run exercised what it claims to.
  expect(stats.sent).toBeGreaterThan(700);
  expect(stats.delivered).toBeGreaterThan(1500);
  expect(stats.duplicates).toBeGreaterThan(100);
  expect(stats.lost).toBeGreaterThan(100);
  expect(stats.reordered).toBeGreaterThan(30);
  expect(stats.prekey).toBeGreaterThan(15);
  // Each of the 15 device pairs started at least one session; more means both sides started at once.
  expect(stats.starts).toBeGreaterThanOrEqual(15);
  simultaneousStarts.push(stats.starts - 15);
});

test('the worlds above included simultaneous session starts (Sesame tie-breaks)', () => {
  expect(simultaneousStarts.length).toBe(WORLDS);
  expect(simultaneousStarts.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(8);
});

// Shared helpers for the negative and property tests in test/crypto/. Built on crypto/'s public
// API (plus libsodium itself where a test must forge something crypto/ refuses to make, such as a
// signed low-order prekey). Everything is seeded, so a failure reproduces exactly.
import sodium from 'libsodium-wrappers';
import { expect } from 'vitest';
import {
  CryptoError,
  type CryptoErrorCode,
  decodeDeviceMessage,
  type DeviceSessions,
  decryptFromDevice,
  EMPTY_DEVICE_SESSIONS,
  encodeDeviceSessions,
  encodeSession,
  encryptForDevice,
  fromUtf8,
  initiateSession,
  kdf,
  MessageKind,
  type PrekeyBundle,
  ratchetDecrypt,
  ratchetEncrypt,
  respondToPrekey,
  type Rng,
  type Session,
  seededRng,
  startSession,
  utf8,
} from '../../crypto/index.ts';
import { makeParty, type Party, takeBundle } from '../support/parties.ts';

export { sodium };

/** A reproducible RNG named by a readable label. */
export function rngFor(label: string): Rng {
  return seededRng(kdf('Petrel/test/seed', utf8(label), 32));
}

/** Seeded decisions for property tests (loss, ordering, ...), separate from the protocol's RNG. */
export class Dice {
  private readonly rng: Rng;
  constructor(label: string) {
    this.rng = rngFor(`dice/${label}`);
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    const b = this.rng(4);
    const v = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
    return v % n;
  }
  chance(p: number): boolean {
    return this.int(1_000_000) < p * 1_000_000;
  }
  bytes(n: number): Uint8Array {
    return this.rng(n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

/** Runs `fn`; returns the CryptoError code it threw, or 'ok'. Any other exception fails the test. */
export function outcome(fn: () => unknown): CryptoErrorCode | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (!(e instanceof CryptoError)) {
      expect.fail(`expected a CryptoError, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    }
    return e.code;
  }
}

/** Asserts that `fn` throws a CryptoError with exactly this code. */
export function expectCode(fn: () => unknown, code: CryptoErrorCode, what = ''): CryptoError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `${what} should throw ${code}`).toBeInstanceOf(CryptoError);
  expect((err as CryptoError).code, what).toBe(code);
  return err as CryptoError;
}

export function flipBit(b: Uint8Array, bit: number): Uint8Array {
  const out = b.slice();
  out[bit >> 3]! ^= 1 << (bit & 7);
  return out;
}

export function replaced(b: Uint8Array, offset: number, part: Uint8Array): Uint8Array {
  const out = b.slice();
  out.set(part, offset);
  return out;
}

export function text(b: Uint8Array): string {
  return fromUtf8(b, 'plaintext');
}

export function hexOf(b: Uint8Array): string {
  return sodium.to_hex(b);
}

/** The genuine small-order points of Curve25519 (and p-1, p, p+1); every one gives an all-zero X25519 result. */
export const LOW_ORDER_POINTS: readonly string[] = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];

// --- byte offsets inside a DeviceMessage (PROTOCOL.md §10.1) ------------------------------

/** Ratchet DeviceMessage: | ver | kind | RatchetMessage |. */
export const RM = { base: 2, version: 2, ratchetKey: 3, pn: 35, n: 39, ciphertext: 43 } as const;
/** Prekey DeviceMessage, offsets of its fields. `ct` and `ratchet` depend on the one-time flag. */
export const PK = {
  version: 2,
  senderId: 3,
  senderSigning: 19,
  senderDh: 51,
  baseKey: 83,
  spkId: 115,
  pqKind: 119,
  pqId: 120,
  hasOneTime: 124,
  oneTimeId: 125,
  ct(hasOneTime: boolean): number {
    return hasOneTime ? 129 : 125;
  },
  ratchet(hasOneTime: boolean): number {
    return (hasOneTime ? 129 : 125) + 1120;
  },
} as const;

/** The RatchetMessage inside a DeviceMessage of either kind. */
export function ratchetPart(deviceMessage: Uint8Array): Uint8Array {
  const m = decodeDeviceMessage(deviceMessage);
  return m.kind === MessageKind.ratchet ? m.message : m.prekey.message;
}

// --- two devices talking through the Sesame layer ---------------------------------------

export type Side = 'a' | 'b';

/**
 * Alice's and Bob's devices with their DeviceSessions records for each other. `send` encrypts and
 * commits the sender's record; `recv` decrypts and commits the receiver's, deleting the one-time
 * prekeys it used, as a client would in one transaction.
 */
export class Duo {
  readonly rng: Rng;
  readonly a: Party;
  readonly b: Party;
  rec: Record<Side, DeviceSessions> = { a: EMPTY_DEVICE_SESSIONS, b: EMPTY_DEVICE_SESSIONS };
  constructor(label: string, oneTime = 4) {
    this.rng = rngFor(label);
    this.a = makeParty(`${label}/alice`, this.rng, oneTime);
    this.b = makeParty(`${label}/bob`, this.rng, oneTime);
  }
  party(s: Side): Party {
    return s === 'a' ? this.a : this.b;
  }
  other(s: Side): Side {
    return s === 'a' ? 'b' : 'a';
  }
  /** `from` starts a (new) session with the other side from its next bundle. */
  start(from: Side, bundle?: PrekeyBundle): void {
    const peer = this.party(this.other(from));
    this.rec[from] = startSession(this.rec[from], this.party(from).device, peer.pub, bundle ?? takeBundle(peer), this.rng);
  }
  send(from: Side, msg: string): Uint8Array {
    const r = encryptForDevice(this.rec[from], utf8(msg));
    this.rec[from] = r.record;
    return r.message;
  }
  /** Decrypts without committing. */
  tryRecv(to: Side, message: Uint8Array) {
    const me = this.party(to);
    return decryptFromDevice(this.rec[to], message, me.device, this.party(this.other(to)).pub, me.lookup, this.rng);
  }
  recv(to: Side, message: Uint8Array): string {
    const r = this.tryRecv(to, message);
    this.rec[to] = r.record;
    if (r.used) {
      const me = this.party(to);
      if (r.used.oneTimePrekeyId !== null) me.prekeys.delete(`2/${r.used.oneTimePrekeyId}`);
      if (r.used.pqOneTimePrekeyId !== null) me.prekeys.delete(`3/${r.used.pqOneTimePrekeyId}`);
    }
    return text(r.plaintext);
  }
  /** A session in both directions: a prekey message from Alice, a reply from Bob. */
  establish(): this {
    this.start('a');
    expect(this.recv('b', this.send('a', 'hello bob'))).toBe('hello bob');
    expect(this.recv('a', this.send('b', 'hello alice'))).toBe('hello alice');
    return this;
  }
  snapshot(s: Side): Uint8Array {
    return encodeDeviceSessions(this.rec[s]);
  }
}

// --- two bare sessions, for ratchet-level tests -----------------------------------------

/** Alice's and Bob's `Session`s (no Sesame), set up with PQXDH and one message each way. */
export class Pair {
  readonly rng: Rng;
  s: Record<Side, Session>;
  constructor(label: string) {
    this.rng = rngFor(label);
    const alice = makeParty(`${label}/alice`, this.rng, 1);
    const bob = makeParty(`${label}/bob`, this.rng, 1);
    const a0 = initiateSession(alice.device, bob.pub, takeBundle(bob), this.rng);
    const first = ratchetEncrypt(a0, utf8('hello bob'));
    const m = decodeDeviceMessage(first.message);
    if (m.kind !== MessageKind.prekey) throw new Error('expected a prekey message');
    const b0 = respondToPrekey(bob.device, alice.pub, m.prekey, bob.lookup).session;
    this.s = { a: first.session, b: ratchetDecrypt(b0, m.prekey.message, this.rng).session };
    const reply = this.enc('b', 'hello alice');
    expect(this.dec('a', reply)).toBe('hello alice');
  }
  /** Encrypts and commits; returns the RatchetMessage bytes. */
  enc(from: Side, msg: string): Uint8Array {
    const r = ratchetEncrypt(this.s[from], utf8(msg));
    this.s[from] = r.session;
    return ratchetPart(r.message);
  }
  encMany(from: Side, n: number, prefix: string): Uint8Array[] {
    return Array.from({ length: n }, (_, i) => this.enc(from, `${prefix}${i}`));
  }
  tryDec(to: Side, m: Uint8Array) {
    return ratchetDecrypt(this.s[to], m, this.rng);
  }
  dec(to: Side, m: Uint8Array): string {
    const r = this.tryDec(to, m);
    this.s[to] = r.session;
    return text(r.plaintext);
  }
  state(s: Side): Uint8Array {
    return encodeSession(this.s[s]);
  }
  /** Asserts that decrypting `m` fails with `code` and leaves the receiver's state byte-for-byte unchanged. */
  refuse(to: Side, m: Uint8Array, code: CryptoErrorCode, what = ''): void {
    const before = this.state(to);
    const obj = this.s[to];
    expectCode(() => this.tryDec(to, m), code, what);
    expect(this.s[to]).toBe(obj);
    expect(hexOf(this.state(to)), `${what}: state changed`).toBe(hexOf(before));
  }
  /** One round trip: `from` sends one message, the other side replies; both ratchet forward. */
  roundTrip(from: Side, tag: string): void {
    const to = from === 'a' ? 'b' : 'a';
    expect(this.dec(to, this.enc(from, `${tag}>`))).toBe(`${tag}>`);
    expect(this.dec(from, this.enc(to, `${tag}<`))).toBe(`${tag}<`);
  }
}

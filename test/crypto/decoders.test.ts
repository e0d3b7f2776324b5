// Every decoder exported from crypto/index.ts, fed hostile bytes: empty input, every truncation of
// a valid encoding, a trailing byte, unknown version bytes (outer and nested), and thousands of
// seeded random and mutated byte strings. Each must throw a CryptoError — never another exception —
// or, where a random input happens to be well-formed, decode to something that re-encodes to the
// very same bytes (canonical decoding). Formats whose last field is a ciphertext running to the end
// (ratchet and device messages, payloads) are decoded *and* authenticated, which must then fail.
import { beforeAll, describe, expect, test } from 'vitest';
import {
  CryptoError,
  type CryptoErrorCode,
  decodeAttachmentPointer,
  decodeBundle,
  decodeDeviceKeyPair,
  decodeDeviceList,
  decodeDeviceMessage,
  decodeDeviceSessions,
  decodeKeyMessage,
  decodePrekey,
  decodePrekeySecret,
  decodeRatchetMessage,
  decodeSession,
  EMPTY_DEVICE_SESSIONS,
  encodeAttachmentPointer,
  encodeBundle,
  encodeDeviceKeyPair,
  encodeDeviceMessage,
  encodeDeviceSessions,
  encodePrekey,
  encodePrekeySecret,
  encodeSession,
  encryptAttachment,
  generateAccountKey,
  generateDevice,
  newDeviceList,
  openPayload,
  PrekeyKind,
  ratchetDecrypt,
  ready,
  safetyNumber,
  sealPayload,
  signDeviceList,
  utf8,
  verifySafetyQr,
  withDeviceAdded,
} from '../../crypto/index.ts';
import { Dice, Duo, hexOf, PK, ratchetPart, rngFor, sodium } from './helpers.ts';

/** What a self-delimiting format with one version byte at offset 0 answers to each kind of damage. */
const STRICT_FORMAT = {
  truncation: 'truncated',
  empty: 'truncated',
  trailing: 'trailing_bytes',
  versions: [0],
  badVersion: 'unknown_version',
} as const;

interface Case {
  readonly name: string;
  readonly samples: readonly Uint8Array[];
  /** Decodes (and for ciphertext-to-the-end formats, authenticates). Returns normally only on success. */
  readonly run: (b: Uint8Array) => unknown;
  /** For canonical formats: the bytes re-encoded from a successful decode. */
  readonly reencode?: (b: Uint8Array) => Uint8Array;
  /** True when no altered input may ever succeed (signed or authenticated formats). */
  readonly authenticated: boolean;
  /** The exact code of every proper truncation, when the format makes it certain. */
  readonly truncation?: CryptoErrorCode;
  readonly empty: CryptoErrorCode;
  readonly trailing: CryptoErrorCode;
  /** Offsets of version bytes in samples[0] (nested ones included) and the code a bad one gives. */
  readonly versions: readonly number[];
  readonly badVersion: CryptoErrorCode;
}

const cases: Case[] = [];

beforeAll(async () => {
  await ready();
  await sodium.ready;
  const rng = rngFor('decoders');

  // Messages: Bob's receiving side decides.
  const d = new Duo('decoders/messages').establish();
  const rm = d.send('a', 'a ratchet message');
  d.start('a');
  const pm = d.send('a', 'a prekey message');
  const last = new Duo('decoders/last-resort', 0);
  last.start('a');
  const pmNoOtk = last.send('a', 'no one-time key');
  const bobSession = d.rec.b.active!;
  cases.push({
    name: 'decodeDeviceMessage',
    samples: [rm, pm],
    run: (b) => {
      const m = decodeDeviceMessage(b);
      expect(hexOf(encodeDeviceMessage(m))).toBe(hexOf(b));
      return d.tryRecv('b', b);
    },
    authenticated: true,
    empty: 'truncated',
    trailing: 'decrypt_failed',
    versions: [0, 2],
    badVersion: 'unknown_version',
  });
  cases.push({
    name: 'decodeDeviceMessage (prekey)',
    samples: [pm, pmNoOtk],
    run: (b) => {
      decodeDeviceMessage(b);
      return b[PK.hasOneTime] === 1 ? d.tryRecv('b', b) : last.tryRecv('b', b);
    },
    authenticated: true,
    empty: 'truncated',
    trailing: 'decrypt_failed',
    versions: [0, PK.version, PK.ratchet(true)],
    badVersion: 'unknown_version',
  });
  cases.push({
    name: 'decodeRatchetMessage',
    samples: [ratchetPart(rm)],
    run: (b) => {
      decodeRatchetMessage(b);
      return ratchetDecrypt(bobSession, b, rng);
    },
    authenticated: true,
    empty: 'truncated',
    trailing: 'decrypt_failed',
    versions: [0],
    badVersion: 'unknown_version',
  });

  // Device list.
  const account = generateAccountKey(rng);
  const list = withDeviceAdded(newDeviceList('bob', account.publicKey, generateDevice(rng), 'phone', 1), generateDevice(rng), 'laptop', 2);
  cases.push({
    name: 'decodeDeviceList',
    samples: [signDeviceList(list, account).bytes],
    run: decodeDeviceList,
    authenticated: true,
    empty: 'truncated',
    trailing: 'trailing_bytes',
    versions: [0],
    badVersion: 'unknown_version',
  });

  // Prekeys and bundles.
  const dev = generateDevice(rng);
  const spk = encodePrekey(d.b.bundles[0]!.signedPrekey);
  const pqk = encodePrekey(d.b.bundles[0]!.pqPrekey);
  cases.push({
    name: 'decodePrekey',
    samples: [spk, pqk],
    run: decodePrekey,
    reencode: (b) => encodePrekey(decodePrekey(b)),
    authenticated: false,
    ...STRICT_FORMAT,
  });
  const bundle = d.b.bundles[0]!;
  const bundleBytes = encodeBundle(bundle);
  cases.push({
    name: 'decodeBundle',
    samples: [bundleBytes, encodeBundle({ ...bundle, oneTimePrekey: null })],
    run: decodeBundle,
    reencode: (b) => encodeBundle(decodeBundle(b)),
    authenticated: false,
    truncation: 'truncated',
    empty: 'truncated',
    trailing: 'trailing_bytes',
    versions: [0, 1 + 16 + 2, 1 + 16 + 2 + spk.length + 2, bundleBytes.length - 102],
    badVersion: 'unknown_version',
  });

  // Fan-out.
  const sealed = sealPayload(utf8('a payload'), rng);
  cases.push({
    name: 'decodeKeyMessage',
    samples: [sealed.keyMessage],
    run: decodeKeyMessage,
    reencode: (b) => {
      const k = decodeKeyMessage(b);
      return new Uint8Array([1, ...k.key, ...k.hash]);
    },
    authenticated: false,
    ...STRICT_FORMAT,
  });
  cases.push({
    name: 'openPayload (payload)',
    samples: [sealed.payload],
    run: (b) => openPayload(b, sealed.keyMessage),
    authenticated: true,
    truncation: 'hash_mismatch',
    empty: 'hash_mismatch',
    trailing: 'hash_mismatch',
    versions: [0],
    badVersion: 'hash_mismatch', // the hash covers the version byte (§11)
  });
  cases.push({
    name: 'openPayload (key message)',
    samples: [sealed.keyMessage],
    run: (b) => openPayload(sealed.payload, b),
    authenticated: true,
    ...STRICT_FORMAT,
  });

  // Attachment pointer.
  cases.push({
    name: 'decodeAttachmentPointer',
    samples: [encodeAttachmentPointer(encryptAttachment(rng(100), rng, 16).pointer)],
    run: decodeAttachmentPointer,
    reencode: (b) => encodeAttachmentPointer(decodeAttachmentPointer(b)),
    authenticated: false,
    ...STRICT_FORMAT,
  });

  // Stored state: sessions with a pending header, skipped keys and several chains; records.
  const msgs = Array.from({ length: 4 }, (_, i) => d.send('b', `s${i}`));
  d.recv('a', msgs[3]!);
  // Bob wrote on the first session, so Alice promoted it (with 3 skipped keys); her new one is pending.
  const rich = d.rec.a;
  expect(rich.active!.skipped.length).toBe(3);
  expect(rich.inactive[0]!.pending).not.toBeNull();
  cases.push({
    name: 'decodeSession',
    samples: [encodeSession(rich.active!), encodeSession(rich.inactive[0]!)],
    run: decodeSession,
    reencode: (b) => encodeSession(decodeSession(b)),
    authenticated: false,
    ...STRICT_FORMAT,
  });
  cases.push({
    name: 'decodeDeviceSessions',
    samples: [encodeDeviceSessions(rich), encodeDeviceSessions(EMPTY_DEVICE_SESSIONS), encodeDeviceSessions({ active: null, inactive: rich.inactive })],
    run: decodeDeviceSessions,
    reencode: (b) => encodeDeviceSessions(decodeDeviceSessions(b)),
    authenticated: false,
    truncation: 'truncated',
    empty: 'truncated',
    trailing: 'trailing_bytes',
    versions: [0, 6],
    badVersion: 'unknown_version',
  });
  cases.push({
    name: 'decodeDeviceKeyPair',
    samples: [encodeDeviceKeyPair(dev)],
    run: decodeDeviceKeyPair,
    reencode: (b) => encodeDeviceKeyPair(decodeDeviceKeyPair(b)),
    authenticated: false,
    ...STRICT_FORMAT,
  });
  cases.push({
    name: 'decodePrekeySecret',
    samples: [PrekeyKind.signed, PrekeyKind.pqLastResort].map((k) => encodePrekeySecret([...d.a.prekeys.values()].find((p) => p.kind === k)!)),
    run: decodePrekeySecret,
    reencode: (b) => encodePrekeySecret(decodePrekeySecret(b)),
    authenticated: false,
    ...STRICT_FORMAT,
  });

  // Safety-number QR: well-formed input returns true or false; only malformed input throws.
  const ours = safetyNumber('alice', account.publicKey, 'bob', generateAccountKey(rng).publicKey);
  cases.push({
    name: 'verifySafetyQr',
    samples: [ours.qr],
    run: (b) => verifySafetyQr(ours, b),
    reencode: (b) => (verifySafetyQr(ours, b) === equalQr(ours.qr, b) ? b : new Uint8Array(0)),
    authenticated: false,
    ...STRICT_FORMAT,
  });
});

function equalQr(a: Uint8Array, b: Uint8Array): boolean {
  return hexOf(a) === hexOf(b);
}

/** The CryptoError code of `c.run(b)`, or 'ok'; anything but a CryptoError fails the test. */
function attempt(c: Case, b: Uint8Array, what: string): CryptoErrorCode | 'ok' {
  try {
    c.run(b);
  } catch (e) {
    if (!(e instanceof CryptoError)) {
      expect.fail(`${c.name} ${what}: threw ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`);
    }
    return e.code;
  }
  if (c.reencode) expect(hexOf(c.reencode(b)), `${c.name} ${what}: decoded but not canonical`).toBe(hexOf(b));
  return 'ok';
}

const NAMES = [
  'decodeDeviceMessage',
  'decodeDeviceMessage (prekey)',
  'decodeRatchetMessage',
  'decodeDeviceList',
  'decodePrekey',
  'decodeBundle',
  'decodeKeyMessage',
  'openPayload (payload)',
  'openPayload (key message)',
  'decodeAttachmentPointer',
  'decodeSession',
  'decodeDeviceSessions',
  'decodeDeviceKeyPair',
  'decodePrekeySecret',
  'verifySafetyQr',
];

describe.each(NAMES)('%s', (name) => {
  const get = () => cases.find((c) => c.name === name)!;

  test('the valid samples decode', () => {
    const c = get();
    for (const s of c.samples) expect(attempt(c, s, 'sample')).toBe('ok');
  });

  test('empty input', () => {
    const c = get();
    expect(attempt(c, new Uint8Array(0), 'empty')).toBe(c.empty);
  });

  test('every truncation of every sample', () => {
    const c = get();
    for (const s of c.samples) {
      for (let n = 0; n < s.length; n++) {
        const code = attempt(c, s.slice(0, n), `cut to ${n}`);
        expect(code, `cut to ${n}`).not.toBe('ok');
        if (c.truncation && n > 0) expect(code, `cut to ${n}`).toBe(c.truncation);
      }
    }
  });

  test('a valid encoding plus one trailing byte', () => {
    const c = get();
    for (const s of c.samples) {
      for (const extra of [0, 1, 0xff]) expect(attempt(c, new Uint8Array([...s, extra]), `+${extra}`)).toBe(c.trailing);
    }
  });

  test('unknown version bytes, outer and nested', () => {
    const c = get();
    const s = c.samples[0]!;
    for (const at of c.versions) {
      expect(s[at], `version byte at ${at}`).toBe(1);
      for (const v of [0, 2, 0x81, 0xff]) {
        const b = s.slice();
        b[at] = v;
        expect(attempt(c, b, `version ${v} at ${at}`), `version ${v} at ${at}`).toBe(c.badVersion);
      }
    }
  });

  test('thousands of seeded random and mutated byte strings', () => {
    const c = get();
    const dice = new Dice(`decoders/${name}`);
    const maxLen = Math.max(...c.samples.map((s) => s.length));
    let accepted = 0;
    for (let i = 0; i < 2000; i++) {
      const r = dice.int(4);
      const len = r === 0 ? c.samples[dice.int(c.samples.length)]!.length : r === 1 ? dice.int(maxLen + 9) : dice.int(Math.min(2 * maxLen, 300) + 1);
      if (attempt(c, dice.bytes(len), `random #${i}`) === 'ok') accepted++;
    }
    // Random bytes are almost never well-formed; where they are (fixed-size unsigned formats), fine.
    if (c.authenticated) expect(accepted).toBe(0);
    for (let i = 0; i < 2000; i++) {
      const b = c.samples[dice.int(c.samples.length)]!.slice();
      const edits = 1 + dice.int(4);
      let m: Uint8Array = b;
      for (let e = 0; e < edits; e++) {
        const kind = dice.int(6);
        if (kind <= 2 || m.length === 0) {
          if (m.length > 0) m[dice.int(m.length)]! ^= 1 + dice.int(255);
        } else if (kind === 3) {
          m = m.slice(0, dice.int(m.length));
        } else if (kind === 4) {
          m = new Uint8Array([...m, ...dice.bytes(1 + dice.int(8))]);
        } else {
          const at = dice.int(m.length);
          m = new Uint8Array([...m.subarray(0, at), ...m.subarray(at + 1 + dice.int(4))]);
        }
      }
      const code = attempt(c, m, `mutation #${i}`);
      if (c.authenticated && code === 'ok') expect(hexOf(m), `${name}: an altered input was accepted`).toBe(hexOf(b));
    }
  });
});

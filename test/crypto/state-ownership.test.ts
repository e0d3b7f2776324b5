// Compute, then commit (STYLE.md habit 7) also means: what crypto/ returns owns its bytes, and what it
// is given it leaves alone. A client reads messages into buffers it reuses (a socket frame, a
// storage cursor); if a committed session kept a view into such a buffer, the next read would
// silently rewrite the session. Each test overwrites every input after the call and checks that the
// returned state's encoding did not move and that the conversation still works; and that no call
// modified its inputs.
import { beforeAll, describe, expect, test } from 'vitest';
import {
  type DeviceSessions,
  decodeAttachmentPointer,
  decodeBundle,
  decodeDeviceKeyPair,
  decodeDeviceList,
  decodeDeviceSessions,
  decodePrekey,
  decodePrekeySecret,
  decodeSession,
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
  fanoutDecrypt,
  fanoutEncrypt,
  fromUtf8,
  newDeviceList,
  ratchetDecrypt,
  ready,
  type Rng,
  seededRng,
  signDeviceList,
  startSession,
  toHex,
  utf8,
  withDeviceAdded,
} from '../../crypto/index.ts';
import { makeParty, type Party, takeBundle } from '../support/parties.ts';

beforeAll(ready);

function rngFor(n: number): Rng {
  return seededRng(new Uint8Array(32).fill(n));
}

/** Decrypts from a private copy of `message`, commits, then overwrites the copy as a reused buffer would be. */
function recvFromReusedBuffer(record: DeviceSessions, message: Uint8Array, me: Party, them: Party, rng: Rng) {
  const buffer = message.slice();
  const r = decryptFromDevice(record, buffer, me.device, them.pub, me.lookup, rng);
  const committed = toHex(encodeDeviceSessions(r.record));
  buffer.fill(0xa5);
  expect(toHex(encodeDeviceSessions(r.record)), 'the committed record changed when the message buffer was reused').toBe(committed);
  return { record: r.record, text: fromUtf8(r.plaintext, 'plaintext') };
}

describe('a committed session does not alias the message it was decrypted from', () => {
  test('prekey message, replies and new ratchet epochs, every receive buffer overwritten after use', () => {
    const rng = rngFor(41);
    const a = makeParty('alice', rng);
    const b = makeParty('bob', rng);
    let ab = startSession(EMPTY_DEVICE_SESSIONS, a.device, b.pub, takeBundle(b), rng);
    let ba: DeviceSessions = EMPTY_DEVICE_SESSIONS;
    for (let turn = 0; turn < 12; turn++) {
      // Two messages per turn: the first opens a new epoch (DH step), the second lands on it.
      for (let i = 0; i < 2; i++) {
        if (turn % 2 === 0) {
          const e = encryptForDevice(ab, utf8(`a${turn}.${i}`));
          ab = e.record;
          const r = recvFromReusedBuffer(ba, e.message, b, a, rng);
          ba = r.record;
          expect(r.text).toBe(`a${turn}.${i}`);
        } else {
          const e = encryptForDevice(ba, utf8(`b${turn}.${i}`));
          ba = e.record;
          const r = recvFromReusedBuffer(ab, e.message, a, b, rng);
          ab = r.record;
          expect(r.text).toBe(`b${turn}.${i}`);
        }
      }
    }
    // Every receiving chain still names a real ratchet key of the peer, not 0xa5 filler.
    for (const rec of [ab, ba]) for (const c of rec.active!.receiving) expect(toHex(c.ratchetKey)).not.toBe('a5'.repeat(32));
  });

  test('skipped keys taken from a reused buffer still open the late messages', () => {
    const rng = rngFor(42);
    const a = makeParty('alice', rng);
    const b = makeParty('bob', rng);
    let ab = startSession(EMPTY_DEVICE_SESSIONS, a.device, b.pub, takeBundle(b), rng);
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 4; i++) {
      const e = encryptForDevice(ab, utf8(`m${i}`));
      ab = e.record;
      sent.push(e.message);
    }
    // The last one first: three keys are skipped on a chain created from this buffer.
    let r = recvFromReusedBuffer(EMPTY_DEVICE_SESSIONS, sent[3]!, b, a, rng);
    expect(r.record.active!.skipped.length).toBe(3);
    for (const i of [1, 0, 2]) {
      r = recvFromReusedBuffer(r.record, sent[i]!, b, a, rng);
      expect(r.text).toBe(`m${i}`);
    }
    expect(r.record.active!.skipped.length).toBe(0);
  });

  test('ratchetDecrypt on its own: the returned Session is independent of the message bytes', () => {
    const rng = rngFor(43);
    const a = makeParty('alice', rng);
    const b = makeParty('bob', rng);
    const ab = startSession(EMPTY_DEVICE_SESSIONS, a.device, b.pub, takeBundle(b), rng);
    const first = encryptForDevice(ab, utf8('hello'));
    const ba = decryptFromDevice(EMPTY_DEVICE_SESSIONS, first.message, b.device, a.pub, b.lookup, rng).record;
    const reply = encryptForDevice(ba, utf8('reply'));
    const body = reply.message.slice(2); // the RatchetMessage inside the DeviceMessage
    const out = ratchetDecrypt(first.record.active!, body, rng);
    const committed = toHex(encodeSession(out.session));
    body.fill(0);
    expect(toHex(encodeSession(out.session))).toBe(committed);
  });

  test('fan-out: overwriting the key message and the shared payload after decrypting changes nothing', () => {
    const rng = rngFor(44);
    const a = makeParty('alice', rng);
    const b = makeParty('bob', rng);
    const ab = startSession(EMPTY_DEVICE_SESSIONS, a.device, b.pub, takeBundle(b), rng);
    const out = fanoutEncrypt(utf8('to everyone'), [{ address: 'bob', record: ab }], rng);
    const message = out.messages[0]!.message.slice();
    const payload = out.payload.slice();
    const r = fanoutDecrypt(EMPTY_DEVICE_SESSIONS, message, payload, b.device, a.pub, b.lookup, rng);
    const committed = toHex(encodeDeviceSessions(r.record));
    const plaintext = toHex(r.plaintext);
    message.fill(1);
    payload.fill(2);
    expect(toHex(encodeDeviceSessions(r.record))).toBe(committed);
    expect(toHex(r.plaintext)).toBe(plaintext);
  });
});

describe('decoded state does not alias its encoding', () => {
  test('every stored-state and wire decoder returns values that survive overwriting the input', () => {
    const rng = rngFor(45);
    const a = makeParty('alice', rng);
    const b = makeParty('bob', rng);
    const ab = startSession(EMPTY_DEVICE_SESSIONS, a.device, b.pub, takeBundle(b), rng);
    const e = encryptForDevice(ab, utf8('x'));
    const ba = decryptFromDevice(EMPTY_DEVICE_SESSIONS, e.message, b.device, a.pub, b.lookup, rng).record;
    let list = newDeviceList('alice', a.account.publicKey, a.device, 'laptop', 1_700_000_000_000);
    list = withDeviceAdded(list, b.device, 'phone', 1_700_000_001_000);
    const att = encryptAttachment(utf8('attachment'), rng, 4);
    const secret = [...a.prekeys.values()][0]!;
    const cases: [string, Uint8Array, (bytes: Uint8Array) => unknown, (v: never) => Uint8Array][] = [
      ['session (pending)', encodeSession(e.record.active!), decodeSession, encodeSession],
      ['session (responder)', encodeSession(ba.active!), decodeSession, encodeSession],
      ['device sessions', encodeDeviceSessions(e.record), decodeDeviceSessions, encodeDeviceSessions],
      ['device keys', encodeDeviceKeyPair(a.device), decodeDeviceKeyPair, encodeDeviceKeyPair],
      ['prekey secret', encodePrekeySecret(secret), decodePrekeySecret, encodePrekeySecret],
      ['prekey', encodePrekey(a.bundles[0]!.signedPrekey), decodePrekey, encodePrekey],
      ['bundle', encodeBundle(a.bundles[0]!), decodeBundle, encodeBundle],
      ['attachment pointer', encodeAttachmentPointer(att.pointer), decodeAttachmentPointer, encodeAttachmentPointer],
      ['device list', signDeviceList(list, a.account).bytes, decodeDeviceList, (l: never) => signDeviceList(l, a.account).bytes],
    ];
    for (const [what, encoded, decode, encode] of cases) {
      const input = encoded.slice();
      const value = decode(input);
      input.fill(0x5a);
      expect(toHex(encode(value as never)), what).toBe(toHex(encoded));
    }
  });
});

describe('crypto/ never modifies what it is given', () => {
  test('records, messages, payloads and prekeys are untouched by successful and failing calls', () => {
    const rng = rngFor(46);
    const a = makeParty('alice', rng);
    const b = makeParty('bob', rng);
    const bundle = takeBundle(b);
    const bundleBytes = toHex(encodeBundle(bundle));
    const ab = startSession(EMPTY_DEVICE_SESSIONS, a.device, b.pub, bundle, rng);
    expect(toHex(encodeBundle(bundle))).toBe(bundleBytes);
    const abBytes = toHex(encodeDeviceSessions(ab));
    const out = fanoutEncrypt(utf8('hello'), [{ address: 'bob', record: ab }], rng);
    expect(toHex(encodeDeviceSessions(ab)), 'sender record').toBe(abBytes);
    const message = out.messages[0]!.message;
    const msgHex = toHex(message);
    const payloadHex = toHex(out.payload);
    const prekeysBefore = [...b.prekeys.entries()].map(([k, v]) => `${k}:${toHex(encodePrekeySecret(v))}`).join();

    const r = fanoutDecrypt(EMPTY_DEVICE_SESSIONS, message, out.payload, b.device, a.pub, b.lookup, rng);
    expect(toHex(message)).toBe(msgHex);
    expect(toHex(out.payload)).toBe(payloadHex);
    expect([...b.prekeys.entries()].map(([k, v]) => `${k}:${toHex(encodePrekeySecret(v))}`).join(), 'prekeys').toBe(prekeysBefore);

    // A failing call (a payload that is not the promised one) leaves its inputs alone too.
    const recordHex = toHex(encodeDeviceSessions(r.record));
    const reply = encryptForDevice(r.record, utf8('reply'));
    expect(toHex(encodeDeviceSessions(r.record)), 'encrypt left the input record alone').toBe(recordHex);
    const other = fanoutEncrypt(utf8('other'), [{ address: 'bob', record: ab }], rng);
    const otherHex = toHex(other.payload);
    expect(() => fanoutDecrypt(EMPTY_DEVICE_SESSIONS, message, other.payload, b.device, a.pub, b.lookup, rng)).toThrow(/hash_mismatch/);
    expect(toHex(other.payload)).toBe(otherHex);
    expect(toHex(message)).toBe(msgHex);
    expect(fromUtf8(decryptFromDevice(out.messages[0]!.record, reply.message, a.device, b.pub, a.lookup, rng).plaintext, 'x')).toBe('reply');
  });
});

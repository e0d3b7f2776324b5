// Fan-out (PROTOCOL.md §11): one payload plus one small key message per device. All recipients
// decrypt from the very same payload bytes; a tampered, truncated or swapped payload is
// hash_mismatch and the recipient's record is left exactly as it was.
import { beforeAll, describe, expect, test } from 'vitest';
import {
  decodeKeyMessage,
  type DeviceSessions,
  decryptFromDevice,
  EMPTY_DEVICE_SESSIONS,
  encodeDeviceSessions,
  type FanoutOutput,
  fanoutDecrypt,
  fanoutEncrypt,
  openPayload,
  ready,
  sealPayload,
  startSession,
  utf8,
} from '../../crypto/index.ts';
import { makeParty, type Party, takeBundle } from '../support/parties.ts';
import { expectCode, flipBit, hexOf, rngFor, sodium, text } from './helpers.ts';

beforeAll(async () => {
  await ready();
  await sodium.ready;
});

/** Alice sends to Bob's two devices, her own second device and Carol. */
function setUp(label: string) {
  const rng = rngFor(`fanout/${label}`);
  const alice = makeParty('alice', rng);
  const recipients = ['bob-phone', 'bob-laptop', 'alice-laptop', 'carol'].map((n) => makeParty(n, rng));
  const out = new Map<string, DeviceSessions>();
  for (const r of recipients) out.set(r.name, startSession(EMPTY_DEVICE_SESSIONS, alice.device, r.pub, takeBundle(r), rng));
  const inbox = new Map<string, DeviceSessions>(recipients.map((r) => [r.name, EMPTY_DEVICE_SESSIONS]));
  const send = (plaintext: Uint8Array): FanoutOutput<Party> => {
    const o = fanoutEncrypt(plaintext, recipients.map((r) => ({ address: r, record: out.get(r.name)! })), rng);
    for (const m of o.messages) out.set(m.address.name, m.record);
    return o;
  };
  const tryOpen = (r: Party, message: Uint8Array, payload: Uint8Array) => fanoutDecrypt(inbox.get(r.name)!, message, payload, r.device, alice.pub, r.lookup, rng);
  const open = (r: Party, message: Uint8Array, payload: Uint8Array) => {
    const res = tryOpen(r, message, payload);
    inbox.set(r.name, res.record);
    return text(res.plaintext);
  };
  const refuse = (r: Party, message: Uint8Array, payload: Uint8Array, code: Parameters<typeof expectCode>[1], what: string) => {
    const before = encodeDeviceSessions(inbox.get(r.name)!);
    expectCode(() => tryOpen(r, message, payload), code, what);
    expect(hexOf(encodeDeviceSessions(inbox.get(r.name)!)), `${what}: record changed`).toBe(hexOf(before));
  };
  return { rng, alice, recipients, send, open, refuse, inbox };
}

describe('fan-out', () => {
  test('one payload and N key messages: every device decrypts, from the same payload bytes', () => {
    const f = setUp('basic');
    for (let round = 0; round < 3; round++) {
      const o = f.send(utf8(`round ${round}`));
      expect(o.messages.length).toBe(4);
      for (const [i, m] of o.messages.entries()) {
        expect(m.address).toBe(f.recipients[i]);
        expect(m.message[1]).toBe(2); // Alice has not heard back: still prekey messages
        expect(f.open(m.address, m.message, o.payload)).toBe(`round ${round}`);
      }
    }
    // Every recipient sees the same key message (content key and payload hash).
    const o = f.send(utf8('same key'));
    const keys = o.messages.map((m) => hexOf(decryptFromDevice(f.inbox.get(m.address.name)!, m.message, m.address.device, f.alice.pub, m.address.lookup, f.rng).plaintext));
    expect(new Set(keys).size).toBe(1);
    expect(decodeKeyMessage(sodium.from_hex(keys[0]!)).hash).toEqual(sodium.crypto_generichash(32, o.payload, null));
  });

  test('the key message is 65 bytes whatever the payload size; the payload is encrypted once', () => {
    const f = setUp('sizes');
    for (const size of [0, 1, 1000, 100_000]) {
      const body = f.rng(size);
      const o = f.send(body);
      expect(o.payload.length).toBe(1 + size + 16);
      for (const m of o.messages) {
        const r = fanoutDecrypt(f.inbox.get(m.address.name)!, m.message, o.payload, m.address.device, f.alice.pub, m.address.lookup, f.rng);
        expect(hexOf(r.plaintext)).toBe(hexOf(body));
        f.inbox.set(m.address.name, r.record);
      }
      // prekey message overhead is fixed; the rest is a 65-byte key message + its 16-byte tag
      expect(new Set(o.messages.map((m) => m.message.length)).size).toBe(1);
    }
  });

  test('a tampered, truncated, extended or re-versioned payload: hash_mismatch, record unchanged', () => {
    const f = setUp('tamper');
    const o = f.send(utf8('the real payload'));
    const bob = f.recipients[0]!;
    const m = o.messages[0]!.message;
    for (let bit = 0; bit < o.payload.length * 8; bit++) f.refuse(bob, m, flipBit(o.payload, bit), 'hash_mismatch', `bit ${bit}`);
    f.refuse(bob, m, o.payload.subarray(0, o.payload.length - 1), 'hash_mismatch', 'truncated');
    f.refuse(bob, m, new Uint8Array(0), 'hash_mismatch', 'empty');
    f.refuse(bob, m, new Uint8Array([...o.payload, 0]), 'hash_mismatch', 'extended');
    expect(f.open(bob, m, o.payload)).toBe('the real payload');
  });

  test("another message's payload swapped in: hash_mismatch, and both still open afterwards", () => {
    const f = setUp('swap');
    const o1 = f.send(utf8('first'));
    const o2 = f.send(utf8('second'));
    for (const [i, r] of f.recipients.entries()) {
      f.refuse(r, o1.messages[i]!.message, o2.payload, 'hash_mismatch', `${r.name} 1<-2`);
      f.refuse(r, o2.messages[i]!.message, o1.payload, 'hash_mismatch', `${r.name} 2<-1`);
      expect(f.open(r, o2.messages[i]!.message, o2.payload)).toBe('second');
      expect(f.open(r, o1.messages[i]!.message, o1.payload)).toBe('first');
    }
  });

  test('a device message tampered, or delivered to another device: decrypt_failed, record unchanged', () => {
    const f = setUp('wrong-device');
    const o = f.send(utf8('x'));
    const [bobPhone, bobLaptop] = f.recipients;
    const m = o.messages[0]!.message;
    f.refuse(bobPhone!, flipBit(m, (m.length - 2) * 8), o.payload, 'decrypt_failed', 'tampered');
    // The laptop holds prekeys with the same ids as the phone's, but other keys: the DHs differ.
    f.refuse(bobLaptop!, m, o.payload, 'decrypt_failed', "the phone's message at the laptop");
    expect(f.open(bobPhone!, m, o.payload)).toBe('x');
    expect(f.open(bobLaptop!, o.messages[1]!.message, o.payload)).toBe('x');
  });

  test('openPayload: the right hash with the wrong key, or a payload with an unknown version', () => {
    const rng = rngFor('fanout/open');
    const { payload, keyMessage } = sealPayload(utf8('hello'), rng);
    expect(text(openPayload(payload, keyMessage))).toBe('hello');
    const wrongKey = keyMessage.slice();
    wrongKey[5]! ^= 1;
    expectCode(() => openPayload(payload, wrongKey), 'decrypt_failed');
    const v2 = payload.slice();
    v2[0] = 2;
    const km = new Uint8Array([1, ...keyMessage.subarray(1, 33), ...sodium.crypto_generichash(32, v2, null)]);
    expectCode(() => openPayload(v2, km), 'unknown_version');
    const short = new Uint8Array([1, 1, 2, 3]);
    const km2 = new Uint8Array([1, ...keyMessage.subarray(1, 33), ...sodium.crypto_generichash(32, short, null)]);
    expectCode(() => openPayload(short, km2), 'decrypt_failed');
    expectCode(() => openPayload(payload, keyMessage.subarray(0, 64)), 'truncated');
  });
});

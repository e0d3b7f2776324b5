// Protocol-level bench cases, through crypto/'s public API only. Everything a body needs
// (parties, prekeys, established sessions, pre-encrypted messages) is built in the untimed
// `prepare`; bodies restart from the same immutable state on every run.
import {
  decryptFromDevice,
  type DeviceSessions,
  EMPTY_DEVICE_SESSIONS,
  encryptForDevice,
  fanoutEncrypt,
  type FanoutTarget,
  type PrekeyBundle,
  ratchetDecrypt,
  ratchetEncrypt,
  type Session,
  startSession,
  systemRng,
} from '../../crypto/index.ts';
import { makeParty, type Party } from '../support/parties.ts';
import type { BenchCase } from './harness.ts';
import { FANOUT_MESSAGE_BYTES, MESSAGE_BYTES } from './primitives.ts';

export type ProtocolId =
  | 'setupInitiator'
  | 'setupResponder'
  | 'encryptRatchet'
  | 'decryptRatchet'
  | 'encryptDevice'
  | 'decryptDevice'
  | 'pingPongRatchet'
  | 'pingPongDevice'
  | 'fanout100';

export interface ProtocolCase extends BenchCase {
  readonly id: ProtocolId;
}

export const FANOUT_TARGETS = 100;
const rng = systemRng;
/**
 * Decrypt cases replay a block of this many pre-encrypted messages, restarting from the same
 * state after each block, instead of holding one message per operation: tens of thousands of
 * live messages made every other case in the process measurably slower (GC).
 */
export const DECRYPT_BLOCK = 1000;
/** Distinct first messages the responder case cycles through (each ~1.4 KB, independent). */
export const PREKEY_POOL = 32;

/** Two devices with an established session: A→B (prekey), B→A, A→B all delivered. */
interface Pair {
  readonly a: Party;
  readonly b: Party;
  /** Has a one-time X25519 key and a one-time X-Wing key: the full setup path (4 DH, 3 signatures). */
  readonly bundle: PrekeyBundle;
  /** A's record: confirmed, sending on a chain B already receives on. */
  readonly ab: DeviceSessions;
  /** B's record: receiving A's current chain; its own fresh sending chain is not used yet. */
  readonly ba: DeviceSessions;
}

function establish(a: Party, b: Party, bundle: PrekeyBundle): { ab: DeviceSessions; ba: DeviceSessions } {
  const pt = rng(MESSAGE_BYTES);
  let ab = startSession(EMPTY_DEVICE_SESSIONS, a.device, b.pub, bundle, rng);
  const m1 = encryptForDevice(ab, pt);
  ab = m1.record;
  let ba = decryptFromDevice(EMPTY_DEVICE_SESSIONS, m1.message, b.device, a.pub, b.lookup, rng).record;
  const m2 = encryptForDevice(ba, pt);
  ba = m2.record;
  ab = decryptFromDevice(ab, m2.message, a.device, b.pub, a.lookup, rng).record;
  const m3 = encryptForDevice(ab, pt);
  ab = m3.record;
  ba = decryptFromDevice(ba, m3.message, b.device, a.pub, b.lookup, rng).record;
  return { ab, ba };
}

function makePair(): Pair {
  const a = makeParty('alice', rng, 1);
  const b = makeParty('bob', rng, 1);
  const bundle = b.bundles[0]!;
  return { a, b, bundle, ...establish(a, b, bundle) };
}

function active(r: DeviceSessions): Session {
  if (!r.active) throw new Error('bench fixture has no active session');
  return r.active;
}

/** Every message of the ping-pong must have started a new receiving chain (a DH ratchet step). */
function checkRatcheted(s: Session): void {
  if (s.receiving[0]?.index !== 1) throw new Error('ping-pong message did not take a DH ratchet step');
}

function setupCases(p: Pair): ProtocolCase[] {
  const { a, b, bundle } = p;
  return [
    {
      id: 'setupInitiator',
      label: 'setup, initiator (startSession)',
      prepare: (n) => () => {
        for (let i = 0; i < n; i++) startSession(EMPTY_DEVICE_SESSIONS, a.device, b.pub, bundle, rng);
      },
    },
    {
      id: 'setupResponder',
      label: 'setup, responder (first prekey msg)',
      prepare: (n) => {
        const pt = rng(MESSAGE_BYTES);
        const msgs = Array.from({ length: Math.min(n, PREKEY_POOL) }, () =>
          encryptForDevice(startSession(EMPTY_DEVICE_SESSIONS, a.device, b.pub, bundle, rng), pt).message,
        );
        return () => {
          for (let i = 0; i < n; i++) decryptFromDevice(EMPTY_DEVICE_SESSIONS, msgs[i % msgs.length]!, b.device, a.pub, b.lookup, rng);
        };
      },
    },
  ];
}

function oneWayCases(p: Pair): ProtocolCase[] {
  const { a, b, ab, ba } = p;
  const pt = rng(MESSAGE_BYTES);
  const deviceMessages = (n: number): Uint8Array[] => {
    const out: Uint8Array[] = [];
    let r = ab;
    for (let i = 0; i < n; i++) {
      const e = encryptForDevice(r, pt);
      r = e.record;
      out.push(e.message);
    }
    return out;
  };
  return [
    {
      id: 'encryptRatchet',
      label: 'encrypt 100 B (ratchetEncrypt)',
      prepare: (n) => () => {
        let s = active(ab);
        for (let i = 0; i < n; i++) s = ratchetEncrypt(s, pt).session;
      },
    },
    {
      id: 'decryptRatchet',
      label: 'decrypt 100 B (ratchetDecrypt)',
      // ratchetDecrypt takes the RatchetMessage: the DeviceMessage minus its 2-byte envelope.
      prepare: (n) => {
        const msgs = deviceMessages(Math.min(n, DECRYPT_BLOCK)).map((m) => m.subarray(2));
        const start = active(ba);
        return () => {
          let s = start;
          for (let i = 0; i < n; i++) {
            const k = i % msgs.length;
            if (k === 0) s = start;
            s = ratchetDecrypt(s, msgs[k]!, rng).session;
          }
        };
      },
    },
    {
      id: 'encryptDevice',
      label: 'encrypt 100 B (encryptForDevice)',
      prepare: (n) => () => {
        let r = ab;
        for (let i = 0; i < n; i++) r = encryptForDevice(r, pt).record;
      },
    },
    {
      id: 'decryptDevice',
      label: 'decrypt 100 B (decryptFromDevice)',
      prepare: (n) => {
        const msgs = deviceMessages(Math.min(n, DECRYPT_BLOCK));
        return () => {
          let r = ba;
          for (let i = 0; i < n; i++) {
            const k = i % msgs.length;
            if (k === 0) r = ba;
            r = decryptFromDevice(r, msgs[k]!, b.device, a.pub, b.lookup, rng).record;
          }
        };
      },
    },
  ];
}

/** `n` messages alternating B→A, A→B, ...; each arrives with a new ratchet key. */
function pingPongCases(p: Pair): ProtocolCase[] {
  const { a, b, ab, ba } = p;
  const pt = rng(MESSAGE_BYTES);
  return [
    {
      id: 'pingPongRatchet',
      label: 'ping-pong, DH step each (ratchet)',
      prepare: (n) => () => {
        let sa = active(ab);
        let sb = active(ba);
        for (let i = 0; i < n; i++) {
          if (i % 2 === 0) {
            const e = ratchetEncrypt(sb, pt);
            sb = e.session;
            sa = ratchetDecrypt(sa, e.message.subarray(2), rng).session;
            checkRatcheted(sa);
          } else {
            const e = ratchetEncrypt(sa, pt);
            sa = e.session;
            sb = ratchetDecrypt(sb, e.message.subarray(2), rng).session;
            checkRatcheted(sb);
          }
        }
      },
    },
    {
      id: 'pingPongDevice',
      label: 'ping-pong, DH step each (device)',
      prepare: (n) => () => {
        let ra = ab;
        let rb = ba;
        for (let i = 0; i < n; i++) {
          if (i % 2 === 0) {
            const e = encryptForDevice(rb, pt);
            rb = e.record;
            ra = decryptFromDevice(ra, e.message, a.device, b.pub, a.lookup, rng).record;
            checkRatcheted(active(ra));
          } else {
            const e = encryptForDevice(ra, pt);
            ra = e.record;
            rb = decryptFromDevice(rb, e.message, b.device, a.pub, b.lookup, rng).record;
            checkRatcheted(active(rb));
          }
        }
      },
    },
  ];
}

function fanoutCase(p: Pair): ProtocolCase {
  let targets: FanoutTarget<number>[] | undefined;
  const pt = rng(FANOUT_MESSAGE_BYTES);
  return {
    id: 'fanout100',
    label: `fan-out 1 KB to ${FANOUT_TARGETS} sessions`,
    prepare: (n) => {
      // 100 independent established sessions (to one peer device; each has its own keys).
      targets ??= Array.from({ length: FANOUT_TARGETS }, (_, i) => ({ address: i, record: establish(p.a, p.b, p.bundle).ab }));
      const t = targets;
      return () => {
        let out = 0;
        for (let i = 0; i < n; i++) out = fanoutEncrypt(pt, t, rng).messages.length;
        if (out !== FANOUT_TARGETS) throw new Error('fan-out produced the wrong number of messages');
      };
    },
  };
}

/** Built after crypto's ready(): makes the parties and the established pair at once. */
export function protocolCases(): ProtocolCase[] {
  const p = makePair();
  return [...setupCases(p), ...oneWayCases(p), ...pingPongCases(p), fanoutCase(p)];
}

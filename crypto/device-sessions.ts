/**
 * Per-device session management after Signal's Sesame (PROTOCOL.md §8). For each remote
 * (user, device) we keep one active session, used to send, and up to MAX_INACTIVE_SESSIONS
 * inactive ones, still able to receive messages that were in flight when we switched.
 *
 * Rules:
 * - Sending uses the active session.
 * - A prekey message for a base key we already hold decrypts on that session (a retransmitted
 *   first message); a new base key creates a session. Either way that session becomes active —
 *   except when our active session is one we initiated and has not heard back on: both devices
 *   started at once, and both keep the session with the smaller base key, so they converge at once.
 * - A normal message is tried on the active session, then the inactive ones; one that
 *   decrypts on an inactive session promotes it to active.
 * - When the peer reports (inside a message that decrypted here) that it refused the prekey
 *   messages of sessions we started, those of them it can never have confirmed are dropped; if
 *   that was the active one, the session the report arrived on becomes active (`dropRefused`).
 * As everywhere in crypto/, the record passed in is never modified; the caller commits the
 * returned record together with the plaintext.
 */
import { compareBytes, equalBytes } from './bytes.ts';
import { MAX_INACTIVE_SESSIONS } from './consts.ts';
import { CryptoError, isCryptoError } from './errors.ts';
import { type DeviceKeyPair, type DevicePublic, sameDevice } from './identity.ts';
import type { PrekeyBundle } from './prekeys.ts';
import { ratchetDecrypt, ratchetEncrypt, type Session } from './ratchet/session.ts';
import { initiateSession, type PrekeyLookup, respondToPrekey, type UsedPrekeys } from './session-setup.ts';
import type { Rng } from './sodium.ts';
import { decodeDeviceMessage, MessageKind } from './wire/messages.ts';

export interface DeviceSessions {
  readonly active: Session | null;
  /** In PROTOCOL.md §8's order: the session last demoted first, a new one kept by the tie-break in front; the last is dropped beyond the bound. */
  readonly inactive: readonly Session[];
}

export const EMPTY_DEVICE_SESSIONS: DeviceSessions = { active: null, inactive: [] };

function withActive(record: DeviceSessions, session: Session): DeviceSessions {
  const rest = [record.active, ...record.inactive].filter((s): s is Session => s !== null && !equalBytes(s.baseKey, session.baseKey));
  return { active: session, inactive: rest.slice(0, MAX_INACTIVE_SESSIONS) };
}

/**
 * True when a session the peer sends prekey messages on must not replace our active one: ours is
 * a session we initiated, has not heard back on, and has the smaller base key. Both devices compare
 * the same two base keys, so after simultaneous starts both keep the same session.
 */
function keepsOurs(current: Session | null, incoming: Session): current is Session {
  return current !== null && current.initiatedByUs && !current.confirmed && compareBytes(current.baseKey, incoming.baseKey) < 0;
}

function replaced(record: DeviceSessions, old: Session, updated: Session): DeviceSessions {
  if (record.active === old) return { ...record, active: updated };
  return { ...record, inactive: record.inactive.map((s) => (s === old ? updated : s)) };
}

/** Starts a new session from a bundle and makes it active (the old one stays to receive). */
export function startSession(record: DeviceSessions, ours: DeviceKeyPair, theirs: DevicePublic, bundle: PrekeyBundle, rng: Rng): DeviceSessions {
  return withActive(record, initiateSession(ours, theirs, bundle, rng));
}

export function hasSession(record: DeviceSessions): boolean {
  return record.active !== null && record.active.sending !== null;
}

export function encryptForDevice(record: DeviceSessions, plaintext: Uint8Array): { record: DeviceSessions; message: Uint8Array } {
  const active = record.active;
  if (!active) throw new CryptoError('no_session', 'no session with this device');
  const r = ratchetEncrypt(active, plaintext);
  return { record: { ...record, active: r.session }, message: r.message };
}

export interface DecryptResult {
  readonly record: DeviceSessions;
  readonly plaintext: Uint8Array;
  /** One-time prekeys this message consumed: delete them when committing `record`. */
  readonly used: UsedPrekeys | null;
  /** The base key of the session the message decrypted on (held in `record`). */
  readonly baseKey: Uint8Array;
}

/**
 * Decrypts a DeviceMessage from `theirs` (the sender device from its verified device list).
 * `lookup` finds our prekey secrets, for prekey messages.
 */
export function decryptFromDevice(
  record: DeviceSessions,
  bytes: Uint8Array,
  ours: DeviceKeyPair,
  theirs: DevicePublic,
  lookup: PrekeyLookup,
  rng: Rng,
): DecryptResult {
  const m = decodeDeviceMessage(bytes);
  if (m.kind === MessageKind.prekey) {
    // §6 step 1 holds for every prekey message, also a retransmission that finds its session.
    if (!sameDevice(m.prekey.sender, theirs)) throw new CryptoError('identity_mismatch', 'prekey message sender is not the listed device');
    const known = [record.active, ...record.inactive].find((s) => s !== null && equalBytes(s.baseKey, m.prekey.baseKey));
    if (known) {
      const r = ratchetDecrypt(known, m.prekey.message, rng);
      // The peer sends on this session, so it becomes active as a new one would. Left inactive, two
      // devices that each restarted could each keep sending prekey messages on its own pending
      // session and receiving on the other's: never converging, never taking a DH ratchet step.
      const stays = known === record.active || keepsOurs(record.active, known);
      return { record: stays ? replaced(record, known, r.session) : withActive(record, r.session), plaintext: r.plaintext, used: null, baseKey: known.baseKey };
    }
    const setup = respondToPrekey(ours, theirs, m.prekey, lookup);
    const r = ratchetDecrypt(setup.session, m.prekey.message, rng);
    const current = record.active;
    if (keepsOurs(current, r.session)) {
      // Keep ours active; the peer makes the same choice when our prekey message reaches it.
      return { record: { active: current, inactive: [r.session, ...record.inactive].slice(0, MAX_INACTIVE_SESSIONS) }, plaintext: r.plaintext, used: setup.used, baseKey: r.session.baseKey };
    }
    return { record: withActive(record, r.session), plaintext: r.plaintext, used: setup.used, baseKey: r.session.baseKey };
  }

  const candidates = [record.active, ...record.inactive].filter((s): s is Session => s !== null);
  if (candidates.length === 0) throw new CryptoError('no_session', 'no session with this device');
  let first: unknown;
  for (const s of candidates) {
    try {
      const r = ratchetDecrypt(s, m.message, rng);
      const record2 = s === record.active ? { ...record, active: r.session } : withActive(record, r.session);
      return { record: record2, plaintext: r.plaintext, used: null, baseKey: s.baseKey };
    } catch (e) {
      if (!isCryptoError(e)) throw e;
      first ??= e;
      // A replay on the session it belongs to is final: don't let another session mask it.
      if (e.code === 'duplicate_message' && s.receiving.some((c) => equalBytes(c.ratchetKey, m.message.subarray(1, 33)))) throw e;
    }
  }
  throw first;
}

/**
 * PROTOCOL.md §8 rule 7. The peer device reported, in a message that decrypted on our session with
 * base key `carrier` (`DecryptResult.baseKey`), that it refused the prekey messages of the sessions
 * with base keys `refused`. Every held session among them that we initiated and that is not
 * confirmed is dropped: the peer never sent on it and will never decrypt what we send on it (its
 * signed prekey is gone, say), so the tie-break must not keep it active against the session the
 * peer started instead. If the active session was dropped, `carrier` is made active (the peer holds
 * it: it just sent on it); if `carrier` is not held, no session is active. A session the peer has
 * sent on (confirmed) or that it started is never dropped, so a stale or mistaken report changes
 * nothing. Returns `record` itself when nothing is dropped. No draws.
 */
export function dropRefused(record: DeviceSessions, refused: readonly Uint8Array[], carrier: Uint8Array): DeviceSessions {
  for (const k of [...refused, carrier]) if (k.length !== 32) throw new CryptoError('invalid_argument', 'a base key is 32 bytes');
  const drops = (s: Session) => s.initiatedByUs && !s.confirmed && refused.some((k) => equalBytes(k, s.baseKey));
  const kept = record.inactive.filter((s) => !drops(s));
  if (!(record.active && drops(record.active))) return kept.length === record.inactive.length ? record : { active: record.active, inactive: kept };
  const next = kept.find((s) => equalBytes(s.baseKey, carrier)) ?? null;
  return { active: next, inactive: kept.filter((s) => s !== next) };
}

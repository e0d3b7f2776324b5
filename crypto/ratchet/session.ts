/**
 * The double ratchet (Signal's specification, PROTOCOL.md §7), as pure functions over an
 * immutable `Session`: `ratchetEncrypt` and `ratchetDecrypt` return a new session and never
 * touch the one they were given. The caller commits the new state (with the message) only
 * after the call returned; a failed decrypt throws and leaves nothing to commit.
 *
 * Receiving chains are kept (up to MAX_RECEIVING_CHAINS) instead of pre-deriving every key
 * up to PN when the peer ratchets: a late message from an older epoch derives its key on
 * demand, and PN only closes the older chain (indexes >= PN were never sent).
 */
import { equalBytes } from '../bytes.ts';
import { MAX_RECEIVING_CHAINS, MAX_SKIP, MAX_SKIPPED_KEYS } from '../consts.ts';
import { CryptoError } from '../errors.ts';
import { aeadDecrypt, aeadEncrypt, type Rng, x25519, x25519Base } from '../sodium.ts';
import {
  decodeRatchetMessage,
  encodeDeviceMessage,
  MessageKind,
  type PrekeyHeader,
  RATCHET_HEADER_BYTES,
  writeRatchetHeader,
} from '../wire/messages.ts';
import { chainStep, rootStep } from './kdf.ts';

/** Message keys are used exactly once, so a fixed nonce is safe (as Signal's derived IV). */
const ZERO_NONCE = new Uint8Array(24);
/** `end` of a receiving chain the peer has not closed yet. */
export const OPEN_CHAIN = 0xffffffff;

export interface RatchetKeyPair {
  readonly secret: Uint8Array;
  readonly public: Uint8Array;
}

/** Our sending chain: its key and the index of the next message. */
export interface SendingChain {
  readonly chainKey: Uint8Array;
  readonly index: number;
}

/** A chain of the peer's: their ratchet key, the next chain key and index, and where it ends. */
export interface ReceivingChain {
  readonly ratchetKey: Uint8Array;
  readonly chainKey: Uint8Array;
  readonly index: number;
  readonly end: number;
}

export interface SkippedKey {
  readonly ratchetKey: Uint8Array;
  readonly index: number;
  readonly messageKey: Uint8Array;
}

export interface Session {
  /** initiator (deviceId || signingKey || dhKey) || responder (same): bound into every message. */
  readonly ad: Uint8Array;
  /** The initiator's ephemeral public key: names the session (dedupe, Sesame tie-break). */
  readonly baseKey: Uint8Array;
  readonly initiatedByUs: boolean;
  /** True once a message from the peer decrypted on this session. */
  readonly confirmed: boolean;
  readonly rootKey: Uint8Array;
  readonly ourRatchet: RatchetKeyPair;
  readonly sending: SendingChain | null;
  readonly previousCounter: number;
  /** Newest first. */
  readonly receiving: readonly ReceivingChain[];
  /** Oldest first, so eviction drops from the front. */
  readonly skipped: readonly SkippedKey[];
  /** Set on the initiator until the first reply: every message goes out as a prekey message. */
  readonly pending: PrekeyHeader | null;
}

/**
 * Encrypts one message. Deterministic (no randomness: the DH step happens on receipt), and
 * returns the DeviceMessage bytes: a prekey message while the session is unconfirmed.
 */
export function ratchetEncrypt(session: Session, plaintext: Uint8Array): { session: Session; message: Uint8Array } {
  const sending = session.sending;
  if (!sending) throw new CryptoError('no_session', 'this session cannot send before it has received');
  if (sending.index >= OPEN_CHAIN) throw new CryptoError('no_session', 'sending chain exhausted');
  const step = chainStep(sending.chainKey);
  const adLen = session.ad.length;
  const ad = new Uint8Array(adLen + RATCHET_HEADER_BYTES);
  ad.set(session.ad);
  writeRatchetHeader(ad, adLen, { ratchetKey: session.ourRatchet.public, previousCounter: session.previousCounter, index: sending.index });
  const ct = aeadEncrypt(step.messageKey, ZERO_NONCE, plaintext, ad);
  const body = new Uint8Array(RATCHET_HEADER_BYTES + ct.length);
  body.set(ad.subarray(adLen));
  body.set(ct, RATCHET_HEADER_BYTES);
  const message = session.pending
    ? encodeDeviceMessage({ kind: MessageKind.prekey, prekey: { ...session.pending, message: body } })
    : encodeDeviceMessage({ kind: MessageKind.ratchet, message: body });
  return { session: { ...session, sending: { chainKey: step.chainKey, index: sending.index + 1 } }, message };
}

/**
 * Decrypts one RatchetMessage. Throws `duplicate_message` for a key already used (replay),
 * `too_many_skipped` past MAX_SKIP, `decrypt_failed` on authentication failure; in every
 * failure case `session` is unchanged (it is never mutated) and nothing is returned.
 */
export function ratchetDecrypt(session: Session, messageBytes: Uint8Array, rng: Rng): { session: Session; plaintext: Uint8Array } {
  const msg = decodeRatchetMessage(messageBytes);
  const ad = adFor(session, msg.header);

  // A key we skipped earlier: use it and forget it.
  const sk = session.skipped.findIndex((k) => k.index === msg.index && equalBytes(k.ratchetKey, msg.ratchetKey));
  if (sk >= 0) {
    const plaintext = aeadDecrypt(session.skipped[sk]!.messageKey, ZERO_NONCE, msg.ciphertext, ad);
    const skipped = session.skipped.filter((_, i) => i !== sk);
    return { session: { ...session, skipped, confirmed: true, pending: null }, plaintext };
  }

  let next: Session = session;
  let chainAt = session.receiving.findIndex((c) => equalBytes(c.ratchetKey, msg.ratchetKey));
  if (chainAt < 0) {
    if (msg.index > MAX_SKIP) throw new CryptoError('too_many_skipped', `index ${msg.index} on a new chain`);
    next = dhRatchet(session, msg.ratchetKey, msg.previousCounter, rng);
    chainAt = 0;
  }
  const chain = next.receiving[chainAt]!;
  if (msg.index < chain.index) throw new CryptoError('duplicate_message', 'message key already used');
  if (msg.index >= chain.end) throw new CryptoError('decrypt_failed', 'index past the end of its chain');
  if (msg.index - chain.index > MAX_SKIP) throw new CryptoError('too_many_skipped', `${msg.index - chain.index} keys`);

  let chainKey = chain.chainKey;
  const newlySkipped: SkippedKey[] = [];
  for (let i = chain.index; i < msg.index; i++) {
    const s = chainStep(chainKey);
    newlySkipped.push({ ratchetKey: chain.ratchetKey, index: i, messageKey: s.messageKey });
    chainKey = s.chainKey;
  }
  const step = chainStep(chainKey);
  const plaintext = aeadDecrypt(step.messageKey, ZERO_NONCE, msg.ciphertext, ad);

  // Authenticated: now build the state to commit.
  const receiving = next.receiving.slice();
  receiving[chainAt] = { ...chain, chainKey: step.chainKey, index: msg.index + 1 };
  let skipped = newlySkipped.length ? [...next.skipped, ...newlySkipped] : next.skipped;
  if (skipped.length > MAX_SKIPPED_KEYS) skipped = skipped.slice(skipped.length - MAX_SKIPPED_KEYS);
  return { session: { ...next, receiving, skipped, confirmed: true, pending: null }, plaintext };
}

/**
 * The DH ratchet step on a new ratchet key from the peer (Signal §3.5): a receiving chain
 * from DH(our current key, theirs), a fresh key pair, and a sending chain from DH(new, theirs).
 * The previous receiving chain is closed at PN; chains past MAX_RECEIVING_CHAINS are dropped
 * with their skipped keys kept (those are bounded separately).
 */
function dhRatchet(session: Session, theirKey: Uint8Array, previousCounter: number, rng: Rng): Session {
  // `theirKey` is a view into the caller's message bytes: the state keeps its own copy, or a caller
  // that reuses its receive buffer would rewrite the committed session (and it would pin that buffer).
  const recv = rootStep(session.rootKey, x25519(session.ourRatchet.secret, theirKey));
  const secret = rng(32);
  const ours: RatchetKeyPair = { secret, public: x25519Base(secret) };
  const send = rootStep(recv.rootKey, x25519(secret, theirKey));
  const older = session.receiving.map((c, i) => (i === 0 && c.end === OPEN_CHAIN ? { ...c, end: previousCounter } : c));
  const receiving = [{ ratchetKey: theirKey.slice(), chainKey: recv.chainKey, index: 0, end: OPEN_CHAIN }, ...older].slice(0, MAX_RECEIVING_CHAINS);
  return {
    ...session,
    rootKey: send.rootKey,
    ourRatchet: ours,
    sending: { chainKey: send.chainKey, index: 0 },
    previousCounter: session.sending?.index ?? 0,
    receiving,
  };
}

function adFor(session: Session, header: Uint8Array): Uint8Array {
  const ad = new Uint8Array(session.ad.length + header.length);
  ad.set(session.ad);
  ad.set(header, session.ad.length);
  return ad;
}

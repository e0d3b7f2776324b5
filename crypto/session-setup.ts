/**
 * Session setup, PQXDH-style (PROTOCOL.md §6): X3DH's DH set plus an X-Wing encapsulation to
 * the responder's signed post-quantum prekey, so a recording of today's traffic stays safe
 * against a future quantum computer (harvest-now-decrypt-later), while X25519 keeps it safe
 * if ML-KEM is broken.
 *
 *   DH1 = X25519(IK_A, SPK_B)   DH2 = X25519(EK_A, IK_B)   DH3 = X25519(EK_A, SPK_B)
 *   DH4 = X25519(EK_A, OPK_B)   (only with a one-time prekey)
 *   (CT, SS) = X-Wing.Encaps(PQPK_B)
 *   SK = KDF("Petrel/v1/PQXDH", 0xFF*32 || DH1 || DH2 || DH3 [|| DH4] || SS, 32)
 *   AD = A.deviceId || A.signingKey || A.dhKey || B.deviceId || B.signingKey || B.dhKey
 *
 * The initiator then takes the first DH ratchet step with SPK_B as the responder's ratchet
 * key; the responder starts with SPK_B's key pair as its own ratchet key.
 */
import { concat, equalBytes } from './bytes.ts';
import { LABEL } from './consts.ts';
import { CryptoError } from './errors.ts';
import { type DeviceKeyPair, type DevicePublic, sameDevice } from './identity.ts';
import { kdf } from './kdf.ts';
import { PrekeyKind, type PrekeyBundle, type PrekeySecret, verifyBundle } from './prekeys.ts';
import { rootStep } from './ratchet/kdf.ts';
import type { Session } from './ratchet/session.ts';
import { type Rng, x25519, x25519Base, xwingDecapsulate, xwingEncapsulate } from './sodium.ts';
import type { PrekeyHeader } from './wire/messages.ts';

const DOMAIN_PAD = new Uint8Array(32).fill(0xff);

function sessionAd(initiator: DevicePublic, responder: DevicePublic): Uint8Array {
  return concat(initiator.deviceId, initiator.signingKey, initiator.dhKey, responder.deviceId, responder.signingKey, responder.dhKey);
}

function deriveSecret(dh: Uint8Array[], pqSecret: Uint8Array): Uint8Array {
  return kdf(LABEL.pqxdh, concat(DOMAIN_PAD, ...dh, pqSecret), 32);
}

/**
 * Starts a session with `theirs` from a bundle fetched from the relay. The bundle is verified
 * against `theirs`, which must come from that user's verified device list.
 */
export function initiateSession(ours: DeviceKeyPair, theirs: DevicePublic, bundle: PrekeyBundle, rng: Rng): Session {
  verifyBundle(bundle, theirs);
  const spk = bundle.signedPrekey.publicKey;
  const ek = rng(32);
  const baseKey = x25519Base(ek);
  const dh = [x25519(ours.dhSecret, spk), x25519(ek, theirs.dhKey), x25519(ek, spk)];
  if (bundle.oneTimePrekey) dh.push(x25519(ek, bundle.oneTimePrekey.publicKey));
  const pq = xwingEncapsulate(bundle.pqPrekey.publicKey, rng);
  const sk = deriveSecret(dh, pq.sharedSecret);

  const ratchetSecret = rng(32);
  const first = rootStep(sk, x25519(ratchetSecret, spk));
  const pending: PrekeyHeader = {
    sender: { deviceId: ours.deviceId, signingKey: ours.signingKey, dhKey: ours.dhKey },
    baseKey,
    signedPrekeyId: bundle.signedPrekey.id,
    pqKind: bundle.pqPrekey.kind as PrekeyHeader['pqKind'],
    pqPrekeyId: bundle.pqPrekey.id,
    oneTimePrekeyId: bundle.oneTimePrekey ? bundle.oneTimePrekey.id : null,
    pqCiphertext: pq.ciphertext,
  };
  return {
    ad: sessionAd(ours, theirs),
    baseKey,
    initiatedByUs: true,
    confirmed: false,
    rootKey: first.rootKey,
    ourRatchet: { secret: ratchetSecret, public: x25519Base(ratchetSecret) },
    sending: { chainKey: first.chainKey, index: 0 },
    previousCounter: 0,
    receiving: [],
    skipped: [],
    pending,
  };
}

/** How the responder finds its prekey secrets; undefined when it no longer holds that key. */
export type PrekeyLookup = (kind: PrekeyKind, id: number) => PrekeySecret | undefined;

/** Which one-time keys a responder used; delete them only after committing the new session. */
export interface UsedPrekeys {
  readonly oneTimePrekeyId: number | null;
  readonly pqOneTimePrekeyId: number | null;
}

/**
 * The responder's side: rebuilds SK from a prekey message. `theirs` is the sender device as
 * listed in the sender's verified device list; a prekey message claiming other keys is refused.
 * The returned session has not decrypted anything yet; the caller decrypts the embedded
 * message with it and commits both only if that succeeds.
 */
export function respondToPrekey(ours: DeviceKeyPair, theirs: DevicePublic, header: PrekeyHeader, lookup: PrekeyLookup): { session: Session; used: UsedPrekeys } {
  if (!sameDevice(header.sender, theirs)) throw new CryptoError('identity_mismatch', 'prekey message sender is not the listed device');
  const spk = lookup(PrekeyKind.signed, header.signedPrekeyId);
  const pq = lookup(header.pqKind, header.pqPrekeyId);
  const otk = header.oneTimePrekeyId === null ? undefined : lookup(PrekeyKind.oneTime, header.oneTimePrekeyId);
  if (!spk || spk.kind !== PrekeyKind.signed) throw new CryptoError('unknown_prekey', `signed prekey ${header.signedPrekeyId}`);
  if (!pq || pq.kind !== header.pqKind) throw new CryptoError('unknown_prekey', `pq prekey ${header.pqPrekeyId}`);
  if (header.oneTimePrekeyId !== null && (!otk || otk.kind !== PrekeyKind.oneTime)) {
    throw new CryptoError('unknown_prekey', `one-time prekey ${header.oneTimePrekeyId}`);
  }
  if (equalBytes(header.baseKey, spk.publicKey)) throw new CryptoError('invalid_public_key', 'base key equals our prekey');
  // X25519 ignores the top bit, so a base key with it set computes the same SK as the honest one
  // (which never has it set) under another name: a replayed first message would then create a
  // second session instead of being recognised by its base key (§8). Refuse that encoding.
  if (header.baseKey[31]! & 0x80) throw new CryptoError('invalid_public_key', 'base key has its top bit set');

  const dh = [x25519(spk.secretKey, theirs.dhKey), x25519(ours.dhSecret, header.baseKey), x25519(spk.secretKey, header.baseKey)];
  if (otk) dh.push(x25519(otk.secretKey, header.baseKey));
  const sk = deriveSecret(dh, xwingDecapsulate(header.pqCiphertext, pq.secretKey));
  const session: Session = {
    ad: sessionAd(theirs, ours),
    baseKey: header.baseKey,
    initiatedByUs: false,
    confirmed: false,
    rootKey: sk,
    ourRatchet: { secret: spk.secretKey, public: spk.publicKey },
    sending: null,
    previousCounter: 0,
    receiving: [],
    skipped: [],
    pending: null,
  };
  return {
    session,
    used: {
      oneTimePrekeyId: header.oneTimePrekeyId,
      pqOneTimePrekeyId: header.pqKind === PrekeyKind.pqOneTime ? header.pqPrekeyId : null,
    },
  };
}

// The libsodium primitives the protocol is built from, called directly through
// libsodium-wrappers (test code may; crypto/ reaches libsodium only through sodium.ts).
// Inputs have the shapes the protocol uses, so the floors derived from these are honest:
// ratchet AEAD calls carry 201 bytes of associated data (the session's 160 bytes of device
// keys plus the 41-byte ratchet header), chain steps are keyed BLAKE2b-512 over a short label.
import sodium from 'libsodium-wrappers';
import { systemRng } from '../../crypto/index.ts';
import type { BenchCase } from './harness.ts';

/** Session AD (2 x (16 + 32 + 32)) + ratchet header (41). */
export const RATCHET_AD_BYTES = 201;
export const MESSAGE_BYTES = 100;
/** Fan-out key message: version + content key + payload hash. */
export const KEY_MESSAGE_BYTES = 65;
export const FANOUT_MESSAGE_BYTES = 1024;
/** The fan-out payload the sender hashes: version byte + 1 KB ciphertext + 16-byte tag. */
const PAYLOAD_BYTES = 1 + FANOUT_MESSAGE_BYTES + 16;
/** The signed bytes of an X25519 prekey: u8(len) || "Petrel/v1/sig/prekey" || id 16 || kind || u32 || key 32. */
const PREKEY_SIGNED_BYTES = 21 + 16 + 1 + 4 + 32;
/** The same for an X-Wing prekey: its 1216-byte public key makes SHA-512 inside verify ~10 blocks longer. */
const PQ_PREKEY_SIGNED_BYTES = 21 + 16 + 1 + 4 + 1216;

export type PrimitiveId =
  | 'x25519'
  | 'x25519Base'
  | 'aeadEncrypt100'
  | 'aeadDecrypt100'
  | 'aeadEncrypt65'
  | 'aeadEncrypt1k'
  | 'blake2bKeyed512'
  | 'blake2b256of1k'
  | 'xwingEncaps'
  | 'xwingDecaps'
  | 'ed25519Verify'
  | 'ed25519VerifyPq';

export interface PrimitiveCase extends BenchCase {
  readonly id: PrimitiveId;
  /** Asked for by name in the brief; the others refine floors (marked "aux" in the table). */
  readonly core: boolean;
}

/** `n` calls of `op`; the last result is kept so the loop has an observable effect. */
function loop(n: number, op: () => unknown): () => void {
  return () => {
    let last: unknown;
    for (let i = 0; i < n; i++) last = op();
    if (last === undefined || last === false) throw new Error('primitive returned nothing');
  };
}

function aeadCase(id: PrimitiveId, label: string, core: boolean, size: number, adBytes: number): PrimitiveCase {
  const key = systemRng(32);
  const nonce = new Uint8Array(24);
  const msg = systemRng(size);
  const ad = systemRng(adBytes);
  return { id, label, core, prepare: (n) => loop(n, () => sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(msg, ad, null, nonce, key)) };
}

/** Built after libsodium is ready (they draw keys when created). */
export function primitiveCases(): PrimitiveCase[] {
  const secret = systemRng(32);
  const peer = sodium.crypto_scalarmult_base(systemRng(32));

  const aeadKey = systemRng(32);
  const nonce = new Uint8Array(24);
  const ad = systemRng(RATCHET_AD_BYTES);
  const ct100 = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(systemRng(MESSAGE_BYTES), ad, null, nonce, aeadKey);

  const chainKey = systemRng(32);
  const chainLabel = systemRng(16); // u8(15) || "Petrel/v1/chain"
  const payload = systemRng(PAYLOAD_BYTES);

  const pqSeed = systemRng(32); // crypto/ stores X-Wing secret keys as their 32-byte seed
  const pq = sodium.crypto_kem_xwing_seed_keypair(pqSeed);
  const encSeed = systemRng(64);
  const pqCt = sodium.crypto_kem_xwing_enc_deterministic(pq.publicKey, encSeed).ciphertext;

  const signer = sodium.crypto_sign_seed_keypair(systemRng(32));
  const signed = systemRng(PREKEY_SIGNED_BYTES);
  const sig = sodium.crypto_sign_detached(signed, signer.privateKey);
  const signedPq = systemRng(PQ_PREKEY_SIGNED_BYTES);
  const sigPq = sodium.crypto_sign_detached(signedPq, signer.privateKey);

  return [
    { id: 'x25519', label: 'X25519 scalar mult', core: true, prepare: (n) => loop(n, () => sodium.crypto_scalarmult(secret, peer)) },
    { id: 'x25519Base', label: 'X25519 base-point mult', core: false, prepare: (n) => loop(n, () => sodium.crypto_scalarmult_base(secret)) },
    aeadCase('aeadEncrypt100', 'XChaCha20-Poly1305 encrypt 100 B', true, MESSAGE_BYTES, RATCHET_AD_BYTES),
    {
      id: 'aeadDecrypt100',
      label: 'XChaCha20-Poly1305 decrypt 100 B',
      core: false,
      prepare: (n) => loop(n, () => sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ct100, ad, nonce, aeadKey)),
    },
    aeadCase('aeadEncrypt65', 'XChaCha20-Poly1305 encrypt 65 B', false, KEY_MESSAGE_BYTES, RATCHET_AD_BYTES),
    aeadCase('aeadEncrypt1k', 'XChaCha20-Poly1305 encrypt 1 KB', false, FANOUT_MESSAGE_BYTES, 17),
    { id: 'blake2bKeyed512', label: 'BLAKE2b-512 keyed (chain step)', core: true, prepare: (n) => loop(n, () => sodium.crypto_generichash(64, chainLabel, chainKey)) },
    { id: 'blake2b256of1k', label: 'BLAKE2b-256 of 1 KB payload', core: false, prepare: (n) => loop(n, () => sodium.crypto_generichash(32, payload, null)) },
    { id: 'xwingEncaps', label: 'X-Wing encapsulate', core: true, prepare: (n) => loop(n, () => sodium.crypto_kem_xwing_enc_deterministic(pq.publicKey, encSeed)) },
    { id: 'xwingDecaps', label: 'X-Wing decapsulate (seed key)', core: true, prepare: (n) => loop(n, () => sodium.crypto_kem_xwing_dec(pqCt, pqSeed)) },
    { id: 'ed25519Verify', label: 'Ed25519 verify (prekey sig)', core: true, prepare: (n) => loop(n, () => sodium.crypto_sign_verify_detached(sig, signed, signer.publicKey)) },
    {
      id: 'ed25519VerifyPq',
      label: 'Ed25519 verify (X-Wing prekey sig)',
      core: false,
      prepare: (n) => loop(n, () => sodium.crypto_sign_verify_detached(sigPq, signedPq, signer.publicKey)),
    },
  ];
}

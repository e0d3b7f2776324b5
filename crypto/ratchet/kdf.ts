/**
 * The double ratchet's two KDFs (PROTOCOL.md §7.1), each one BLAKE2b-512 call whose 64-byte
 * output is split in two halves (two independent PRF outputs):
 *
 *   KDF_RK(rk, dh)  = KDF("Petrel/v1/root", dh, 64, key = rk)   -> rootKey' || chainKey
 *   KDF_CK(ck)      = BLAKE2b-512(key = ck, msg = u8(15) || "Petrel/v1/chain") -> messageKey || chainKey'
 *
 * One call per message step matters: the chain step runs once per message and once per
 * skipped key, and libsodium.js pays a fixed cost per call.
 */
import { LABEL } from '../consts.ts';
import { kdf, kdfLabel } from '../kdf.ts';
import { blake2b } from '../sodium.ts';

const CHAIN_MESSAGE = kdfLabel(LABEL.chainStep);

export function chainStep(chainKey: Uint8Array): { messageKey: Uint8Array; chainKey: Uint8Array } {
  const out = blake2b(64, CHAIN_MESSAGE, chainKey);
  return { messageKey: out.subarray(0, 32), chainKey: out.subarray(32, 64) };
}

export function rootStep(rootKey: Uint8Array, dhOutput: Uint8Array): { rootKey: Uint8Array; chainKey: Uint8Array } {
  const out = kdf(LABEL.rootStep, dhOutput, 64, rootKey);
  return { rootKey: out.subarray(0, 32), chainKey: out.subarray(32, 64) };
}

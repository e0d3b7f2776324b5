/**
 * Petrel's protocol core. Pure and isomorphic: imports nothing but libsodium-wrappers, does
 * no I/O, draws randomness only through the `Rng` it is given. Await `ready()` once first.
 * PROTOCOL.md in this folder is the specification this code implements.
 */
export * from './errors.ts';
export { ready, systemRng, seededRng, type Rng, toBase64url, fromBase64url } from './sodium.ts';
export * from './bytes.ts';
export * from './consts.ts';
export { kdf } from './kdf.ts';
export * from './identity.ts';
export * from './device-list.ts';
export * from './device-link.ts';
export * from './backup.ts';
export * from './prekeys.ts';
export * from './session-setup.ts';
export { ratchetEncrypt, ratchetDecrypt, type Session, type SendingChain, type ReceivingChain, type SkippedKey } from './ratchet/session.ts';
export * from './device-sessions.ts';
export * from './fanout.ts';
export * from './attachment.ts';
export * from './safety-number.ts';
export * from './username.ts';
export * from './wire/messages.ts';
export * from './wire/state.ts';

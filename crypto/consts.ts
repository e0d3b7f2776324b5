/**
 * Every KDF label, signature context and limit of the protocol, in one place.
 * Labels are ASCII, start with "Petrel/v1/" and are never reused for two purposes
 * (PROTOCOL.md §2). A limit's comment says what it trades off.
 */

export const LABEL = {
  deviceId: 'Petrel/v1/device-id',
  pqxdh: 'Petrel/v1/PQXDH',
  rootStep: 'Petrel/v1/root',
  chainStep: 'Petrel/v1/chain',
  payload: 'Petrel/v1/payload',
  attachmentHeader: 'Petrel/v1/attachment-header',
  safetyNumber: 'Petrel/v1/safety-number',
  backup: 'Petrel/v1/account-backup',
} as const;

/** Signature contexts: prefixed to the signed bytes so one signature can never be replayed as another kind. */
export const SIG_CONTEXT = {
  deviceList: 'Petrel/v1/sig/device-list',
  prekey: 'Petrel/v1/sig/prekey',
  deviceClaim: 'Petrel/v1/sig/device-claim',
} as const;

/**
 * Most message keys one incoming message may make us derive and store in one chain.
 * Larger tolerates longer loss/reordering runs (a device offline while a peer's messages
 * were dropped); smaller bounds the CPU an attacker can make us burn per forged header
 * (each skipped key is one BLAKE2b). 2,000 ≈ 1.5 ms of work and covers a day of heavy chat
 * on one chain. Signal uses 2,000 too; vodozemac 2,000 (MAX_MESSAGE_GAP).
 */
export const MAX_SKIP = 2000;

/**
 * Most skipped message keys stored per session, across all chains; the oldest are evicted
 * first. Each costs 68 bytes of state, so 2,000 keys ≈ 136 KB per session at worst.
 * A message whose key was evicted is undecryptable (reported, and the app asks for a resend).
 */
export const MAX_SKIPPED_KEYS = 2000;

/**
 * Receiving chains kept per session, current one included. Keeping old chain keys lets a
 * late message from a previous ratchet epoch decrypt without pre-storing every key up to
 * PN. Five epochs covers a conversation's usual back-and-forth reordering; more costs
 * 72 bytes each and widens the window an old stolen chain key stays useful.
 */
export const MAX_RECEIVING_CHAINS = 5;

/**
 * Inactive sessions kept per remote device (Sesame). When both sides start a session at
 * once, or a device restores, an older session may still receive messages in flight.
 * Signal keeps 40 archived states; we keep 5 — each can be a few KB with skipped keys.
 */
export const MAX_INACTIVE_SESSIONS = 5;

/** Devices a signed device list may hold, removed ones included (they are never dropped). */
export const MAX_DEVICE_LIST_ENTRIES = 256;

/** Safety-number hash iterations, as Signal's (5,200): makes a search for a colliding key ~2^12 times dearer. */
export const SAFETY_NUMBER_ITERATIONS = 5200;

/** Attachment chunk size: 64 KiB keeps per-chunk overhead (17 bytes) under 0.03% and memory per step small. */
export const ATTACHMENT_CHUNK_BYTES = 65536;

export const KEY_BYTES = 32;
export const DEVICE_ID_BYTES = 16;
export const HASH_BYTES = 32;

/**
 * The engine's storage, described once and implemented twice: IndexedDB through `idb` in the
 * browser (web/storage/idb-store.ts) and a crash-safe file-backed store in Node
 * (web/headless/file-store.ts). The engine sees only this interface.
 *
 * The model is IndexedDB's: named tables of plain records (strings, numbers, booleans, null,
 * arrays, plain objects and Uint8Array), each with a key path and optional secondary indexes,
 * and transactions that are atomic — all of a write transaction's puts and deletes land, or
 * none does, also across a crash. As with IndexedDB, a transaction callback must await nothing
 * but the transaction's own operations: the engine decrypts and computes first, then opens one
 * short transaction to commit (compute, then commit).
 *
 * Keys and index values are strings, numbers or arrays of those, ordered as IndexedDB orders
 * them: numbers < strings < arrays, arrays element by element.
 */

import type { GroupState } from '../protocol/content.ts';

export type KeyPart = string | number;
export type Key = KeyPart | readonly KeyPart[];

export interface TableSpec {
  /** Property (or properties, for a compound key) holding the primary key. */
  readonly keyPath: string | readonly string[];
  /** Secondary indexes: name -> property path(s). Not unique. */
  readonly indexes: Readonly<Record<string, string | readonly string[]>>;
}

/** Bump SCHEMA_VERSION and add an `if (oldVersion < N)` step in each store when this changes. */
export const SCHEMA_VERSION = 1;

export const TABLES = {
  /**
   * Small singletons: the account, this device's keys and token, cursors, settings; and per remote
   * device, what was sent on its sessions not yet confirmed (`unconfirmed/<address>`, resend.ts).
   */
  meta: { keyPath: 'key', indexes: {} },
  /** Our prekey secrets, `${kind}/${id}`. */
  prekeys: { keyPath: 'id', indexes: {} },
  /** crypto/'s encoded DeviceSessions per remote device, `${user}/${deviceHex}`. */
  sessions: { keyPath: 'address', indexes: {} },
  /** People we talk to, with the pinned account key and the last verified device list. */
  contacts: { keyPath: 'username', indexes: {} },
  conversations: { keyPath: 'id', indexes: { byActivity: ['lastActivity', 'id'] } },
  messages: { keyPath: 'key', indexes: { byConversation: ['conversation', 'order'] } },
  /** Messages not yet accepted by the relay, oldest first. */
  outbox: { keyPath: 'id', indexes: { byCreated: ['createdAt', 'id'] } },
  /** Envelopes that could not be decrypted: recorded, never silently dropped. */
  failures: { keyPath: 'id', indexes: {} },
  /** Control messages already applied (de-duplication by sender and message id). */
  seen: { keyPath: 'key', indexes: {} },
} as const satisfies Record<string, TableSpec>;

export type TableName = keyof typeof TABLES;

export interface MetaRow {
  readonly key: string;
  readonly value: unknown;
  /** 'cursor': the timestamp of the envelope at it (what a restored relay needs: relay/inbox/reader.ts realignInbox). */
  readonly at?: number | undefined;
}

export interface PrekeyRow {
  readonly id: string;
  readonly secret: Uint8Array;
}

export interface SessionRow {
  readonly address: string;
  readonly record: Uint8Array;
}

export interface ContactRow {
  readonly username: string;
  /** Pinned on first use; a different key later sets keyChangedAt and clears verified. */
  readonly accountKey: Uint8Array;
  readonly list: Uint8Array;
  readonly listVersion: number;
  readonly verified: boolean;
  readonly keyChangedAt: number | null;
  readonly firstSeen: number;
}

export type ConversationKind = 'direct' | 'group';

export interface ConversationRow {
  /** `dm:<username>` or `group:<id>`. */
  readonly id: string;
  readonly kind: ConversationKind;
  /** Group name; for a direct conversation the peer's username. */
  readonly title: string;
  /** Other usernames (for a group: every member but us). */
  readonly members: readonly string[];
  readonly groupVersion: number;
  /** We were removed from, or left, the group: nothing more is sent or accepted. */
  readonly left: boolean;
  /**
   * A group's mergeable state (group-state.ts), which title, members, groupVersion and left
   * show. Absent from rows stored before it existed: those are read as their snapshot.
   */
  readonly groupState?: GroupState;
  /** Removal notices this device sent (apply.ts), as 'user version' (of their roster entry). */
  readonly noticed?: readonly string[];
  readonly lastActivity: number;
  readonly lastPreview: string;
  readonly unread: number;
  readonly createdAt: number;
  /** A contact's account key changed: shown as a warning until acknowledged. */
  readonly keyWarning: boolean;
}

export type MessageStatus = 'pending' | 'sent' | 'delivered' | 'read' | 'received' | 'failed';

export interface AttachmentRef {
  readonly id: string;
  readonly pointer: Uint8Array;
  readonly name: string;
  readonly mime: string;
  readonly size: number;
}

export interface MessageRow {
  /** `${senderUser}/${id}`: ids are chosen by senders, so they are unique only per sender. */
  readonly key: string;
  readonly id: string;
  readonly conversation: string;
  readonly sender: string;
  readonly senderDevice: string;
  readonly sentAt: number;
  readonly receivedAt: number;
  /** Sort key within the conversation: sentAt, then arrival as a tie-break. */
  readonly order: number;
  readonly text: string;
  readonly replyTo: string | null;
  readonly attachment: AttachmentRef | null;
  /** username -> emoji. */
  readonly reactions: Readonly<Record<string, string>>;
  readonly editedAt: number | null;
  readonly deleted: boolean;
  readonly status: MessageStatus;
  /** Users (other than us) whose devices confirmed delivery / reading. */
  readonly deliveredTo: readonly string[];
  readonly readBy: readonly string[];
  /** A system line (member added, device added, ...), not a user's message. */
  readonly system: boolean;
  /**
   * Our reactions, edits and deletes of this message that the relay refused for good (outbox.ts),
   * at most one per kind of change (`changeSlot`): shown on the message with Retry and Discard
   * until one of them is chosen or a newer change of the same kind replaces it. Absent from rows
   * stored before it existed (read as none). Local to this device: never exported with history.
   */
  readonly failedChanges?: readonly FailedChange[];
  /**
   * Why the relay refused this message of ours for good (its error code, explain.ts words it),
   * while `status` is 'failed'; dropped when it is queued again (Engine.retry). Absent from rows
   * that failed before it was kept (no reason known then).
   */
  readonly failedCode?: string;
}

export type ChangeKind = 'reaction' | 'edit' | 'delete';

/**
 * What everyone else still sees of a message while a change of ours is not through: the state
 * before the change (or before the oldest change of the same kind still not through). Discarding
 * a change that failed for good puts it back, so this device shows what the others see. So a
 * delete's undo keeps the text on this device (as it was before the delete) until the delete goes
 * through or its failure is discarded: only then is it gone from here too.
 */
export type ChangeUndo =
  | { readonly kind: 'text'; readonly text: string; readonly attachment: AttachmentRef | null; readonly editedAt: number | null; readonly deleted: boolean }
  /** Our reaction before, '' for none. */
  | { readonly kind: 'reaction'; readonly emoji: string };

/** A change of ours to a message that failed for good (MessageRow.failedChanges). */
export interface FailedChange {
  /**
   * The change's own message id. Retry queues it again under this id with the same time and
   * body, so the relay answers a resubmission with its first result and every receiver that
   * somehow got it already drops the copy (apply.ts's `seen`): it is applied once at most.
   */
  readonly id: string;
  readonly kind: ChangeKind;
  /** The encoded content as first queued (protocol/content.ts). */
  readonly content: Uint8Array;
  /** The relay's error code (explain.ts words it). */
  readonly code: string;
  readonly failedAt: number;
  /** Null for a change queued before undos were kept: discarding it then only drops the record. */
  readonly undo: ChangeUndo | null;
  /** A reaction's emoji ('' : taking ours back), for the notice. */
  readonly emoji?: string;
}

/** Reactions replace reactions; an edit and a delete both replace the text, so they replace each other. */
export function changeSlot(kind: ChangeKind): 'reaction' | 'text' {
  return kind === 'reaction' ? 'reaction' : 'text';
}

export interface OutboxRow {
  /** The client message id: also the relay's idempotency key, so a retry is never a duplicate. */
  readonly id: string;
  readonly createdAt: number;
  /** Usernames the message goes to (the relay adds our own other devices). */
  readonly to: readonly string[];
  /** The encoded content (web/core/protocol/content.ts), encrypted only when sent. */
  readonly content: Uint8Array;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly lastError: string | null;
  /**
   * Once encrypted, the exact submission (payload and envelopes) is kept until the relay accepts
   * it, so a retry resends the same ciphertext: the ratchet never advances twice for one message.
   */
  readonly sealed: SealedSubmission | null;
  /**
   * A reaction, edit or delete of a message: what the others see of it until this goes through,
   * kept to be put back if it fails for good and is then discarded (MessageRow.failedChanges).
   * Absent for everything else, and from rows queued before it existed.
   */
  readonly undo?: ChangeUndo | null;
}

export interface SealedSubmission {
  readonly payload: Uint8Array;
  readonly envelopes: readonly { readonly user: string; readonly device: Uint8Array; readonly body: Uint8Array }[];
}

export interface FailureRow {
  readonly id: string;
  readonly sender: string;
  readonly senderDevice: string;
  readonly seq: number;
  readonly error: string;
  readonly at: number;
  /** The base key (b64) when the envelope was a prekey message: the repair request names its session (PROTOCOL.md §8 rule 7). */
  readonly baseKey?: string;
}

export interface SeenRow {
  readonly key: string;
  readonly at: number;
}

export interface Rows {
  meta: MetaRow;
  prekeys: PrekeyRow;
  sessions: SessionRow;
  contacts: ContactRow;
  conversations: ConversationRow;
  messages: MessageRow;
  outbox: OutboxRow;
  failures: FailureRow;
  seen: SeenRow;
}

export interface Range {
  /** Inclusive bounds on the index (or primary key); omitted = unbounded. */
  readonly lower?: Key;
  readonly upper?: Key;
}

export interface QueryOptions extends Range {
  /** Query a secondary index instead of the primary key. */
  readonly index?: string;
  readonly limit?: number;
  /** Largest first. */
  readonly reverse?: boolean;
}

export interface ReadTx {
  get<T extends TableName>(table: T, key: Key): Promise<Rows[T] | undefined>;
  getAll<T extends TableName>(table: T, query?: QueryOptions): Promise<Rows[T][]>;
  count<T extends TableName>(table: T, query?: QueryOptions): Promise<number>;
}

export interface WriteTx extends ReadTx {
  put<T extends TableName>(table: T, row: Rows[T]): Promise<void>;
  delete<T extends TableName>(table: T, key: Key): Promise<void>;
  /** Deletes every row of the table. */
  clear<T extends TableName>(table: T): Promise<void>;
}

export interface Store {
  /** A consistent snapshot of the named tables. */
  read<R>(tables: readonly TableName[], fn: (tx: ReadTx) => Promise<R>): Promise<R>;
  /** Atomic and durable once the promise resolves: all of fn's writes, or (if fn throws) none. */
  write<R>(tables: readonly TableName[], fn: (tx: WriteTx) => Promise<R>): Promise<R>;
  close(): Promise<void>;
}

/** IndexedDB key order: numbers < strings < arrays (element-wise). */
export function compareKeys(a: Key, b: Key): number {
  const rank = (k: Key) => (typeof k === 'number' ? 0 : typeof k === 'string' ? 1 : 2);
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (typeof a === 'number') return a - (b as number) || 0;
  if (typeof a === 'string') return a < (b as string) ? -1 : a > (b as string) ? 1 : 0;
  const x = a as readonly KeyPart[];
  const y = b as readonly KeyPart[];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const c = compareKeys(x[i]!, y[i]!);
    if (c) return c;
  }
  return x.length - y.length;
}

/** The key of `row` at `path` (a property or a list of properties). */
export function keyOf(row: unknown, path: string | readonly string[]): Key {
  const r = row as Record<string, KeyPart>;
  return typeof path === 'string' ? r[path]! : path.map((p) => r[p]!);
}

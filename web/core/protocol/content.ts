/**
 * What travels inside an end-to-end encrypted message (the plaintext of crypto/'s fan-out):
 *
 *   content = 0x01 || UTF-8 JSON of Content
 *
 * One payload is encrypted once for every recipient device and for the sender's other devices,
 * so the same bytes are a message on the peers' devices and a sent transcript on our own. The
 * relay never sees any of this; it learns only who sends to whom and sizes.
 *
 * `conv` names the conversation from the sender's side: a direct message to `to`, or a group
 * (with the group state version the sender had). Receivers map it to their own view.
 *
 * A 'group' body carries the sender's whole group state. Since the mergeable state
 * (group-state.ts) it also has `nameTag` and `roster`, optional so that messages from older
 * clients still decode (they are read as the one change their `action` names), and ignored by
 * older clients, which keep reading `members`, `name` and `version`. The `merge` action (a
 * member passing on a merged state, group-state.ts) is new: an older client records it as a
 * failure it cannot decode instead of applying it. So is `removed-notice` (a removed member's
 * own roster entry, sent to them alone: see GroupAction).
 */
import { toB64, fromB64 } from '../b64.ts';

export const CONTENT_VERSION = 0x01;
/** A message body of this many UTF-16 units is refused (UI and store stay bounded). */
export const MAX_TEXT = 16_000;
/** Base keys one repair request names at most (`refused`). */
export const MAX_REFUSED = 16;

export type ConvRef = { readonly t: 'dm'; readonly to: string } | { readonly t: 'group'; readonly id: string; readonly ver: number };

/** A group has at most this many members. */
export const MAX_MEMBERS = 256;
/**
 * The roster keeps everyone who was ever in the group (a removal has to be remembered to win
 * over a concurrent add), so it is bounded separately and more loosely than the members:
 * 1024 entries are about 80 KB of JSON, sent with each group change.
 */
export const MAX_ROSTER = 1024;

/** [version, username]: when (a Lamport clock, group-state.ts) and by whom; ordered by version, then username. */
export type GroupTag = readonly [number, string];

/** One person's membership history in mergeable form (group-state.ts). */
export interface RosterEntry {
  readonly user: string;
  /** The latest add (creating the group adds its members). */
  readonly added?: GroupTag;
  /** Removals and leaves of this user: [remover, or the user themself for a leave; latest version]. */
  readonly out?: readonly (readonly [string, number])[];
  /** Of those, what the people who added this user had seen when they added them. */
  readonly seen?: readonly (readonly [string, number])[];
}

export interface GroupState {
  readonly id: string;
  readonly name: string;
  /** Every member's username, the sender included. Derived from `roster` when it is present. */
  readonly members: readonly string[];
  /** The highest version in the state; derived from the tags when they are present. */
  readonly version: number;
  /** Who set `name` and when; absent from older clients' messages. */
  readonly nameTag?: GroupTag;
  /** Everyone who was ever added or removed; absent from older clients' messages. */
  readonly roster?: readonly RosterEntry[];
}

export interface AttachmentInfo {
  readonly id: string;
  /** crypto/'s encoded attachment pointer (key, hash, size), base64url. */
  readonly pointer: string;
  readonly name: string;
  readonly mime: string;
  readonly size: number;
}

/**
 * `merge`: no change of the sender's own, a merged state passed on to members who lack part of it.
 * `removed-notice`: to a removed member whose change was refused, their own removal and nothing
 * else (group-state.ts `notice`): `subject` is the recipient, `group` has the empty name, no
 * members, no `nameTag` and a roster of exactly the recipient's entry. Like `merge`, an older
 * client records it as a failure it cannot decode (it was never told of its removal before
 * either); nor does a member send one to an older client (its changes carry no roster, so they
 * never count their sender in, apply.ts).
 */
export type GroupAction = 'create' | 'add' | 'remove' | 'rename' | 'leave' | 'merge' | 'removed-notice';
const GROUP_ACTIONS: readonly string[] = ['create', 'add', 'remove', 'rename', 'leave', 'merge', 'removed-notice'] satisfies GroupAction[];

export type Body =
  | { readonly type: 'text'; readonly text: string; readonly replyTo?: string }
  | { readonly type: 'attachment'; readonly text: string; readonly attachment: AttachmentInfo; readonly replyTo?: string }
  | { readonly type: 'reaction'; readonly target: string; readonly emoji: string }
  | { readonly type: 'edit'; readonly target: string; readonly text: string }
  | { readonly type: 'delete'; readonly target: string }
  | { readonly type: 'receipt'; readonly kind: 'delivered' | 'read'; readonly targets: readonly string[] }
  | { readonly type: 'typing'; readonly on: boolean }
  | { readonly type: 'group'; readonly action: GroupAction; readonly group: GroupState; readonly subject?: string }
  /** To our own devices only: the account key for a device we just linked (`for`, device id b64). */
  | { readonly type: 'link'; readonly for: string; readonly accountSecret: string; readonly approver: string }
  /** To our own devices only: a history bundle (an encrypted attachment) for a newly added device. */
  | { readonly type: 'history'; readonly for: string; readonly attachment: AttachmentInfo }
  /** To our own devices: a device joined the account. */
  | { readonly type: 'device-added'; readonly device: string; readonly name: string }
  /**
   * To our own devices: we marked `user` verified (or not) after comparing safety numbers, for the
   * account key `accountKey` (b64) — a device that knows another key for them does not apply it.
   */
  | { readonly type: 'verified'; readonly user: string; readonly accountKey: string; readonly verified: boolean }
  /**
   * Asks the sender to resend: we could not decrypt the messages with these relay ids. `refused`
   * (base64url base keys, optional: older clients neither send nor read it) names the sessions whose
   * prekey messages we refused; the sender drops them and sends again what it sent on them
   * (PROTOCOL.md §8 rule 7, web/core/resend.ts).
   */
  | { readonly type: 'repair'; readonly failed: readonly number[]; readonly refused?: readonly string[] };

export interface Content {
  readonly v: 1;
  /** Sender-chosen, unique per sender (128 random bits, base64url); receivers de-duplicate on it. */
  readonly id: string;
  /** Sender's clock (ms); for ordering and display, never trusted for security. */
  readonly at: number;
  readonly conv: ConvRef | null;
  readonly body: Body;
}

export function encodeContent(c: Content): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(c));
  const out = new Uint8Array(1 + json.length);
  out[0] = CONTENT_VERSION;
  out.set(json, 1);
  return out;
}

export class ContentError extends Error {
  override readonly name = 'ContentError';
}

const isStr = (v: unknown, max = 256): v is string => typeof v === 'string' && v.length <= max;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Decodes and checks the shape; anything else is a ContentError (recorded, not applied). */
export function decodeContent(bytes: Uint8Array): Content {
  if (bytes[0] !== CONTENT_VERSION) throw new ContentError(`unknown content version ${bytes[0]}`);
  let c: any;
  try {
    c = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(1)));
  } catch {
    throw new ContentError('content is not UTF-8 JSON');
  }
  if (!c || c.v !== 1 || !isStr(c.id, 64) || !isNum(c.at) || typeof c.body !== 'object' || !c.body) throw new ContentError('content header');
  if (c.conv !== null) {
    const ok = (c.conv.t === 'dm' && isStr(c.conv.to, 64)) || (c.conv.t === 'group' && isStr(c.conv.id, 64) && isNum(c.conv.ver));
    if (!ok) throw new ContentError('content conversation');
  }
  if (!checkBody(c.body)) throw new ContentError(`content body of type ${String(c.body.type).slice(0, 20)}`);
  return c as Content;
}

function checkAttachment(a: any): boolean {
  return !!a && isStr(a.id, 64) && isStr(a.pointer, 512) && isStr(a.name, 255) && isStr(a.mime, 127) && isNum(a.size);
}

const isTag = (t: any): boolean => Array.isArray(t) && t.length === 2 && isNum(t[0]) && isStr(t[1], 64);
const isVersions = (p: any): boolean => Array.isArray(p) && p.length <= MAX_ROSTER && p.every((x: any) => Array.isArray(x) && x.length === 2 && isStr(x[0], 64) && isNum(x[1]));

function checkRosterEntry(e: any): boolean {
  return !!e && typeof e === 'object' && isStr(e.user, 64) && (e.added === undefined || isTag(e.added)) && (e.out === undefined || isVersions(e.out)) && (e.seen === undefined || isVersions(e.seen));
}

function checkGroup(g: any): boolean {
  if (!g || !isStr(g.id, 64) || !isStr(g.name, 128) || !isNum(g.version) || !Array.isArray(g.members) || g.members.length > MAX_MEMBERS || !g.members.every((m: unknown) => isStr(m, 64))) return false;
  if (g.nameTag !== undefined && !isTag(g.nameTag)) return false;
  return g.roster === undefined || (Array.isArray(g.roster) && g.roster.length <= MAX_ROSTER && g.roster.every(checkRosterEntry));
}

function checkBody(b: any): boolean {
  const optReply = b.replyTo === undefined || isStr(b.replyTo, 160);
  switch (b.type) {
    case 'text':
      return isStr(b.text, MAX_TEXT) && optReply;
    case 'attachment':
      return isStr(b.text, MAX_TEXT) && checkAttachment(b.attachment) && optReply;
    case 'reaction':
      return isStr(b.target, 160) && isStr(b.emoji, 16);
    case 'edit':
      return isStr(b.target, 160) && isStr(b.text, MAX_TEXT);
    case 'delete':
      return isStr(b.target, 160);
    case 'receipt':
      return (b.kind === 'delivered' || b.kind === 'read') && Array.isArray(b.targets) && b.targets.length <= 1000 && b.targets.every((t: unknown) => isStr(t, 160));
    case 'typing':
      return typeof b.on === 'boolean';
    case 'group':
      return (
        GROUP_ACTIONS.includes(b.action) &&
        checkGroup(b.group) &&
        (b.subject === undefined || isStr(b.subject, 64)) &&
        (b.action !== 'removed-notice' || (!b.group.name && !b.group.members.length && !b.group.nameTag && b.group.roster?.length === 1 && b.group.roster[0].user === b.subject))
      );
    case 'link':
      return isStr(b.for, 32) && isStr(b.accountSecret, 100) && isStr(b.approver, 32);
    case 'history':
      return isStr(b.for, 32) && checkAttachment(b.attachment);
    case 'device-added':
      return isStr(b.device, 32) && isStr(b.name, 64);
    case 'verified':
      return isStr(b.user, 64) && isStr(b.accountKey, 64) && typeof b.verified === 'boolean';
    case 'repair':
      return (
        Array.isArray(b.failed) &&
        b.failed.length <= 100 &&
        b.failed.every(isNum) &&
        (b.refused === undefined || (Array.isArray(b.refused) && b.refused.length <= MAX_REFUSED && b.refused.every((k: unknown) => isStr(k, 64))))
      );
    default:
      return false;
  }
}

/** 128 random bits as base64url: message, group and attachment ids. */
export function newId(rng: (n: number) => Uint8Array): string {
  return toB64(rng(16));
}

export { toB64, fromB64 };

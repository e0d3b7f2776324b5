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
 */
import { toB64, fromB64 } from '../b64.ts';

export const CONTENT_VERSION = 0x01;
/** A message body of this many UTF-16 units is refused (UI and store stay bounded). */
export const MAX_TEXT = 16_000;

export type ConvRef = { readonly t: 'dm'; readonly to: string } | { readonly t: 'group'; readonly id: string; readonly ver: number };

export interface GroupState {
  readonly id: string;
  readonly name: string;
  /** Every member's username, the sender included. */
  readonly members: readonly string[];
  readonly version: number;
}

export interface AttachmentInfo {
  readonly id: string;
  /** crypto/'s encoded attachment pointer (key, hash, size), base64url. */
  readonly pointer: string;
  readonly name: string;
  readonly mime: string;
  readonly size: number;
}

export type Body =
  | { readonly type: 'text'; readonly text: string; readonly replyTo?: string }
  | { readonly type: 'attachment'; readonly text: string; readonly attachment: AttachmentInfo; readonly replyTo?: string }
  | { readonly type: 'reaction'; readonly target: string; readonly emoji: string }
  | { readonly type: 'edit'; readonly target: string; readonly text: string }
  | { readonly type: 'delete'; readonly target: string }
  | { readonly type: 'receipt'; readonly kind: 'delivered' | 'read'; readonly targets: readonly string[] }
  | { readonly type: 'typing'; readonly on: boolean }
  | { readonly type: 'group'; readonly action: 'create' | 'add' | 'remove' | 'rename' | 'leave'; readonly group: GroupState; readonly subject?: string }
  /** To our own devices only: the account key for a device we just linked (`for`, device id b64). */
  | { readonly type: 'link'; readonly for: string; readonly accountSecret: string; readonly approver: string }
  /** To our own devices only: a history bundle (an encrypted attachment) for a newly added device. */
  | { readonly type: 'history'; readonly for: string; readonly attachment: AttachmentInfo }
  /** To our own devices: a device joined the account. */
  | { readonly type: 'device-added'; readonly device: string; readonly name: string }
  /** Asks the sender to resend: we could not decrypt the message with this relay id. */
  | { readonly type: 'repair'; readonly failed: readonly number[] };

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

function checkGroup(g: any): boolean {
  return !!g && isStr(g.id, 64) && isStr(g.name, 128) && isNum(g.version) && Array.isArray(g.members) && g.members.length <= 256 && g.members.every((m: unknown) => isStr(m, 64));
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
      return ['create', 'add', 'remove', 'rename', 'leave'].includes(b.action) && checkGroup(b.group) && (b.subject === undefined || isStr(b.subject, 64));
    case 'link':
      return isStr(b.for, 32) && isStr(b.accountSecret, 100) && isStr(b.approver, 32);
    case 'history':
      return isStr(b.for, 32) && checkAttachment(b.attachment);
    case 'device-added':
      return isStr(b.device, 32) && isStr(b.name, 64);
    case 'repair':
      return Array.isArray(b.failed) && b.failed.length <= 100 && b.failed.every(isNum);
    default:
      return false;
  }
}

/** 128 random bits as base64url: message, group and attachment ids. */
export function newId(rng: (n: number) => Uint8Array): string {
  return toB64(rng(16));
}

export { toB64, fromB64 };

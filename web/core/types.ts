/**
 * What the engine offers the screens (web/ui), the service worker and the headless CLI. Every
 * user action goes through the Engine (engine.ts); views read from the store and listen for
 * EngineEvents to refresh. Nothing here depends on the DOM or on Node.
 */
import type { ChangeKind, ConversationRow, MessageRow } from './store/schema.ts';

export type { ChangeKind, ConversationRow, MessageRow };

/** A message as the CLI prints it and the UI shows it. */
export interface MessageView {
  /** `sender/id`: what reactions, edits, deletes and replies refer to. */
  readonly key: string;
  readonly id: string;
  /** Position in its conversation; pass as `before` to page further back. */
  readonly order: number;
  readonly conversation: string;
  readonly from: string;
  readonly fromDevice: string;
  readonly text: string;
  readonly sentAt: number;
  readonly status: MessageRow['status'];
  readonly replyTo: string | null;
  readonly reactions: Readonly<Record<string, string>>;
  readonly edited: boolean;
  readonly deleted: boolean;
  readonly attachment: { readonly name: string; readonly mime: string; readonly size: number } | null;
  readonly system: boolean;
  /**
   * Our reactions, edits and deletes of this message the relay refused for good, at most one per
   * kind: show each with Retry (engine.retryChange) and Discard (engine.discardChange).
   */
  readonly failedChanges: readonly FailedChangeView[];
  /**
   * Why the relay refused this message of ours, while `status` is 'failed' (engine.retry sends it
   * again, discardFailed (changes.ts) gives it up); `code` '' for one that failed before the reason was
   * kept (explain.ts sendFailure words it). Null otherwise, and once we deleted it for everyone
   * (nothing left to retry).
   */
  readonly failure: { readonly code: string } | null;
}

/** A change of ours to a message that did not go out (web/core/changes.ts). */
export interface FailedChangeView {
  /** What retryChange and discardChange take. */
  readonly id: string;
  readonly kind: ChangeKind;
  /** A reaction's emoji ('' : taking ours back); '' for an edit or a delete. */
  readonly emoji: string;
  /** The relay's code, for logs and tests. */
  readonly code: string;
  /** What the others see now and what to do, in words (explain.ts). */
  readonly message: string;
}

export interface DeviceView {
  /** base64url: what removeDevice takes. */
  readonly deviceId: string;
  /** The short id people compare ("K7QF 2MXA", device-id.ts): the same in the PWA and the CLI. */
  readonly shortId: string;
  readonly name: string;
  /** When it was added, in ms, as the signed device list records it (the adding device's clock). */
  readonly addedAt: number;
  readonly current: boolean;
}

export interface SafetyNumberView {
  readonly digits: string;
  /** The QR payload (crypto/'s safety-number QR bytes), base64url. */
  readonly qr: string;
  readonly verified: boolean;
  readonly keyChanged: boolean;
}

/** A person whose account key is pinned on this device. */
export interface ContactView {
  readonly username: string;
  /** The user compared safety numbers for the key pinned now (a key change clears it). */
  readonly verified: boolean;
  /** Their key changed since first seen, and the new one has not been verified. */
  readonly keyChanged: boolean;
}

/**
 * When the relay refuses this device's token (a 401, or the socket closed with 4403), the
 * account's signed device list decides (refusal.ts):
 * - 'removed': the list marks the device removed (from another device, or logged out). Final:
 *   the engine makes no more requests, and the app offers to erase the device (unlike
 *   'offline', waiting changes nothing).
 * - 'signed_out': the list still has the device, only its token is dead (another session issued
 *   it a new one, or the relay's data was restored). No request goes out with the dead token,
 *   the outbox waits, history stays; Engine.signIn(password) brings it back.
 * Until the list answers, the state is 'offline' (the engine asks again, without the token).
 */
export type ConnectionState = 'offline' | 'connecting' | 'online' | 'removed' | 'signed_out';

export type EngineEvent =
  | { readonly type: 'messages'; readonly conversation: string; readonly messages: readonly MessageView[] }
  | { readonly type: 'message-updated'; readonly conversation: string; readonly id: string }
  | { readonly type: 'conversations' }
  | { readonly type: 'typing'; readonly conversation: string; readonly user: string; readonly typing: boolean }
  | { readonly type: 'connection'; readonly state: ConnectionState }
  /** Messages the user wrote that the relay has not accepted yet (receipts and other control messages not counted). */
  | { readonly type: 'outbox'; readonly pending: number }
  | { readonly type: 'device-added'; readonly deviceId: string; readonly name: string }
  | { readonly type: 'key-changed'; readonly user: string }
  | { readonly type: 'history-imported'; readonly messages: number }
  | { readonly type: 'error'; readonly code: string; readonly message: string };

/** Errors the engine reports to people: `code` is stable, `message` says what to do. */
export class EngineError extends Error {
  override readonly name = 'EngineError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

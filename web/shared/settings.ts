/**
 * The person's settings, one row in the engine store's `meta` table, read by the page (the
 * settings screen) and by the service worker (previews on or off in notifications). Runs in
 * both: no DOM, no worker globals — only the Store interface.
 */
import type { Store } from '../core/store/schema.ts';

export interface Settings {
  readonly theme: 'system' | 'light' | 'dark';
  /** Notifications show the sender and the message text; off: "New message" only. */
  readonly previews: boolean;
  readonly notifications: boolean;
  /** The "storage may be cleared" notice was dismissed (shown once, not at every start). */
  readonly persistNoticeSeen: boolean;
}

export const DEFAULT_SETTINGS: Settings = { theme: 'system', previews: true, notifications: false, persistNoticeSeen: false };

const KEY = 'settings';

export async function readSettings(store: Store): Promise<Settings> {
  const row = await store.read(['meta'], (tx) => tx.get('meta', KEY));
  // Spread over the defaults: a row written by an older version lacks newer fields.
  return { ...DEFAULT_SETTINGS, ...((row?.value as Partial<Settings> | undefined) ?? {}) };
}

export async function writeSettings(store: Store, s: Settings): Promise<void> {
  await store.write(['meta'], (tx) => tx.put('meta', { key: KEY, value: { ...s } }));
}

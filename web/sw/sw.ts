/**
 * The service worker: precaches the app shell (Workbox) so Petrel opens offline and shows its
 * stored history; on `push` it syncs and decrypts inside the worker (keys from IndexedDB,
 * under the same Web Lock as the page) and shows who wrote and a preview — unless previews are
 * off, or nothing could be decrypted, in which case the notification is generic. A click
 * focuses the open Petrel window on that conversation, or opens one.
 *
 * It is a module worker built together with the page (web/vite.config.ts): the engine,
 * libsodium and OPAQUE are the same hashed chunks the page loads, not a second copy.
 */
/// <reference lib="webworker" />
import { PrecacheController, PrecacheRoute } from 'workbox-precaching';
import { NavigationRoute, registerRoute } from 'workbox-routing';
import { Engine } from '../core/engine.ts';
import type { Fetch } from '../core/net/api.ts';
import type { MessageView } from '../core/types.ts';
import { openIdbStore } from '../storage/idb-store.ts';
import { DB_NAME, SHELL_CACHE_PREFIX } from '../shared/names.ts';
import { readSettings } from '../shared/settings.ts';

declare const self: ServiceWorkerGlobalScope & { __WB_MANIFEST: { url: string; revision: string | null }[] };

/**
 * The shell cache's name carries a layout version. Workbox revisions already replace changed
 * files inside it; bump the version when what is cached (or how) changes, and activation then
 * drops every older cache of this origin instead of leaving it to fill the quota.
 */
const SHELL_CACHE = `${SHELL_CACHE_PREFIX}v1`;
const LOCK = 'petrel-engine'; // the page takes the same lock: one engine touches sessions at a time

const shell = new PrecacheController({ cacheName: SHELL_CACHE });
shell.precache(self.__WB_MANIFEST);
registerRoute(new PrecacheRoute(shell));
// Every navigation (deep links included) gets the cached shell; the API is never cached.
registerRoute(new NavigationRoute(shell.createHandlerBoundToURL('/index.html'), { denylist: [/^\/v1\//, /^\/metrics/, /^\/healthz/] }));

self.addEventListener('activate', (e) => {
  e.waitUntil(
    (async () => {
      for (const name of await caches.keys()) if (name !== SHELL_CACHE) await caches.delete(name);
    })(),
  );
});

// sw-bridge sends this only when the person clicked "Reload" on the update banner.
self.addEventListener('message', (e) => {
  if ((e.data as { type?: string } | null)?.type === 'SKIP_WAITING') void self.skipWaiting();
});

const lock = <T,>(fn: () => Promise<T>) => (self.navigator.locks ? (self.navigator.locks.request(LOCK, fn) as Promise<T>) : fn());
const fetchFn = ((u: string, i?: RequestInit) => fetch(u, i)) as unknown as Fetch;

interface Fresh {
  /** The relay refused this device's token (now, or at an earlier push): it was removed. */
  readonly removed: boolean;
  /** The relay refused the token but the account still lists the device: the password signs it in again. */
  readonly signedOut?: boolean;
  readonly messages: MessageView[];
  readonly previews: boolean;
  /** Conversation id -> title, for "Alice in Lighthouse". */
  readonly titles: Map<string, string>;
}

/** One catch-up pass without a WebSocket; what arrived from others, and the previews setting. */
async function catchUp(): Promise<Fresh> {
  const store = await openIdbStore(DB_NAME);
  try {
    const previews = (await readSettings(store)).previews;
    const engine = await Engine.open({ store, relayUrl: '', fetch: fetchFn, lock });
    const me = engine.state()?.username;
    if (!me) return { removed: false, messages: [], previews, titles: new Map() };
    // The engine remembers a 401 (in the store the page shares): once removed or signed out, no
    // request is made with the token.
    const messages = engine.removed || engine.signedOut ? [] : await engine.sync().catch((e: unknown) => {
      if (engine.removed || engine.signedOut) return [];
      throw e;
    });
    if (engine.removed) return { removed: true, messages: [], previews, titles: new Map() };
    if (engine.signedOut) return { removed: false, signedOut: true, messages: [], previews, titles: new Map() };
    const titles = new Map((await engine.conversations()).map((c) => [c.id, c.kind === 'group' ? c.title : ''] as const));
    return { removed: false, messages: messages.filter((m) => m.from !== me && !m.system), previews, titles };
  } finally {
    await store.close();
  }
}

function preview(m: MessageView): string {
  if (m.deleted) return 'Message deleted';
  if (m.attachment) return `📎 ${m.attachment.name}${m.text ? ` — ${m.text}` : ''}`;
  return m.text;
}

async function syncAndNotify(): Promise<void> {
  let fresh: Fresh | null = null;
  try {
    fresh = await catchUp();
  } catch (err) {
    // Fall through to a generic notification: the person should still learn something arrived.
    // The error names a code and a step, never message content or keys (engine errors do not).
    console.warn('push: could not catch up', err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  }
  if (fresh?.removed) {
    // A removed device is never pushed to again by the relay (it deleted the subscription);
    // a push in flight, or a stale one, ends here: drop the browser's subscription so the worker
    // is not woken for a dead device, and say once what happened (a push must show something).
    await (await self.registration.pushManager.getSubscription())?.unsubscribe().catch(() => false);
    await self.registration.showNotification('Petrel', {
      body: 'This device was removed from your account. Open Petrel to erase it and start again.',
      tag: 'petrel-removed',
      data: { conversation: null },
    });
    return;
  }
  if (fresh?.signedOut) {
    // Still pushed to (the device is listed): say what to do, once (the tag replaces it).
    await self.registration.showNotification('Petrel', {
      body: 'This device was signed out by the relay. Open Petrel and enter your password to sign in again: your messages are still here.',
      tag: 'petrel-signed-out',
      data: { conversation: null },
    });
    return;
  }
  // An app window in view shows new messages itself (the app is the page at the scope's root).
  const windows = (await self.clients.matchAll({ type: 'window' })) as WindowClient[];
  const appVisible = windows.some((c) => c.visibilityState === 'visible' && new URL(c.url).pathname === '/');
  if (fresh?.messages.length && appVisible) return;
  const last = fresh?.messages.at(-1);
  if (!fresh || !last) {
    // Nothing we could decrypt (or a push for something another context already fetched).
    await self.registration.showNotification('Petrel', { body: 'New encrypted message', tag: 'petrel', data: { conversation: null } });
    return;
  }
  const more = fresh.messages.length > 1 ? ` (+${fresh.messages.length - 1} more)` : '';
  const group = fresh.titles.get(last.conversation);
  const title = fresh.previews ? `${last.from}${group ? ` in ${group}` : ''}${more}` : 'Petrel';
  await self.registration.showNotification(title, {
    body: fresh.previews ? preview(last).slice(0, 200) : 'New message',
    tag: last.conversation, // one notification per conversation, replaced by the newest
    data: { conversation: last.conversation },
  });
}

self.addEventListener('push', (e) => e.waitUntil(syncAndNotify()));

self.addEventListener('notificationclick', (e) => {
  e.notification.close();
  const conversation = (e.notification.data as { conversation?: string | null } | null)?.conversation ?? null;
  const url = conversation ? `/#${encodeURIComponent(conversation)}` : '/';
  e.waitUntil(
    (async () => {
      const windows = (await self.clients.matchAll({ type: 'window', includeUncontrolled: true })) as WindowClient[];
      // The app is the page at the root; another same-origin page (a file, the manifest) is not.
      const app = windows.find((w) => new URL(w.url).pathname === '/');
      if (!app) {
        await self.clients.openWindow(url);
        return;
      }
      await app.focus();
      app.postMessage({ type: 'open-conversation', conversation });
    })(),
  );
});

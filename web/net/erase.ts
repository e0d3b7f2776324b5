/**
 * Erases this device: what a removed or logged-out device must do to start again (its keys
 * belong to a device the account no longer lists, so they are useless, and its history is the
 * person's to keep or drop). Removes the IndexedDB database (keys, sessions, history, outbox),
 * the push subscription and caches other than the app shell (the page forgets its drafts). The
 * app shell stays cached so Petrel still opens offline afterwards.
 */
import type { Engine } from '../core/engine.ts';
import { DB_NAME, SHELL_CACHE_PREFIX } from '../shared/names.ts';

export async function eraseThisDevice(engine: Engine | null): Promise<void> {
  if (engine) {
    await engine.stop();
    await engine.ctx.store.close(); // our own connection would block the deletion
  }
  // The relay already dropped a removed device's subscription; the browser's copy would still
  // wake the worker for a device that no longer exists.
  const reg = await navigator.serviceWorker?.getRegistration().catch(() => undefined);
  await (await reg?.pushManager.getSubscription().catch(() => null))?.unsubscribe().catch(() => false);
  await deleteDatabase(DB_NAME);
  if ('caches' in self) for (const name of await caches.keys()) if (!name.startsWith(SHELL_CACHE_PREFIX)) await caches.delete(name);
}

/**
 * Resolves once the database is gone. Other tabs (and the worker) hold connections: the store
 * closes its connection when told another context wants the database (idb's `blocking`), so a
 * `blocked` event only means waiting a moment longer.
 */
function deleteDatabase(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(name);
    req.onsuccess = () => resolve();
    req.onerror = () => reject(req.error ?? new Error('the database could not be deleted'));
  });
}

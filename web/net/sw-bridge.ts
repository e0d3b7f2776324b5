/**
 * The one module that talks to the service worker: registration through workbox-window, the
 * "update available" prompt (the waiting worker takes over only when the person clicks
 * reload — never in the middle of typing: see ui/drafts.ts — and the outbox is in IndexedDB
 * anyway), persistent storage, and the push subscription made with the relay's VAPID key.
 */
import { Workbox } from 'workbox-window';
import type { Engine } from '../core/engine.ts';

/**
 * Registers /sw.js. `onUpdate` receives the function that activates a waiting new version and
 * reloads; it is called only when a new version is installed and waiting.
 */
export function registerServiceWorker(onUpdate: (apply: () => void) => void): void {
  // `npm run dev` serves modules unbundled and has no sw.js (the precache manifest is made by
  // the build): a worker there would serve stale builds, so development runs without one.
  if (import.meta.env.DEV || !('serviceWorker' in navigator)) return;
  // A module worker: it imports the engine's chunks (and libsodium) like the page does.
  const wb = new Workbox('/sw.js', { scope: '/', type: 'module' });
  wb.addEventListener('waiting', () => {
    onUpdate(() => {
      wb.addEventListener('controlling', () => window.location.reload());
      wb.messageSkipWaiting();
    });
  });
  wb.register().catch((err: unknown) => {
    // Petrel still works without it (online only, no push); say so once in the console.
    console.warn('service worker not registered:', err instanceof Error ? err.message : err);
  });
}

/** Asks for persistent storage; returns whether the browser granted it (null: cannot tell). */
export async function requestPersistence(): Promise<boolean | null> {
  if (!navigator.storage?.persist) return null;
  if (await navigator.storage.persisted()) return true;
  return navigator.storage.persist();
}

function keyBytes(b64url: string): Uint8Array<ArrayBuffer> {
  const s = atob(b64url.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((b64url.length + 3) % 4));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/** Turns notifications on: permission, a push subscription with the relay's key, sent to the relay. */
export async function enableNotifications(engine: Engine): Promise<'on' | 'denied' | 'unsupported'> {
  if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) return 'unsupported';
  if ((await Notification.requestPermission()) !== 'granted') return 'denied';
  const reg = await navigator.serviceWorker.ready;
  const key = keyBytes(await engine.vapidKey());
  let sub = await reg.pushManager.getSubscription();
  // A subscription made for another relay key (the relay's keys were replaced) cannot be used.
  const sameKey = (s: PushSubscription) => {
    const k = s.options.applicationServerKey;
    return !k || (k.byteLength === key.byteLength && new Uint8Array(k).every((b, i) => b === key[i]));
  };
  if (sub && !sameKey(sub)) {
    await sub.unsubscribe();
    sub = null;
  }
  sub ??= await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  const json = sub.toJSON() as { endpoint: string; keys: { p256dh: string; auth: string } };
  await engine.setPushSubscription({ endpoint: json.endpoint, keys: json.keys });
  return 'on';
}

export async function disableNotifications(engine: Engine): Promise<void> {
  const reg = await navigator.serviceWorker?.getRegistration();
  await (await reg?.pushManager.getSubscription())?.unsubscribe();
  await engine.setPushSubscription(null);
}

/**
 * Creates the page's engine: IndexedDB store (secrets wrapped), same-origin relay, the
 * browser's fetch and WebSocket, and a Web Lock so the page and the service worker never
 * touch session state at the same time.
 */
import { Engine } from '../core/engine.ts';
import type { Fetch } from '../core/net/api.ts';
import type { WsCtor } from '../core/net/socket.ts';
import { DB_NAME } from '../shared/names.ts';
import { openIdbStore } from '../storage/idb-store.ts';

export { DB_NAME };

export function webLock<T>(fn: () => Promise<T>): Promise<T> {
  if (!('locks' in navigator)) return fn();
  return navigator.locks.request('petrel-engine', fn) as Promise<T>;
}

/** `deviceName`: see EngineOptions.deviceName (main passes the browser's guess, made distinct). */
export async function bootEngine(deviceName: string | ((shortId: string) => string)): Promise<Engine> {
  const store = await openIdbStore(DB_NAME);
  return Engine.open({
    store,
    relayUrl: '',
    fetch: ((url: string, init?: RequestInit) => fetch(url, init)) as unknown as Fetch,
    WebSocket: WebSocket as unknown as WsCtor,
    lock: webLock,
    deviceName,
  });
}

/**
 * "Chromium on Linux": what a browser can say about itself without asking. Two such browsers on
 * one account read the same, so main.tsx adds the device's short id (nameWithShortId).
 */
export function guessDeviceName(ua = navigator.userAgent): string {
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Mac OS/.test(ua) ? 'Mac' : /Windows/.test(ua) ? 'Windows' : /Linux/.test(ua) ? 'Linux' : 'browser';
  const browser = /Edg\//.test(ua) ? 'Edge' : /Chrome\//.test(ua) ? 'Chromium' : /Firefox\//.test(ua) ? 'Firefox' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  return `${browser} on ${os}`;
}

/**
 * Storage names the page and the service worker share: erasing the device (web/net/erase.ts)
 * must remove exactly the app's data and leave the app shell, which the worker keeps.
 */
/** The IndexedDB database holding keys, sessions and history (web/storage/idb-store.ts). */
export const DB_NAME = 'petrel';
/** Every app-shell cache is named with this prefix (the worker's SHELL_CACHE); anything else is data. */
export const SHELL_CACHE_PREFIX = 'petrel-shell-';

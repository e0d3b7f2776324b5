/**
 * The page's state as Preact signals, and the actions screens call. Every action goes through
 * the engine; views re-read from the store when the engine says something changed.
 */
import { computed, signal } from '@preact/signals';
import type { Engine } from '../core/engine.ts';
import { explain } from '../core/explain.ts';
import { RelayError } from '../core/net/api.ts';
import type { ContactView, ConversationRow, ConnectionState, EngineEvent, MessageView } from '../core/types.ts';
import { eraseThisDevice } from '../net/erase.ts';
import { DEFAULT_SETTINGS, readSettings, type Settings, writeSettings } from '../shared/settings.ts';
import { forgetDrafts } from './drafts.ts';

export type Panel =
  | { kind: 'none' }
  | { kind: 'new-chat' }
  | { kind: 'new-group' }
  | { kind: 'group-info' }
  | { kind: 'contact'; user: string }
  | { kind: 'settings' };

export const engine = signal<Engine | null>(null);
export const me = signal<{ username: string; deviceId: string; hasAccountKey: boolean } | null>(null);
export const conversations = signal<ConversationRow[]>([]);
/** Pinned contacts by username: whether each is verified, for the marks in headers and lists. */
export const contacts = signal<Readonly<Record<string, ContactView>>>({});
/** The history is still on its way from another of the account's devices (Engine.historyDue). */
export const historyDue = signal(false);
export const current = signal<string | null>(null);
export const messages = signal<MessageView[]>([]);
export const hasOlder = signal(false);
/** The window was scrolled back far enough that the newest messages were dropped from it. */
export const hasNewer = signal(false);
/** Messages from others that arrived in the open conversation since it was opened (newest last). */
export const arrived = signal<readonly MessageView[]>([]);
/** The next conversation shown takes focus into its composer (it was opened from a panel). */
let focusWanted = false;
export function takeFocusRequest(): boolean {
  const w = focusWanted;
  focusWanted = false;
  return w;
}
export const connection = signal<ConnectionState>('offline');
export const online = signal(typeof navigator === 'undefined' ? true : navigator.onLine);
export const pending = signal(0);
let pendingTimer: ReturnType<typeof setTimeout> | undefined;
let pendingLatest = 0;
export const typing = signal<Record<string, string[]>>({});
export const toast = signal<{ text: string; kind: 'info' | 'error' } | null>(null);
export const panel = signal<Panel>({ kind: 'none' });
export const updateReady = signal<(() => void) | null>(null);
export const search = signal('');
export const settings = signal<Settings>(DEFAULT_SETTINGS);
export const persistence = signal<boolean | null>(null);
/** On a removed device, the person chose to read what is stored before erasing it. */
export const readingRemoved = signal(false);
export const erasing = signal(false);

export const currentConversation = computed(() => conversations.value.find((c) => c.id === current.value) ?? null);
export const visibleConversations = computed(() => {
  const q = search.value.trim().toLowerCase();
  return q ? conversations.value.filter((c) => c.title.toLowerCase().includes(q) || c.lastPreview.toLowerCase().includes(q)) : conversations.value;
});

const PAGE = 50;
/** At most this many messages are in the DOM; scrolling pages more in and drops the far end. */
const WINDOW = 250;

export function say(text: string, kind: 'info' | 'error' = 'info'): void {
  toast.value = { text, kind };
  setTimeout(() => {
    if (toast.value?.text === text) toast.value = null;
  }, kind === 'error' ? 8000 : 4000);
}

/** Runs an action, turning its error into words a person can act on. */
export async function act<T>(f: () => Promise<T>): Promise<T | undefined> {
  try {
    return await f();
  } catch (e) {
    // The relay's codes (unauthorized, rate_limited, …) mean nothing to a person: say what to do.
    say(e instanceof RelayError ? explain(e.code, e.message) : e instanceof Error ? e.message : String(e), 'error');
    return undefined;
  }
}

/**
 * Reads of the store started one after another may finish in any order (separate IndexedDB
 * transactions), so each kind of load applies its result only if no later one of its kind started
 * meanwhile: otherwise an edit's refresh could be overwritten by an older read still holding the
 * text it replaced, until the next change.
 */
let conversationLoads = 0;
let messageLoads = 0;

export async function refreshConversations(): Promise<void> {
  const e = engine.value;
  if (!e?.state()) return;
  const mine = ++conversationLoads;
  // Together: a verification or a key change updates a contact and its conversations at once,
  // and the history imported brings conversations as it stops being due.
  const [rows, people, due] = await Promise.all([e.conversations(), e.contacts(), e.historyDue()]);
  if (mine !== conversationLoads) return;
  historyDue.value = due;
  conversations.value = rows;
  contacts.value = Object.fromEntries(people.map((c) => [c.username, c]));
}

/** A direct conversation's peer is verified (for their current key); never true for a group. */
export function isVerified(conv: ConversationRow): boolean {
  return conv.kind === 'direct' && !!contacts.value[conv.title]?.verified;
}

export async function openConversation(id: string | null, takeFocus = false): Promise<void> {
  focusWanted = takeFocus;
  current.value = id;
  panel.value = { kind: 'none' };
  messages.value = [];
  arrived.value = [];
  if (!id || !engine.value) return;
  const mine = ++messageLoads;
  const page = await engine.value.messages(id, { limit: PAGE });
  if (mine !== messageLoads) return; // another conversation opened, or a newer load of this one
  messages.value = page;
  hasOlder.value = page.length === PAGE;
  hasNewer.value = false;
  if (currentConversation.value?.unread) void act(() => engine.value!.markRead(id));
}

/** Back to the newest page (after scrolling far back: the "new messages" button, a send). */
export async function showNewest(): Promise<void> {
  const id = current.value;
  if (!id || !engine.value || !hasNewer.value) return;
  const mine = ++messageLoads;
  const page = await engine.value.messages(id, { limit: PAGE });
  if (mine !== messageLoads) return;
  messages.value = page;
  hasOlder.value = page.length === PAGE;
  hasNewer.value = false;
}

/** Loads the page before the oldest shown message (scroll-back without loading everything). */
let paging = false;

export async function loadOlder(): Promise<void> {
  if (paging) return;
  paging = true;
  try {
    await olderPage();
  } finally {
    paging = false;
  }
}

async function olderPage(): Promise<void> {
  const id = current.value;
  const first = messages.value[0];
  if (!id || !first || !engine.value) return;
  const page = await engine.value.messages(id, { before: first.order, limit: PAGE });
  // Another conversation opened meanwhile. (A reload of this one does not drop the page: with
  // messages arriving, every page would be dropped and scrolling back never get anywhere.)
  if (current.value !== id) return;
  hasOlder.value = page.length === PAGE;
  const next = [...page, ...messages.value];
  if (next.length > WINDOW) hasNewer.value = true;
  messages.value = next.slice(0, WINDOW);
}

/** Loads the page after the newest shown message (scrolling down again after going far back). */
export async function loadNewer(): Promise<void> {
  if (paging) return;
  paging = true;
  try {
    await newerPage();
  } finally {
    paging = false;
  }
}

async function newerPage(): Promise<void> {
  const id = current.value;
  const last = messages.value[messages.value.length - 1];
  if (!id || !last || !engine.value) return;
  const page = await engine.value.messages(id, { after: last.order, limit: PAGE });
  if (current.value !== id) return;
  hasNewer.value = page.length === PAGE;
  const next = [...messages.value, ...page];
  if (next.length > WINDOW) hasOlder.value = true;
  messages.value = next.slice(-WINDOW);
}

async function reloadCurrent(): Promise<void> {
  const id = current.value;
  if (!id || !engine.value) return;
  const mine = ++messageLoads;
  let page: MessageView[];
  if (hasNewer.value) {
    // Scrolled far back: refresh what is shown in place, do not jump to the newest.
    const first = messages.value[0];
    if (!first) return;
    page = await engine.value.messages(id, { after: first.order - 1, limit: messages.value.length });
  } else {
    const n = Math.min(WINDOW, Math.max(PAGE, messages.value.length));
    page = await engine.value.messages(id, { limit: n });
  }
  if (mine === messageLoads) messages.value = page;
}

export function handleEvent(e: EngineEvent): void {
  switch (e.type) {
    case 'messages':
    case 'message-updated':
      void refreshConversations();
      if (e.conversation === current.value) {
        void reloadCurrent();
        if (e.type === 'messages') {
          const theirs = e.messages.filter((m) => m.from !== me.value?.username && !m.system);
          if (theirs.length) arrived.value = [...arrived.value, ...theirs].slice(-20);
        }
        if (e.type === 'messages' && document.visibilityState === 'visible' && e.messages.some((m) => m.from !== me.value?.username && !m.system)) {
          void act(() => engine.value!.markRead(e.conversation));
        }
      }
      break;
    case 'conversations':
      void refreshConversations();
      me.value = engine.value?.state() ?? null;
      break;
    case 'connection':
      connection.value = e.state;
      // The removed screen replaces whatever was open (a panel could only fail from here on).
      if (e.state === 'removed') panel.value = { kind: 'none' };
      break;
    case 'outbox':
      // Shown only once something has waited a moment: on a good connection every send passes
      // through the outbox for a few milliseconds, and a banner flashing at each one says nothing.
      pendingLatest = e.pending;
      if (e.pending === 0 || pending.value > 0) {
        clearTimeout(pendingTimer);
        pendingTimer = undefined;
        pending.value = e.pending;
      } else {
        pendingTimer ??= setTimeout(() => {
          pendingTimer = undefined;
          pending.value = pendingLatest;
        }, 1000);
      }
      break;
    case 'typing': {
      const now = { ...typing.value };
      const users = new Set(now[e.conversation] ?? []);
      if (e.typing) users.add(e.user);
      else users.delete(e.user);
      now[e.conversation] = [...users];
      typing.value = now;
      if (e.typing) setTimeout(() => handleEvent({ ...e, typing: false }), 6000);
      break;
    }
    case 'device-added':
      say(`New device added to your account: ${e.name}`);
      break;
    case 'key-changed':
      say(`${e.user}'s safety number changed. Compare it with them before sharing anything sensitive.`, 'error');
      void refreshConversations();
      break;
    case 'history-imported':
      say(`Imported ${e.messages} messages from your other device.`);
      void refreshConversations();
      break;
    case 'error':
      if (e.code !== 'after_failed') say(e.message, 'error');
      break;
  }
}

/**
 * Erases this device's keys and data and starts again at the welcome screen. A fresh page
 * load rather than resetting signals: nothing of the old identity may linger in memory.
 */
export async function eraseDevice(): Promise<void> {
  erasing.value = true;
  try {
    forgetDrafts();
    await eraseThisDevice(engine.value);
    location.replace('/');
  } catch (e) {
    erasing.value = false;
    say(`This device could not be erased: ${e instanceof Error ? e.message : String(e)}. Close Petrel’s other tabs and try again.`, 'error');
  }
}

export async function loadSettings(): Promise<void> {
  const e = engine.value;
  if (e) settings.value = await readSettings(e.ctx.store);
  applyTheme();
}

export async function saveSettings(next: Partial<Settings>): Promise<void> {
  settings.value = { ...settings.value, ...next };
  applyTheme();
  const e = engine.value;
  if (e) await writeSettings(e.ctx.store, settings.value);
}

function applyTheme(): void {
  document.documentElement.dataset.theme = settings.value.theme;
}

/**
 * The page entry: open the engine over IndexedDB, show what is stored at once (offline
 * included), then catch up and go live. Registers the service worker through sw-bridge.
 */
import { render } from 'preact';
import { nameWithShortId } from './core/device-id.ts';
import { bootEngine, guessDeviceName } from './net/boot.ts';
import { registerServiceWorker, requestPersistence } from './net/sw-bridge.ts';
import type { EngineEvent } from './core/types.ts';
import { App } from './ui/app.tsx';
import { restoreDrafts } from './ui/drafts.ts';
import { engine, handleEvent, loadSettings, me, online, openConversation, persistence, refreshConversations, say, updateReady } from './ui/state.ts';

async function main() {
  const root = document.getElementById('app')!;
  window.addEventListener('online', () => {
    online.value = true;
    void engine.value?.wake();
  });
  window.addEventListener('offline', () => (online.value = false));
  registerServiceWorker((apply) => (updateReady.value = apply));
  restoreDrafts(); // text typed before an update reload
  try {
    const e = await bootEngine((shortId) => nameWithShortId(guessDeviceName(), shortId));
    engine.value = e;
    // Each tab runs an engine; whichever takes a message from the relay first stores it, the others
    // find nothing new. So what changed is passed on to every tab (not a tab's connection or outbox).
    const tabs = new BroadcastChannel('petrel');
    tabs.onmessage = (m) => handleEvent(m.data as EngineEvent);
    e.on((ev) => (handleEvent(ev), /^(m|conv|t|k|h|d)/.test(ev.type) && tabs.postMessage(ev)));
    me.value = e.state();
    await loadSettings();
    await refreshConversations();
    root.textContent = '';
    render(<App />, root);
    document.body.dataset.ready = 'true';
    performance.mark('petrel-ready'); // bench:web reads this: navigation start -> list interactive
    if (me.value) void e.start();
    // A notification click names a conversation (in the URL, or in a message to an open window).
    const fromHash = decodeURIComponent(location.hash.slice(1));
    if (fromHash && me.value) {
      history.replaceState(null, '', '/'); // a later reload should not jump back to it
      void openConversation(fromHash);
    }
    navigator.serviceWorker?.addEventListener('message', (ev) => {
      const d = ev.data as { type?: string; conversation?: string | null } | null;
      if (d?.type === 'open-conversation' && d.conversation && me.value) void openConversation(d.conversation);
    });
    // Keys live only here: ask the browser not to evict them (the app explains a refusal).
    persistence.value = await requestPersistence().catch(() => null);
  } catch (err) {
    root.textContent = `Petrel could not open its storage on this device: ${err instanceof Error ? err.message : String(err)}. Private windows and some storage settings block IndexedDB.`;
    say(String(err), 'error');
  }
}

void main();

/**
 * The page entry: open the engine over IndexedDB, show what is stored at once (offline
 * included), then catch up and go live. Registers the service worker through sw-bridge.
 */
import { render } from 'preact';
import { nameWithShortId } from './core/device-id.ts';
import { bootEngine, guessDeviceName } from './net/boot.ts';
import { registerServiceWorker, requestPersistence } from './net/sw-bridge.ts';
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
    e.on(handleEvent);
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

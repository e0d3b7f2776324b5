/** The app shell: welcome screen, or the conversation list + conversation + panel, with banners. */
import { useLayoutEffect, useRef } from 'preact/hooks';
import { Chats } from './chats.tsx';
import { Conversation } from './conversation.tsx';
import { reloadPending, reloadSafely } from './drafts.ts';
import { Panels } from './panels.tsx';
import { Removed, RemovedBanner } from './removed.tsx';
import { SignedOutBanner } from './signed-out.tsx';
import { explain } from '../core/explain.ts';
import { connection, current, historyDue, me, online, panel, pending, persistence, readingRemoved, saveSettings, settings, toast, updateReady } from './state.ts';
import { Welcome } from './welcome.tsx';

export function App() {
  return (
    <>
      <UpdateBanner />
      {!me.value ? <Welcome /> : connection.value === 'removed' && !readingRemoved.value ? <Removed /> : <Shell />}
      {(!me.value || (connection.value === 'removed' && !readingRemoved.value)) && <Toast floating />}
    </>
  );
}

/**
 * What just happened, in words (state.ts's say). Signed in, it is a row of the shell's layout
 * rather than an overlay: a floating toast sat on the composer's buttons for up to 8 seconds.
 * Dismissable, since an error stays a while. The two live regions are always there, so screen
 * readers announce what appears in them (errors at once, the rest politely); focus never moves
 * to a toast, and leaves it for where it came from when the toast goes.
 */
function Toast({ floating = false }: { floating?: boolean }) {
  const t = toast.value;
  const ref = useRef<HTMLDivElement>(null);
  const from = useRef<HTMLElement | null>(null);
  useLayoutEffect(() => {
    if (!t && document.activeElement === document.body && from.current?.isConnected) from.current.focus();
  }, [t]);
  const shown = t && (
    <div class={`toast ${t.kind}${floating ? ' floating' : ''}`}>
      <span>{t.text}</span>
      <button onClick={() => (toast.value = null)} aria-label="Dismiss message">✕</button>
    </div>
  );
  return (
    <div class="toasts" ref={ref} onFocusIn={(e) => ref.current!.contains(e.relatedTarget as Node) || (from.current = e.relatedTarget as HTMLElement | null)}>
      <div role="status">{t?.kind === 'info' && shown}</div>
      <div role="alert">{t?.kind === 'error' && shown}</div>
    </div>
  );
}

/** A new version is installed and waiting; it takes over only when the person says so. */
function UpdateBanner() {
  const apply = updateReady.value;
  if (!apply) return null;
  return (
    <div class="banner update" role="status">
      {reloadPending.value ? (
        'Petrel will reload to the new version as soon as your attachment has been sent.'
      ) : (
        <>
          A new version of Petrel is ready. <button onClick={() => reloadSafely(apply)}>Reload</button>
        </>
      )}
    </div>
  );
}

function Shell() {
  const removed = connection.value === 'removed';
  const signedOut = connection.value === 'signed_out';
  // A removed or signed-out device is not offline: waiting for the network would change nothing.
  const offline = !removed && !signedOut && (!online.value || connection.value === 'offline');
  return (
    <div class={`shell ${current.value ? 'has-conversation' : ''} ${panel.value.kind !== 'none' ? 'has-panel' : ''}`}>
      {removed && <RemovedBanner />}
      {signedOut && <SignedOutBanner />}
      {offline && <div class="banner offline" role="status">{explain('network')}</div>}
      {me.value && !me.value.hasAccountKey && <div class="banner" role="status">Finishing the link: waiting for your other device to send the account key…</div>}
      {persistence.value === false && !settings.value.persistNoticeSeen && (
        <div class="banner" role="status">
          This browser may delete Petrel’s keys and history when the disk runs low. Installing Petrel as an app or allowing notifications usually keeps them; a second linked device keeps your history safe anyway.{' '}
          <button onClick={() => void saveSettings({ persistNoticeSeen: true })}>Got it</button>
        </div>
      )}
      <Toast />
      {pending.value > 0 && !removed && <div class="outbox" role="status" aria-live="polite">{pending.value} message{pending.value > 1 ? 's' : ''} waiting to send</div>}
      {historyDue.value && <div class="outbox arriving" role="status">Your history is still arriving from your other device. It comes as soon as that device is online.</div>}
      <Chats />
      <Conversation />
      <Panels />
    </div>
  );
}

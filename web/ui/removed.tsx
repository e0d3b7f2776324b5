/**
 * A device the account no longer lists (removed from another device, or logged out): the
 * relay refuses its token, so it can neither send nor receive, and it never comes back to the
 * list. What is stored here is still readable, so the person chooses: read it first, or erase
 * the device and start again (log in with the password, or link it from another device).
 */
import { useLayoutEffect, useRef } from 'preact/hooks';
import { erasing, eraseDevice, me, readingRemoved } from './state.ts';

export function Removed() {
  const heading = useRef<HTMLHeadingElement>(null);
  // The whole screen changed under the person: start screen readers and keyboards at its title.
  useLayoutEffect(() => heading.current?.focus(), []);
  return (
    <main class="welcome removed" aria-labelledby="removed-title">
      <h1 id="removed-title" tabIndex={-1} ref={heading}>This device was removed from your account</h1>
      <p>
        {me.value ? <>It is no longer one of <strong>{me.value.username}</strong>’s devices</> : 'It is no longer one of your devices'}: it was removed from another device, or logged out.
        It can no longer send or receive messages, and messages waiting to be sent from here will not go out.
      </p>
      <p>The messages already on this device stay readable here until you erase it. Erasing deletes this device’s keys and message history from this browser; your other devices keep theirs.</p>
      <p class="hint">To use Petrel here again, erase this device, then log in with your password or link it from one of your devices.</p>
      <div class="actions">
        <button class="primary" disabled={erasing.value} onClick={() => void eraseDevice()}>
          {erasing.value ? 'Erasing…' : 'Erase this device and start again'}
        </button>
        <button disabled={erasing.value} onClick={() => (readingRemoved.value = true)}>Read the messages on this device first</button>
      </div>
      {erasing.value && <progress aria-label="Erasing this device" />}
    </main>
  );
}

/** Above the conversations while the person reads a removed device's messages. */
export function RemovedBanner() {
  return (
    <div class="banner removed" role="alert">
      This device was removed from your account: it no longer sends or receives messages.{' '}
      <button disabled={erasing.value} onClick={() => void eraseDevice()}>Erase this device</button>
    </div>
  );
}

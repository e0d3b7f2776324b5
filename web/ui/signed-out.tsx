/**
 * The relay no longer accepts this device's token, but the account's signed device list still
 * has the device (web/core/refusal.ts): another session issued it a new token, or the relay's
 * data was restored. Nothing is lost, unlike a removal (removed.tsx): the password signs it in
 * again (a new token for this device), and what waits in the outbox goes out then.
 */
import { useState } from 'preact/hooks';
import { engine, me, say } from './state.ts';

export function SignedOutBanner() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const submit = async (ev: Event) => {
    ev.preventDefault();
    const input = (ev.currentTarget as HTMLFormElement).elements.namedItem('password') as HTMLInputElement;
    setBusy(true);
    setError('');
    try {
      await engine.value!.signIn(input.value);
      say('Signed in again.');
    } catch (e) {
      // Wrong password, or the relay out of reach: the engine's words say which and what to do.
      setError(e instanceof Error ? e.message : String(e));
    }
    setBusy(false);
  };
  return (
    <form class="banner signed-out" aria-labelledby="signed-out-title" onSubmit={submit}>
      <p role="alert">
        <strong id="signed-out-title">This device was signed out by the relay.</strong> It is still one of {me.value?.username}’s devices and your messages
        are still here; what you write waits until you sign in again.
      </p>
      <label>
        Password <input name="password" type="password" autoComplete="current-password" required disabled={busy} />
      </label>
      <button type="submit" disabled={busy}>{busy ? 'Signing in…' : 'Sign in again'}</button>
      {error && <p role="alert">{error}</p>}
    </form>
  );
}

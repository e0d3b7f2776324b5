/** First run: create an account, log in as a new device, or link this device with a code. */
import { signal, useSignal } from '@preact/signals';
import { unreachable } from '../core/explain.ts';
import { act, engine, me, refreshConversations, say, toast } from './state.ts';
import { Qr } from './qr.tsx';

type Tab = 'register' | 'login' | 'link';
const TABS: readonly Tab[] = ['register', 'login', 'link'];
const TAB_NAME: Record<Tab, string> = { register: 'Create account', login: 'Log in', link: 'Link this device' };

/**
 * Keyboard, as screen-reader users expect of tabs (ARIA's tabs pattern): the tab list is one tab
 * stop, the chosen tab; Left/Right (Home/End) choose another and move focus with it.
 */
export function Welcome() {
  const tab = useSignal<Tab>('register');
  const keys = (e: KeyboardEvent) => {
    const i = TABS.indexOf(tab.value);
    const to = e.key === 'ArrowRight' ? (i + 1) % TABS.length : e.key === 'ArrowLeft' ? (i + TABS.length - 1) % TABS.length : e.key === 'Home' ? 0 : e.key === 'End' ? TABS.length - 1 : -1;
    if (to < 0) return;
    e.preventDefault();
    tab.value = TABS[to]!;
    (e.currentTarget as HTMLElement).querySelector<HTMLElement>(`#tab-${TABS[to]}`)?.focus();
  };
  return (
    <main class="welcome">
      <h1>Petrel</h1>
      <p class="lede">End-to-end encrypted messages on all your devices. Your keys never leave this device; the relay only sees ciphertext.</p>
      <div role="tablist" aria-label="How to start" class="tabs" onKeyDown={keys}>
        {TABS.map((t) => (
          <button role="tab" id={`tab-${t}`} aria-selected={tab.value === t} aria-controls="start-panel" tabIndex={tab.value === t ? 0 : -1} class={tab.value === t ? 'active' : ''} onClick={() => (tab.value = t)} key={t}>
            {TAB_NAME[t]}
          </button>
        ))}
      </div>
      <div role="tabpanel" id="start-panel" aria-labelledby={`tab-${tab.value}`}>
        {tab.value === 'link' ? <LinkDevice /> : <Credentials mode={tab.value} />}
      </div>
    </main>
  );
}

async function entered() {
  me.value = engine.value!.state();
  await refreshConversations();
  void engine.value!.start();
}

function Credentials({ mode }: { mode: 'register' | 'login' }) {
  const user = useSignal('');
  const pass = useSignal('');
  const busy = useSignal(false);
  const submit = async (ev: Event) => {
    ev.preventDefault();
    busy.value = true;
    const ok = await act(async () => {
      if (mode === 'register') await engine.value!.register(user.value.trim(), pass.value);
      else await engine.value!.login(user.value.trim(), pass.value);
      return true;
    });
    busy.value = false;
    if (!ok) return;
    toast.value = null; // an error from an earlier try ("That username is taken") no longer applies
    await entered();
  };
  return (
    <form class="card" onSubmit={submit}>
      <label>
        Username
        <input
          name="username"
          autoComplete="username"
          required
          minLength={3}
          maxLength={32}
          pattern="[A-Za-z0-9_.\-]{3,32}"
          title="3 to 32 letters, digits, _ . or -"
          value={user.value}
          onInput={(e) => (user.value = e.currentTarget.value)}
        />
      </label>
      <label>
        Password
        <input name="password" type="password" autoComplete={mode === 'register' ? 'new-password' : 'current-password'} required minLength={mode === 'register' ? 8 : 1} value={pass.value} onInput={(e) => (pass.value = e.currentTarget.value)} />
      </label>
      {mode === 'register' && (
        <>
          <p class="hint">3 to 32 letters, digits, _ . or - for the username (capitals count as small letters).</p>
          <p class="hint">At least 8 characters. The relay never learns it (OPAQUE); it protects the backup of your account key.</p>
        </>
      )}
      {mode === 'login' && (
        <p class="hint">
          {/* What happens: login announces the new device, and one of the account's other devices sends
              it the history as soon as that device is online (web/core/apply.ts 'device-added'). */}
          This adds this browser as a new device of your account. Your past messages arrive from one of your other devices as soon as that device is online. No password at hand? <strong>Link this device</strong> with a code from a device you are signed in on.
        </p>
      )}
      <button type="submit" class="primary" disabled={busy.value}>
        {busy.value ? (mode === 'register' ? 'Creating keys…' : 'Logging in…') : mode === 'register' ? 'Create account' : 'Log in'}
      </button>
      {busy.value && <progress aria-label="Working" />}
    </form>
  );
}

/**
 * The link under way, outside the component: switching to another tab and back must show the same
 * code (the engine keeps polling for it) rather than offer a new one.
 */
const linkCode = signal<string | null>(null);
const linkStatus = signal('');
/** The relay did not answer the last poll: said in the card until it does (the polls go on). */
const linkUnreachable = signal(false);

const copied = signal(false);

/** Copying beats retyping 92 characters; where the clipboard is refused, the field is selected instead. */
async function copy(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    copied.value = true;
    setTimeout(() => (copied.value = false), 2000);
  } catch {
    document.querySelector<HTMLTextAreaElement>('[data-testid="link-code"]')?.select();
    say('Copying was not allowed here: the code is selected, copy it with the keyboard or the menu.');
  }
}

function LinkDevice() {
  const code = linkCode;
  const status = linkStatus;
  const start = async () => {
    status.value = 'Preparing…';
    const link = await act(() => engine.value!.startLink({ pollMs: 1500, onReach: (ok) => (linkUnreachable.value = !ok) }));
    if (!link) return (status.value = '');
    code.value = link.code;
    status.value = 'Waiting for approval on your other device…';
    // Why linking stopped stays in the card (a toast would go before a clock could be fixed).
    const failure = await link.done.then(
      () => null,
      (e: unknown) => (e instanceof Error ? e.message : String(e)),
    );
    linkUnreachable.value = false;
    if (failure === null) {
      status.value = 'Linked. Loading your history…';
      await entered();
    } else if (engine.value!.state()) {
      // Claimed: this browser is one of the account's devices now, and the app finishes the link
      // (its banner says so). Offering a new code here would only be refused.
      say(failure, 'error');
      await entered();
    } else {
      status.value = `Linking stopped: ${failure}`;
      code.value = null;
    }
  };
  return (
    <div class="card">
      {/* Petrel has no QR scanner: the QR code only helps where another app can read it. */}
      <p>
        On a device that already uses Petrel, open <strong>Settings</strong> and paste or type this code under <strong>Link a new device</strong>. A mistyped
        code is refused, never linked. Petrel cannot scan the QR code itself; if that device has a QR scanner (many phone camera apps are one), scan it there,
        copy the text it shows and paste it into Petrel.
      </p>
      {code.value ? (
        <>
          <Qr text={code.value} label="Link code as a QR code" />
          <label>
            Link code
            <textarea readOnly rows={3} value={code.value} class="code" data-testid="link-code" onFocus={(e) => e.currentTarget.select()} />
          </label>
          <button onClick={() => void copy(code.value!)}>{copied.value ? 'Copied' : 'Copy code'}</button>
        </>
      ) : (
        <button class="primary" onClick={start}>
          Show link code
        </button>
      )}
      <p role="status" class="hint">{status.value}</p>
      {linkUnreachable.value && <p role="alert" class="error">{unreachable('linking goes on by itself once it is back.')}</p>}
    </div>
  );
}

/** Side panels: new chat, new group, group info, contact info (safety number), settings. */
import { signal, useSignal } from '@preact/signals';
import { useEffect, useId, useLayoutEffect, useRef } from 'preact/hooks';
import { shortDeviceId } from '../core/device-id.ts';
import type { ConversationRow, DeviceView, SafetyNumberView } from '../core/types.ts';
import { disableNotifications, enableNotifications, requestPersistence } from '../net/sw-bridge.ts';
import { cycleTab, makeModal } from './modal.ts';
import { Qr } from './qr.tsx';
import { VerifiedMark } from './marks.tsx';
import { act, connection, contacts, currentConversation, engine, erasing, eraseDevice, me, openConversation, panel, pending, persistence, refreshConversations, saveSettings, say, settings } from './state.ts';

const close = () => (panel.value = { kind: 'none' });
/** Before a row goes away with the button that was pressed (a member, a device): focus the panel's heading. */
const toHeading = (e: Event) => (e.currentTarget as HTMLElement).closest('.panel')?.querySelector<HTMLElement>('h2')?.focus();

/**
 * A side panel, named by its title: a modal dialog. Opening it moves focus into it — a form's
 * first field, an information panel's heading — so keyboard and screen-reader users land where
 * the new content is; the page behind is inert while it is open (modal.ts) and Tab wraps around
 * inside it. Escape, Close or a click outside hands focus back to whatever opened it (if focus is
 * still in the panel: a conversation opened from it takes focus itself, see conversation.tsx).
 * `kind` goes before the title in the dialog's name where the title alone says too little (a
 * contact's panel is titled with the bare username).
 */
function Panel({ title, kind, form = false, children }: { title: string; kind?: string; form?: boolean; children: preact.ComponentChildren }) {
  const ref = useRef<HTMLDivElement>(null);
  const id = useId();
  // Layout effect: focus moves before the next keystroke can land in the element left behind.
  useLayoutEffect(() => {
    const el = ref.current!;
    const opener = document.activeElement as HTMLElement | null;
    const release = makeModal(el, close);
    ((form && el.querySelector<HTMLElement>('input, textarea')) || el.querySelector<HTMLElement>('h2'))?.focus();
    return () => {
      release(); // first: an inert opener cannot take focus
      const a = document.activeElement;
      if (a && a !== document.body && !el.contains(a)) return;
      // The opener may be gone (a conversation removed from the list): then the list.
      (opener?.isConnected ? opener : document.querySelector<HTMLElement>('.chats [tabindex="0"], .chats input'))?.focus();
    };
  }, []);
  return (
    <div class="panel" role="dialog" aria-modal="true" aria-labelledby={kind ? `${id}-k ${id}-h` : `${id}-h`} ref={ref} onKeyDown={(e) => cycleTab(e, ref.current!)}>
      {kind && <span id={`${id}-k`} hidden>{kind}:</span>}
      <header>
        <h2 id={`${id}-h`} tabIndex={-1}>{title}</h2>
        <button onClick={close} aria-label="Close">✕</button>
      </header>
      {children}
    </div>
  );
}

export function Panels() {
  const p = panel.value;
  if (p.kind === 'new-chat') return <NewChat />;
  if (p.kind === 'new-group') return <NewGroup />;
  if (p.kind === 'group-info') return <GroupInfo />;
  if (p.kind === 'contact') return <Contact user={p.user} />;
  if (p.kind === 'settings') return <SettingsPanel />;
  return null;
}

function NewChat() {
  const name = useSignal('');
  return (
    <Panel title="New chat" form>
      <form onSubmit={async (e) => {
        e.preventDefault();
        const id = await act(() => engine.value!.openDirect(name.value.trim()));
        if (id) {
          await refreshConversations();
          await openConversation(id, true);
        }
      }}>
        <label>Username<input required value={name.value} onInput={(e) => (name.value = e.currentTarget.value)} /></label>
        <button class="primary" type="submit">Start chat</button>
      </form>
    </Panel>
  );
}

function NewGroup() {
  const name = useSignal('');
  const members = useSignal('');
  return (
    <Panel title="New group" form>
      <form onSubmit={async (e) => {
        e.preventDefault();
        const list = members.value.split(/[\s,]+/).filter(Boolean);
        const id = await act(() => engine.value!.createGroup(name.value, list));
        if (id) {
          await refreshConversations();
          await openConversation(id, true);
        }
      }}>
        <label>Group name<input required maxLength={128} value={name.value} onInput={(e) => (name.value = e.currentTarget.value)} /></label>
        <label>Members (usernames, separated by spaces or commas)<input required value={members.value} onInput={(e) => (members.value = e.currentTarget.value)} /></label>
        <button class="primary" type="submit">Create group</button>
      </form>
    </Panel>
  );
}

function GroupInfo() {
  const conv = currentConversation.value;
  const add = useSignal('');
  const rename = useSignal(conv?.title ?? '');
  if (!conv) return null;
  // Left (or removed): every change would be refused, so none is offered; what is left to do is
  // to clear the group away.
  if (conv.left) return <LeftGroupInfo conv={conv} />;
  return (
    <Panel title="Group info">
      <form onSubmit={(e) => (e.preventDefault(), void act(() => engine.value!.renameGroup(conv.id, rename.value)))}>
        <label>Name<input value={rename.value} onInput={(e) => (rename.value = e.currentTarget.value)} /></label>
        <button type="submit">Rename</button>
      </form>
      <h3>Members</h3>
      <ul class="members">
        <li>{me.value?.username} (you)</li>
        {conv.members.map((m) => (
          <li key={m}>
            <span class="member">
              <button class="link" onClick={() => (panel.value = { kind: 'contact', user: m })}>{m}</button>
              {contacts.value[m]?.verified && <VerifiedMark user={m} />}
            </span>
            <button onClick={(e) => confirm(`Remove ${m} from the group?`) && (toHeading(e), void act(() => engine.value!.removeMember(conv.id, m)))} aria-label={`Remove ${m}`}>Remove</button>
          </li>
        ))}
      </ul>
      <form onSubmit={(e) => (e.preventDefault(), void act(async () => { await engine.value!.addMember(conv.id, add.value.trim()); add.value = ''; }))}>
        <label>Add member<input value={add.value} onInput={(e) => (add.value = e.currentTarget.value)} /></label>
        <button type="submit">Add</button>
      </form>
      <button class="danger" onClick={() => confirm('Leave this group?') && void act(() => engine.value!.leaveGroup(conv.id))}>Leave group</button>
    </Panel>
  );
}

function LeftGroupInfo({ conv }: { conv: ConversationRow }) {
  return (
    <Panel title="Group info">
      <p class="banner" role="status">You are no longer a member of this group. You can read its messages here, but not send or change anything.</p>
      <p>Name: <strong>{conv.title}</strong></p>
      <h3>Members at the time</h3>
      <ul class="members">
        {conv.members.map((m) => <li key={m}>{m}</li>)}
      </ul>
      <button class="danger" onClick={() => confirm(`Remove “${conv.title}” and its messages from this device?`) && void act(async () => {
        await engine.value!.removeConversation(conv.id);
        await openConversation(null);
      })}>Remove from chat list</button>
      <p class="hint">Only this device forgets it; your other devices keep their copy.</p>
    </Panel>
  );
}

function Contact({ user }: { user: string }) {
  const sn = useSignal<SafetyNumberView | null>(null);
  const load = () => act(async () => (sn.value = await engine.value!.safetyNumber(user)));
  useEffect(() => {
    void load();
    // A key change while the number is on screen: show the new one, never keep comparing the old.
    return engine.value!.on((e) => void (e.type === 'key-changed' && e.user === user && load()));
  }, [user]);
  return (
    <Panel title={user} kind="Contact info">
      <h3>Safety number</h3>
      {sn.value ? (
        <>
          <p class="digits" aria-label="Safety number digits">{sn.value.digits.match(/.{1,5}/g)!.join(' ')}</p>
          <Qr text={sn.value.qr} label="Safety number as a QR code" />
          {sn.value.keyChanged && <p class="banner warn">{user}'s safety number changed. Compare the new number with them; an earlier verification does not carry over.</p>}
          <p class="hint">Compare these digits with {user} in person or on a call. If they match, nobody is in the middle.</p>
          <label class="check">
            {/* The digits shown are passed along: if the key changed meanwhile, nothing is marked. */}
            <input type="checkbox" checked={sn.value.verified} onChange={async (e) => { await act(() => engine.value!.markVerified(user, e.currentTarget.checked, sn.value!.digits)); await load(); }} />
            Verified
          </label>
          {sn.value.verified && <p class="hint">If {user}'s safety number changes, the mark goes and your conversation says so.</p>}
        </>
      ) : (
        <progress aria-label="Loading" />
      )}
    </Panel>
  );
}

/**
 * A device approval under way, kept outside the panel: the engine goes on waiting for the new
 * device when Settings is closed, so reopening it must show that wait and its Cancel, not an idle
 * Approve button that would start a second one. `cancelled`: the person stopped waiting; the
 * device stays approved (so its code still finishes the link) unless they remove it.
 */
type Approval =
  | { readonly state: 'waiting'; readonly stop: AbortController; readonly deviceId: string | null; readonly name: string | null }
  | { readonly state: 'cancelled'; readonly deviceId: string; readonly name: string };
const approval = signal<Approval | null>(null);
const approveCode = signal('');
const approveName = signal('');
const ownDevices = signal<DeviceView[]>([]);
const loadDevices = () => act(async () => (ownDevices.value = await engine.value!.devices()));

async function approve(): Promise<void> {
  const stop = new AbortController();
  approval.value = { state: 'waiting', stop, deviceId: null, name: null };
  const mine = () => approval.value?.state === 'waiting' && approval.value.stop === stop;
  try {
    const r = await engine.value!.approveLink(approveCode.value, {
      name: approveName.value,
      signal: stop.signal,
      onApproved: (d) => {
        if (mine()) approval.value = { state: 'waiting', stop, ...d };
        void loadDevices();
      },
    });
    if (mine()) approval.value = null;
    approveCode.value = '';
    approveName.value = '';
    say(`Linked ${r.name}. It is receiving your history.`);
  } catch (e) {
    const code = (e as { code?: string }).code;
    const was = approval.value;
    if (mine()) approval.value = code === 'link_cancelled' && was?.deviceId && was.name ? { state: 'cancelled', deviceId: was.deviceId, name: was.name } : null;
    // Cancelled by the person, or the device was removed (which is why the wait stopped): they
    // know already, and a toast naming a removed device would only confuse.
    if (code !== 'link_cancelled' && code !== 'link_removed') say(e instanceof Error ? e.message : String(e), 'error');
  }
  await loadDevices();
}

async function removeOwnDevice(d: { deviceId: string; name: string }): Promise<void> {
  // Removing the device being waited for ends that wait here, not at the engine's next poll.
  const a = approval.value;
  if (a?.deviceId === d.deviceId) {
    approval.value = null;
    if (a.state === 'waiting') a.stop.abort();
  }
  await act(() => engine.value!.removeDevice(d.deviceId));
  await loadDevices();
}

function Approve() {
  const a = approval.value;
  if (a?.state === 'waiting') {
    return (
      <div class="approval" role="status">
        <p>Waiting for {a.name ? <strong>{a.name}</strong> : 'the new device'} to come online. Keep Petrel open on it; this can take a minute.</p>
        <progress aria-label="Linking" />
        <button onClick={() => a.stop.abort()}>Cancel</button>
      </div>
    );
  }
  if (a?.state === 'cancelled') {
    return (
      <div class="approval" role="status">
        <p>
          Stopped waiting. <strong>{a.name}</strong> stays on your account, approved: enter its code here again once it is online to finish linking. If you
          do not mean to link it, remove it.
        </p>
        <button onClick={() => void removeOwnDevice(a)}>Remove {a.name}</button> <button onClick={() => (approval.value = null)}>Keep it</button>
      </div>
    );
  }
  return (
    <form onSubmit={(e) => {
      e.preventDefault();
      void approve();
    }}>
      <label>Link a new device: paste the code it shows<textarea rows={3} value={approveCode.value} onInput={(e) => (approveCode.value = e.currentTarget.value)} data-testid="approve-code" /></label>
      <label>Name for it (optional)<input value={approveName.value} maxLength={64} placeholder="e.g. Work laptop" onInput={(e) => (approveName.value = e.currentTarget.value)} data-testid="approve-name" /></label>
      <button type="submit" disabled={!approveCode.value.trim()}>Approve device</button>
    </form>
  );
}

const day = (ms: number) => new Date(ms).toLocaleDateString([], { day: 'numeric', month: 'short', year: 'numeric' });

/**
 * The short ID (the same string the CLI's `devices` prints) and when the account's signed device
 * list says the device was added — the clock of the device that added it, so "added", not "linked
 * at". Text, so it reads out as it shows.
 */
function DeviceFacts({ d }: { d: Pick<DeviceView, 'shortId' | 'addedAt'> }) {
  return (
    <small class="device-facts">
      ID <span class="short-id">{d.shortId}</span>
      {d.addedAt > 0 && <> · added <time dateTime={new Date(d.addedAt).toISOString()}>{day(d.addedAt)}</time></>}
    </small>
  );
}

/** This device's name and short ID, to match it to its row in "Your devices" on another device. */
function ThisDevice() {
  const id = me.value?.deviceId;
  if (!id) return null;
  const d = ownDevices.value.find((x) => x.current);
  return (
    <p class="this-device">
      {d && <strong>{d.name}</strong>}
      <DeviceFacts d={d ?? { shortId: shortDeviceId(id), addedAt: 0 }} />
    </p>
  );
}

function SettingsPanel() {
  useEffect(() => void loadDevices(), []);
  const waitingFor = approval.value?.state === 'waiting' ? approval.value.deviceId : null;
  return (
    <Panel title="Settings">
      <p>Signed in as <strong>{me.value?.username}</strong></p>
      <h3>Your devices</h3>
      <ul class="devices">
        {ownDevices.value.map((d) => (
          <li key={d.deviceId}>
            <span>
              {d.name} {d.current && <em>(this device)</em>}
              {d.deviceId === waitingFor && <em>(waiting for it to come online)</em>}
              <DeviceFacts d={d} />
            </span>
            {!d.current && (
              <button aria-label={`Remove “${d.name}”, ID ${d.shortId}`} onClick={(e) => confirm(`Remove “${d.name}” (ID ${d.shortId})? It stops receiving messages at once.`) && (toHeading(e), void removeOwnDevice(d))}>
                Remove
              </button>
            )}
          </li>
        ))}
      </ul>
      <p class="hint">To tell which device is which, compare its ID with the one Settings shows under “This device” on that device. An ID never changes.</p>
      <Approve />
      <h3>Notifications</h3>
      <label class="check">
        <input type="checkbox" checked={settings.value.notifications} onChange={async (e) => {
          const on = e.currentTarget.checked;
          if (on) {
            const r = await act(() => enableNotifications(engine.value!));
            if (r === 'denied') say('Notifications are blocked for this site in your browser settings.', 'error');
            else if (r === 'unsupported') say('This browser cannot receive push notifications.', 'error');
            await saveSettings({ notifications: r === 'on' });
            // Chromium grants persistent storage to sites allowed to notify: ask again now.
            if (r === 'on' && persistence.value !== true) persistence.value = await requestPersistence().catch(() => null);
          } else {
            await act(() => disableNotifications(engine.value!));
            await saveSettings({ notifications: false });
          }
        }} />
        Notify me of new messages
      </label>
      <label class="check">
        <input type="checkbox" checked={settings.value.previews} onChange={(e) => void saveSettings({ previews: e.currentTarget.checked })} />
        Show the sender and message text in notifications (off: “New message” only)
      </label>
      <h3>Appearance</h3>
      <label>Theme
        <select value={settings.value.theme} onChange={(e) => void saveSettings({ theme: e.currentTarget.value as 'system' | 'light' | 'dark' })}>
          <option value="system">Same as the system</option>
          <option value="light">Light</option>
          <option value="dark">Dark</option>
        </select>
      </label>
      <h3>This device</h3>
      <ThisDevice />
      <p class="hint">Logging out removes this device from your account and erases its keys and messages from this browser.</p>
      <button class="danger" disabled={erasing.value} onClick={() => void logOut(ownDevices.value)}>{erasing.value ? 'Logging out…' : 'Log out of this device'}</button>
      <h3>Storage</h3>
      <p class="hint">
        {persistence.value === true
          ? 'This browser keeps Petrel’s data (your keys and history) even when disk space runs low.'
          : persistence.value === false
            ? 'This browser may delete Petrel’s data when the disk runs low: install Petrel as an app to keep it, and keep another device linked.'
            : 'This browser does not say whether it keeps Petrel’s data.'}
      </p>
    </Panel>
  );
}

/**
 * Log out: the same removal as "Remove" on another device (a new device list without this one,
 * signed with the account key), then the local erase. Confirmed first, saying what is lost:
 * history lives only on devices, so on the only one it is gone for good.
 */
async function logOut(devices: readonly DeviceView[]): Promise<void> {
  const removed = connection.value === 'removed';
  const only = devices.length === 1 && devices[0]!.current;
  const lines = [
    removed
      ? 'Erase this device? Its keys and messages are deleted from this browser.'
      : 'Log out of this device? It is removed from your account — your other devices see it go — and its keys and messages are deleted from this browser.',
  ];
  if (only && !removed) {
    lines.push('This is your only device: your message history exists nowhere else and will be lost for good. You can log in again with your password, but without another device the old messages do not come back.');
  }
  if (pending.value > 0) lines.push(`${pending.value} message${pending.value > 1 ? 's' : ''} waiting to send will not be sent.`);
  if (!confirm(lines.join('\n\n'))) return;
  const out = await act(async () => {
    await engine.value!.logOut();
    return true;
  });
  if (out) await eraseDevice();
}

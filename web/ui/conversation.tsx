/**
 * One conversation: bubbles with day separators and status ticks, replies, reactions, edits,
 * deletes, attachments, the typing indicator, and scroll-back that loads older pages only when
 * the top is reached (a 10,000-message conversation opens with 50; at most 250 are in the DOM).
 * User text is only ever rendered as text nodes.
 *
 * Keyboard: the message list is one tab stop; arrow keys move between messages (Home/End to
 * the ends), and Tab from a message reaches its actions, which are shown while it has focus.
 * Opening a conversation shows its newest message; one arriving while the reader is further up
 * does not move the view but offers a "new messages" button. Messages from others are read out
 * once, as they arrive, from a polite log region.
 */
import { useSignal } from '@preact/signals';
import { useEffect, useId, useLayoutEffect, useRef } from 'preact/hooks';
import type { ConversationRow, FailedChangeView, MessageView } from '../core/types.ts';
import { Composer } from './composer.tsx';
import { VerifiedMark } from './marks.tsx';
import { EmojiPicker } from './picker.tsx';
import { act, arrived, connection, contacts, conversations, currentConversation, engine, hasNewer, historyDue, hasOlder, isVerified, loadNewer, loadOlder, me, messages, openConversation, panel, showNewest, takeFocusRequest, typing } from './state.ts';

/**
 * Status marks. Delivered and read once differed only by shade: read also says so in a word.
 * A failed message has no tick: it says "Not sent" with a Retry button below the text; a failed
 * reaction, edit or delete says what the others see, with Retry and Discard (ChangeFailed).
 */
const TICKS: Record<string, { mark: string; word?: string; label: string }> = {
  pending: { mark: '🕓', label: 'waiting to send' },
  sent: { mark: '✓', label: 'sent' },
  delivered: { mark: '✓✓', label: 'delivered' },
  read: { mark: '✓✓', word: 'Read', label: 'read' },
};

const day = (ms: number) => new Date(ms).toLocaleDateString([], { weekday: 'long', month: 'long', day: 'numeric', year: 'numeric' });
const clock = (ms: number) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

export function Conversation() {
  const conv = currentConversation.value;
  if (!conv) {
    return (
      <section class="conversation empty-state" aria-label="Conversation">
        <p>
          {conversations.value.length
            ? 'Select a conversation on the left, or start one with “+ Chat” and a username.'
            : historyDue.value
              ? 'Your conversations are still arriving from your other device.'
              : 'No conversations yet: start one with “+ Chat” and a username.'}
        </p>
      </section>
    );
  }
  // Keyed: reply, edit and scroll state belong to one conversation and start fresh in the next.
  return <Open key={conv.id} conv={conv} />;
}

function Open({ conv }: { conv: ConversationRow }) {
  const listRef = useRef<HTMLOListElement>(null);
  const topRef = useRef<HTMLLIElement>(null);
  const bottomRef = useRef<HTMLLIElement>(null);
  const replyTo = useSignal<MessageView | null>(null);
  const editing = useSignal<MessageView | null>(null);
  const atBottom = useRef(true);
  const section = useRef<HTMLElement>(null);
  /** Messages from others that arrived out of view (scrolled up), for the "new messages" button. */
  const unseen = useSignal(0);
  const lastKey = useRef<string | undefined>(undefined);
  const heard = useRef(0);

  // Focus: into the composer when opened from a panel, or when what had focus is gone or hidden
  // (on a phone the list makes way); on leaving, back to this conversation's row in the list.
  useLayoutEffect(() => {
    const a = document.activeElement as HTMLElement | null;
    const s = section.current!;
    if (takeFocusRequest() || !a || a === document.body || !a.checkVisibility()) (s.querySelector<HTMLElement>('.composer textarea') ?? listRef.current)?.focus();
    return () => {
      const a = document.activeElement;
      if (a === document.body || s.contains(a)) document.querySelector<HTMLElement>(`.chats [data-id="${CSS.escape(conv.id)}"]`)?.focus();
    };
  }, []);
  useEffect(() => {
    const el = listRef.current;
    const last = messages.value.at(-1);
    const sent = last && last.key !== lastKey.current && lastKey.current !== undefined && last.from === me.value?.username;
    lastKey.current = last?.key;
    // The reader's own message always shows; others' only if they were at the bottom already.
    if (el && (atBottom.current || sent) && !hasNewer.value) {
      el.scrollTop = el.scrollHeight;
      atBottom.current = true;
    }
  }, [messages.value]);
  useEffect(() => {
    const n = arrived.value.length - heard.current;
    heard.current = arrived.value.length;
    if (n > 0 && (!atBottom.current || hasNewer.value)) unseen.value += n;
  }, [arrived.value]);
  usePager(listRef, topRef, hasOlder.value, 'first', loadOlder, () => (atBottom.current = false));
  usePager(listRef, bottomRef, hasNewer.value, 'last', loadNewer);
  const toNewest = async () => {
    await showNewest();
    atBottom.current = true;
    unseen.value = 0;
    const el = listRef.current!;
    el.scrollTop = el.scrollHeight;
    // The button goes away: focus the newest message rather than lose focus.
    ([...el.querySelectorAll<HTMLElement>(':scope > .bubble')].at(-1) ?? el).focus();
  };

  const who = typing.value[conv.id] ?? [];
  let lastDay = '';
  return (
    <section class="conversation" aria-label={`Conversation with ${conv.title}`} ref={section}>
      <header class="conv-head">
        <button class="back" onClick={() => void openConversation(null)} aria-label="Back to conversations">←</button>
        <div class="conv-title">
          <h2>{conv.title}</h2>
          {/* A group has no mark of its own: its members are marked one by one in Group info. */}
          {isVerified(conv) && <VerifiedMark user={conv.title} />}
        </div>
        <button onClick={() => (panel.value = conv.kind === 'group' ? { kind: 'group-info' } : { kind: 'contact', user: conv.title })} aria-label={conv.kind === 'group' ? 'Group info' : 'Contact info'}>Info</button>
      </header>
      {conv.keyWarning && <KeyWarning conv={conv} />}
      <ol class="messages" ref={listRef} tabIndex={0} aria-label="Messages" aria-describedby="messages-help" onKeyDown={moveFocus}
        onScroll={(e) => {
          atBottom.current = e.currentTarget.scrollTop + e.currentTarget.clientHeight >= e.currentTarget.scrollHeight - 40;
          if (atBottom.current && !hasNewer.value) unseen.value = 0;
        }}>
        <li ref={topRef} class="top-sentinel">{hasOlder.value ? <button onClick={() => void loadOlder()}>Load earlier messages</button> : messages.value.length ? <span>Beginning of the conversation</span> : null}</li>
        {messages.value.length === 0 && <li class="empty">No messages yet. Say hello — only the people in this conversation can read it.</li>}
        {messages.value.map((m) => {
          const d = day(m.sentAt);
          const sep = d !== lastDay ? ((lastDay = d), <li class="day" key={`d-${d}`}><span>{d}</span></li>) : null;
          return [sep, <Bubble key={m.key} m={m} conv={conv} onReply={() => (replyTo.value = m)} onEdit={() => (editing.value = m)} />];
        })}
        <li ref={bottomRef} class="bottom-sentinel">{hasNewer.value ? <button onClick={() => void loadNewer()}>Load newer messages</button> : null}</li>
      </ol>
      <p id="messages-help" class="visually-hidden">Arrow keys move between messages; Tab reaches the actions of the selected message.</p>
      {unseen.value > 0 && <button class="new-below" onClick={() => void toNewest()}>{unseen.value} new message{unseen.value > 1 ? 's' : ''} <span aria-hidden="true">↓</span></button>}
      {/* Screen readers hear arriving messages once each, not the whole list again after each page load. */}
      <div class="visually-hidden" role="log" aria-live="polite" aria-label="New messages">
        {arrived.value.slice(-3).map((m) => <p key={m.key}>{m.from}: {m.text || (m.attachment ? `sent ${m.attachment.name}` : '')}</p>)}
      </div>
      <p class="typing" aria-live="polite">{who.length ? `${who.join(', ')} ${who.length > 1 ? 'are' : 'is'} typing…` : ''}</p>
      {connection.value === 'removed' ? (
        <p class="banner">This device was removed from your account: it can no longer send messages.</p>
      ) : conv.left ? <p class="banner">You are no longer a member of this group.</p> : <Composer conv={conv} replyTo={replyTo} editing={editing} />}
    </section>
  );
}

/**
 * A contact's account key changed (web/core/directory.ts set keyWarning): says whose, and offers
 * the comparison. It stays until dismissed or until the new key is verified; the line the engine
 * added to the messages stays for good.
 */
function KeyWarning({ conv }: { conv: ConversationRow }) {
  // In a group, the members whose new key is not verified yet (none known: say "someone").
  const changed = conv.kind === 'direct' ? [conv.title] : conv.members.filter((m) => contacts.value[m]?.keyChanged);
  const whose = conv.kind === 'direct' ? `Your safety number with ${conv.title}` : changed.length ? `The safety number of ${changed.join(', ')}` : 'The safety number of someone in this group';
  return (
    <div class="banner warn key-warning" role="alert">
      <span>{whose} changed. They may have reinstalled Petrel or reset their account — or someone may be in the middle. Compare safety numbers before sharing anything sensitive.</span>{' '}
      {changed.map((u) => (
        <button key={u} onClick={() => (panel.value = { kind: 'contact', user: u })}>{conv.kind === 'direct' ? 'Compare safety numbers' : `Compare with ${u}`}</button>
      ))}{' '}
      <button onClick={() => void act(() => engine.value!.acknowledgeKeyChange(conv.id))}>Dismiss</button>
    </div>
  );
}

/** Loads a page when the sentinel at one end comes into view, keeping the reader's place. */
function usePager(list: { current: HTMLElement | null }, sentinel: { current: HTMLElement | null }, more: boolean, edge: 'first' | 'last', load: () => Promise<void>, before?: () => void) {
  useEffect(() => {
    const s = sentinel.current;
    const l = list.current;
    if (!s || !l || !more) return;
    const io = new IntersectionObserver(async ([entry]) => {
      if (!entry?.isIntersecting) return;
      before?.();
      await keepPlace(l, edge, load);
    }, { root: l });
    io.observe(s);
    return () => io.disconnect();
  }, [more]);
}

/**
 * Runs a page load without moving what the reader looks at: the message at the edge being
 * extended stays where it was on screen (the window may also drop messages at the far end).
 */
async function keepPlace(list: HTMLElement, edge: 'first' | 'last', load: () => Promise<void>): Promise<void> {
  const items = list.querySelectorAll<HTMLElement>('.bubble, .system');
  const anchor = edge === 'first' ? items[0] : items[items.length - 1];
  const before = anchor?.getBoundingClientRect().top ?? 0;
  await load();
  await new Promise((r) => requestAnimationFrame(r));
  if (anchor?.isConnected) list.scrollTop += anchor.getBoundingClientRect().top - before;
}

function moveFocus(e: KeyboardEvent): void {
  const list = e.currentTarget as HTMLElement;
  const bubbles = [...list.querySelectorAll<HTMLElement>(':scope > .bubble')];
  if (!bubbles.length) return;
  const at = bubbles.indexOf(e.target as HTMLElement);
  let next: HTMLElement | undefined;
  if (e.key === 'ArrowUp') next = at < 0 ? bubbles.at(-1) : bubbles[Math.max(0, at - 1)];
  else if (e.key === 'ArrowDown') next = at < 0 ? bubbles.at(-1) : bubbles[Math.min(bubbles.length - 1, at + 1)];
  else if (e.key === 'Home' && at >= 0) next = bubbles[0];
  else if (e.key === 'End' && at >= 0) next = bubbles.at(-1);
  else if (e.key === 'Escape' && at >= 0) next = list;
  if (!next) return;
  e.preventDefault();
  next.focus(); // the pager's sentinels load more when the focused message nears an end
  next.scrollIntoView({ block: 'nearest' });
}

/** Before a control goes away (its message deleted, a picker closed, sent again): focus its message. */
const toBubble = (e: Event) => (e.currentTarget as HTMLElement).closest<HTMLElement>('.bubble')?.focus();

function Bubble({ m, conv, onReply, onEdit }: { m: MessageView; conv: ConversationRow; onReply: () => void; onEdit: () => void }) {
  const mine = m.from === me.value?.username;
  const picking = useSignal(false);
  const react = useRef<HTMLButtonElement>(null);
  const pickerId = useId();
  if (m.system) return <li class="system"><span>{m.text}</span></li>;
  const quoted = m.replyTo ? messages.value.find((x) => x.key === m.replyTo) : undefined;
  const tick = TICKS[m.status];
  const showFrom = !mine && conv.kind === 'group';
  return (
    <li class={`bubble ${mine ? 'mine' : 'theirs'}`} data-status={m.status} tabIndex={-1}>
      {showFrom ? <span class="from">{m.from}</span> : <span class="visually-hidden">{mine ? 'You' : m.from}: </span>}
      {m.replyTo && <blockquote>{quoted ? (quoted.deleted ? 'Deleted message' : `${quoted.from}: ${quoted.text.slice(0, 140)}`) : 'An earlier message'}</blockquote>}
      {m.deleted ? <em class="deleted">This message was deleted</em> : m.text && <p class="text">{m.text}</p>}
      {m.attachment && !m.deleted && <Attachment m={m} />}
      <span class="meta">
        <time dateTime={new Date(m.sentAt).toISOString()}>{clock(m.sentAt)}</time>
        {m.edited && !m.deleted && <span> · edited</span>}
        {mine && tick && (
          <span class={`tick ${m.status}`} title={tick.label}>
            <span aria-hidden="true"> {tick.mark}{tick.word && <span class="tick-word">{tick.word}</span>}</span>
            <span class="visually-hidden">, {tick.label}</span>
          </span>
        )}
      </span>
      {mine && m.status === 'failed' && (
        // Sent again under the same id (engine.retry), so nobody who got it after all sees it twice.
        <span class="not-sent">
          <span aria-hidden="true">⚠</span> Not sent
          <button onClick={(e) => (toBubble(e), void act(() => engine.value!.retry(conv.id, m.key)))} aria-label="Retry sending this message">Retry</button>
        </span>
      )}
      {/* Only ours are ever recorded, on anyone's message (a reaction to theirs too). */}
      {m.failedChanges.map((f) => <ChangeFailed key={f.id} f={f} m={m} conv={conv} />)}
      {Object.keys(m.reactions).length > 0 && (
        <span class="reactions">
          {/* Words, not aria-label: on a plain span that is not allowed, and screen readers skip it. */}
          <span class="visually-hidden">Reactions: {Object.entries(m.reactions).map(([u, r]) => `${u} ${r}`).join(', ')}</span>
          {Object.entries(m.reactions).map(([u, r]) => <span title={u} key={u} aria-hidden="true">{r}</span>)}
        </span>
      )}
      {!m.deleted && (
        <span class="actions">
          <button onClick={onReply} aria-label="Reply">↩</button>
          <button ref={react} onClick={() => (picking.value = !picking.value)} aria-label="React" aria-expanded={picking.value} aria-controls={picking.value ? pickerId : undefined}>☺</button>
          {mine && <button onClick={onEdit} aria-label="Edit">✎</button>}
          {mine && <button onClick={(e) => confirm('Delete this message for everyone?') && (toBubble(e), void act(() => engine.value!.deleteForEveryone(conv.id, m.key)))} aria-label="Delete for everyone">✕</button>}
        </span>
      )}
      {picking.value && (
        <EmojiPicker id={pickerId} label="React with" name={(e) => `React with ${e}`} chosen={m.reactions[me.value!.username] ?? null} toggle={react}
          close={() => (picking.value = false)}
          onPick={(e, ev) => {
            const again = m.reactions[me.value!.username] === e; // picking one's own reaction again takes it back
            toBubble(ev);
            picking.value = false;
            void act(() => engine.value!.react(conv.id, m.key, again ? '' : e));
          }} />
      )}
    </li>
  );
}

/** Names for a failed change's buttons: each says what it does to which change (the visible word first). */
const CHANGE_BUTTONS: Record<FailedChangeView['kind'], { retry: string; discard: string }> = {
  edit: { retry: 'Retry sending this edit', discard: 'Discard this edit and show the earlier text again' },
  delete: { retry: 'Retry deleting this message for everyone', discard: 'Discard the delete and show this message again' },
  reaction: { retry: 'Retry sending this reaction', discard: 'Discard this reaction' },
};

/**
 * A reaction, edit or delete of ours that the relay refused for good (web/core/changes.ts): what
 * the others see now and why, with Retry (queued again under its own id, so nobody gets it twice)
 * and Discard (this device shows the message as the others see it). Both make the notice go:
 * focus moves to its message first, as after sending a failed message again.
 */
function ChangeFailed({ f, m, conv }: { f: FailedChangeView; m: MessageView; conv: ConversationRow }) {
  const names = CHANGE_BUTTONS[f.kind];
  return (
    <span class="not-sent change-failed" data-kind={f.kind}>
      <span aria-hidden="true">⚠</span>
      <span class="why">{f.kind === 'reaction' && f.emoji ? `${f.emoji} ` : ''}{f.message}</span>
      <span class="choices">
        <button onClick={(e) => (toBubble(e), void act(() => engine.value!.retryChange(conv.id, m.key, f.id)))} aria-label={names.retry}>Retry</button>
        <button onClick={(e) => (toBubble(e), void act(() => engine.value!.discardChange(conv.id, m.key, f.id)))} aria-label={names.discard}>Discard</button>
      </span>
    </span>
  );
}

function Attachment({ m }: { m: MessageView }) {
  const url = useSignal<string | null>(null);
  const busy = useSignal(false);
  const a = m.attachment!;
  // A decrypted file lives in memory as a blob: URL; free it when the bubble goes away.
  useEffect(() => () => void (url.value && URL.revokeObjectURL(url.value)), []);
  const open = async () => {
    busy.value = true;
    const file = await act(() => engine.value!.attachmentBytes(m.key));
    busy.value = false;
    if (!file) return;
    url.value = URL.createObjectURL(new Blob([file.bytes as Uint8Array<ArrayBuffer>], { type: file.mime }));
  };
  const size = a.size < 1024 ? `${a.size} ${a.size === 1 ? 'byte' : 'bytes'}` : a.size < 1024 * 1024 ? `${Math.ceil(a.size / 1024)} KB` : `${(a.size / 1024 / 1024).toFixed(1)} MB`;
  // Shown below the fold otherwise: the person just asked to see it.
  const reveal = (e: Event) => (e.currentTarget as HTMLElement).scrollIntoView({ block: 'nearest' });
  if (url.value && a.mime.startsWith('image/')) return <img class="attachment-image" src={url.value} alt={a.name} onLoad={reveal} />;
  if (url.value) return <a class="attachment" href={url.value} download={a.name}>Save {a.name}</a>;
  return (
    <button class="attachment" onClick={open} disabled={busy.value} aria-busy={busy.value}>
      📎 {a.name} ({size}){busy.value ? ' — downloading and decrypting…' : a.mime.startsWith('image/') ? ' — show' : ' — open'}
    </button>
  );
}

/**
 * The conversation list: newest activity first, unread counts, search, and what to do when empty.
 *
 * Keyboard: the list is one tab stop (the open conversation, else the one last focused, else the
 * first); Up/Down (Home/End) move between conversations and Enter opens one. Settings sits in the
 * head, so Tab from the list goes straight on to the conversation.
 */
import { useSignal } from '@preact/signals';
import { useLayoutEffect, useRef } from 'preact/hooks';
import { VerifiedMark } from './marks.tsx';
import { act, conversations, current, historyDue, isVerified, openConversation, panel, search, visibleConversations } from './state.ts';

function when(ms: number): string {
  const d = new Date(ms);
  const today = new Date();
  return d.toDateString() === today.toDateString() ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : d.toLocaleDateString([], { month: 'short', day: 'numeric' });
}

export function Chats() {
  const list = visibleConversations.value;
  const ul = useRef<HTMLUListElement>(null);
  // The conversation the keyboard is on, and whether focus is in the list at all.
  const at = useSignal<string | null>(null);
  const inside = useRef(false);
  const stop = list.some((c) => c.id === at.value) ? at.value : list.some((c) => c.id === current.value) ? current.value : list[0]?.id;
  // A message re-sorts the list; moving the focused row in the DOM drops focus: put it back.
  useLayoutEffect(() => {
    if (inside.current && document.activeElement === document.body) ul.current?.querySelector<HTMLElement>('[tabindex="0"]')?.focus();
  });
  const keys = (e: KeyboardEvent) => {
    const rows = [...ul.current!.querySelectorAll<HTMLElement>('.chat')];
    const i = rows.indexOf(e.target as HTMLElement);
    const to = e.key === 'ArrowDown' ? rows[i + 1] : e.key === 'ArrowUp' ? rows[i - 1] : e.key === 'Home' ? rows[0] : e.key === 'End' ? rows.at(-1) : undefined;
    if (i < 0 || !to) return;
    e.preventDefault();
    to.focus();
  };
  return (
    <nav class="chats" aria-label="Conversations">
      <div class="chats-head">
        <input type="search" placeholder="Search" aria-label="Search conversations" value={search.value} onInput={(e) => (search.value = e.currentTarget.value)} />
        <button onClick={() => (panel.value = { kind: 'new-chat' })} aria-label="New chat" title="New chat">+ Chat</button>
        <button onClick={() => (panel.value = { kind: 'new-group' })} aria-label="New group" title="New group">+ Group</button>
        <button class="settings-button" onClick={() => (panel.value = { kind: 'settings' })}>Settings</button>
      </div>
      {conversations.value.length === 0 ? (
        <div class="empty">
          <p>{historyDue.value ? 'Your conversations are still arriving from your other device.' : 'No conversations yet.'}</p>
          <p>Start one with <strong>+ Chat</strong> and the username of someone on this relay, or create a group.</p>
        </div>
      ) : list.length === 0 ? (
        <div class="empty">Nothing matches “{search.value}”.</div>
      ) : (
        <ul ref={ul} aria-label="Conversations" onKeyDown={keys}
          onFocusIn={(e) => ((inside.current = true), (at.value = (e.target as HTMLElement).dataset.id ?? at.value))}
          onFocusOut={(e) => (inside.current = !!e.relatedTarget && ul.current!.contains(e.relatedTarget as Node))}>
          {list.map((c) => (
            <li key={c.id}>
              <button class={`chat ${c.id === current.value ? 'selected' : ''}`} data-id={c.id} tabIndex={c.id === stop ? 0 : -1} onClick={() => void act(() => openConversation(c.id))} aria-current={c.id === current.value}>
                <span class="avatar" aria-hidden="true">{c.kind === 'group' ? '#' : c.title.slice(0, 1).toUpperCase()}</span>
                <span class="chat-main">
                  <span class="chat-title">
                    {c.title}
                    {isVerified(c) && <VerifiedMark user={c.title} compact />}
                    {c.keyWarning && <span class="warn" title="Safety number changed"><span aria-hidden="true"> ⚠</span><span class="visually-hidden">, safety number changed</span></span>}
                  </span>
                  <span class="chat-preview">{c.left ? 'You are no longer a member' : c.lastPreview || 'No messages yet'}</span>
                </span>
                <span class="chat-meta">
                  <time>{when(c.lastActivity)}</time>
                  {c.unread > 0 && <span class="badge" aria-label={`${c.unread} unread`}>{c.unread}</span>}
                </span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </nav>
  );
}

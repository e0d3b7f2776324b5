/** The conversation list: newest activity first, unread counts, search, and what to do when empty. */
import { VerifiedMark } from './marks.tsx';
import { act, conversations, current, isVerified, openConversation, panel, search, visibleConversations } from './state.ts';

function when(ms: number): string {
  const d = new Date(ms);
  const today = new Date();
  return d.toDateString() === today.toDateString() ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : d.toLocaleDateString([], { month: 'short', day: 'numeric' });
}

export function Chats() {
  const list = visibleConversations.value;
  return (
    <nav class="chats" aria-label="Conversations">
      <div class="chats-head">
        <input type="search" placeholder="Search" aria-label="Search conversations" value={search.value} onInput={(e) => (search.value = e.currentTarget.value)} />
        <button onClick={() => (panel.value = { kind: 'new-chat' })} aria-label="New chat" title="New chat">+ Chat</button>
        <button onClick={() => (panel.value = { kind: 'new-group' })} aria-label="New group" title="New group">+ Group</button>
      </div>
      {conversations.value.length === 0 ? (
        <div class="empty">
          <p>No conversations yet.</p>
          <p>Start one with <strong>+ Chat</strong> and the username of someone on this relay, or create a group.</p>
        </div>
      ) : list.length === 0 ? (
        <div class="empty">Nothing matches “{search.value}”.</div>
      ) : (
        <ul>
          {list.map((c) => (
            <li key={c.id}>
              <button class={`chat ${c.id === current.value ? 'selected' : ''}`} onClick={() => void act(() => openConversation(c.id))} aria-current={c.id === current.value}>
                <span class="avatar" aria-hidden="true">{c.kind === 'group' ? '#' : c.title.slice(0, 1).toUpperCase()}</span>
                <span class="chat-main">
                  <span class="chat-title">
                    {c.title}
                    {isVerified(c) && <VerifiedMark user={c.title} compact />}
                    {c.keyWarning && <span class="warn" title="Safety number changed"><span aria-hidden="true"> ⚠</span><span class="visually-hidden">, safety number changed</span></span>}
                  </span>
                  <span class="chat-preview">{c.left ? 'You left this group' : c.lastPreview || 'No messages yet'}</span>
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
      <button class="settings-button" onClick={() => (panel.value = { kind: 'settings' })}>Settings</button>
    </nav>
  );
}

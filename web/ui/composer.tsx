/**
 * The message composer: text (a draft per conversation, kept when switching conversations and
 * across an update reload), reply and edit modes, the emoji picker, attachments with upload
 * progress, and the typing indicator sent at most every 4 s.
 */
import { type Signal, useSignal } from '@preact/signals';
import { useId, useLayoutEffect, useRef } from 'preact/hooks';
import type { ConversationRow, MessageView } from '../core/types.ts';
import { drafts, setDraft, uploading } from './drafts.ts';
import { EmojiPicker } from './picker.tsx';
import { act, engine, showNewest } from './state.ts';

const TYPING_EVERY_MS = 4000;

export function Composer({ conv, replyTo, editing }: { conv: ConversationRow; replyTo: Signal<MessageView | null>; editing: Signal<MessageView | null> }) {
  // While editing, the box holds the edited text; the draft of a new message waits meanwhile.
  const editText = useSignal('');
  const progress = useSignal<number | null>(null);
  const emoji = useSignal(false);
  const lastTyping = useRef(0);
  const box = useRef<HTMLTextAreaElement>(null);
  const emojiButton = useRef<HTMLButtonElement>(null);
  const pickerId = useId();
  const text = editing.value ? editText.value : (drafts.value[conv.id] ?? '');
  const setText = (t: string) => (editing.value ? (editText.value = t) : setDraft(conv.id, t));
  // Layout effects: they run in the same task as the render that Edit set off, before any key
  // press can reach the box. (As plain effects they ran a frame later, and words typed at once —
  // by a quick hand, or a test — were overwritten by the message's old text, or ended up after it.)
  useLayoutEffect(() => {
    editText.value = editing.value?.text ?? '';
  }, [editing.value]);
  // Reply or Edit (buttons on a message): the words go here next.
  useLayoutEffect(() => void ((replyTo.value || editing.value) && box.current?.focus()), [replyTo.value, editing.value]);

  const cancel = () => {
    replyTo.value = null;
    editing.value = null;
    editText.value = '';
    box.current?.focus(); // the ✕ that was pressed goes away
  };
  const send = async (ev?: Event) => {
    ev?.preventDefault();
    if (!text.trim()) return;
    const e = engine.value!;
    if (editing.value) {
      const m = editing.value;
      cancel();
      await act(() => e.edit(conv.id, m.key, text));
      return;
    }
    const r = replyTo.value;
    replyTo.value = null;
    setDraft(conv.id, '');
    // On failure the text comes back, so nothing typed is lost.
    if (!(await act(() => e.send(conv.id, text, r ? { replyTo: r.key } : {})))) setDraft(conv.id, text);
    e.typing(conv.id, false);
    await showNewest(); // scrolled far back: one's own message is at the newest end

  };
  const attach = async (input: HTMLInputElement) => {
    const file = input.files?.[0];
    if (!file) return;
    input.value = ''; // the same file can be chosen again
    progress.value = 0;
    const caption = editing.value ? '' : text;
    const bytes = new Uint8Array(await file.arrayBuffer());
    const ok = await act(() => uploading(() => engine.value!.sendAttachment(conv.id, { name: file.name, mime: file.type || 'application/octet-stream', bytes }, caption, (done, total) => (progress.value = total ? done / total : 1))));
    progress.value = null;
    if (ok && caption) setDraft(conv.id, '');
  };
  const insertEmoji = (e: string) => {
    setText(text + e);
    emoji.value = false;
    box.current?.focus();
  };

  return (
    <form class="composer" onSubmit={send}>
      {(replyTo.value || editing.value) && (
        <div class="replying">
          <span>{editing.value ? 'Editing your message' : `Replying to ${replyTo.value!.from}: ${replyTo.value!.text.slice(0, 60)}`}</span>
          <button type="button" onClick={cancel} aria-label={editing.value ? 'Cancel editing' : 'Cancel reply'}>✕</button>
        </div>
      )}
      {progress.value !== null && <progress value={progress.value} max={1} aria-label="Uploading attachment" />}
      {emoji.value && <EmojiPicker id={pickerId} label="Emoji" name={(e) => `Insert ${e}`} onPick={insertEmoji} close={() => (emoji.value = false)} toggle={emojiButton} />}
      <div class="composer-row">
        <button type="button" ref={emojiButton} onClick={() => (emoji.value = !emoji.value)} aria-label="Emoji" aria-expanded={emoji.value} aria-controls={emoji.value ? pickerId : undefined}>☺</button>
        <label class="attach">
          Attach<input type="file" class="visually-hidden" aria-label="Attach a file" disabled={progress.value !== null} onChange={(e) => void attach(e.currentTarget)} />
        </label>
        <textarea
          ref={box}
          aria-label="Message"
          placeholder="Message"
          rows={1}
          value={text}
          onInput={(e) => {
            setText(e.currentTarget.value);
            if (!editing.value && Date.now() - lastTyping.current > TYPING_EVERY_MS) {
              lastTyping.current = Date.now();
              engine.value!.typing(conv.id, true);
            }
          }}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) void send(e); // not while an IME composes
            else if (e.key === 'Escape' && (replyTo.value || editing.value)) cancel();
          }}
        />
        <button type="submit" class="primary" aria-label="Send">➤</button>
      </div>
    </form>
  );
}

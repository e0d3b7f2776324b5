/**
 * The emoji picker, for a message's reactions (conversation.tsx) and the composer's Emoji button:
 * a row of buttons shown beside the button that toggles it. Opening it moves focus to an emoji
 * (the one already chosen, else the first), so the keyboard is where the choice is; arrow keys
 * and Home/End move between them; Escape closes it and hands focus back to the toggle; a press
 * anywhere outside closes it, as a menu would.
 */
import type { RefObject } from 'preact';
import { useLayoutEffect, useRef } from 'preact/hooks';

const EMOJI = ['👍', '❤️', '😂', '😮', '😢', '🙏', '🎉', '🔥', '👀', '✅'];

const STEP: Record<string, number> = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };

export function EmojiPicker({ id, label, name, chosen, onPick, close, toggle }: {
  id: string;
  label: string;
  /** The accessible name of one emoji's button ("React with 👍"). */
  name: (emoji: string) => string;
  /** Reactions are toggles: the one already picked (null: none) shows pressed. Undefined: plain buttons. */
  chosen?: string | null;
  onPick: (emoji: string, e: Event) => void;
  close: () => void;
  /** The button that opened it: not "outside" (its own click toggles), and given focus on Escape. */
  toggle: RefObject<HTMLElement | null>;
}) {
  const ref = useRef<HTMLDivElement>(null);
  useLayoutEffect(() => {
    const el = ref.current!;
    (el.querySelector<HTMLElement>('[aria-pressed="true"]') ?? el.querySelector<HTMLElement>('button'))?.focus();
    const outside = (e: PointerEvent) => e.target instanceof Node && !el.contains(e.target) && !toggle.current?.contains(e.target) && close();
    document.addEventListener('pointerdown', outside);
    return () => document.removeEventListener('pointerdown', outside);
  }, []);
  const keys = (e: KeyboardEvent) => {
    const all = [...ref.current!.querySelectorAll<HTMLElement>('button')];
    const i = all.indexOf(e.target as HTMLElement);
    if (e.key === 'Escape') {
      close();
      toggle.current?.focus();
    } else if (e.key in STEP || e.key === 'Home' || e.key === 'End') {
      // Round at the ends: ten emoji, so the way back is never long.
      const to = e.key === 'Home' ? 0 : e.key === 'End' ? all.length - 1 : (i + STEP[e.key]! + all.length) % all.length;
      all[to]?.focus();
    } else return;
    // Handled here: the message list's own arrow keys (conversation.tsx) must not move on too.
    e.preventDefault();
    e.stopPropagation();
  };
  return (
    <div class="picker" id={id} role="group" aria-label={label} ref={ref} onKeyDown={keys}>
      {EMOJI.map((emoji) => (
        <button type="button" key={emoji} aria-label={name(emoji)} aria-pressed={chosen === undefined ? undefined : chosen === emoji} onClick={(e) => onPick(emoji, e)}>{emoji}</button>
      ))}
    </div>
  );
}

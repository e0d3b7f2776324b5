/**
 * What makes a side panel modal (panels.tsx): everything outside it is made `inert`, so neither
 * Tab, a screen reader's virtual cursor nor a pointer reaches the page behind; Tab and Shift+Tab
 * wrap around inside it; Escape and a click outside close it.
 */

/** Left usable while a panel is open: the toasts' live regions (an error from the panel's own
 * action, "user not found", is said there, and its Dismiss button must stay pressable). Inert,
 * they would fall silent; aria-modal does not hide them (Chromium keeps a live region outside an
 * aria-modal dialog in its accessibility tree, as its CDP tree showed). */
const KEEP = '.toasts';

/**
 * Makes every element outside `el` inert (the siblings of `el` and of each of its ancestors up
 * to <body>), except KEEP; returns the undo. Elements that appear behind the panel while it is
 * open (a banner, the conversation re-created) are made inert too, or Tab would find them.
 */
function inertOutside(el: HTMLElement): () => void {
  const made = new Set<HTMLElement>();
  const mark = () => {
    for (let at: HTMLElement = el; at.parentElement && at !== document.body; at = at.parentElement) {
      for (const s of at.parentElement.children) {
        if (s === at || !(s instanceof HTMLElement) || s.inert || s.matches(KEEP)) continue;
        s.inert = true;
        made.add(s);
      }
    }
  };
  mark();
  const watch = new MutationObserver(mark);
  for (let at = el.parentElement; at && at !== document.documentElement; at = at.parentElement) watch.observe(at, { childList: true });
  return () => {
    watch.disconnect();
    for (const s of made) s.inert = false;
  };
}

/**
 * Makes `el` modal until the returned undo is called (before focus goes back to what opened it:
 * an inert opener cannot take focus). `close` is called on Escape, wherever focus is (after a
 * click on the inert page behind it is on <body>, outside the panel's own handlers), and on a
 * click outside that is not on a toast, rather than nothing happening where the page looks
 * clickable. On click, not on pointerdown, so that the press has already moved focus to <body>
 * and the caller's focus return is the last word; and only if the press also began outside (a
 * text selection dragged out of the panel is no click outside). Judged by the event's path,
 * fixed when it was dispatched: a button whose own click re-rendered it away (Remove, Dismiss)
 * is detached by the time the click reaches the document.
 */
export function makeModal(el: HTMLElement, close: () => void): () => void {
  const release = inertOutside(el);
  const outside = (e: Event) => !e.composedPath().some((n) => n === el || (n instanceof Element && n.matches(KEEP)));
  let downOutside = false;
  const key = (e: KeyboardEvent) => e.key === 'Escape' && !e.isComposing && !e.defaultPrevented && close(); // while an IME composes, Escape is the IME's
  const down = (e: PointerEvent) => (downOutside = outside(e));
  const click = (e: MouseEvent) => {
    if (downOutside && outside(e)) close();
    downOutside = false;
  };
  document.addEventListener('keydown', key);
  document.addEventListener('pointerdown', down);
  document.addEventListener('click', click);
  return () => {
    document.removeEventListener('keydown', key);
    document.removeEventListener('pointerdown', down);
    document.removeEventListener('click', click);
    release();
  };
}

const FOCUSABLE = 'a[href], button, input, select, textarea, [tabindex]';

/** What Tab stops on inside `el`, in order (no positive tabindex is used anywhere in the app). */
function tabStops(el: HTMLElement): HTMLElement[] {
  return [...el.querySelectorAll<HTMLElement>(FOCUSABLE)].filter((x) => x.tabIndex >= 0 && !(x as HTMLButtonElement).disabled && x.checkVisibility());
}

/**
 * Tab from the last stop goes to the first, Shift+Tab from the first (or from the heading, which
 * takes focus on opening but is no tab stop) to the last. Left to the browser otherwise, so the
 * order inside stays the document's.
 */
export function cycleTab(e: KeyboardEvent, el: HTMLElement): void {
  if (e.key !== 'Tab' || e.altKey || e.ctrlKey || e.metaKey) return;
  const stops = tabStops(el);
  const at = stops.indexOf(document.activeElement as HTMLElement);
  const to = e.shiftKey ? (at <= 0 ? stops.at(-1) : undefined) : at < 0 || at === stops.length - 1 ? stops[0] : undefined;
  if (!to) return;
  e.preventDefault();
  to.focus();
}

/**
 * What makes a side panel modal (panels.tsx): everything outside it is made `inert`, so neither
 * Tab, a screen reader's virtual cursor nor a pointer reaches the page behind; Tab and Shift+Tab
 * wrap around inside it.
 */

/** Left usable while a panel is open: the toasts' live regions (an error from the panel's own
 * action, "user not found", is said there, and its Dismiss button must stay pressable). */
const KEEP = '.toasts';

/**
 * Makes every element outside `el` inert (the siblings of `el` and of each of its ancestors up
 * to <body>), except KEEP; returns the undo. Elements that appear behind the panel while it is
 * open (a banner, the conversation re-created) are made inert too, or Tab would find them.
 */
export function inertOutside(el: HTMLElement): () => void {
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

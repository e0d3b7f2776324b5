/**
 * What the person is typing, per conversation, and attachments being uploaded — the two things
 * a page reload would lose (a sent message is safe: the engine's outbox is in IndexedDB).
 *
 * The update banner's "Reload" goes through reloadSafely(): it waits for uploads to finish, and
 * carries drafts across the reload in sessionStorage (this tab only, read and removed at the
 * next start), so taking a new version never throws away a half-written message.
 */
import { signal } from '@preact/signals';

const STASH = 'petrel-drafts';

export const drafts = signal<Readonly<Record<string, string>>>({});
/** Attachments being encrypted and uploaded: they are not in the outbox until that is done. */
export const uploads = signal(0);
/** The person asked to reload while an upload was running: reload when it is done. */
export const reloadPending = signal(false);

export function setDraft(conversation: string, text: string): void {
  const next = { ...drafts.value };
  if (text) next[conversation] = text;
  else delete next[conversation];
  drafts.value = next;
}

/** Runs an attachment upload, counted so a reload can wait for it. */
export async function uploading<T>(f: () => Promise<T>): Promise<T> {
  uploads.value++;
  try {
    return await f();
  } finally {
    uploads.value--;
    if (uploads.value === 0 && reloadPending.value) pendingApply?.();
  }
}

let pendingApply: (() => void) | null = null;

/** Takes the waiting version now, or as soon as no upload is running; drafts survive it. */
export function reloadSafely(apply: () => void): void {
  pendingApply = () => {
    if (Object.keys(drafts.value).length) sessionStorage.setItem(STASH, JSON.stringify(drafts.value));
    apply();
  };
  if (uploads.value > 0) reloadPending.value = true;
  else pendingApply();
}

/** Erasing the device: half-written messages go with everything else. */
export function forgetDrafts(): void {
  drafts.value = {};
  sessionStorage.removeItem(STASH);
}

/** At start: drafts carried over a reload, removed from sessionStorage at once. */
export function restoreDrafts(): void {
  const raw = sessionStorage.getItem(STASH);
  if (!raw) return;
  sessionStorage.removeItem(STASH);
  try {
    const parsed = JSON.parse(raw) as Record<string, unknown>;
    drafts.value = Object.fromEntries(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'));
  } catch {
    // A damaged stash is dropped: it only ever held unsent text.
  }
}

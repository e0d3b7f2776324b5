/**
 * Words for the relay's and the engine's error codes. A code (device_mismatch, rate_limited…) is
 * stable for programs and logs but tells a person nothing: what they see says what happened and
 * what they can do, and the code stays in the event or the error for whoever needs it.
 */
/**
 * How Petrel says that the relay is out of reach, wherever it says it (this toast, the offline
 * banner, the welcome screen's forms, linking): always these words, then what happens next.
 */
export const unreachable = (next: string) => `Petrel cannot reach the relay. Check your connection; ${next}`;

const SENTENCES: Readonly<Record<string, string>> = {
  network: unreachable('waiting messages go out once it is back.'),
  unauthorized: 'This device is signed out: sign in again with your password.',
  device_removed: 'This device was removed from your account. Log in again, or link it from one of your other devices.',
  device_not_listed: 'This device is no longer on your account’s device list. Log in again, or link it from one of your other devices.',
  rate_limited: 'Too much was sent in a short time. Wait a minute, then try again.',
  device_mismatch: 'The recipient’s devices kept changing while this was being sent. Try again in a moment.',
  unknown_user: 'That account no longer exists, so nobody can receive this.',
  no_device_list: 'The recipient has no device that can receive messages right now. Try again once they have opened Petrel.',
  payload_too_large: 'This is too large to send. Send a smaller file, or split the text.',
  attachment_too_large: 'This file is too large to send.',
  quota_exceeded: 'The server’s storage for your files is full. Try again later, or send a smaller file.',
  // Not "log out and in again": on an account's only device, logging out erases its history.
  forbidden: 'The server refused this. Try again; if it keeps happening, reload Petrel.',
  invalid_request: 'The server could not read what this device sent. Reload Petrel and try again.',
  invalid_envelope: 'The server could not read what this device sent. Reload Petrel and try again.',
  left_group: 'You are no longer a member of this group.',
};

/** A sentence a person can act on for `code`; `fallback` (or a generic one) for a code not listed. */
export function explain(code: string, fallback?: string): string {
  return SENTENCES[code] ?? fallback ?? 'Something went wrong. Try again in a moment.';
}

/**
 * Why a message was not sent, for the toast: its own sentence, or the generic retry advice
 * (`retry`: the CLI's instead of the PWA's button).
 */
export function sendFailure(code: string, retry = 'Tap “Retry” on it to send it again.'): string {
  return `A message was not sent. ${SENTENCES[code] ?? retry}`;
}

const CHANGES: Readonly<Record<'reaction' | 'edit' | 'delete', string>> = {
  reaction: 'Your reaction was not sent.',
  edit: 'Your edit was not sent: the others still see the earlier text.',
  delete: 'Your message was not deleted for everyone: the others can still see it.',
};

/**
 * Why a reaction, edit or delete did not go out (web/core/changes.ts), for the toast and the
 * notice on the message: what the others see now, then what to do (its own sentence, or Retry).
 */
export function changeFailure(kind: 'reaction' | 'edit' | 'delete', code: string, retry = 'Tap “Retry” on the message to send it again.'): string {
  return `${CHANGES[kind]} ${SENTENCES[code] ?? retry}`;
}

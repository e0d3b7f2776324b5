/**
 * The user id of a device list (PROTOCOL.md §3) is the account's normalised user name: Unicode
 * NFKC, then lower case (a full case fold for the ASCII result accepted), then 3..32 characters of
 * [a-z0-9_.-]. The relay normalises what it is sent; a client normalises what a person typed
 * before it looks a user up, or "Bob" would not match the list signed for "bob".
 */
export const USERNAME_RE = /^[a-z0-9_.-]{3,32}$/;

/** The normalised user name, or undefined if `raw` does not make a valid one. */
export function normaliseUsername(raw: string): string | undefined {
  if (raw.length > 128) return undefined;
  const n = raw.normalize('NFKC').toLowerCase().normalize('NFKC');
  return USERNAME_RE.test(n) ? n : undefined;
}

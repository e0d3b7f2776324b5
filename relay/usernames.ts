/**
 * Usernames are normalised before anything else sees them: Unicode NFKC, then lower case
 * (a full case fold for the ASCII result we accept), then checked against 3..32 characters
 * of [a-z0-9_.-]. The normalised form is what is stored, compared, and signed as the userId of
 * the account's device list, so "Alice", "ＡＬＩＣＥ" and "alice" are one account.
 */
import { normaliseUsername } from '../crypto/index.ts';
import { ApiError } from './errors.ts';

export { normaliseUsername, USERNAME_RE } from '../crypto/index.ts';

export function requireUsername(raw: string): string {
  const n = normaliseUsername(raw);
  if (!n) throw new ApiError(400, 'invalid_username', 'a username is 3..32 characters of a-z, 0-9, _ . - (after normalisation)');
  return n;
}

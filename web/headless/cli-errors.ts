/**
 * The CLI's translation of errors the engine reports in its own terms into ones that say which
 * relay and which device: "fetch failed" becomes the relay URL and the cause, a 401 on an
 * existing profile "this device was removed" or "signed out: run signin" (as the account's
 * device list says, web/core/refusal.ts), a dropped message a failed command.
 */
import { type Fetch, RelayError } from '../core/net/api.ts';
import { CliError } from './cli-options.ts';

/**
 * globalThis.fetch, remembering in `network.last` why the last request could not reach the
 * relay: Node's own error says only "fetch failed"; its `cause` says why (ECONNREFUSED, ENOTFOUND).
 */
export function relayFetch(network: { last: string }): Fetch {
  const f = globalThis.fetch as unknown as Fetch;
  return async (url, init) => {
    try {
      return await f(url, init);
    } catch (e) {
      const cause = (e as { cause?: { message?: string; code?: string } }).cause;
      network.last = cause?.message || cause?.code || (e instanceof Error ? e.message : String(e));
      throw e;
    }
  };
}

export function deviceRemoved(relay: string, username: string): CliError {
  return new CliError(
    'device_removed',
    `This device was removed from ${username}’s account, so ${relay} no longer accepts it: log in again, with a new --profile, to use the account here.`,
  );
}

export function signedOut(relay: string, username: string): CliError {
  return new CliError(
    'signed_out',
    `${relay} no longer accepts this device’s sign-in (another session issued it a new token, or the relay’s data was restored), but it is still one of ${username}’s devices and its messages are kept: run \`petrel signin <password>\` to sign in again (messages waiting here go out then).`,
  );
}

/** What the engine learnt of a refused token (Engine.removed, signedOut, tokenRefused). */
export interface TokenState {
  readonly removed: boolean;
  readonly signedOut: boolean;
  readonly tokenRefused: boolean;
}

/**
 * `e` as the CLI reports it; `account` is the profile's username if it had one when the command
 * started; `token`, the engine's state once any check of a refused token is over.
 */
export function explain(e: unknown, relay: string, networkCause: string, account: string | null, token?: TokenState): unknown {
  const code = (e as { code?: unknown } | null)?.code;
  // The token refused (now, or before: the engine's own errors then): say why, as the list said.
  const refused = (e instanceof RelayError && e.status === 401) || code === 'signed_out' || code === 'device_removed';
  if (account && refused && token?.removed) return deviceRemoved(relay, account);
  if (account && refused && token?.signedOut) return signedOut(relay, account);
  if (account && refused && token?.tokenRefused) {
    return new CliError('token_refused', `${relay} refused this device’s token, and the account’s device list could not be fetched to tell whether the device was removed or only signed out${networkCause ? ` (${networkCause})` : ''}: run the command again once the relay answers.`);
  }
  // 'network' from the relay client, 'offline' from register and login: the same failure.
  if (code === 'network' || code === 'offline') {
    return new CliError(code, `The relay at ${relay} cannot be reached${networkCause ? ` (${networkCause})` : ''}: is it running, and are --relay and PETREL_RELAY right?`);
  }
  // An existing profile authenticates only with its device token: a 401 the engine did not
  // explain (above) means the relay no longer accepts it.
  if (account && e instanceof RelayError && e.status === 401) return deviceRemoved(relay, account);
  return e;
}

/**
 * A message the relay refused, by the relay's error code. The outbox drops such a message (it
 * is not retried) and reports only the code, so the command that sent it fails with it.
 */
export function refusedError(code: string, relay: string, username: string): CliError {
  if (code === 'unauthorized') return deviceRemoved(relay, username);
  return new CliError('send_failed', `The relay refused the message (${code}); it will not be retried.`);
}

/** What `logout` refuses on its own (nothing was tried), as opposed to a step that failed. */
const LOGOUT_REFUSALS = new Set(['usage', 'only_device', 'not_registered']);

/**
 * `e` (as explain() made it) from a `logout` that stopped before the erase: the relay did not
 * take the new device list, or could not be asked, so the profile is untouched. Said, with the
 * same code, so that nobody takes the device for logged out, nor the profile for erased.
 */
export function logoutFailed(e: unknown): unknown {
  const code = (e as { code?: unknown } | null)?.code;
  if (!(e instanceof Error) || (typeof code === 'string' && LOGOUT_REFUSALS.has(code))) return e;
  return new CliError(typeof code === 'string' ? code : 'error', `${e.message.replace(/\.?$/, '.')} Nothing was erased: run logout again once that is fixed.`);
}

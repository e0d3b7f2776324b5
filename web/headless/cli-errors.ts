/**
 * The CLI's translation of errors the engine reports in its own terms into ones that say which
 * relay and which device: "fetch failed" becomes the relay URL and the cause, a 401 on an
 * existing profile becomes "this device was removed", a dropped message a failed command.
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
    `This device was removed from ${username}’s account (or its token replaced), so ${relay} no longer accepts it: log in again, with a new --profile, to use the account here.`,
  );
}

/** `e` as the CLI reports it; `account` is the profile's username if it had one when the command started. */
export function explain(e: unknown, relay: string, networkCause: string, account: string | null): unknown {
  const code = (e as { code?: unknown } | null)?.code;
  // 'network' from the relay client, 'offline' from register and login: the same failure.
  if (code === 'network' || code === 'offline') {
    return new CliError(code, `The relay at ${relay} cannot be reached${networkCause ? ` (${networkCause})` : ''}: is it running, and are --relay and PETREL_RELAY right?`);
  }
  // An existing profile authenticates only with its device token: a 401 means the relay no longer accepts it.
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

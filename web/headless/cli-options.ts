/**
 * The petrel CLI's command line: flags, and the checks that can fail before anything is opened
 * or sent (the relay URL, the password rule), so a typo costs no profile folder and no request.
 */

/** An error the CLI reports as `{ "error": code, "message": ... }`: `code` is stable, `message` says what to do. */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The PWA's rule for a new password (web/ui/welcome.tsx: `minLength={8}`, "At least 8
 * characters"). There is no shared constant in web/core, so the CLI keeps its own copy. The
 * password protects the account-key backup: OPAQUE keeps it from the relay, but a short one
 * is still guessable by whoever obtains the stored registration record.
 */
export const MIN_PASSWORD_LENGTH = 8;

export function checkNewPassword(password: string): void {
  // `.length` counts UTF-16 code units, as the PWA's minLength does, so both accept the same passwords.
  if (password.length < MIN_PASSWORD_LENGTH) throw new CliError('password_too_short', `The password must be at least ${MIN_PASSWORD_LENGTH} characters.`);
}

const VALUE_FLAGS = new Set(['--relay', '--profile', '--wait', '--history-days', '--name']);
/** Flags without a value (`--help` and `-h` are handled apart). */
const BOOLEAN_FLAGS = new Set(['--force']);

export function parse(argv: readonly string[]): { flags: Record<string, string>; cmd: string | undefined; args: string[] } {
  const flags: Record<string, string> = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (VALUE_FLAGS.has(a)) {
      const v = argv[++i];
      if (v === undefined) throw new CliError('usage', `${a} needs a value`);
      flags[a.slice(2)] = v;
    } else if (a === '--help' || a === '-h') flags.help = '1';
    else if (BOOLEAN_FLAGS.has(a)) flags[a.slice(2)] = '1';
    else rest.push(a);
  }
  return { flags, cmd: rest[0], args: rest.slice(1) };
}

/**
 * The relay's base URL, checked before any request: without this, "localhost:8791" parses as
 * a URL with the scheme "localhost:" and fails later as an unreachable relay. The engine
 * appends /v1/... to it, so a query or fragment would end up in the middle of every path.
 */
export function relayUrl(value: string, from: string): string {
  const bad = (why: string) => new CliError('invalid_relay', `${from} “${value}” is not a relay URL (${why}); give one like http://localhost:8787.`);
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw bad('it does not parse as a URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw bad('it must start with http:// or https://');
  if (u.search || u.hash) throw bad('it must not have a query or a fragment');
  if (u.username || u.password) throw bad('it must not carry a user name or password');
  return u.origin + u.pathname.replace(/\/+$/, '');
}

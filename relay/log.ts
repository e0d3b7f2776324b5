/**
 * Structured logs: one JSON object per line. Callers pass only ids, counts, codes and
 * timings, never tokens, keys, ciphertext or passwords.
 */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type Logger = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export function jsonLogger(min: LogLevel = 'info', write: (line: string) => void = (l) => process.stdout.write(l + '\n')): Logger {
  return (level, msg, fields) => {
    if (ORDER[level] < ORDER[min]) return;
    write(JSON.stringify({ t: new Date().toISOString(), level, msg, ...fields }));
  };
}

export const silentLogger: Logger = () => {};

/** An error's name and message only (no stack, no cause chain that might hold request data). */
export function errorFields(e: unknown): Record<string, unknown> {
  if (!(e instanceof Error)) return { err: String(e).slice(0, 300) };
  const fields: Record<string, unknown> = { err: e.name, errMessage: redact(e.message) };
  // drizzle wraps the driver's error: its message is the query, the reason is the cause's.
  const cause = (e as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    fields.cause = redact(cause.message);
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string') fields.code = code;
  }
  return fields;
}

/** A query's parameters are the data (ciphertext, usernames, token hashes): never logged. */
function redact(message: string): string {
  return message.replace(/\n?params:[\s\S]*$/, ' (params not logged)').slice(0, 300);
}

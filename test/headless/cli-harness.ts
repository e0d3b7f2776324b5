// Runs the petrel CLI as a user does: its own process per command, JSON lines on stdout, one
// JSON error line on stderr. Shared by the CLI test files.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { type RelayProcess, spawnRelay } from '../support/relay-process.ts';

export interface Run {
  code: number;
  lines: any[];
  stderr: string;
  /** The stderr line parsed (the CLI's one error object), or null. */
  error: { error: string; message: string } | null;
}

export interface RunOptions {
  readonly stdin?: string;
  readonly onLine?: (l: any) => void;
  /** Replaces PETREL_RELAY (and PETREL_PROFILE) in the environment; `null` leaves a variable unset. */
  readonly env?: Record<string, string | null>;
  readonly cwd?: string;
}

const BIN = resolve('bin/petrel.mjs');

/**
 * `petrel [--profile root/profile] args...` against `relayUrl` (as PETREL_RELAY). A `profile`
 * of null passes no --profile, for tests of the default.
 */
export function petrel(relayUrl: string, root: string, profile: string | null, args: readonly string[], opts: RunOptions = {}): Promise<Run> {
  return new Promise((done) => {
    const env: Record<string, string> = { ...(process.env as Record<string, string>), PETREL_RELAY: relayUrl };
    delete env.PETREL_PROFILE;
    for (const [k, v] of Object.entries(opts.env ?? {})) {
      if (v === null) delete env[k];
      else env[k] = v;
    }
    const child = spawn(process.execPath, [BIN, ...(profile === null ? [] : ['--profile', join(root, profile)]), ...args], {
      env,
      cwd: opts.cwd ?? process.cwd(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const lines: any[] = [];
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
      const parts = out.split('\n');
      out = parts.pop()!;
      for (const p of parts) if (p) (lines.push(JSON.parse(p)), opts.onLine?.(JSON.parse(p)));
    });
    child.stderr.on('data', (d) => (err += d));
    child.stdin.end(opts.stdin ?? '');
    child.on('exit', (code) => {
      let error = null;
      try {
        error = err.trim() ? JSON.parse(err.trim()) : null;
      } catch {}
      done({ code: code ?? -1, lines, stderr: err, error });
    });
  });
}

/**
 * For a test file: a relay process started before its tests and stopped after them, and a
 * folder for the profiles (removed after). `petrel(profile, args)` runs the CLI against both.
 */
export function cliSuite(prefix: string): { root: string; petrel: (profile: string | null, args: readonly string[], opts?: RunOptions) => Promise<Run> } {
  let relay: RelayProcess | undefined;
  const root = mkdtempSync(join(tmpdir(), prefix));
  beforeAll(async () => {
    relay = await spawnRelay();
  }, 60_000);
  afterAll(async () => {
    await relay?.close();
    rmSync(root, { recursive: true, force: true });
  });
  return { root, petrel: (profile, args, opts) => petrel(relay!.url, root, profile, args, opts) };
}

// A real relay process (relay/server.ts through tsx) on a free port, for tests and benchmarks
// that must see the relay as deployed: its own process, a real socket, PGlite in a data
// directory or a PostgreSQL database. It can be killed (SIGKILL) and restarted on the same data.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface RelayProcess {
  readonly url: string;
  readonly port: number;
  child: ChildProcess;
  /** Log lines (JSON) the process printed. */
  readonly logs: string[];
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same database / data directory and port. */
  restart(): Promise<void>;
  /** Stops it and deletes its data directory (if it made one). */
  close(): Promise<void>;
}

export interface RelayProcessOptions {
  /** postgres://... ; without it, PGlite in a fresh temporary data directory. */
  readonly databaseUrl?: string;
  readonly env?: Record<string, string>;
  /** Node flags for the relay process (before any in PETREL_RELAY_NODE_ARGS). */
  readonly nodeArgs?: readonly string[];
}

function start(env: Record<string, string>, logs: string[], nodeArgs: readonly string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [...nodeArgs, ...(process.env.PETREL_RELAY_NODE_ARGS?.split(' ').filter(Boolean) ?? []), '--import', 'tsx', 'relay/server.ts'], {
    env: { ...process.env, HOST: '127.0.0.1', PETREL_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.on('data', (d) => logs.push(String(d)));
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      logs.push(line);
      try {
        const j = JSON.parse(line);
        if (j.msg === 'listening') resolve({ child, port: j.port });
      } catch {}
    });
    child.once('exit', (code) => reject(new Error(`relay exited with ${code} before listening:\n${logs.slice(-5).join('\n')}`)));
  });
}

export async function spawnRelay(o: RelayProcessOptions = {}): Promise<RelayProcess> {
  const dataDir = o.databaseUrl ? undefined : mkdtempSync(join(tmpdir(), 'petrel-relay-'));
  const logs: string[] = [];
  const env: Record<string, string> = { PORT: '0', ...(o.databaseUrl ? { DATABASE_URL: o.databaseUrl } : { PETREL_DATA_DIR: dataDir! }), ...o.env };
  const nodeArgs = o.nodeArgs ?? [];
  const first = await start(env, logs, nodeArgs);
  const stopped = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));
  const p: RelayProcess = {
    url: `http://127.0.0.1:${first.port}`,
    port: first.port,
    child: first.child,
    logs,
    async kill(signal = 'SIGTERM') {
      p.child.kill(signal);
      await stopped(p.child);
    },
    async restart() {
      await p.kill('SIGTERM');
      p.child = (await start({ ...env, PORT: String(first.port) }, logs, nodeArgs)).child;
    },
    async close() {
      await p.kill('SIGTERM');
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return p;
}

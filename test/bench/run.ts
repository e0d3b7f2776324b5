// Runs the whole bench in one process, primitives and protocol cases interleaved, so every
// floor is priced by primitive timings taken on the same machine at the same time as its figure.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import sodium from 'libsodium-wrappers';
import { ready } from '../../crypto/index.ts';
import { evaluate, type FigureResult } from './figures.ts';
import { DEFAULT_OPTIONS, type MeasureOptions, measureAll, type Measurement } from './harness.ts';
import { primitiveCases } from './primitives.ts';
import { protocolCases } from './protocol.ts';

export interface PrimitiveResult extends Measurement {
  readonly core: boolean;
}

export interface BenchResult {
  readonly meta: {
    readonly node: string;
    readonly cpus: number;
    readonly libsodium: string;
    readonly runs: number;
    readonly runMs: number | null;
    readonly iterations: number | null;
    readonly startedAt: string;
    readonly seconds: number;
    /** 1-minute load average before and after: other work on the machine makes figures noisy. */
    readonly loadBefore: number;
    readonly loadAfter: number;
  };
  readonly primitives: readonly PrimitiveResult[];
  readonly protocol: readonly Measurement[];
  readonly figures: readonly FigureResult[];
}

/** Everything needs libsodium loaded: crypto/'s ready() loads the same module the bench calls. */
export async function benchReady(): Promise<void> {
  await ready();
  await sodium.ready;
}

/** "libsodium-wrappers 0.8.4 (libsodium 1.0.22)": the package's own version and the C library's. */
function libsodiumVersion(): string {
  let pkg = '?';
  try {
    const main = createRequire(import.meta.url).resolve('libsodium-wrappers');
    pkg = (JSON.parse(readFileSync(join(dirname(main), '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    // The version is informational; a changed package layout must not stop the bench.
  }
  return `libsodium-wrappers ${pkg} (libsodium ${sodium.sodium_version_string()})`;
}

export async function runBench(opts: MeasureOptions = DEFAULT_OPTIONS, progress: (line: string) => void = () => {}): Promise<BenchResult> {
  await benchReady();
  const startedAt = new Date();
  const loadBefore = loadavg()[0]!;
  const t0 = performance.now();
  const primCases = primitiveCases();
  const protoCases = protocolCases();
  progress(`calibrating ${primCases.length} primitive and ${protoCases.length} protocol cases, then ${opts.runs} interleaved rounds`);
  // One interleaved pass over both, so a floor's primitives are timed alongside its figure.
  const all = measureAll([...primCases, ...protoCases], opts, progress);
  const primitives = all.slice(0, primCases.length).map((m, i) => ({ ...m, core: primCases[i]!.core }));
  const protocol = all.slice(primCases.length);
  return {
    meta: {
      node: process.version,
      cpus: availableParallelism(),
      libsodium: libsodiumVersion(),
      runs: opts.runs,
      runMs: opts.iterations === undefined ? opts.runMs : null,
      iterations: opts.iterations ?? null,
      startedAt: startedAt.toISOString(),
      seconds: (performance.now() - t0) / 1000,
      loadBefore,
      loadAfter: loadavg()[0]!,
    },
    primitives,
    protocol,
    figures: evaluate(protocol, primitives),
  };
}

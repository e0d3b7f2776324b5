// Timing harness for the crypto bench: a case prepares everything for `n` operations outside
// the clock and hands back a body that does exactly those `n` operations, repeatably (every
// protocol function is pure, so a body can restart from the same state on every run).
// A measurement is: calibrate `n` so one run takes about `runMs`, one warm-up run, then
// `runs` timed runs (interleaved across cases); the figure is the median time per operation.
// Every timed run starts on a freshly collected heap (see `fullGc`).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** One thing to time. `prepare(n)` does the untimed setup; the body it returns does `n` operations. */
export interface BenchCase {
  readonly id: string;
  readonly label: string;
  prepare(n: number): () => void;
}

export interface MeasureOptions {
  /** Timed runs after the warm-up; the median of these is reported. */
  readonly runs: number;
  /** Target duration of one run, used to calibrate `n` when `iterations` is not given. */
  readonly runMs: number;
  /** Fixed operations per run, skipping calibration (the smoke test uses tiny counts). */
  readonly iterations?: number;
}

export interface Measurement {
  readonly id: string;
  readonly label: string;
  /** Operations in each run. */
  readonly iterations: number;
  /** Milliseconds per operation in each timed run, in run order. */
  readonly runsMsPerOp: readonly number[];
  /** Median of runsMsPerOp. */
  readonly msPerOp: number;
  readonly opsPerSec: number;
  /** (slowest run - fastest run) / median: how noisy the figure is. */
  readonly spread: number;
}

export const DEFAULT_OPTIONS: MeasureOptions = { runs: 7, runMs: 150 };

/**
 * A full garbage collection, run before each timed run (outside the clock). Without it a run
 * pays for garbage other cases left behind: with the decrypt and fan-out cases in the same
 * process, the AEAD primitive measured ~55% slower and ratchetEncrypt ~30% slower than on
 * their own. A run still pays for the garbage its own operations make, as real use does.
 * Node only exposes gc() under --expose-gc; the flag can be turned on at run time and the
 * function taken from a fresh context. If that ever fails, runs go without (no-op).
 */
export const fullGc: () => void = (() => {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === 'function') return existing;
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    if (typeof gc === 'function') return gc as () => void;
  } catch {
    // fall through: measure without collecting
  }
  return () => {};
})();

export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('median of no samples');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function timeMs(body: () => void): number {
  fullGc();
  const t0 = performance.now();
  body();
  return performance.now() - t0;
}

const MAX_ITERATIONS = 1 << 24;

function scaled(n: number, ms: number, runMs: number): number {
  return Math.min(MAX_ITERATIONS, Math.max(1, Math.round((n * runMs) / Math.max(ms, 1e-3))));
}

/**
 * Finds `n` so that one run lasts about `runMs`: grows n fourfold until a run takes a tenth
 * of that, scales, then times one run of that size and scales again — the first estimate
 * comes from code the JIT has barely seen and undercounts fast cases by up to 3x. These
 * runs also warm the JIT up.
 */
export function calibrate(c: BenchCase, runMs: number): number {
  let n = 1;
  let ms = timeMs(c.prepare(n));
  while (ms < runMs / 10 && n < MAX_ITERATIONS) {
    n *= 4;
    ms = timeMs(c.prepare(n));
  }
  const first = scaled(n, ms, runMs);
  return scaled(first, timeMs(c.prepare(first)), runMs);
}

/**
 * Measures several cases with their runs interleaved (run 1 of every case, then run 2, ...):
 * a burst of other load on the machine then spoils one run of many cases, which the median
 * discards, instead of every run of one case.
 */
export function measureAll<C extends BenchCase>(cases: readonly C[], opts: MeasureOptions = DEFAULT_OPTIONS, progress: (line: string) => void = () => {}): Measurement[] {
  if (!(opts.runs >= 1)) throw new Error('runs must be at least 1');
  const prepared = cases.map((c) => {
    const n = opts.iterations ?? calibrate(c, opts.runMs);
    if (!(Number.isInteger(n) && n >= 1)) throw new Error('iterations must be a positive integer');
    const body = c.prepare(n);
    body(); // warm-up, discarded
    progress(`  ${c.label}: ${n} ops per run`);
    return { c, n, body, samples: [] as number[] };
  });
  for (let r = 0; r < opts.runs; r++) for (const p of prepared) p.samples.push(timeMs(p.body) / p.n);
  return prepared.map(({ c, n, samples }) => {
    const msPerOp = median(samples);
    const spread = (Math.max(...samples) - Math.min(...samples)) / msPerOp;
    return { id: c.id, label: c.label, iterations: n, runsMsPerOp: samples, msPerOp, opsPerSec: 1000 / msPerOp, spread };
  });
}

export function measure(c: BenchCase, opts: MeasureOptions = DEFAULT_OPTIONS): Measurement {
  return measureAll([c], opts)[0]!;
}

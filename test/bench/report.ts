// Renders a BenchResult: a plain-text table for people, JSON for machines.
import type { FigureResult, Target } from './figures.ts';
import type { BenchResult } from './run.ts';

export function formatRate(perSec: number): string {
  return Math.round(perSec).toLocaleString('en-US');
}

/** Milliseconds above 1 ms, microseconds below, three significant digits or more. */
export function formatTime(ms: number): string {
  if (ms < 0) return `-${formatTime(-ms)}`;
  return ms >= 1 ? `${ms.toFixed(3)} ms` : `${(ms * 1000).toPrecision(3)} µs`;
}

/** measured - floor, signed: noise can put a figure a little under its floor. */
function formatOverhead(ms: number): string {
  return ms < 0 ? formatTime(ms) : `+${formatTime(ms)}`;
}

function formatTarget(t: Target | null): string {
  if (!t) return '-';
  return t.kind === 'maxMs' ? `<= ${t.value} ms` : `>= ${formatRate(t.value)}/s`;
}

function formatSpread(s: number): string {
  return `±${((s * 100) / 2).toFixed(1)}%`;
}

/** (slowest - fastest) / median above which a figure is flagged: ±10%. */
const NOISY_SPREAD = 0.2;

type Align = 'l' | 'r';

function table(head: readonly string[], align: readonly Align[], rows: readonly (readonly string[])[]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (align[i] === 'r' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

function figureRow(f: FigureResult): string[] {
  const result = f.pass === null ? '' : f.pass ? 'PASS' : 'MISS';
  return [f.label, `${formatRate(f.perSec)} ${f.per}/s`, formatTime(f.msPerOp), formatTime(f.floorMsPerOp), `${f.ratio.toFixed(2)}x`, formatOverhead(f.overheadMsPerOp), formatTarget(f.target), result, formatSpread(f.spread)];
}

export function renderText(r: BenchResult): string {
  const m = r.meta;
  const how = m.iterations === null ? `~${m.runMs} ms per run` : `${m.iterations} ops per run`;
  const out: string[] = [
    `Petrel crypto bench: node ${m.node}, ${m.cpus} CPUs, ${m.libsodium}`,
    `median of ${m.runs} timed runs after a warm-up, ${how}; systemRng; ${m.seconds.toFixed(1)} s in all;`,
    `1-min load average ${m.loadBefore.toFixed(2)} before, ${m.loadAfter.toFixed(2)} after (the bench itself adds ~1)`,
    '',
    'Protocol (crypto/)',
    ...table(
      ['figure', 'rate', 'time/op', 'floor/op', 'x floor', 'over floor', 'target', 'result', 'spread'],
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'r'],
      r.figures.map(figureRow),
    ),
    '',
    'Primitives (libsodium-wrappers directly, same run)',
    ...table(
      ['primitive', 'ops/s', 'time/op', 'spread', ''],
      ['l', 'r', 'r', 'r', 'l'],
      r.primitives.map((p) => [p.label, formatRate(p.opsPerSec), formatTime(p.msPerOp), formatSpread(p.spread), p.core ? '' : '(aux: for floors)']),
    ),
    '',
    'Floors (time of the primitive calls alone, priced from the table above):',
    ...r.figures.map((f) => `  ${f.label}: ${f.floorFormula}`),
    '',
    'x floor = time/op / floor/op; over floor = time/op - floor/op: the time spent outside those',
    'libsodium calls (allocations, wire encoding, state objects, checks) for each operation.',
  ];
  const noisy = [...r.figures, ...r.primitives].filter((x) => x.spread > NOISY_SPREAD);
  if (noisy.length) out.push('', `Noisy (spread over ±${(NOISY_SPREAD * 50).toFixed(0)}%, other load on the machine?): ${noisy.map((x) => x.label).join('; ')}`);
  const missed = r.figures.filter((f) => f.pass === false);
  out.push('', missed.length ? `MISSED: ${missed.map((f) => f.label).join('; ')}` : 'All targets met.');
  return out.join('\n');
}

export function renderJson(r: BenchResult): string {
  return JSON.stringify(r, null, 2);
}

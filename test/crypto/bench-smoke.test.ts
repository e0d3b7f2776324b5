// Keeps test/bench/ from rotting: every bench case and the whole report run with tiny
// iteration counts and must produce positive finite numbers. No timing thresholds here
// (timed tests are forbidden: they flake); `npm run bench:crypto` is where targets are judged.
import { beforeAll, describe, expect, test } from 'vitest';
import { FIGURES } from '../bench/figures.ts';
import { measure, type MeasureOptions, type Measurement, median } from '../bench/harness.ts';
import { primitiveCases } from '../bench/primitives.ts';
import { DECRYPT_BLOCK, PREKEY_POOL, protocolCases } from '../bench/protocol.ts';
import { renderJson, renderText } from '../bench/report.ts';
import { benchReady, runBench } from '../bench/run.ts';

beforeAll(benchReady);

const TINY: MeasureOptions = { runs: 2, runMs: 0, iterations: 3 };
const positiveFinite = (x: number): boolean => Number.isFinite(x) && x > 0;

function expectSane(m: Measurement, opts: MeasureOptions = TINY): void {
  expect(m.iterations, m.id).toBe(opts.iterations);
  expect(m.runsMsPerOp, m.id).toHaveLength(opts.runs);
  for (const x of [...m.runsMsPerOp, m.msPerOp, m.opsPerSec]) expect(positiveFinite(x), `${m.id}: ${x}`).toBe(true);
  expect(Number.isFinite(m.spread) && m.spread >= 0, m.id).toBe(true);
}

describe('bench cases run', () => {
  test('every primitive case', () => {
    const cases = primitiveCases();
    expect(cases.length).toBeGreaterThan(0);
    for (const c of cases) expectSane(measure(c, TINY));
  });

  test('every protocol case', () => {
    const cases = protocolCases();
    expect(cases.length).toBeGreaterThan(0);
    for (const c of cases) expectSane(measure(c, TINY));
  });
});

// Past their pool, these cases restart from the start state: a wrong restart would throw
// (duplicate_message, decrypt_failed), so running one operation past the pool checks it.
test('cases that cycle a pool of messages run past its end', () => {
  const pools: Record<string, number> = { decryptRatchet: DECRYPT_BLOCK, decryptDevice: DECRYPT_BLOCK, setupResponder: PREKEY_POOL };
  const cases = protocolCases().filter((c) => c.id in pools);
  expect(cases).toHaveLength(3);
  for (const c of cases) {
    const opts: MeasureOptions = { runs: 1, runMs: 0, iterations: pools[c.id]! + 1 };
    expectSane(measure(c, opts), opts);
  }
});

test('median', () => {
  expect(median([3, 1, 2])).toBe(2);
  expect(median([4, 1, 3, 2])).toBe(2.5);
  expect(() => median([])).toThrow();
});

test('the full report: every figure has a floor, a ratio and a verdict', async () => {
  const r = await runBench(TINY);
  expect(r.figures.map((f) => f.id)).toEqual(FIGURES.map((f) => f.id));
  // Every protocol case is reported as a figure, so a new case cannot go unprinted.
  for (const m of r.protocol) expect(r.figures.some((f) => f.id === m.id), m.id).toBe(true);
  for (const f of r.figures) {
    for (const x of [f.msPerOp, f.perSec, f.floorMsPerOp, f.ratio]) expect(positiveFinite(x), `${f.id}: ${x}`).toBe(true);
    // Noise may put a figure under its floor, so only finiteness is checked here.
    expect(Number.isFinite(f.overheadMsPerOp), f.id).toBe(true);
    expect(f.pass === null, f.id).toBe(f.target === null);
    expect(f.floorFormula.length, f.id).toBeGreaterThan(0);
  }
  const json = JSON.parse(renderJson(r)) as typeof r;
  expect(json.figures).toHaveLength(r.figures.length);
  const text = renderText(r);
  for (const f of r.figures) expect(text).toContain(f.label);
});

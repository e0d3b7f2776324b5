// The known-answer vectors in test/vectors/ verify, they are what the generator makes, and the
// verifier is not vacuous: changing any recorded byte (an output, or an input the outputs are
// computed from) or an expected error code makes it report a failure in that very case.
import { readdirSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, test } from 'vitest';
import { ready } from '../../crypto/index.ts';
import { generateVectorFile, type Json, VECTOR_FILES, verifyVectorFile } from '../support/vectors.ts';

beforeAll(ready);

const dir = new URL('../vectors/', import.meta.url);
const load = (file: string): Json => JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as Json;

type Path = (string | number)[];
interface Leaf {
  readonly caseIndex: number;
  readonly role: 'input' | 'output';
  readonly path: Path;
  readonly value: Json;
}

const HEX = /^(?:[0-9a-f]{2})+$/;

/** Every leaf under cases[i].input and cases[i].output, in document order. */
function leaves(json: Json): Leaf[] {
  const out: Leaf[] = [];
  const walk = (v: Json | undefined, path: Path, caseIndex: number, role: Leaf['role']): void => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i], caseIndex, role));
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k], caseIndex, role);
    else if (v !== undefined) out.push({ caseIndex, role, path, value: v });
  };
  const cases = (json as { cases: Json[] }).cases;
  cases.forEach((c, i) => {
    const cc = c as { input: Json; output: Json };
    walk(cc.input, ['cases', i, 'input'], i, 'input');
    walk(cc.output, ['cases', i, 'output'], i, 'output');
  });
  return out;
}

/** FNV-1a: a fixed, spread-out choice from a path, so the same positions are mutated on every run. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** About a quarter of `items` (at least `min`), evenly spread, first and last included. */
function spread<T>(items: readonly T[], min: number): T[] {
  const k = Math.min(items.length, Math.max(min, Math.ceil(items.length / 4)));
  if (k === items.length) return [...items];
  if (k <= 1) return items.slice(0, k);
  return Array.from({ length: k }, (_, i) => items[Math.round((i * (items.length - 1)) / (k - 1))]!);
}

function withLeaf(json: Json, path: Path, value: Json): Json {
  const copy = structuredClone(json);
  let at = copy as Record<string | number, Json>;
  for (const p of path.slice(0, -1)) at = at[p] as Record<string | number, Json>;
  at[path[path.length - 1]!] = value;
  return copy;
}

/**
 * Changes one nibble of a hex string to another value. The position comes from the path: the
 * first nibble (version bytes), the last (tags, signatures) or one in between.
 */
function flipNibble(hex: string, path: Path): string {
  const h = hash(path.join('/'));
  const at = [0, hex.length - 1][h % 5] ?? (h >>> 4) % hex.length;
  const nibble = parseInt(hex[at]!, 16) ^ (1 + ((h >>> 8) % 15));
  return hex.slice(0, at) + nibble.toString(16) + hex.slice(at + 1);
}

const isHex = (l: Leaf): boolean => typeof l.value === 'string' && HEX.test(l.value);

/** Per case, a spread of the leaves `pick` selects (at least `min` of them when there are that many). */
function perCase(json: Json, pick: (l: Leaf) => boolean, min: number): Leaf[] {
  const byCase = new Map<number, Leaf[]>();
  for (const l of leaves(json)) if (pick(l)) byCase.set(l.caseIndex, [...(byCase.get(l.caseIndex) ?? []), l]);
  return [...byCase.values()].flatMap((ls) => spread(ls, min));
}

/** Another value of the same kind: a nibble changed in hex, +1, negated, or another error code. */
function mutate(l: Leaf): Json {
  const v = l.value;
  if (typeof v === 'string' && HEX.test(v)) return flipNibble(v, l.path);
  if (typeof v === 'number') return v + 1;
  if (typeof v === 'boolean') return !v;
  if (v === null) return '00';
  return v === 'decrypt_failed' ? 'malformed' : 'decrypt_failed';
}

function expectCaught(file: string, json: Json, l: Leaf, mutated: Json, what: string): void {
  const r = verifyVectorFile(file, withLeaf(json, l.path, mutated));
  const inCase = r.failures.some((f) => f.includes(`cases[${l.caseIndex}]`));
  expect(inCase, `${what} at ${l.path.join('.')} went unnoticed (failures: ${r.failures.slice(0, 2).join(' | ') || 'none'})`).toBe(true);
}

test('test/vectors holds exactly the vector files the verifier knows', () => {
  const present = readdirSync(dir).filter((f) => f.endsWith('.json'));
  expect(present.sort()).toEqual([...VECTOR_FILES].sort());
});

describe.each(VECTOR_FILES)('%s', (file) => {
  test('verifies', () => {
    const r = verifyVectorFile(file, load(file));
    expect(r.failures).toEqual([]);
    expect(r.checks).toBeGreaterThan(20);
  });

  test('is exactly what the generator makes', () => {
    expect(JSON.parse(JSON.stringify(generateVectorFile(file)))).toEqual(load(file));
  });

  test('a changed nibble in any output, or a changed error code, number or flag, is caught in its case', () => {
    const json = load(file);
    // Per case: a spread of its hex outputs (at least 3), and of its other outputs (at least 1).
    const chosen = [...perCase(json, (l) => l.role === 'output' && isHex(l), 3), ...perCase(json, (l) => l.role === 'output' && !isHex(l), 1)];
    expect(new Set(chosen.map((l) => l.caseIndex)).size, 'every case gets mutated').toBe((json as { cases: Json[] }).cases.length);
    for (const l of chosen) expectCaught(file, json, l, mutate(l), 'changed output');
  });

  test('a changed nibble in any input is caught in its case', () => {
    const json = load(file);
    // Per case: a spread of its hex inputs (seeds, plaintexts, key material, edit bytes). Numbers are
    // left out: one may pick an equivalent case (another device refused the same way, outLen 66
    // refused like 65), which is not a verifier failure.
    const chosen = perCase(json, (l) => l.role === 'input' && isHex(l), 3);
    expect(chosen.length).toBeGreaterThan(0);
    for (const l of chosen) expectCaught(file, json, l, mutate(l), 'changed input');
  });
});

describe('the verifier refuses a broken file', () => {
  test('an output field removed', () => {
    const json = load('kdf.json') as { cases: { output: Record<string, Json> }[] };
    const copy = structuredClone(json);
    delete copy.cases[0]!.output.okm;
    expect(verifyVectorFile('kdf.json', copy as unknown as Json).failures[0]).toMatch(/recorded but|computed but/);
  });

  test('an unknown version, a file with no cases, a file no topic knows', () => {
    expect(verifyVectorFile('kdf.json', { ...(load('kdf.json') as object), version: 2 }).failures.length).toBeGreaterThan(0);
    expect(verifyVectorFile('kdf.json', { ...(load('kdf.json') as object), cases: [] }).failures.length).toBeGreaterThan(0);
    expect(verifyVectorFile('nope.json', load('kdf.json')).failures.length).toBeGreaterThan(0);
    expect(verifyVectorFile('kdf.json', 'not an object').failures.length).toBeGreaterThan(0);
  });
});

// Golden wire encodings (test/fixtures/wire/, README there): every frozen encoding still decodes
// to the fields it had when it was added and re-encodes to the identical bytes, and no frozen
// file has changed or gone (MANIFEST holds their SHA-256).
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, test } from 'vitest';
import { fromHex, ready, toHex } from '../../crypto/index.ts';
import { decodeWire, WIRE_TYPES, type WireContext, type WireType } from '../support/wire-codecs.ts';

beforeAll(ready);

const dir = new URL('../fixtures/wire/', import.meta.url);
const NOT_FIXTURES = new Set(['README.md', 'MANIFEST']);
const fixtureFiles = readdirSync(dir)
  .filter((f) => !NOT_FIXTURES.has(f))
  .sort();

interface Fixture {
  readonly type: WireType;
  readonly version: number;
  readonly description: string;
  readonly bytes: string;
  readonly context?: WireContext;
  readonly decoded: Record<string, unknown>;
}

function load(file: string): Fixture {
  return JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as Fixture;
}

/** MANIFEST lines: "<sha256 hex>  <file name>", as sha256sum writes them. */
function manifest(): { sha256: string; file: string }[] {
  return readFileSync(new URL('MANIFEST', dir), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const m = /^([0-9a-f]{64}) {2}(\S+)$/.exec(line);
      if (!m) throw new Error(`MANIFEST line is not "<sha256>  <file>": ${line}`);
      return { sha256: m[1]!, file: m[2]! };
    });
}

describe.each(fixtureFiles)('%s', (file) => {
  test('decodes to its recorded fields and re-encodes to the same bytes', () => {
    const fx = load(file);
    expect(WIRE_TYPES).toContain(fx.type);
    expect(file.startsWith(`${fx.type}.v${fx.version}`), 'file named <type>.v<version>...').toBe(true);
    const bytes = fromHex(fx.bytes);
    expect(bytes[0], 'the first byte is the version').toBe(fx.version);
    const d = decodeWire(fx.type, bytes, fx.context ?? {});
    expect(d.summary).toMatchObject(fx.decoded);
    expect(toHex(d.reencoded)).toBe(fx.bytes);
  });
});

test('there is a golden encoding of every wire and stored-state type', () => {
  const types = new Set(fixtureFiles.map((f) => load(f).type));
  expect(WIRE_TYPES.filter((t) => !types.has(t))).toEqual([]);
});

test('both kinds of device message are frozen', () => {
  const kinds = fixtureFiles.map(load).filter((fx) => fx.type === 'device-message').map((fx) => fromHex(fx.bytes)[1]);
  expect(new Set(kinds)).toEqual(new Set([1, 2]));
});

describe('MANIFEST', () => {
  test('every listed file is present and unchanged', () => {
    const entries = manifest();
    expect(entries.length).toBeGreaterThan(0);
    for (const { sha256, file } of entries) {
      expect(existsSync(new URL(file, dir)), `${file} is listed in MANIFEST but gone: fixtures are never removed`).toBe(true);
      const actual = createHash('sha256').update(readFileSync(new URL(file, dir))).digest('hex');
      expect(actual, `${file} changed: fixtures are never edited (add a new file instead)`).toBe(sha256);
    }
  });

  test('every file is listed, once', () => {
    const listed = manifest().map((e) => e.file);
    expect(new Set(listed).size).toBe(listed.length);
    expect(fixtureFiles.filter((f) => !listed.includes(f)), 'append new fixtures to MANIFEST').toEqual([]);
  });
});

// The PWA's sources keep the rules the CSP cannot fully enforce by itself: user text reaches the
// DOM only as text (no HTML sinks anywhere in web/), no style attributes (the CSP would block
// them at run time, so they would be silent bugs), no eval, and nothing loaded from elsewhere.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const web = join(root, 'web');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name === 'dist' || e.name === 'node_modules') return [];
    const p = join(dir, e.name);
    return e.isDirectory() ? files(p) : /\.(tsx?|html|css|webmanifest)$/.test(e.name) ? [p] : [];
  });
}

const FORBIDDEN: [RegExp, string][] = [
  [/\binnerHTML\b|\bouterHTML\b|insertAdjacentHTML|dangerouslySetInnerHTML|createContextualFragment/, 'an HTML sink'],
  [/document\.write/, 'document.write'],
  [/\beval\s*\(|new Function\s*\(/, 'eval'],
  [/\sstyle=\{|\sstyle="|setAttribute\(\s*['"]style|\.cssText\b/, 'a style attribute (CSP: style-src without unsafe-inline)'],
  [/\son[a-z]+="/, 'an inline event handler attribute'],
  [/javascript:/, 'a javascript: URL'],
  // (SVG's namespace name is a URI that is never fetched.)
  [/['"`(](?:https?:)?\/\/(?!localhost|127\.0\.0\.1|www\.w3\.org\/2000\/svg")[a-z0-9]/i, 'a URL of another origin'],
];

/** Comments may name what they avoid ("no innerHTML"); a `//` right after a quote or colon is a URL. */
const stripComments = (line: string) => line.replace(/^\s*\*.*$|\/\*.*?\*\//g, '').replace(/(^|[^:'"`(])\/\/.*$/, '$1');

describe('web/ sources', () => {
  const all = files(web).filter((f) => !f.includes(`${join('web', 'headless')}`));
  test('there are sources to check', () => {
    expect(all.length).toBeGreaterThan(20);
  });
  for (const [re, what] of FORBIDDEN) {
    test(`no ${what}`, () => {
      const hits = all.flatMap((f) =>
        readFileSync(f, 'utf8')
          .split('\n')
          .map((line, i) => ({ line, at: `${relative(root, f)}:${i + 1}` }))
          .filter(({ line }) => re.test(stripComments(line)))
          .map(({ at, line }) => `${at}: ${line.trim().slice(0, 100)}`),
      );
      expect(hits).toEqual([]);
    });
  }
  test('index.html loads only its own module script and stylesheet', () => {
    const html = readFileSync(join(web, 'index.html'), 'utf8');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style/);
  });
});

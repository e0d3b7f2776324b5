// Writes test/vectors/<topic>.json: known-answer vectors computed with crypto/'s public API from
// the fixed seeds and scenarios defined in test/support/vectors/<topic>.ts. Each file is verified
// right after it is computed, so a file that would not verify is never written.
//
//   npm run vectors:generate                 every file
//   npm run vectors:generate -- kdf.json     only the files named
//
// Regenerating must reproduce the committed files byte for byte unless the protocol changed;
// a changed vector is a protocol change and needs a PROTOCOL.md change with it.
import { writeFileSync } from 'node:fs';
import { ready } from '../crypto/index.ts';
import { generateVectorFile, VECTOR_FILES, verifyVectorFile } from '../test/support/vectors.ts';

await ready();
const dir = new URL('../test/vectors/', import.meta.url);
const only = process.argv.slice(2);
const unknown = only.filter((f) => !VECTOR_FILES.includes(f));
if (unknown.length > 0) {
  console.error(`no such vector file: ${unknown.join(', ')} (known: ${VECTOR_FILES.join(', ')})`);
  process.exit(2);
}

let bytes = 0;
for (const file of VECTOR_FILES) {
  if (only.length > 0 && !only.includes(file)) continue;
  const vectors = generateVectorFile(file);
  const text = `${JSON.stringify(vectors, null, 2)}\n`;
  const check = verifyVectorFile(file, JSON.parse(text));
  if (check.failures.length > 0) {
    console.error(`${file} does not verify after generation:\n  ${check.failures.slice(0, 5).join('\n  ')}`);
    process.exit(1);
  }
  writeFileSync(new URL(file, dir), text);
  bytes += text.length;
  console.log(`wrote ${file.padEnd(20)} ${String(vectors.cases.length).padStart(3)} cases ${String(check.checks).padStart(5)} checks ${(text.length / 1024).toFixed(1).padStart(7)} KB`);
}
console.log(`total ${(bytes / 1024).toFixed(1)} KB`);

// `npm run vectors`: recomputes every known-answer vector in test/vectors/*.json in Node (no
// browser) from its recorded inputs and compares every recorded output byte for byte, expected
// error codes included. One line per file, then a total; exits non-zero on any failure.
import { readdirSync, readFileSync } from 'node:fs';
import { ready } from '../crypto/index.ts';
import { VECTOR_FILES, verifyVectorFile } from '../test/support/vectors.ts';

await ready();
const dir = new URL('../test/vectors/', import.meta.url);
const present = readdirSync(dir).filter((f) => f.endsWith('.json'));
const files = [...VECTOR_FILES, ...present.filter((f) => !VECTOR_FILES.includes(f)).sort()];

let checks = 0;
let failed = 0;
for (const file of files) {
  let result: { checks: number; failures: readonly string[] };
  if (!present.includes(file)) {
    result = { checks: 0, failures: [`${file}: missing (run npm run vectors:generate)`] };
  } else {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(new URL(file, dir), 'utf8'));
      result = verifyVectorFile(file, json);
    } catch (e) {
      result = { checks: 0, failures: [`${file}: not JSON: ${(e as Error).message}`] };
    }
  }
  checks += result.checks;
  const counts = `${String(result.checks).padStart(5)} checks`;
  if (result.failures.length === 0) {
    console.log(`ok    ${file.padEnd(20)} ${counts}`);
  } else {
    failed++;
    console.log(`FAIL  ${file.padEnd(20)} ${counts}, ${result.failures.length} failed; first: ${result.failures[0]}`);
  }
}
console.log(`total ${files.length} files, ${checks} checks, ${failed === 0 ? 'all passed' : `${failed} files FAILED`}`);
process.exitCode = failed === 0 ? 0 : 1;

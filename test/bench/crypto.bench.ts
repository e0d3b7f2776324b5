// `npm run bench:crypto [-- --json]`: times crypto/ on this machine against its primitives.
// Progress goes to stderr; stdout carries only the table (or, with --json, only the JSON).
// See README.md in this folder for what each figure is and how its floor is derived.
import { DEFAULT_OPTIONS } from './harness.ts';
import { renderJson, renderText } from './report.ts';
import { runBench } from './run.ts';

const json = process.argv.includes('--json');
const result = await runBench(DEFAULT_OPTIONS, (line) => process.stderr.write(`${line}\n`));
process.stdout.write(`${json ? renderJson(result) : renderText(result)}\n`);

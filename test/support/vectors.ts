// Known-answer vectors for crypto/: one topic per protocol step, each generating and verifying
// one file in test/vectors/. `npm run vectors:generate` writes them (scripts/generate-vectors.ts),
// `npm run vectors` checks them (scripts/verify-vectors.ts) and test/crypto/vectors.test.ts runs
// the same check and proves it fails when any recorded byte changes. Await crypto's `ready()` first.
import { attachmentTopic } from './vectors/attachment.ts';
import { compareJson, describeError, type Earlier, In, type Json, Tally, type Topic, VECTOR_FORMAT_VERSION, type VectorCase, type VectorFile } from './vectors/core.ts';
import { deviceLinkTopic } from './vectors/device-link.ts';
import { deviceListTopic } from './vectors/device-list.ts';
import { fanoutTopic } from './vectors/fanout.ts';
import { identityTopic } from './vectors/identity.ts';
import { kdfTopic } from './vectors/kdf.ts';
import { prekeysTopic } from './vectors/prekeys.ts';
import { ratchetTopic } from './vectors/ratchet.ts';
import { safetyNumberTopic } from './vectors/safety-number.ts';
import { sesameReportTopic, sesameTopic } from './vectors/sesame.ts';
import { sessionSetupTopic } from './vectors/session-setup.ts';
import { wireTopic } from './vectors/wire.ts';

export type { Json, VectorCase, VectorFile } from './vectors/core.ts';

/** Every vector file, in protocol order. */
export const TOPICS: readonly Topic[] = [
  kdfTopic,
  identityTopic,
  deviceListTopic,
  deviceLinkTopic,
  prekeysTopic,
  sessionSetupTopic,
  ratchetTopic,
  sesameTopic,
  sesameReportTopic,
  fanoutTopic,
  attachmentTopic,
  safetyNumberTopic,
  wireTopic,
];

export const VECTOR_FILES: readonly string[] = TOPICS.map((t) => t.file);

function topicFor(file: string): Topic | undefined {
  return TOPICS.find((t) => t.file === file);
}

/** Computes a topic's file from its fixed inputs, asserting each negative case hits its intended error. */
export function generateVectorFile(file: string): VectorFile {
  const topic = topicFor(file);
  if (!topic) throw new Error(`no vector topic writes ${file}`);
  const earlier = new Map<string, unknown>();
  const cases: VectorCase[] = [];
  for (const spec of topic.cases()) {
    if (earlier.has(spec.name)) throw new Error(`${file}: two cases named "${spec.name}"`);
    const r = topic.compute(spec, earlier);
    const got = r.output.error ?? 'success';
    if ((spec.expect ?? 'success') !== got) throw new Error(`${file} "${spec.name}": meant to give ${spec.expect ?? 'success'}, gave ${String(got)}`);
    earlier.set(spec.name, r.keep);
    cases.push({ name: spec.name, input: spec.input, output: r.output });
  }
  return { description: topic.description, version: VECTOR_FORMAT_VERSION, spec: topic.spec, cases };
}

export interface VerifyResult {
  readonly checks: number;
  /** Empty when the file verified; otherwise one line per mismatch, first mismatch first. */
  readonly failures: readonly string[];
}

/**
 * Recomputes every case of a vector file from its recorded inputs and compares every recorded
 * output with it, byte for byte (expected error codes included), then runs the topic's
 * cross-checks on the recorded values. Never throws: a broken file is a failure.
 */
export function verifyVectorFile(file: string, json: unknown): VerifyResult {
  let where = file;
  const t = new Tally(() => where);
  const topic = topicFor(file);
  if (!topic) {
    t.fail('no vector topic knows this file');
    return { checks: t.checks, failures: t.failures };
  }
  let cases: In[];
  try {
    const top = In.of(json as Json, file);
    if (top.str('description').length === 0) t.fail('empty description');
    top.str('spec');
    if (top.num('version') !== VECTOR_FORMAT_VERSION) t.fail(`version ${top.num('version')}, expected ${VECTOR_FORMAT_VERSION}`);
    cases = top.objs('cases');
  } catch (e) {
    t.fail(`not a vector file: ${describeError(e)}`);
    return { checks: t.checks, failures: t.failures };
  }
  if (cases.length === 0) t.fail('no cases');
  const earlier = new Map<string, unknown>();
  cases.forEach((c, n) => {
    where = `${file} cases[${n}]`;
    t.guard('reading the case', () => verifyCase(topic, c, earlier, t, (name) => (where = `${file} cases[${n}] "${name}"`)));
  });
  return { checks: t.checks, failures: t.failures };
}

function verifyCase(topic: Topic, c: In, earlier: Map<string, unknown>, t: Tally, named: (name: string) => void): void {
  const name = c.str('name');
  named(name);
  if (earlier.has(name)) t.fail('a second case with this name');
  const vc: VectorCase = { name, input: c.obj('input').raw, output: c.obj('output').raw };
  let computed;
  try {
    computed = topic.compute({ name, input: vc.input }, earlier as Earlier);
  } catch (e) {
    t.fail(`recomputing threw ${describeError(e)}`);
    return;
  }
  earlier.set(name, computed.keep);
  compareJson(vc.output, computed.output, 'output', t);
  if (topic.crossCheck) t.guard('cross-check', () => topic.crossCheck!(vc, computed.keep, t));
}

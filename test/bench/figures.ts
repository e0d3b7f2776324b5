// The reported protocol figures: what each is, its target, and its floor — the time the
// libsodium calls the code must make would take on their own, counted from crypto/ and
// priced with the primitive timings of the same run. measured / floor is the overhead
// factor of everything that is not a primitive (JS glue, copies, encoding, wasm crossings).
import type { Measurement } from './harness.ts';
import type { PrimitiveId } from './primitives.ts';
import type { ProtocolId } from './protocol.ts';

export type FigureId = ProtocolId | 'setupBoth';

/** `count` calls of one primitive. */
type Term = readonly [count: number, primitive: PrimitiveId];

export type Target = { readonly kind: 'maxMs'; readonly value: number } | { readonly kind: 'minPerSec'; readonly value: number };

interface FigureSpec {
  readonly id: FigureId;
  readonly label: string;
  /** What one operation is, for the rate column. */
  readonly per: string;
  readonly floor: readonly Term[];
  readonly target: Target | null;
}

// Counted from session-setup.ts (initiateSession), prekeys.ts (verifyBundle) and sodium.ts:
// 3 signatures (signed and one-time X25519 prekeys, the X-Wing prekey's over 1.26 KB), ek and the new ratchet key's public halves,
// DH1..DH4 plus the first ratchet DH, the PQXDH KDF and the first root step.
const INITIATOR: Term[] = [[2, 'ed25519Verify'], [1, 'ed25519VerifyPq'], [5, 'x25519'], [2, 'x25519Base'], [1, 'xwingEncaps'], [2, 'blake2bKeyed512']];
// respondToPrekey: DH1..DH4, X-Wing decaps, PQXDH KDF; then ratchetDecrypt of the embedded
// message: the DH ratchet step (2 DH, 1 new public key, 2 root steps), a chain step, AEAD.
const RESPONDER: Term[] = [[6, 'x25519'], [1, 'x25519Base'], [1, 'xwingDecaps'], [4, 'blake2bKeyed512'], [1, 'aeadDecrypt100']];
// One message: the sender's chain step + AEAD; the receiver's DH ratchet step (2 DH, a new
// key pair's public half, 2 root steps), its chain step + AEAD open.
const PING_PONG: Term[] = [[2, 'x25519'], [1, 'x25519Base'], [4, 'blake2bKeyed512'], [1, 'aeadEncrypt100'], [1, 'aeadDecrypt100']];
const MIN_ONE_WAY: Target = { kind: 'minPerSec', value: 65_000 };
const MIN_PING_PONG: Target = { kind: 'minPerSec', value: 2_100 };

export const FIGURES: readonly FigureSpec[] = [
  { id: 'setupInitiator', label: 'setup, initiator (startSession)', per: 'setups', floor: INITIATOR, target: null },
  { id: 'setupResponder', label: 'setup, responder (1st prekey msg)', per: 'setups', floor: RESPONDER, target: null },
  { id: 'setupBoth', label: 'setup, both sides', per: 'setups', floor: [...INITIATOR, ...RESPONDER], target: { kind: 'maxMs', value: 2.5 } },
  { id: 'encryptRatchet', label: 'encrypt 100 B, ratchetEncrypt', per: 'msgs', floor: [[1, 'blake2bKeyed512'], [1, 'aeadEncrypt100']], target: MIN_ONE_WAY },
  { id: 'decryptRatchet', label: 'decrypt 100 B, ratchetDecrypt', per: 'msgs', floor: [[1, 'blake2bKeyed512'], [1, 'aeadDecrypt100']], target: MIN_ONE_WAY },
  { id: 'encryptDevice', label: 'encrypt 100 B, encryptForDevice', per: 'msgs', floor: [[1, 'blake2bKeyed512'], [1, 'aeadEncrypt100']], target: MIN_ONE_WAY },
  { id: 'decryptDevice', label: 'decrypt 100 B, decryptFromDevice', per: 'msgs', floor: [[1, 'blake2bKeyed512'], [1, 'aeadDecrypt100']], target: MIN_ONE_WAY },
  { id: 'pingPongRatchet', label: 'ping-pong 100 B, ratchet', per: 'msgs', floor: PING_PONG, target: MIN_PING_PONG },
  { id: 'pingPongDevice', label: 'ping-pong 100 B, device', per: 'msgs', floor: PING_PONG, target: MIN_PING_PONG },
  {
    id: 'fanout100',
    label: 'fan-out 1 KB to 100 (fanoutEncrypt)',
    per: 'fan-outs',
    // sealPayload: AEAD of the payload and its BLAKE2b-256; then per target a chain step and the 65-byte key message's AEAD.
    floor: [[1, 'aeadEncrypt1k'], [1, 'blake2b256of1k'], [100, 'blake2bKeyed512'], [100, 'aeadEncrypt65']],
    target: { kind: 'maxMs', value: 3 },
  },
];

const SHORT: Record<PrimitiveId, string> = {
  x25519: 'X25519',
  x25519Base: 'X25519-base',
  aeadEncrypt100: 'AEAD-enc(100)',
  aeadDecrypt100: 'AEAD-dec(100)',
  aeadEncrypt65: 'AEAD-enc(65)',
  aeadEncrypt1k: 'AEAD-enc(1K)',
  blake2bKeyed512: 'BLAKE2b',
  blake2b256of1k: 'BLAKE2b(1K)',
  xwingEncaps: 'XWing-enc',
  xwingDecaps: 'XWing-dec',
  ed25519Verify: 'Ed25519-verify',
  ed25519VerifyPq: 'Ed25519-verify(PQ key)',
};

export interface FigureResult {
  readonly id: FigureId;
  readonly label: string;
  readonly per: string;
  readonly msPerOp: number;
  readonly perSec: number;
  /** Worst spread of the measurements the figure is made of. */
  readonly spread: number;
  readonly floorFormula: string;
  readonly floorMsPerOp: number;
  /** measured time / floor time (>= 1 unless timings are noisy). */
  readonly ratio: number;
  /** measured time - floor time: what is spent outside libsodium's primitives, per operation. */
  readonly overheadMsPerOp: number;
  readonly target: Target | null;
  readonly pass: boolean | null;
}

function merged(m: ReadonlyMap<string, Measurement>, ids: readonly ProtocolId[]): { msPerOp: number; spread: number } {
  const parts = ids.map((id) => {
    const x = m.get(id);
    if (!x) throw new Error(`no measurement for ${id}`);
    return x;
  });
  return { msPerOp: parts.reduce((s, x) => s + x.msPerOp, 0), spread: Math.max(...parts.map((x) => x.spread)) };
}

function meets(t: Target | null, msPerOp: number): boolean | null {
  if (!t) return null;
  return t.kind === 'maxMs' ? msPerOp <= t.value : 1000 / msPerOp >= t.value;
}

/** Turns protocol and primitive measurements of one run into the reported figures. */
export function evaluate(protocol: readonly Measurement[], primitives: readonly Measurement[]): FigureResult[] {
  const byId = new Map([...protocol, ...primitives].map((x) => [x.id, x] as const));
  const cost = (p: PrimitiveId): number => {
    const x = byId.get(p);
    if (!x) throw new Error(`no measurement for primitive ${p}`);
    return x.msPerOp;
  };
  return FIGURES.map((f) => {
    const { msPerOp, spread } = merged(byId, f.id === 'setupBoth' ? ['setupInitiator', 'setupResponder'] : [f.id]);
    const floorMsPerOp = f.floor.reduce((s, [k, p]) => s + k * cost(p), 0);
    return {
      id: f.id,
      label: f.label,
      per: f.per,
      msPerOp,
      perSec: 1000 / msPerOp,
      spread,
      floorFormula: formula(f.floor),
      floorMsPerOp,
      ratio: msPerOp / floorMsPerOp,
      overheadMsPerOp: msPerOp - floorMsPerOp,
      target: f.target,
      pass: meets(f.target, msPerOp),
    };
  });
}

/** "3 Ed25519-verify + 5 X25519 + ...", terms of the same primitive added up. */
export function formula(terms: readonly Term[]): string {
  const sum = new Map<PrimitiveId, number>();
  for (const [k, p] of terms) sum.set(p, (sum.get(p) ?? 0) + k);
  return [...sum].map(([p, k]) => `${k === 1 ? '' : `${k} `}${SHORT[p]}`).join(' + ');
}

// The engine's live connection (web/core/net/socket.ts) against a scripted WebSocket: envelopes
// are processed in frame order, and acks are cumulative — one ack with the highest stored seq per
// ACK_DELAY_MS, not one per frame — and a pending ack is sent when the socket stops.
import { expect, test } from 'vitest';
import type { WireEnvelope } from '../../web/core/net/api.ts';
import { ACK_DELAY_MS, LiveSocket, type WsLike } from '../../web/core/net/socket.ts';

class ScriptedWs implements WsLike {
  static last: ScriptedWs | undefined;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code?: number }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  readyState = 0;
  readonly sent: any[] = [];
  constructor(readonly url: string) {
    ScriptedWs.last = this;
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
    });
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.readyState = 3;
  }
  frame(f: unknown) {
    this.onmessage?.({ data: JSON.stringify(f) });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const items = (...seqs: number[]) => seqs.map((seq) => ({ seq }) as unknown as WireEnvelope);

test('envelopes in frame order; one cumulative ack per window; a pending ack goes out on stop', async () => {
  const seen: number[] = [];
  const socket = new LiveSocket('ws://relay/v1/ws', () => 'pd_token', ScriptedWs, {
    cursor: async () => ({ after: 0 }),
    onEnvelopes: async (list) => {
      await sleep(list[0]!.seq === 1 ? 5 : 0); // a slow first frame must not let the second overtake it
      seen.push(...list.map((e) => e.seq));
      return list[list.length - 1]!.seq;
    },
    onState: () => {},
    onRevoked: () => {},
  });
  socket.start();
  for (let i = 0; i < 100 && ScriptedWs.last?.sent.length !== 1; i++) await sleep(5);
  const ws = ScriptedWs.last!;
  expect(ws.sent).toEqual([{ type: 'auth', token: 'pd_token', after: 0 }]);
  ws.frame({ type: 'ready', after: 0 });

  ws.frame({ type: 'envelopes', items: items(1, 2) });
  ws.frame({ type: 'envelopes', items: items(3) });
  ws.frame({ type: 'envelopes', items: items(4, 5) });
  await sleep(ACK_DELAY_MS / 2);
  expect(seen).toEqual([1, 2, 3, 4, 5]);
  expect(ws.sent.filter((f) => f.type === 'ack')).toEqual([]); // still gathering
  await sleep(ACK_DELAY_MS);
  expect(ws.sent.filter((f) => f.type === 'ack')).toEqual([{ type: 'ack', seq: 5 }]);

  ws.frame({ type: 'envelopes', items: items(6) });
  await sleep(5);
  socket.stop();
  expect(ws.sent.filter((f) => f.type === 'ack')).toEqual([
    { type: 'ack', seq: 5 },
    { type: 'ack', seq: 6 },
  ]);
});

test('auth carries our cursor and the timestamp of the envelope at it (a restored relay needs it)', async () => {
  const socket = new LiveSocket('ws://relay/v1/ws', () => 'pd_token', ScriptedWs, {
    cursor: async () => ({ after: 7, at: 1234 }),
    onEnvelopes: async (list) => list[list.length - 1]!.seq,
    onState: () => {},
    onRevoked: () => {},
  });
  socket.start();
  for (let i = 0; i < 100 && ScriptedWs.last?.sent.length !== 1; i++) await sleep(5);
  expect(ScriptedWs.last!.sent).toEqual([{ type: 'auth', token: 'pd_token', after: 7, at: 1234 }]);
  socket.stop();
});

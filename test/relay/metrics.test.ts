// Prometheus /metrics on a real port: a well-formed exposition (every line parsed, every family
// typed, histograms cumulative), values that move with HTTP and WebSocket traffic, bounded labels
// under random paths, and the operator token.
import { describe, expect, test } from 'vitest';
import { createApp } from '../../relay/app.ts';
import { createServices } from '../../relay/services.ts';
import { call, createUser, send } from './client.ts';
import { backends, type Fetch, relayOnPort, TEST_CONFIG, uniqueName } from './harness.ts';
import { TestSocket } from './ws-client.ts';

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL_VALUE = '"(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const SAMPLE = new RegExp(`^(${NAME})(\\{(?:[a-zA-Z_][a-zA-Z0-9_]*=${LABEL_VALUE},?)*\\})? (\\S+)$`);
const COMMENT = new RegExp(`^# (HELP|TYPE) (${NAME}) (.+)$`);

/** Parses the text format strictly: every sample belongs to a family declared by # TYPE before it. */
function parse(text: string): Map<string, number> {
  expect(text.endsWith('\n')).toBe(true);
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const line of text.slice(0, -1).split('\n')) {
    const c = COMMENT.exec(line);
    if (c) {
      if (c[1] === 'TYPE') {
        expect(['counter', 'gauge', 'histogram'], line).toContain(c[3]);
        expect(types.has(c[2]!), `family typed twice: ${line}`).toBe(false);
        types.set(c[2]!, c[3]!);
      }
      continue;
    }
    const m = SAMPLE.exec(line);
    expect(m, `malformed line: ${line}`).not.toBeNull();
    const value = Number(m![3]);
    expect(Number.isFinite(value), line).toBe(true);
    const family = m![1]!.replace(/_(bucket|sum|count)$/, '');
    expect(types.has(m![1]!) || types.get(family) === 'histogram', `untyped sample: ${line}`).toBe(true);
    expect(samples.has(m![1]! + (m![2] ?? '')), `duplicate series: ${line}`).toBe(false);
    samples.set(m![1]! + (m![2] ?? ''), value);
  }
  for (const [series, count] of samples) {
    if (!/_count(\{|$)/.test(series)) continue;
    // Buckets are cumulative and +Inf equals the count.
    const [name, labels = ''] = series.replace('_count', '').split('{');
    const inner = labels.replace(/\}$/, '');
    const buckets = [...samples].filter(([k]) => k.startsWith(`${name}_bucket{${inner}${inner ? ',' : ''}le=`)).map(([, v]) => v);
    expect(buckets.length, series).toBeGreaterThan(1);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!).toBeGreaterThanOrEqual(buckets[i - 1]!);
    expect(buckets.at(-1), series).toBe(count);
  }
  return samples;
}

const delta = (after: Map<string, number>, before: Map<string, number>, series: string) => (after.get(series) ?? NaN) - (before.get(series) ?? 0);

describe.each(backends)('metrics on $name', (backend) => {
  const server = relayOnPort(backend, { config: { ...TEST_CONFIG, attachmentChunkBytes: 100 } });
  const fetch: Fetch = (path, init) => server.fetch(path, init);
  const scrape = async () => {
    const res = await fetch('/metrics');
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return parse(await res.text());
  };

  test('HTTP, submission, socket delivery and attachment counters move; the gauge follows sockets', async () => {
    const before = await scrape();
    for (const s of ['petrel_push_total{result="sent"}', 'petrel_messages_submitted_total', 'petrel_submit_duration_seconds_count', 'process_start_time_seconds']) {
      expect(before.has(s), `${s} exists before anything happened`).toBe(true);
    }
    const alice = await createUser(fetch, uniqueName('alice'));
    const bob = await createUser(fetch, uniqueName('bob'));
    const sock = await TestSocket.open(server.relay.url, bob.devices[0]!.token);
    expect((await scrape()).get('petrel_ws_connections')).toBe(before.get('petrel_ws_connections')! + 1);

    expect((await send(fetch, alice.devices[0]!, [bob.name], new TextEncoder().encode('x'), 'm1')).status).toBe(200);
    await sock.envelopes(1);
    const { id } = (await call(fetch, 'POST', '/v1/attachments', { token: alice.devices[0]!.token, body: { size: 70 } })).body;
    const put = await fetch(`/v1/attachments/${id}/chunks/0`, { method: 'PUT', headers: { authorization: `Bearer ${alice.devices[0]!.token}` }, body: new Uint8Array(70) });
    expect(put.status).toBe(204);

    const after = await scrape();
    expect(delta(after, before, 'petrel_messages_submitted_total')).toBe(1);
    expect(delta(after, before, 'petrel_envelopes_stored_total')).toBe(1);
    expect(delta(after, before, 'petrel_envelopes_delivered_total')).toBe(1);
    expect(delta(after, before, 'petrel_submit_duration_seconds_count')).toBe(1);
    expect(delta(after, before, 'petrel_writer_batch_messages_count')).toBe(1);
    expect(delta(after, before, 'petrel_writer_batch_messages_sum')).toBe(1);
    expect(delta(after, before, 'petrel_attachments_bytes_total')).toBe(70);
    expect(delta(after, before, 'petrel_http_requests_total{method="POST",route="/v1/messages",status="200"}')).toBe(1);
    expect(delta(after, before, 'petrel_http_requests_total{method="PUT",route="/v1/attachments/:id/chunks/:idx",status="204"}')).toBe(1);
    expect(delta(after, before, 'petrel_http_request_duration_seconds_count{route="/v1/messages"}')).toBe(1);
    expect(delta(after, before, 'petrel_http_requests_total{method="GET",route="/v1/ws",status="101"}')).toBe(1);
    // A retry is answered with the first result and stores nothing: neither counter moves.
    expect((await send(fetch, alice.devices[0]!, [bob.name], new TextEncoder().encode('x'), 'm1')).status).toBe(200);
    const retried = await scrape();
    expect(delta(retried, after, 'petrel_messages_submitted_total')).toBe(0);
    expect(delta(retried, after, 'petrel_envelopes_stored_total')).toBe(0);
    expect(after.get('petrel_uptime_seconds')).toBeGreaterThanOrEqual(0);

    sock.ws.close();
    await sock.waitClosed();
    for (let i = 0; i < 100 && (await scrape()).get('petrel_ws_connections') !== before.get('petrel_ws_connections'); i++) await new Promise((r) => setTimeout(r, 20));
    expect((await scrape()).get('petrel_ws_connections')).toBe(before.get('petrel_ws_connections'));
  });

  test('random paths, ids and methods add no series', async () => {
    const count = async () => [...(await scrape()).keys()].filter((k) => k.startsWith('petrel_http_')).length;
    await fetch('/v1/nothing/warm');
    await fetch(`/v1/attachments/${'A'.repeat(22)}`);
    await fetch('/v1/users/warm/devices');
    const warm = await count();
    for (let i = 0; i < 40; i++) {
      await fetch(`/v1/nothing-${i}/x${i}?q=${i}`);
      await fetch(`/v1/attachments/${String(i).padStart(22, 'B')}`);
      await fetch(`/v1/users/u${i}x/devices`, { method: i % 2 ? 'GET' : 'DELETE' });
    }
    expect(await count()).toBeLessThanOrEqual(warm + 4); // at most a new status or method per pattern, never a series per path
    const text = await (await fetch('/metrics')).text();
    expect(text).not.toMatch(/nothing-|u1x|BBBB/);
  });

  test('with a token, only the operator may scrape', async () => {
    // A second app with the token, over this relay's database (the token is per app, like all config).
    const services = await createServices({ database: server.relay.services.database, config: { ...TEST_CONFIG, metricsToken: 'op-secret' } });
    const app = createApp(services);
    const f: Fetch = async (path, init) => app.request(path, init);
    try {
      for (const authorization of [undefined, 'Bearer op-secre', 'Bearer op-secretX', 'Bearer OP-SECRET', 'Basic op-secret', 'op-secret']) {
        const res = await f('/metrics', authorization ? { headers: { authorization } } : {});
        expect(res.status, String(authorization)).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="petrel"');
        expect((await res.json()).error).toBe('unauthorized');
      }
      // The scheme name is case-insensitive (RFC 9110), the token is not.
      for (const authorization of ['Bearer op-secret', 'bearer op-secret', 'BEARER op-secret']) {
        const ok = await f('/metrics', { headers: { authorization } });
        expect(ok.status, authorization).toBe(200);
        parse(await ok.text());
      }
    } finally {
      await services.close();
    }
  });
});

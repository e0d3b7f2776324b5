/**
 * Prometheus metrics in the text exposition format (0.0.4), from a registry small enough to
 * read: counters, gauges (also computed at scrape time) and fixed-bucket histograms. Label
 * values come only from bounded sets (route patterns, status codes, push results), never from
 * request data, so a scan of random paths cannot blow up the series count.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

type Labels = Record<string, string>;

const key = (l: Labels) => Object.entries(l).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',');

interface Metric {
  render(): string[];
}

/**
 * `initial` are the series shown at 0 before anything is counted: rate() needs a series to exist
 * before its first increment. An unlabelled counter starts with its one series; a labelled one
 * lists its known label sets (or none when they are only known later, e.g. route patterns).
 */
export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
    initial: readonly Labels[] = [{}],
  ) {
    for (const l of initial) this.values.set(key(l), 0);
  }
  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.values.get(key(labels)) ?? 0;
  }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [k, v] of this.values) out.push(`${this.name}${k ? `{${k}}` : ''} ${v}`);
    return out;
  }
}

export class Gauge implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => number,
  ) {}
  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, `${this.name} ${this.read()}`];
  }
}

export class Histogram implements Metric {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
    initial: readonly Labels[] = [{}],
  ) {
    for (const l of initial) this.at(key(l));
  }
  private at(k: string) {
    let s = this.series.get(k);
    if (!s) this.series.set(k, (s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    return s;
  }
  observe(value: number, labels: Labels = {}): void {
    const s = this.at(key(labels));
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [k, s] of this.series) {
      const lab = (extra: string) => `{${[k, extra].filter(Boolean).join(',')}}`;
      this.buckets.forEach((b, i) => out.push(`${this.name}_bucket${lab(`le="${b}"`)} ${s.counts[i]}`));
      out.push(`${this.name}_bucket${lab('le="+Inf"')} ${s.count}`, `${this.name}_sum${k ? `{${k}}` : ''} ${s.sum}`, `${this.name}_count${k ? `{${k}}` : ''} ${s.count}`);
    }
    return out;
  }
}

/** The push sender's results (push/sender.ts PushResult): listed so each series exists from the start. */
const PUSH_RESULTS = ['sent', 'gone', 'failed'];

const LATENCY = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export class Metrics {
  private readonly all: Metric[] = [];
  private readonly started = Date.now();
  readonly httpRequests = this.add(new Counter('petrel_http_requests_total', 'HTTP requests by route pattern, method and status.', []));
  readonly httpDuration = this.add(new Histogram('petrel_http_request_duration_seconds', 'HTTP request handling time by route pattern.', LATENCY, []));
  readonly messagesSubmitted = this.add(new Counter('petrel_messages_submitted_total', 'Messages accepted (committed) by this process.'));
  readonly envelopesStored = this.add(new Counter('petrel_envelopes_stored_total', 'Per-device envelopes committed by this process.'));
  readonly envelopesDelivered = this.add(new Counter('petrel_envelopes_delivered_total', 'Envelopes sent to devices over WebSocket by this process.'));
  readonly writerBatch = this.add(
    new Histogram('petrel_writer_batch_messages', 'Messages per write statement (group commit): small batches under load mean a commit per few messages.', [1, 2, 4, 8, 16, 32, 64, 128, 256]),
  );
  readonly submitDuration = this.add(new Histogram('petrel_submit_duration_seconds', 'Time from a submission being accepted to its commit.', LATENCY));
  /** The push sender reports each result here (services.ts wires it): `metrics.push.inc({ result })`. */
  readonly push = this.add(new Counter('petrel_push_total', 'Web Push requests by result (sent, gone, failed).', PUSH_RESULTS.map((result) => ({ result }))));
  readonly attachmentBytes = this.add(new Counter('petrel_attachments_bytes_total', 'Attachment chunk bytes stored (re-sent chunks count again).'));

  constructor(gauges: { connections: () => number }) {
    this.add(new Gauge('petrel_ws_connections', 'Open, authenticated WebSocket connections in this process.', gauges.connections));
    this.add(new Gauge('petrel_uptime_seconds', 'Seconds since this process started.', () => Math.round((Date.now() - this.started) / 1000)));
    // The conventional name, so standard dashboards and alerts on restarts work unchanged.
    this.add(new Gauge('process_start_time_seconds', 'Start time of this process since the Unix epoch.', () => this.started / 1000));
    this.add(new Gauge('petrel_process_resident_memory_bytes', 'Resident set size of this process.', () => process.memoryUsage().rss));
  }

  private add<M extends Metric>(m: M): M {
    this.all.push(m);
    return m;
  }

  render(): string {
    return this.all.flatMap((m) => m.render()).join('\n') + '\n';
  }
}

/**
 * Whether a scrape may read the metrics: always without a configured token, otherwise only with
 * `Authorization: Bearer <token>`. Compared as SHA-256 digests in constant time, so response
 * timing tells nothing about how much of a guess was right (digests also equalise the lengths).
 */
export function scrapeAllowed(authorization: string | undefined, token: string | null): boolean {
  if (!token) return true;
  const digest = (t: string) => createHash('sha256').update(t).digest();
  // The scheme name is case-insensitive (RFC 9110 §11.1); the token is compared exactly.
  const given = /^Bearer +(.*)$/is.exec(authorization ?? '')?.[1] ?? '';
  return timingSafeEqual(digest(given), digest(token));
}

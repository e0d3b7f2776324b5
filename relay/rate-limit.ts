/**
 * In-memory token buckets, one map per limit. Per process: behind a load balancer with N
 * processes the effective limit is up to N times the configured one, which is acceptable for
 * slowing guessing and prekey exhaustion; a shared limiter (PostgreSQL or Redis) can replace
 * this class without touching the routes.
 */
import type { Bucket } from './config.ts';
import { ApiError } from './errors.ts';

const MAX_KEYS = 100_000;

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly bucket: Bucket,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one token for `key`; false when the bucket is empty. */
  take(key: string): boolean {
    const now = this.now();
    const rate = this.bucket.perMinute / 60_000;
    const b = this.buckets.get(key);
    const tokens = b ? Math.min(this.bucket.burst, b.tokens + (now - b.at) * rate) : this.bucket.burst;
    if (tokens < 1) {
      if (b) {
        b.tokens = tokens;
        b.at = now;
      }
      return false;
    }
    if (!b && this.buckets.size >= MAX_KEYS) this.prune(now, rate);
    this.buckets.set(key, { tokens: tokens - 1, at: now });
    return true;
  }

  /** Throws 429 rate_limited when the bucket for `key` is empty. */
  check(key: string, what: string): void {
    if (!this.take(key)) throw new ApiError(429, 'rate_limited', `too many ${what}; retry later`);
  }

  /** Drops buckets that have refilled completely (they carry no state). */
  private prune(now: number, rate: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + (now - b.at) * rate >= this.bucket.burst) this.buckets.delete(k);
    if (this.buckets.size >= MAX_KEYS) this.buckets.clear();
  }
}

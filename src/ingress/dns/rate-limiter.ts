// A token bucket per key (an agent, or a peer address): a sustained rate plus a burst, so a chatty
// agent cannot turn DNS into a high-bandwidth channel while normal lookups never notice.
import type { ConfigFile } from '../../config/schema.js';

export class KeyedTokenBucket {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
    /** agents are config-bounded but peer addresses are not: cap the map so it cannot grow without limit */
    private readonly maxKeys = 10_000,
  ) {}

  /** Spends one token for `key`; false when its bucket is empty. */
  take(key: string): boolean {
    const bucket = this.refill(key);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** How long until `key` has a whole token again (0 when it has one now): a client's Retry-After. */
  waitMs(key: string): number {
    const bucket = this.refill(key);
    return bucket.tokens >= 1 ? 0 : ((1 - bucket.tokens) / this.perSecond) * 1000;
  }

  private refill(key: string): { tokens: number; at: number } {
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxKeys) {
        const oldest = this.buckets.keys().next();
        if (oldest.done !== true) this.buckets.delete(oldest.value);
      }
      bucket = { tokens: this.burst, at: now };
      this.buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
      bucket.at = now;
    }
    return bucket;
  }
}

/** The policy DNS server's two buckets as `dns:` sets them: per agent once identified, per peer address before anything. */
export function dnsRateLimiters(dns: ConfigFile['dns']): { limiter: KeyedTokenBucket; peerLimiter: KeyedTokenBucket } {
  return { limiter: new KeyedTokenBucket(dns.queries_per_second, dns.burst), peerLimiter: new KeyedTokenBucket(dns.peer_queries_per_second, dns.peer_burst) };
}

// Remembers each name's answer for its DNS TTL (clamped to configured bounds) and a name without
// addresses briefly, so a busy name costs one lookup per TTL instead of one per request.

export interface DnsCacheOptions {
  readonly maxEntries: number;
  readonly minTtlMs: number;
  readonly maxTtlMs: number;
  /** for answers that carry no TTL: the system resolver (getaddrinfo) reports none */
  readonly defaultTtlMs: number;
  readonly negativeTtlMs: number;
}

/** The label values of sluice_dns_cache_total: a closed set. */
export type CacheOutcome = 'hit' | 'miss' | 'expired';

/** What one lookup found: a value with the TTL its records gave (seconds), or no address at all. */
export type CachedAnswer<T> = { readonly kind: 'found'; readonly value: T; readonly ttlSeconds: number | undefined } | { readonly kind: 'none' };

interface Entry<T> {
  readonly answer: CachedAnswer<T>;
  readonly expiresAt: number;
}

export class DnsCache<T> {
  // A Map iterates in insertion order, so re-inserting on use keeps the least recently used first.
  private readonly entries = new Map<string, Entry<T>>();
  private readonly loading = new Map<string, Promise<CachedAnswer<T>>>();

  constructor(
    private readonly options: DnsCacheOptions,
    private readonly now: () => number = Date.now,
    private readonly counted: (outcome: CacheOutcome) => void = () => undefined,
  ) {}

  /**
   * The answer for `name`: from the cache while it is fresh (`cached: true`), else from `load`,
   * which concurrent callers share. Only what `load` resolves to is stored; a rejection (a
   * forbidden address, SERVFAIL, a timeout) leaves nothing behind.
   */
  async get(name: string, load: () => Promise<CachedAnswer<T>>): Promise<{ readonly answer: CachedAnswer<T>; readonly cached: boolean }> {
    const entry = this.entries.get(name);
    if (entry !== undefined) this.entries.delete(name);
    if (entry !== undefined && entry.expiresAt > this.now()) {
      this.entries.set(name, entry);
      this.counted('hit');
      return { answer: entry.answer, cached: true };
    }
    this.counted(entry === undefined ? 'miss' : 'expired');
    return { answer: await this.share(name, load), cached: false };
  }

  /** Forgets a name, e.g. when its cached addresses no longer pass the guard. */
  delete(name: string): void {
    this.entries.delete(name);
  }

  get size(): number {
    return this.entries.size;
  }

  private share(name: string, load: () => Promise<CachedAnswer<T>>): Promise<CachedAnswer<T>> {
    const pending = this.loading.get(name);
    if (pending !== undefined) return pending;
    const started = load()
      .then((answer) => {
        this.store(name, answer);
        return answer;
      })
      .finally(() => this.loading.delete(name));
    this.loading.set(name, started);
    return started;
  }

  private store(name: string, answer: CachedAnswer<T>): void {
    const ttlMs = answer.kind === 'none' ? this.options.negativeTtlMs : this.ttlMs(answer.ttlSeconds);
    if (ttlMs <= 0) return;
    this.entries.delete(name);
    this.entries.set(name, { answer, expiresAt: this.now() + ttlMs });
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.options.maxEntries) break;
      this.entries.delete(oldest);
    }
  }

  private ttlMs(seconds: number | undefined): number {
    const ms = seconds === undefined ? this.options.defaultTtlMs : seconds * 1000;
    return Math.min(this.options.maxTtlMs, Math.max(this.options.minTtlMs, ms));
  }
}

/** connect.dns_cache as the config file spells it */
export interface DnsCacheConfig {
  readonly enabled: boolean;
  readonly max_entries: number;
  readonly min_ttl_ms: number;
  readonly max_ttl_ms: number;
  readonly default_ttl_ms: number;
  readonly negative_ttl_ms: number;
}

/** The cache the config asks for, counting each outcome; undefined when it is turned off. */
export function createDnsCache<T>(config: DnsCacheConfig, counted: (outcome: CacheOutcome) => void): DnsCache<T> | undefined {
  if (!config.enabled) return undefined;
  const options = { maxEntries: config.max_entries, minTtlMs: config.min_ttl_ms, maxTtlMs: config.max_ttl_ms, defaultTtlMs: config.default_ttl_ms, negativeTtlMs: config.negative_ttl_ms };
  return new DnsCache<T>(options, Date.now, counted);
}

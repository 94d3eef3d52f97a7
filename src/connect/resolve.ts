// Looks a name up once, returning every A and AAAA answer: through configured DNS servers when
// `connect.resolvers` names some, else through the system resolver (getaddrinfo, /etc/hosts).
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { splitHostPort } from '../config/host-port.js';
import { SluiceError } from '../errors.js';
import { ConnectConfigError } from './config-error.js';

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
  /** seconds the answer may be kept, when the resolver knows (getaddrinfo does not say) */
  readonly ttl?: number;
}

export interface Resolver {
  /** Every address the name has right now; an empty list when it has none. */
  resolveAll(name: string): Promise<readonly ResolvedAddress[]>;
}

// "No such name" and "no records of this type" are answers, not failures.
const NO_ANSWER = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN']);

function errnoOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

function dnsFailure(name: string, error: unknown): SluiceError {
  return new SluiceError('DNS_FAILURE', `${name}: ${errnoOf(error) ?? 'lookup failed'}`, { cause: error });
}

/** Budget for one name when the configuration gives none. */
export const DEFAULT_LOOKUP_TIMEOUT_MS = 5_000;

/**
 * Gives up on a lookup after `ms`. The query itself may run on (getaddrinfo cannot be cancelled,
 * and cancelling a c-ares Resolver would cancel every other caller's queries too), but the request
 * waiting on it fails in bounded time.
 */
function withDeadline<T>(lookup: Promise<T>, ms: number, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new SluiceError('DNS_FAILURE', `${name}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([lookup, deadline]).finally(() => clearTimeout(timer));
}

/** getaddrinfo via libuv's thread pool: honours /etc/hosts and nsswitch like any other program. */
export class SystemResolver implements Resolver {
  private readonly timeoutMs: number;

  constructor(options: { readonly timeoutMs?: number } = {}) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS;
  }

  async resolveAll(name: string): Promise<readonly ResolvedAddress[]> {
    try {
      const answers = await withDeadline(dns.lookup(name, { all: true, order: 'verbatim' }), this.timeoutMs, name);
      return answers.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4 }));
    } catch (error) {
      if (error instanceof SluiceError) throw error;
      if (NO_ANSWER.has(errnoOf(error) ?? '')) return [];
      throw dnsFailure(name, error);
    }
  }
}

export interface ServerResolverOptions {
  /** `host:port` or `[v6]:port`, as in `connect.resolvers` */
  readonly servers: readonly string[];
  /** for the whole lookup of one name, A and AAAA together */
  readonly timeoutMs?: number;
  /** c-ares attempts per server; each gets an equal share of the budget */
  readonly tries?: number;
}

/** Asks the configured servers directly (c-ares), A and AAAA in parallel. */
export class ServerResolver implements Resolver {
  private readonly resolver: dns.Resolver;
  private readonly timeoutMs: number;

  constructor(options: ServerResolverOptions) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS;
    const tries = options.tries ?? 2;
    this.resolver = new dns.Resolver({ timeout: Math.max(100, Math.floor(this.timeoutMs / (tries + 1))), tries });
    options.servers.forEach((server, index) => {
      const { host } = splitHostPort(server);
      // c-ares takes addresses only; resolving a resolver's name would need a resolver.
      if (isIP(host) === 0) throw new ConnectConfigError(`connect.resolvers[${index}]`, `${JSON.stringify(server)} must be an IP address and port`);
    });
    this.resolver.setServers([...options.servers]);
  }

  async resolveAll(name: string): Promise<readonly ResolvedAddress[]> {
    const both = Promise.allSettled([this.resolver.resolve4(name, { ttl: true }), this.resolver.resolve6(name, { ttl: true })]);
    const [v4, v6] = await withDeadline(both, this.timeoutMs, name);
    const addresses: ResolvedAddress[] = [];
    const failures: unknown[] = [];
    for (const [outcome, family] of [[v4, 4], [v6, 6]] as const) {
      if (outcome.status === 'fulfilled') addresses.push(...outcome.value.map(({ address, ttl }) => ({ address, family, ttl })));
      else if (!NO_ANSWER.has(errnoOf(outcome.reason) ?? '')) failures.push(outcome.reason);
    }
    // One family timing out while the other answered is common with broken AAAA servers; every
    // address we return is still vetted, so proceeding with the answered family is safe.
    if (addresses.length === 0 && failures.length > 0) throw dnsFailure(name, failures[0]);
    // The missing family may answer next time: a TTL of 0 keeps this half answer only briefly.
    return failures.length === 0 ? addresses : addresses.map(({ address, family }) => ({ address, family, ttl: 0 }));
  }
}

/** `timeoutMs` bounds one name's lookup; the connect timeout then starts afresh in `dial`. */
export function createResolver(config: { readonly resolvers: readonly string[]; readonly timeoutMs?: number }): Resolver {
  const timeoutMs = Math.min(config.timeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS, DEFAULT_LOOKUP_TIMEOUT_MS);
  if (config.resolvers.length === 0) return new SystemResolver({ timeoutMs });
  return new ServerResolver({ servers: config.resolvers, timeoutMs });
}

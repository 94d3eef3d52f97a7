// Measures resolve-and-vet with the DNS cache warm against cold (no cache: every call looks the
// name up), through the configured-resolver path (the bench's DNS server, in its own process) and
// the system resolver (getaddrinfo answering from /etc/hosts): one call at a time, and in bursts.
import { AddressGuard, DnsCache, resolveAndVet, ServerResolver, SystemResolver, type Resolver, type VettedAddress } from '../src/connect/index.js';
import { destinationOf, type Destination } from '../src/destination.js';
import { ORIGIN_NAME, startDns } from './support/local-servers.js';

const CALLS = Number(process.env.DNS_CACHE_BENCH_CALLS ?? 2_000);
/** concurrent calls per burst: requests from many agents arriving together */
const BURST = 64;
const BURSTS = 50;

const guard = new AddressGuard([{ name: 'bench-loopback', cidr: '127.0.0.0/8' }, { name: 'bench-loopback-v6', cidr: '::1/128' }]);
const newCache = (): DnsCache<readonly VettedAddress[]> =>
  new DnsCache({ maxEntries: 10_000, minTtlMs: 1_000, maxTtlMs: 300_000, defaultTtlMs: 30_000, negativeTtlMs: 5_000 });

interface Figures {
  readonly p50_us: number;
  readonly p99_us: number;
  readonly mean_us: number;
}

function figures(samples: number[]): Figures {
  samples.sort((a, b) => a - b);
  const at = (quantile: number): number => Math.round((samples[Math.min(samples.length - 1, Math.floor(quantile * samples.length))] ?? 0) * 1000) / 1000;
  return { p50_us: at(0.5), p99_us: at(0.99), mean_us: Math.round((samples.reduce((sum, value) => sum + value, 0) / samples.length) * 1000) / 1000 };
}

/** Microseconds per call, `calls` one after another. */
async function sequential(destination: Destination, resolver: Resolver, cache: DnsCache<readonly VettedAddress[]> | undefined): Promise<Figures> {
  const samples: number[] = [];
  for (let call = 0; call < CALLS; call++) {
    const started = performance.now();
    await resolveAndVet(destination, { addressGuard: guard, resolver, cache });
    samples.push((performance.now() - started) * 1000);
  }
  return figures(samples);
}

/** Microseconds until the last of `BURST` concurrent calls has its answer. */
async function bursts(destination: Destination, resolver: Resolver, cache: DnsCache<readonly VettedAddress[]> | undefined): Promise<Figures> {
  const samples: number[] = [];
  for (let burst = 0; burst < BURSTS; burst++) {
    const started = performance.now();
    await Promise.all(Array.from({ length: BURST }, () => resolveAndVet(destination, { addressGuard: guard, resolver, cache })));
    samples.push((performance.now() - started) * 1000);
  }
  return figures(samples);
}

async function measure(destination: Destination, resolver: Resolver): Promise<Record<string, Figures>> {
  const warm = newCache();
  await resolveAndVet(destination, { addressGuard: guard, resolver, cache: warm });
  return {
    cold: await sequential(destination, resolver, undefined),
    warm: await sequential(destination, resolver, warm),
    [`cold_burst_of_${BURST}`]: await bursts(destination, resolver, undefined),
    [`warm_burst_of_${BURST}`]: await bursts(destination, resolver, warm),
  };
}

const dns = await startDns(300);
try {
  const servers = await measure(destinationOf(ORIGIN_NAME, 443), new ServerResolver({ servers: [`${dns.host}:${dns.port}`] }));
  const system = await measure(destinationOf('localhost', 443), new SystemResolver());
  process.stdout.write(`${JSON.stringify({ calls: CALLS, bursts: BURSTS, connect_resolvers: servers, system_resolver_etc_hosts: system }, null, 2)}\n`);
} finally {
  await dns.stop();
}

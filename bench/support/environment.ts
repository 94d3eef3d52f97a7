// What every target of a run shares: the origin, and in the realistic profile set the DNS server
// that names it, the generated rules and the cached blocklist; plus how each side resolves the name.
import { join } from 'node:path';
import { startDns, startOrigin, ORIGIN_NAME, type RunningDns } from './local-servers.js';
import type { BenchOptions } from './options.js';
import { cachedBlocklist, REALISTIC_BLOCKLIST, REALISTIC_RULES, writeRealisticRules } from './realistic.js';
import type { SquidResolution } from './squid-target.js';
import type { TargetInputs } from './targets.js';
import type { OriginAddress } from './tasks.js';

/** Answers carry a TTL, as a real zone's do; a proxy that caches may keep them this long. */
const DNS_TTL_SECONDS = 60;

export interface BenchEnvironment {
  readonly origin: OriginAddress;
  readonly inputs: TargetInputs;
  readonly dns: RunningDns | null;
  /** for the report: what reaches the origin how */
  readonly resolution: Readonly<Record<string, string>>;
  stop(): Promise<void>;
}

export async function prepareEnvironment(options: BenchOptions, workDir: string, squidBinary: string | null, progress: (line: string) => void): Promise<BenchEnvironment> {
  const origin = await startOrigin();
  if (options.profileSet === 'minimal') {
    return {
      origin: { host: '127.0.0.1', port: origin.port, resolver: null },
      inputs: { workDir, squidBinary, realistic: null, squidResolution: { kind: 'literal' } },
      dns: null,
      resolution: { all: 'the origin is an IP literal (127.0.0.1): nothing is resolved' },
      stop: origin.stop,
    };
  }
  let dns: RunningDns | null = null;
  try {
    dns = await startDns(DNS_TTL_SECONDS);
    const resolver = `${dns.host}:${dns.port}`;
    const rulesFile = join(workDir, 'bench-rules.yaml');
    await writeRealisticRules(rulesFile, ORIGIN_NAME, origin.port);
    progress(`realistic profile: ${REALISTIC_RULES} rules, ${REALISTIC_BLOCKLIST} blocklist names (generated once, then cached), DNS on ${resolver}`);
    const blocklistFile = await cachedBlocklist(REALISTIC_BLOCKLIST);
    const squidResolution: SquidResolution = dns.port === 53 ? { kind: 'dns', server: dns.host } : { kind: 'hosts', name: ORIGIN_NAME };
    const running = dns;
    return {
      origin: { host: ORIGIN_NAME, port: origin.port, resolver },
      inputs: { workDir, squidBinary, realistic: { rulesFile, blocklistFile, resolver, rules: REALISTIC_RULES, blocklistEntries: REALISTIC_BLOCKLIST }, squidResolution },
      dns,
      resolution: {
        direct: `the load client asks the bench DNS server (${resolver}) for every new connection`,
        sluice: `connect.resolvers: [${resolver}]`,
        squid:
          squidResolution.kind === 'dns'
            ? `dns_nameservers ${dns.host} (port 53), TTL ${DNS_TTL_SECONDS} s`
            : `hosts_file naming ${ORIGIN_NAME} 127.0.0.1 (the DNS server is not on port 53, the only port squid queries)`,
      },
      stop: async () => {
        await running.stop();
        await origin.stop();
      },
    };
  } catch (error) {
    await dns?.stop();
    await origin.stop();
    throw error;
  }
}

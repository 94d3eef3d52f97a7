// What every proxy process builds the same way from the config and its own parts: the pipeline's
// deps, the upstream pools and the TLS interceptor (one process, or each worker of a cluster).
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { AddressInfo, Server } from 'node:net';
import { rootCertificates } from 'node:tls';
import { splitHostPort } from '../config/host-port.js';
import type { LoadedConfig } from '../config/load.js';
import type { ConfigFile } from '../config/schema.js';
import { createDnsCache, createResolver, UpstreamPools, type VettedAddress } from '../connect/index.js';
import { TlsInterceptor } from './intercept.js';
import type { PipelineDeps } from './pipeline.js';

/** What a proxy process brings to its pipeline; the rest comes from the config. */
export type ProxyStageParts = Omit<PipelineDeps, 'ingress' | 'resolver' | 'dnsCache' | 'connectTimeoutMs'>;

/**
 * The pipeline's deps, the upstream pools and the TLS interceptor, built the same way by a single
 * process and by each worker of a cluster (src/cluster/worker.ts) from its own parts.
 */
export async function proxyStage(loaded: LoadedConfig, baseDir: string, parts: ProxyStageParts): Promise<{ deps: PipelineDeps; pools: UpstreamPools; interceptor: TlsInterceptor | undefined }> {
  const { config } = loaded;
  const { metrics } = parts;
  const deps: PipelineDeps = {
    ...parts,
    ingress: 'explicit',
    resolver: createResolver({ resolvers: config.connect.resolvers, timeoutMs: config.connect.timeout_ms }),
    dnsCache: createDnsCache<readonly VettedAddress[]>(config.connect.dns_cache, (result) => metrics.dnsCache.inc({ result })),
    connectTimeoutMs: config.connect.timeout_ms,
  };
  // Extra trust anchors join the system store; they never replace it.
  const extraCa = config.connect.ca_file === undefined ? undefined : [...rootCertificates, await readFile(resolve(baseDir, config.connect.ca_file), 'utf8')];
  const pools = new UpstreamPools({
    connectTimeoutMs: config.connect.timeout_ms,
    idleTimeoutMs: config.limits.idle_timeout_ms,
    evictAfterMs: 120_000,
    onDialled: (connectMs) => metrics.upstreamTcpConnectSeconds.observe(connectMs / 1000),
    ...(extraCa === undefined ? {} : { ca: extraCa }),
  });
  const interceptor = config.inference.intercept
    ? new TlsInterceptor(deps, pools, (await (await import('./tls/local-ca.js')).LocalCa.open(loaded.stateDir, (seconds) => metrics.tlsLeafMintSeconds.observe(seconds))).ca, config.limits)
    : undefined;
  return { deps, pools, interceptor };
}

/** Agents confined by the nft guard need its transparent and DNS listeners; without any, they stay closed. */
export function guardConfinesAgents(config: ConfigFile): boolean {
  return config.guard.agent_uids.length > 0 || config.guard.agent_gids.length > 0 || config.agents.some((agent) => agent.uids.length > 0);
}

/**
 * Listens on `host:port` and resolves with the address bound (port 0: the one chosen). In a
 * cluster worker the primary holds the socket and every worker shares it (node:cluster).
 */
export function listenOn(server: Server, address: string): Promise<AddressInfo> {
  const { host, port } = splitHostPort(address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

// Starts every listener the appliance has (proxy, admin, transparent 80/443, policy DNS) on one
// pipeline, as a composition root would, for the namespace end-to-end test.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AuditChain } from '../../src/audit/chain.js';
import type { LoadedConfig } from '../../src/config/load.js';
import { AddressGuard, createResolver } from '../../src/connect/index.js';
import { IdentityResolver } from '../../src/identity/identify.js';
import { startPolicyDns, type RunningPolicyDns } from '../../src/ingress/dns/index.js';
import type { PipelineDeps } from '../../src/ingress/pipeline.js';
import { createProxyServer } from '../../src/ingress/server.js';
import { startTransparentListeners, type RunningTransparent } from '../../src/ingress/transparent/index.js';
import { UpstreamPools } from '../../src/ingress/upstream-pools.js';
import { createAdminServer } from '../../src/obs/admin.js';
import type { Logger } from '../../src/obs/log.js';
import { Metrics } from '../../src/obs/metrics.js';
import type { Policy } from '../../src/policy/decide.js';
import { LEARN_STORE_FILE, LearnStore } from '../../src/policy/learn-store.js';
import { loadRuleFiles } from '../../src/policy/rules.js';

export interface RunningAppliance {
  readonly proxyPort: number;
  readonly adminPort: number;
  readonly transparent: RunningTransparent;
  readonly dns: RunningPolicyDns;
  close(): Promise<void>;
}

function listen(server: Server, hostPort: string): Promise<number> {
  const colon = hostPort.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(hostPort.slice(colon + 1)), hostPort.slice(0, colon), () => resolve((server.address() as AddressInfo).port));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export async function startAppliance(loaded: LoadedConfig, log: Logger): Promise<RunningAppliance> {
  const { config } = loaded;
  const metrics = new Metrics({ processMetrics: false });
  const rules = await loadRuleFiles(loaded.rulePaths);
  const policy: Policy = { rules, anonymousAllowed: config.anonymous.allow };
  await mkdir(loaded.stateDir, { recursive: true, mode: 0o700 });
  const audit = await AuditChain.open(loaded.auditFile, { fsync: false });
  const learn = await LearnStore.open(join(loaded.stateDir, LEARN_STORE_FILE));
  const guard = new AddressGuard(config.connect.allow_cidrs);
  const deps: PipelineDeps = {
    identity: new IdentityResolver(config),
    policy: () => policy,
    learn,
    guard,
    resolver: createResolver({ resolvers: config.connect.resolvers, timeoutMs: config.connect.timeout_ms }),
    connectTimeoutMs: config.connect.timeout_ms,
    audit,
    metrics,
    log,
  };
  const pools = new UpstreamPools({ connectTimeoutMs: config.connect.timeout_ms, idleTimeoutMs: config.limits.idle_timeout_ms, evictAfterMs: 120_000 });
  const proxy = createProxyServer(deps, config.limits, pools);
  const admin = createAdminServer({ metrics, ready: () => true });
  const proxyPort = await listen(proxy, config.listen.proxy);
  const adminPort = await listen(admin, config.listen.admin);
  const transparent = await startTransparentListeners(deps, config, pools);
  const dns = await startPolicyDns({ config, policy: () => policy, guard, metrics, audit, log });
  return {
    proxyPort,
    adminPort,
    transparent,
    dns,
    close: async () => {
      await Promise.all([close(proxy), close(admin), transparent.close(), dns.close()]);
      await pools.close();
      await learn.close();
      await audit.close();
    },
  };
}

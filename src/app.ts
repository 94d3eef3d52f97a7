// The composition root: builds every stage from a loaded config, starts the proxy and admin
// listeners, and tears them down in order. The only place that wires stages together.
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { AuditChain } from './audit/chain.js';
import type { LoadedConfig } from './config/load.js';
import { AddressGuard, createResolver } from './connect/index.js';
import { IdentityResolver } from './identity/identify.js';
import { createProxyServer } from './ingress/server.js';
import type { PipelineDeps } from './ingress/pipeline.js';
import { UpstreamPools } from './ingress/upstream-pools.js';
import { createAdminServer } from './obs/admin.js';
import type { Logger } from './obs/log.js';
import { Metrics } from './obs/metrics.js';
import type { Policy } from './policy/decide.js';
import { LEARN_STORE_FILE, LearnStore } from './policy/learn-store.js';
import { loadRuleFiles } from './policy/rules.js';

export interface StartOptions {
  readonly log: Logger;
  /** tests run several instances in one process; only one may register process metrics */
  readonly processMetrics?: boolean;
}

function splitHostPort(value: string): { host: string; port: number } {
  const colon = value.lastIndexOf(':');
  const host = value.slice(0, colon).replace(/^\[|\]$/g, '');
  return { host, port: Number(value.slice(colon + 1)) };
}

function listen(server: Server, address: string): Promise<AddressInfo> {
  const { host, port } = splitHostPort(address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export class Sluice {
  private constructor(
    readonly loaded: LoadedConfig,
    readonly metrics: Metrics,
    readonly audit: AuditChain,
    private readonly learn: LearnStore,
    private readonly pools: UpstreamPools,
    private readonly proxy: Server,
    private readonly admin: Server,
    readonly proxyAddress: AddressInfo,
    readonly adminAddress: AddressInfo,
    private readonly log: Logger,
  ) {}

  static async start(loaded: LoadedConfig, options: StartOptions): Promise<Sluice> {
    const { config } = loaded;
    const log = options.log;
    const metrics = new Metrics({ processMetrics: options.processMetrics ?? true });
    // Rules first: a broken rule file stops the start before anything listens.
    const rules = await loadRuleFiles(loaded.rulePaths);
    metrics.rulesLoaded.set(rules.size);
    const policy: Policy = { rules, anonymousAllowed: config.anonymous.allow };
    await mkdir(loaded.stateDir, { recursive: true, mode: 0o700 });
    const audit = await AuditChain.open(loaded.auditFile, { fsync: config.audit.fsync, onCommitted: (count) => metrics.auditRecords.inc(count) });
    if (audit.recovery !== null) log.error({ recovery: audit.recovery }, 'audit log had a torn last record; it was moved aside and recorded in the chain');
    const learn = await LearnStore.open(join(loaded.stateDir, LEARN_STORE_FILE));
    if (learn.corrupt !== null) log.error({ corrupt: learn.corrupt }, 'learn store was unreadable; kept aside, starting empty');
    const deps: PipelineDeps = {
      identity: new IdentityResolver(config),
      policy: () => policy,
      learn,
      guard: new AddressGuard(config.connect.allow_cidrs),
      resolver: createResolver({ resolvers: config.connect.resolvers, timeoutMs: config.connect.timeout_ms }),
      connectTimeoutMs: config.connect.timeout_ms,
      audit,
      metrics,
      log,
    };
    const pools = new UpstreamPools({ connectTimeoutMs: config.connect.timeout_ms, idleTimeoutMs: config.limits.idle_timeout_ms, evictAfterMs: 120_000 });
    const proxy = createProxyServer(deps, config.limits, pools);
    let ready = false;
    const admin = createAdminServer({ metrics, ready: () => ready });
    const proxyAddress = await listen(proxy, config.listen.proxy);
    const adminAddress = await listen(admin, config.listen.admin);
    await audit.append({
      kind: 'start',
      config: loaded.file,
      mode: config.mode,
      rules: rules.size,
      rule_files: [...rules.files],
      proxy: `${proxyAddress.address}:${proxyAddress.port}`,
    });
    ready = true;
    log.info({ proxy: proxyAddress, admin: adminAddress, mode: config.mode, rules: rules.size, state_dir: loaded.stateDir }, 'sluice started');
    return new Sluice(loaded, metrics, audit, learn, pools, proxy, admin, proxyAddress, adminAddress, log);
  }

  async close(): Promise<void> {
    await Promise.all([closeServer(this.proxy), closeServer(this.admin)]);
    await this.pools.close();
    await this.learn.close();
    await this.audit.append({ kind: 'stop' }).catch((error: unknown) => this.log.error({ err: error }, 'could not record stop'));
    await this.audit.close();
    this.log.info('sluice stopped');
  }
}

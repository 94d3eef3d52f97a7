// The composition root: builds every stage from a loaded config, starts the proxy and admin
// listeners, and tears them down in order. The only place that wires stages together.
import { mkdir, readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { AuditChain } from './audit/chain.js';
import {
  bundlePolicyEntry,
  bundleShadowEntry,
  bundleVerificationEntry,
  reloadAcceptedEntry,
  reloadRejectedEntry,
  startEntry,
  stopEntry,
  type AuditEntry,
} from './audit/kinds.js';
import type { Schedule } from './audit/schedule.js';
import { splitHostPort } from './config/host-port.js';
import type { LoadedConfig } from './config/load.js';
import { PACKAGE_ROOT } from './config/package-root.js';
import type { ConfigFile } from './config/schema.js';
import { dnsRateLimiters, startPolicyDns, type RunningPolicyDns } from './ingress/dns/index.js';
import { startTransparentListeners, type RunningTransparent } from './ingress/transparent/start.js';
import { BlocklistManager } from './policy/blocklist/manager.js';
import { loadBlocklistConfig } from './policy/blocklist/sources.js';
import { createBundleManager } from './policy/bundle/from-config.js';
import type { BundleManager } from './policy/bundle/manager.js';
import { LivePolicy } from './policy/live-policy.js';
import { AddressGuard, createDnsCache, createResolver, loadParentProxies, LocalAddresses, UpstreamPools, type VettedAddress } from './connect/index.js';
import { IdentityResolver } from './identity/identify.js';
import { RedirectedIdentity } from './identity/redirected.js';
import { createProxyServer } from './ingress/server.js';
import { TlsInterceptor } from './ingress/intercept.js';
import { LocalCa } from './ingress/tls/local-ca.js';
import { BUDGET_STORE_FILE, BudgetLedger, BudgetStore, InferenceHosts, InferenceMeter, type BudgetReport } from './meter/index.js';
import { closeNow, trackConnections } from './ingress/shutdown.js';
import type { PipelineDeps } from './ingress/pipeline.js';
import { createAdminServer } from './obs/admin.js';
import type { Logger } from './obs/log.js';
import { Metrics } from './obs/metrics.js';
import { LEARN_STORE_FILE, LearnStore } from './policy/learn-store.js';
import { loadRuleFiles } from './policy/rules.js';
import { formatIssue, SourceError } from './config/yaml.js';

export interface StartOptions {
  readonly log: Logger;
  /** tests run several instances in one process; only one may register process metrics */
  readonly processMetrics?: boolean;
  /** when the audit chain retries a failed write; tests drive it by hand */
  readonly auditRetry?: Schedule;
  /** where connect.upstream_proxy[].credentials_env is read; process.env unless a test gives its own */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** the time inference budget windows are judged by; Date.now unless a test drives it */
  readonly now?: () => number;
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


/** Agents confined by the nft guard need its transparent and DNS listeners; without any, they stay closed. */
function guardConfinesAgents(config: ConfigFile): boolean {
  return config.guard.agent_uids.length > 0 || config.guard.agent_gids.length > 0 || config.agents.some((agent) => agent.uids.length > 0);
}

interface Components {
  readonly audit: AuditChain;
  readonly learn: LearnStore;
  readonly pools: UpstreamPools;
  readonly servers: readonly Server[];
  readonly bundles: BundleManager | undefined;
  readonly blocklists: BlocklistManager;
  readonly transparent: RunningTransparent | undefined;
  readonly dns: RunningPolicyDns | undefined;
  readonly stopPolling: () => void;
  readonly meter: InferenceMeter;
  readonly budgetStore: BudgetStore;
  readonly interceptor: TlsInterceptor | undefined;
}

export class Sluice {
  private constructor(
    readonly loaded: LoadedConfig,
    readonly metrics: Metrics,
    readonly policy: LivePolicy,
    readonly proxyAddress: AddressInfo,
    readonly adminAddress: AddressInfo,
    private readonly parts: Components,
    private readonly log: Logger,
  ) {}

  /** The transparent HTTP listener's port, when agents are confined and it was opened. */
  get transparentHttpPort(): number | undefined {
    return this.parts.transparent?.httpPort;
  }

  /** The transparent TLS listener's port, when agents are confined and it was opened. */
  get transparentTlsPort(): number | undefined {
    return this.parts.transparent?.tlsPort;
  }

  static async start(loaded: LoadedConfig, options: StartOptions): Promise<Sluice> {
    // What is opened is closed again, newest first, if a later step fails (a port in use), so a
    // failed start leaves no listener, timer or file handle behind.
    const undo: (() => unknown)[] = [];
    try {
      return await Sluice.assemble(loaded, options, undo);
    } catch (error) {
      for (const step of undo.reverse()) await Promise.resolve(step()).catch(() => undefined);
      throw error;
    }
  }

  private static async assemble(loaded: LoadedConfig, options: StartOptions, undo: (() => unknown)[]): Promise<Sluice> {
    const { config } = loaded;
    const log = options.log;
    const metrics = new Metrics({ processMetrics: options.processMetrics ?? true });
    // Rules and blocklist sources first: a broken file stops the start before anything listens.
    const rules = await loadRuleFiles(loaded.rulePaths);
    const blocklistConfig = await loadBlocklistConfig(loaded.blocklistSources);
    const live = new LivePolicy(rules, config.anonymous.allow, config.bundle !== undefined);
    await mkdir(loaded.stateDir, { recursive: true, mode: 0o700 });
    const audit = await AuditChain.open(loaded.auditFile, {
      fsync: config.audit.fsync,
      onCommitted: (count) => metrics.auditRecords.inc(count),
      onWriteError: (error) => {
        metrics.auditWriteErrors.inc();
        log.error({ err: error }, 'audit write failed; refusing every decision until a retry succeeds');
      },
      ...(options.auditRetry === undefined ? {} : { retry: { schedule: options.auditRetry } }),
    });
    undo.push(() => audit.close());
    if (audit.recovery !== null) log.error({ recovery: audit.recovery }, 'audit log had a torn last record; it was moved aside and recorded in the chain');
    const record = (entry: AuditEntry): void => {
      audit.append(entry).catch((error: unknown) => log.error({ err: error, kind: entry.kind }, 'audit append failed'));
    };
    const showRules = (): void => {
      metrics.rulesLoaded.set(live.ruleCount);
    };
    showRules();
    // A change of governing policy takes effect only once its record is durable. Unrecorded, no
    // policy may govern: everything is denied and the manager offers the change again later.
    const recordThen = async (entry: AuditEntry, apply: () => void): Promise<void> => {
      try {
        await audit.append(entry);
      } catch (error) {
        if (entry.kind === 'bundle_policy') {
          live.denyAll();
          showRules();
        }
        log.error({ err: error, kind: entry.kind }, 'policy change could not be audited; it waits for the audit log to recover');
        throw error;
      }
      apply();
    };
    const learn = await LearnStore.open(join(loaded.stateDir, LEARN_STORE_FILE));
    undo.push(() => learn.close());
    if (learn.corrupt !== null) log.error({ corrupt: learn.corrupt }, 'learn store was unreadable; kept aside, starting empty');

    // Polled so an address added after start (a new IP on eth0) is refused within seconds.
    const localAddresses = new LocalAddresses();
    const stopPolling = localAddresses.poll();
    undo.push(stopPolling);
    const addressGuard = new AddressGuard(config.connect.allow_cidrs, localAddresses);
    const baseDir = loaded.file === null ? PACKAGE_ROOT : dirname(loaded.file);
    // Before the downloads start: bundles and feeds go through the parent proxies too.
    const parents = await loadParentProxies(config.connect, { baseDir, env: options.env ?? process.env, guard: addressGuard });

    const blocklists = new BlocklistManager({
      config: blocklistConfig,
      cacheDir: loaded.blocklistCacheDir,
      metrics,
      logger: log,
      onSwap: (set) => live.setBlocklist(set),
      parents,
    });
    undo.push(() => blocklists.stop());
    live.setBlocklist(await blocklists.start());

    const bundles = config.bundle === undefined ? undefined : await createBundleManager({
      config: config.bundle,
      baseDir,
      stateDir: loaded.stateDir,
      metrics,
      parents,
      callbacks: {
        onActivate: (ruleSet, version) =>
          recordThen(bundlePolicyEntry({ kind: 'bundle', version, stale: false }), () => {
            live.useBundle(ruleSet, version);
            showRules();
            log.info({ version, rules: ruleSet.size }, 'allowlist bundle in force');
          }),
        onFallback: (fallback) =>
          recordThen(bundlePolicyEntry(fallback), () => {
            if (fallback.kind === 'default_policy') live.useLocalRules();
            else live.denyAll();
            showRules();
            log.warn({ fallback }, 'no valid allowlist bundle; offline mode applies');
          }),
        // A report-mode bundle never enforces: unrecorded, the shadow in use simply stays.
        onShadow: (ruleSet, version) => recordThen(bundleShadowEntry(version), () => live.setShadow(ruleSet, version)),
        onOutcome: (event) => record(bundleVerificationEntry(event)),
        onError: (error) => log.error({ err: error }, 'bundle state could not be saved; the policy in force is unchanged'),
      },
    });
    undo.push(() => bundles?.stop());
    await bundles?.start();

    // Metering needs the budget journal before any call: a damaged one is kept as is and every
    // inference call refused until an operator acts (never reset behind their back).
    const { store: budgetStore, contents: usage } = await BudgetStore.open(join(loaded.stateDir, BUDGET_STORE_FILE));
    undo.push(() => budgetStore.close());
    if (usage.failure !== null) log.error({ failure: usage.failure }, 'inference budget store is unreadable; inference calls are refused');
    if (usage.tornBytes > 0) log.warn({ torn_bytes: usage.tornBytes }, 'inference budget store ended in a line cut short by a crash; it was never settled and was removed');
    const now = options.now ?? Date.now;
    const ledger = new BudgetLedger(config.inference.budgets, now);
    ledger.load(usage.records);
    const meter = new InferenceMeter({
      hosts: new InferenceHosts(config.inference.hosts),
      ledger,
      store: budgetStore,
      maxBodyBytes: config.inference.max_body_bytes,
      defaultOutputBound: config.inference.default_output_tokens,
      models: config.inference.models,
      metrics,
      audit,
      log,
      now,
    });
    meter.showBudgets();
    const deps: PipelineDeps = {
      identity: new IdentityResolver(config),
      policy: () => live.current,
      learn,
      addressGuard,
      resolver: createResolver({ resolvers: config.connect.resolvers, timeoutMs: config.connect.timeout_ms }),
      dnsCache: createDnsCache<readonly VettedAddress[]>(config.connect.dns_cache, (result) => metrics.dnsCache.inc({ result })),
      parents,
      connectTimeoutMs: config.connect.timeout_ms,
      meter,
      audit,
      metrics,
      log,
    };
    // Extra trust anchors join the system store; they never replace it.
    const extraCa = config.connect.ca_file === undefined ? undefined : [...rootCertificates, await readFile(resolve(baseDir, config.connect.ca_file), 'utf8')];
    const pools = new UpstreamPools({ connectTimeoutMs: config.connect.timeout_ms, idleTimeoutMs: config.limits.idle_timeout_ms, evictAfterMs: 120_000, ...(extraCa === undefined ? {} : { ca: extraCa }) });
    const interceptor = config.inference.intercept
      ? new TlsInterceptor(deps, pools, (await LocalCa.open(loaded.stateDir, (seconds) => metrics.tlsLeafMintSeconds.observe(seconds))).ca, config.limits)
      : undefined;
    const proxy = createProxyServer(deps, config.limits, pools, config.connect.verify_tunnel_sni, interceptor);
    let ready = false;
    // Not ready while the audit chain refuses appends: every decision would be refused.
    const admin = createAdminServer({ metrics, ready: () => ready && audit.failure === null, status: { blocklists: () => blocklists.status() } });
    trackConnections(admin);
    undo.push(() => pools.close());
    undo.push(() => closeNow(proxy));
    const proxyAddress = await listen(proxy, config.listen.proxy);
    undo.push(() => closeNow(admin));
    const adminAddress = await listen(admin, config.listen.admin);
    // Redirected sockets and DNS queries name their sender through the kernel's NAT and socket
    // tables, so the transparent listeners and the DNS server share an identity of their own.
    const redirected = guardConfinesAgents(config) ? new RedirectedIdentity(config) : undefined;
    const transparent = redirected === undefined ? undefined : await startTransparentListeners({ ...deps, identity: redirected }, config, pools, interceptor);
    undo.push(() => transparent?.close());
    const dns =
      redirected === undefined
        ? undefined
        : await startPolicyDns({ config, policy: deps.policy, addressGuard: deps.addressGuard, identity: redirected, ...dnsRateLimiters(config.dns), metrics, audit, log });
    undo.push(() => dns?.close());
    await audit.append(
      startEntry({
        config: loaded.file,
        mode: config.mode,
        rules: rules.size,
        rule_files: [...rules.files],
        bundle_version: live.current.bundleVersion ?? null,
        proxy: `${proxyAddress.address}:${proxyAddress.port}`,
      }),
    );
    ready = true;
    log.info({ proxy: proxyAddress, admin: adminAddress, mode: config.mode, rules: live.ruleCount, state_dir: loaded.stateDir, transparent: redirected !== undefined }, 'sluice started');
    const parts: Components = { audit, learn, pools, servers: [proxy, admin], bundles, blocklists, transparent, dns, stopPolling, meter, budgetStore, interceptor };
    return new Sluice(loaded, metrics, live, proxyAddress, adminAddress, parts, log);
  }

  /**
   * SIGHUP: re-reads the local rule files and the blocklist copies on disk (what `sluice
   * blocklist refresh` wrote). A rule file with errors is refused whole and the rules in force stay.
   */
  async reload(): Promise<void> {
    const { audit, blocklists } = this.parts;
    try {
      const rules = await loadRuleFiles(this.loaded.rulePaths);
      this.policy.replaceLocalRules(rules);
      this.metrics.rulesLoaded.set(this.policy.ruleCount);
      await audit.append(reloadAcceptedEntry(rules));
      this.log.info({ rules: rules.size }, 'rules reloaded');
    } catch (error) {
      const issues = error instanceof SourceError ? error.issues.map(formatIssue) : [error instanceof Error ? error.message : String(error)];
      this.log.error({ issues }, 'rule reload refused; the rules in force are unchanged');
      await audit.append(reloadRejectedEntry(issues)).catch(() => undefined);
    }
    await blocklists.load();
  }

  /**
   * Inference budgets as of now, per agent and group: limits, used, remaining and when each window
   * resets; `store_failure` says why inference is refused when the journal is unusable. What the
   * admin API serves at GET /v1/budgets.
   */
  budgetReport(): { readonly budgets: BudgetReport[]; readonly store_failure: string | null } {
    return { budgets: this.parts.meter.options.ledger.report(), store_failure: this.parts.budgetStore.failure };
  }

  async close(): Promise<void> {
    const { servers, transparent, dns, pools, learn, audit, bundles, blocklists, stopPolling, budgetStore, interceptor } = this.parts;
    bundles?.stop();
    blocklists.stop();
    stopPolling();
    await Promise.all([...servers.map(closeNow), transparent?.close(), dns?.close()]);
    interceptor?.close();
    await pools.close();
    await budgetStore.close();
    await learn.close();
    await audit.append(stopEntry()).catch((error: unknown) => this.log.error({ err: error }, 'could not record stop'));
    await audit.close();
    this.log.info('sluice stopped');
  }
}

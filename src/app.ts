// The composition root: builds every stage from a loaded config, starts the proxy and admin
// listeners, and tears them down in order. The only place that wires stages together.
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { loadSigningKeys, type LoadedSigningKeys } from './audit/signing-key.js';
import { AuditTrail, type AuditTrailOptions } from './audit/trail.js';
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
import { createStreamSink } from './audit/stream/from-config.js';
import { savedUndeliveredFrom, startAuditStream } from './audit/stream/start.js';
import type { AuditStreamer } from './audit/stream/streamer.js';
import type { LoadedConfig } from './config/load.js';
import { PACKAGE_ROOT } from './config/package-root.js';
import type { ConfigFile } from './config/schema.js';
import { VERSION } from './config/version.js';
import { dnsRateLimiters, startPolicyDns, type RunningPolicyDns } from './ingress/dns/index.js';
import { startTransparentListeners, type RunningTransparent } from './ingress/transparent/start.js';
import { BlocklistManager } from './policy/blocklist/manager.js';
import { loadBlocklistConfig } from './policy/blocklist/sources.js';
import { createBundleManager } from './policy/bundle/from-config.js';
import type { BundleManager } from './policy/bundle/manager.js';
import { LivePolicy } from './policy/live-policy.js';
import { AddressGuard, loadParentProxies, LocalAddresses, type UpstreamPools } from './connect/index.js';
import { IdentityResolver } from './identity/identify.js';
import { RedirectedIdentity } from './identity/redirected.js';
import { createProxyServer } from './ingress/server.js';
import type { TlsInterceptor } from './ingress/intercept.js';
import { meterFor, type BudgetAccounts, type InferenceMeter } from './meter/index.js';
import { openSharedState, type SharedState } from './fleet/shared-state.js';
import { closeNow, trackConnections } from './ingress/shutdown.js';
import { createAdminApi } from './admin/api.js';
import type { BudgetsView } from './admin/routes/budgets.js';
import { AdminPage } from './admin/page.js';
import type { AuthFailures } from './admin/auth-failures.js';
import type { Route, Router } from './admin/router.js';
import { createAdminServer } from './admin/server.js';
import { AgentModes } from './identity/agent-modes.js';
import { ANONYMOUS_AGENT_NAME, type Agent, type Mode } from './agent.js';
import { SYSTEM_CLOCK, type Clock } from './clock.js';
import type { Logger } from './obs/log.js';
import { Metrics } from './obs/metrics.js';
import { ApprovalStore } from './policy/approval-store.js';
import type { Tracing } from './obs/tracing.js';
import { LEARN_STORE_FILE, LearnStore } from './policy/learn-store.js';
import { ApprovedConnections } from './ingress/approved-connections.js';
import { ACCESS_REQUESTS_FILE, AccessRequests } from './policy/access-requests.js';
import { HeldRequests } from './policy/hold.js';
import { loadWebhookSecret, RequestWebhook } from './policy/request-webhook.js';
import { AgentLimits } from './ingress/agent-limits.js';
import { loadRuleFiles } from './policy/rules.js';
import { formatIssue, SourceError } from './config/yaml.js';
import { guardConfinesAgents, listenOn, proxyStage } from './ingress/proxy-stage.js';
import { SluiceError } from './errors.js';
import type { ModeControl } from './admin/routes/agents.js';
import type { ApprovalIndex } from './policy/approvals.js';
import type { AccessRequest } from './policy/access-requests.js';

export interface StartOptions {
  readonly log: Logger;
  /** tests run several instances in one process; only one may register process metrics */
  readonly processMetrics?: boolean;
  /** when the audit chain retries a failed write; tests drive it by hand */
  readonly auditRetry?: Schedule;
  /** where connect.upstream_proxy[].credentials_env is read; process.env unless a test gives its own */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** approvals' expiry, budget windows and the admin login summaries; tests drive a manual clock */
  readonly clock?: Clock;
  /**
   * workers: N above 1 — this process is the cluster's primary: it keeps the shared state, the
   * admin API and the DNS server, opens no proxy listener (the workers do) and tells the workers
   * of each change through these.
   */
  readonly primary?: WorkerBroadcast;
}

/** What the primary passes on to every worker as it changes. */
export interface WorkerBroadcast {
  approvals(index: ApprovalIndex): void;
  cut(approval: string): void;
  modes(modes: Readonly<Record<string, Mode>>): void;
  denied(request: AccessRequest): void;
  blocklists(): void;
}

/** The state a worker reaches through the primary (workers: N): one copy of each, here. */
export interface PrimaryState {
  readonly audit: AuditTrail;
  readonly learn: LearnStore;
  readonly approvals: ApprovalStore;
  readonly requests: AccessRequests;
  readonly agentLimits: AgentLimits;
  /** this host's budget journal, or a fleet's Redis */
  readonly budgets: BudgetAccounts;
  readonly meter: InferenceMeter;
  readonly modes: AgentModes;
}

/** GET /v1/budgets: while the store cannot answer (Redis down) the view says so instead of failing. */
async function budgetsView(accounts: BudgetAccounts): Promise<BudgetsView> {
  try {
    return { budgets: await accounts.report(), store_failure: accounts.failure?.reason ?? null };
  } catch (error) {
    return { budgets: [], store_failure: accounts.failure?.reason ?? `the budget store did not answer: ${(error as Error).message}` };
  }
}



/** The admin API's mode switch, passing every change on to the workers once persisted. */
function broadcastingModes(modes: AgentModes, workers: WorkerBroadcast): ModeControl {
  return {
    knows: (name) => modes.knows(name),
    set: async (name, mode) => {
      await modes.set(name, mode);
      workers.modes(modes.effective());
    },
  };
}

function auditTrailOptions(audit: ConfigFile['audit'], keys: LoadedSigningKeys): AuditTrailOptions {
  return {
    keys,
    checkpoint: { everyRecords: audit.checkpoint.every_records, everySeconds: audit.checkpoint.every_seconds },
    rotate: { maxBytes: audit.rotate.max_bytes, daily: audit.rotate.daily },
    retain: { maxAgeDays: audit.retain.max_age_days ?? null, maxTotalBytes: audit.retain.max_total_bytes ?? null },
  };
}

interface Components {
  readonly tracing: Tracing | undefined;
  readonly audit: AuditTrail;
  readonly stream: AuditStreamer | undefined;
  readonly learn: LearnStore;
  readonly requests: AccessRequests;
  readonly holds: HeldRequests;
  readonly agentLimits: AgentLimits;
  readonly webhook: RequestWebhook | undefined;
  readonly pools: UpstreamPools;
  readonly servers: readonly Server[];
  readonly bundles: BundleManager | undefined;
  readonly blocklists: BlocklistManager;
  readonly transparent: RunningTransparent | undefined;
  readonly dns: RunningPolicyDns | undefined;
  readonly stopPolling: () => void;
  readonly failures: AuthFailures;
  readonly router: Router;
  readonly approvals: ApprovalStore;
  readonly meter: InferenceMeter;
  readonly shared: SharedState;
  readonly interceptor: TlsInterceptor | undefined;
  readonly modes: AgentModes;
  /** turned on by announce: /readyz says ready from then on (while the audit chain accepts appends) */
  readonly readiness: { announced: boolean };
  readonly ruleFiles: readonly string[];
  /** the guard confines agents: transparent listeners and the DNS server are open */
  readonly confined: boolean;
}

export class Sluice {
  #proxyAddress: AddressInfo | undefined;

  private constructor(
    readonly loaded: LoadedConfig,
    readonly metrics: Metrics,
    readonly policy: LivePolicy,
    readonly adminAddress: AddressInfo,
    private readonly parts: Components,
    private readonly log: Logger,
  ) {}

  /** Every admin API route registered (docs/openapi.yaml must list exactly these). */
  get adminRoutes(): readonly Route[] {
    return this.parts.router.routes;
  }

  /** Access requests from Strict-mode denials: for the admin API (list, get, deny). */
  get accessRequests(): AccessRequests {
    return this.parts.requests;
  }

  /** Requests held now (on_unknown: hold). */
  get heldRequests(): number {
    return this.parts.holds.size;
  }

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
    const baseDir = loaded.file === null ? PACKAGE_ROOT : dirname(loaded.file);
    // Secrets and CA files are read before the chain opens: a missing token stops the start early.
    const streamConfig = config.audit.stream;
    const sink = streamConfig === undefined ? undefined : await createStreamSink(streamConfig, { baseDir, env: options.env ?? process.env, hostname: hostname(), ocsf: { productVersion: VERSION, dnsRefuseWith: config.dns.refuse_with } });
    undo.push(() => sink?.close());
    let stream: AuditStreamer | undefined;
    // Retention never deletes what the SIEM has not received: before the stream starts, its saved cursor says where that begins.
    const undeliveredAtStart = sink === undefined ? null : await savedUndeliveredFrom(loaded.stateDir);
    const retentionHold: Pick<AuditTrailOptions, 'undeliveredFrom' | 'onRetentionHeld'> = undeliveredAtStart === null ? {} : {
      undeliveredFrom: () => (stream === undefined ? undeliveredAtStart : stream.cursor.seq + 1),
      onRetentionHeld: (file, from) => log.warn({ file, undelivered_from: from, target: sink?.target }, 'audit retention keeps a rotated file the SIEM stream has not delivered yet'),
    };
    const audit = await AuditTrail.open(loaded.auditFile, {
      fsync: config.audit.fsync,
      onCommitted: (count, durable, seconds) => {
        metrics.auditRecords.inc(count);
        metrics.auditCommitSeconds.observe(seconds);
        stream?.committed(durable);
      },
      onWriteError: (error) => {
        metrics.auditWriteErrors.inc();
        log.error({ err: error }, 'audit write failed; refusing every decision until a retry succeeds');
      },
      ...(options.auditRetry === undefined ? {} : { retry: { schedule: options.auditRetry } }),
    }, { ...auditTrailOptions(config.audit, await loadSigningKeys(loaded.stateDir)), ...retentionHold });
    undo.push(() => audit.close());
    if (audit.recovery !== null) log.error({ recovery: audit.recovery }, 'audit log had a torn last record; it was moved aside and recorded in the chain');
    if (streamConfig !== undefined && sink !== undefined) {
      // Right after open every record is durable, so the head is where the stream may read up to.
      stream = await startAuditStream({ config: streamConfig, sink, auditFile: loaded.auditFile, stateDir: loaded.stateDir, fsync: config.audit.fsync, durable: audit.head, metrics, log });
      const started = stream;
      undo.push(() => started.close());
    }
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
    // Before the downloads start: bundles and feeds go through the parent proxies too.
    const parents = await loadParentProxies(config.connect, { baseDir, env: options.env ?? process.env, guard: addressGuard });

    const clock = options.clock ?? SYSTEM_CLOCK;
    const blocklists = new BlocklistManager({
      config: blocklistConfig,
      cacheDir: loaded.blocklistCacheDir,
      metrics,
      logger: log,
      onSwap: (set) => {
        live.setBlocklist(set);
        options.primary?.blocklists();
      },
      parents,
      // One clock for the process: blocklist ages in /v1/status are measured on the same one.
      clock,
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

    // Approvals, rate limits and budgets: this host's files, or a fleet's Redis (docs/fleet.md).
    const shared = await openSharedState(config, { stateDir: loaded.stateDir, baseDir, env: options.env ?? process.env, clock, log, metrics });
    undo.push(() => shared.close());
    const approved = new ApprovedConnections();
    const approvals = await ApprovalStore.open({
      file: ApprovalStore.fileIn(loaded.stateDir),
      ...(shared.approvals === undefined ? {} : { records: shared.approvals }),
      clock,
      audit,
      publish: (index) => {
        live.setApprovals(index);
        metrics.approvalsActive.set(index.size);
        options.primary?.approvals(index);
      },
      // The connections cut here are the primary's own (none in a cluster); the workers cut theirs.
      cut: (id) => {
        options.primary?.cut(id);
        return approved.cut(id);
      },
      onError: (error, what) => log.error({ err: error }, what),
    });
    undo.push(() => approvals.close());
    const configuredModes = new Map<string, Mode>([[ANONYMOUS_AGENT_NAME, config.anonymous.mode ?? config.mode], ...config.agents.map((agent): [string, Mode] => [agent.name, agent.mode ?? config.mode])]);
    const modes = await AgentModes.open(AgentModes.fileIn(loaded.stateDir), configuredModes, (what) => log.warn(what));
    const requests = await AccessRequests.open(join(loaded.stateDir, ACCESS_REQUESTS_FILE), {
      audit,
      maxPerAgent: config.approvals.max_requests_per_agent,
      ttlMs: config.approvals.request_ttl_ms,
      now: () => clock.now(),
      metrics,
      log,
      ...(shared.accessRequests === undefined ? {} : { records: shared.accessRequests }),
    });
    undo.push(() => requests.close());
    if (requests.corrupt !== null) log.error({ corrupt: requests.corrupt }, 'access requests file was unreadable; kept aside, starting empty');
    const holds = new HeldRequests(config.agents, live, { maxHeld: config.approvals.max_held, maxHeldPerAgent: config.approvals.max_held_per_agent, metrics, now: () => clock.now() });
    undo.push(() => holds.close());
    // A new rule or approval clears the requests it now allows; a human's "no" ends the holds waiting on it.
    live.onChange((policy) => requests.clearAllowed(policy));
    requests.onDenied((denied) => holds.release(({ agent, destination }) => agent.name === denied.agent && destination.host === denied.host && destination.port === denied.port));
    if (options.primary !== undefined) requests.onDenied((denied) => options.primary?.denied(denied));
    const { webhook_url: webhookUrl } = config.approvals;
    const webhook =
      webhookUrl === undefined
        ? undefined
        : new RequestWebhook({
            url: webhookUrl,
            secret: await loadWebhookSecret(config.approvals, { baseDir, env: options.env ?? process.env }),
            timeoutMs: config.approvals.webhook_timeout_ms,
            retries: config.approvals.webhook_retries,
            metrics,
            log,
          });
    undo.push(() => webhook?.close());
    if (webhook !== undefined) requests.onCreated((created) => webhook.announce(created));
    const agentLimits = new AgentLimits(config.agents, { audit, metrics, log, ...(shared.rates === undefined ? {} : { shared: shared.rates }) });
    undo.push(() => agentLimits.close());

    // Loaded only when configured: the OpenTelemetry SDK is not worth its start-up time otherwise.
    const tracing = config.otel.endpoint === undefined ? undefined : new (await import('./obs/tracing.js')).Tracing({ endpoint: config.otel.endpoint, serviceName: config.otel.service_name });
    undo.push(() => tracing?.shutdown());
    const now = (): number => clock.now();
    const meter = meterFor(config.inference, { accounts: shared.budgets, metrics, audit, log, now });
    metrics.fillBudgetsOnScrape(() => meter.showBudgets());
    const { deps, pools, interceptor } = await proxyStage(loaded, baseDir, {
      ...(tracing === undefined ? {} : { tracing }),
      identity: new IdentityResolver(config, modes),
      policy: () => live.current,
      now: () => clock.now(),
      approvals,
      approved,
      learn,
      addressGuard,
      parents,
      agentLimits,
      accessRequests: requests,
      holds,
      meter,
      audit,
      metrics,
      log,
    });
    // The primary of a cluster opens no proxy listener: its workers do.
    const proxy = options.primary === undefined ? createProxyServer(deps, config.limits, pools, config.connect.verify_tunnel_sni, interceptor) : undefined;
    const readiness = { announced: false };
    // Explain sees an agent as identification would make it: its groups and the mode in force now.
    const agentNamed = (name: string): Agent | undefined => {
      const configured = configuredModes.get(name);
      if (configured === undefined) return undefined;
      const groups = config.agents.find((agent) => agent.name === name)?.groups ?? [];
      return { name, groups, mode: modes.get(name) ?? configured, via: name === ANONYMOUS_AGENT_NAME ? 'anonymous' : 'token' };
    };
    const api = await createAdminApi({
      config,
      budgets: () => budgetsView(shared.budgets),
      stateDir: loaded.stateDir,
      clock,
      audit,
      record,
      log,
      approvals,
      learn,
      modes: options.primary === undefined ? modes : broadcastingModes(modes, options.primary),
      requests,
      knownAgent: (name) => configuredModes.has(name),
      blocklistedBy: (host) => live.current.blocklist?.match(host)?.source ?? null,
      proposalBlockedBy: (host) => {
        const match = live.current.blocklist?.match(host) ?? null;
        return match === null ? null : `listed by blocklist ${match.source} (entry ${match.entry})`;
      },
      status: {
        defaultMode: config.mode,
        agentModes: () => modes.effective(),
        rules: () => ({ count: live.ruleCount, bundleVersion: live.current.bundleVersion ?? null }),
        blocklists: () => blocklists.status(),
      },
      explain: {
        policy: () => live.current,
        agentNamed,
        forbiddenClass: (destination) => {
          if (destination.kind === 'name') return addressGuard.isMetadataName(destination.host) ? 'metadata' : null;
          const verdict = addressGuard.vet(destination.host);
          return verdict.ok ? null : verdict.class;
        },
      },
    });
    undo.push(() => api.failures.flush());
    // Not ready while the audit chain refuses appends: every decision would be refused.
    const admin = createAdminServer({
      metrics,
      ready: () => readiness.announced && audit.failure === null,
      status: { blocklists: () => blocklists.status() },
      metricsTokenSha256: config.admin.metrics_token_sha256,
      ...api,
      page: await AdminPage.load(),
      onError: (error) => log.error({ err: error }, 'admin API call failed'),
    });
    trackConnections(admin);
    undo.push(() => pools.close());
    if (proxy !== undefined) undo.push(() => closeNow(proxy));
    const proxyAddress = proxy === undefined ? undefined : await listenOn(proxy, config.listen.proxy);
    undo.push(() => closeNow(admin));
    const adminAddress = await listenOn(admin, config.listen.admin);
    // Redirected sockets and DNS queries name their sender through the kernel's NAT and socket
    // tables, so the transparent listeners and the DNS server share an identity of their own.
    const redirected = guardConfinesAgents(config) ? new RedirectedIdentity(config, modes) : undefined;
    const transparent = redirected === undefined || options.primary !== undefined ? undefined : await startTransparentListeners({ ...deps, identity: redirected }, config, pools, interceptor);
    undo.push(() => transparent?.close());
    const dns =
      redirected === undefined
        ? undefined
        : await startPolicyDns({ config, policy: deps.policy, now: deps.now, addressGuard: deps.addressGuard, identity: redirected, ...dnsRateLimiters(config.dns), metrics, audit, log,
            // A name refused for want of a rule is asked for as port 443, the port agents' TLS goes to.
            onRefused: (policy, agent, name) => requests.recordIfUnknown(policy, agent, name, 443) });
    undo.push(() => dns?.close());
    const parts: Components = { tracing, audit, stream, learn, requests, holds, agentLimits, webhook, pools, servers: proxy === undefined ? [admin] : [proxy, admin], bundles, blocklists, transparent, dns, stopPolling, failures: api.failures, router: api.router, approvals, meter, shared, interceptor, modes, readiness, ruleFiles: [...rules.files], confined: redirected !== undefined };
    const sluice = new Sluice(loaded, metrics, live, adminAddress, parts, log);
    if (proxyAddress !== undefined) await sluice.announce(proxyAddress);
    return sluice;
  }

  /**
   * Records the start and turns ready once the proxy listens: at the end of start for one
   * process, once every worker listens for the primary of a cluster (`extra` says how many).
   */
  async announce(proxy: AddressInfo, extra: Readonly<Record<string, unknown>> = {}): Promise<void> {
    const { config } = this.loaded;
    this.#proxyAddress = proxy;
    await this.parts.audit.append(
      startEntry({
        config: this.loaded.file,
        mode: config.mode,
        rules: this.policy.ruleCount,
        rule_files: this.parts.ruleFiles,
        bundle_version: this.policy.current.bundleVersion ?? null,
        proxy: `${proxy.address}:${proxy.port}`,
      }),
    );
    this.parts.readiness.announced = true;
    this.log.info({ proxy, admin: this.adminAddress, mode: config.mode, rules: this.policy.ruleCount, state_dir: this.loaded.stateDir, transparent: this.parts.confined, ...extra }, 'sluice started');
  }

  /** The proxy listener's address (the workers' shared one in a cluster), once announced. */
  get proxyAddress(): AddressInfo {
    if (this.#proxyAddress === undefined) throw new SluiceError('INTERNAL', 'the proxy is not listening yet');
    return this.#proxyAddress;
  }

  /** What the primary of a cluster serves its workers from. */
  get primaryState(): PrimaryState {
    const { audit, learn, approvals, requests, agentLimits, meter, modes } = this.parts;
    return { audit, learn, approvals, requests, agentLimits, budgets: this.parts.shared.budgets, meter, modes };
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
   * resets; `store_failure` says why inference is refused (journal unusable, Redis unreachable). What the
   * admin API serves at GET /v1/budgets.
   */
  budgetReport(): Promise<BudgetsView> {
    return budgetsView(this.parts.shared.budgets);
  }

  async close(): Promise<void> {
    const { servers, transparent, dns, pools, learn, requests, holds, agentLimits, webhook, audit, stream, tracing, bundles, blocklists, stopPolling, failures, shared, interceptor } = this.parts;
    // Held requests are answered (as the policy in force decides them) before their listeners close.
    holds.close();
    webhook?.close();
    bundles?.stop();
    failures.flush();
    const approvalsClosed = this.parts.approvals.close();
    blocklists.stop();
    stopPolling();
    await Promise.all([...servers.map(closeNow), transparent?.close(), dns?.close()]);
    interceptor?.close();
    await pools.close();
    await approvalsClosed;
    await learn.close();
    await requests.close();
    await agentLimits.close();
    // Last of the state: access requests above save their last changes through it.
    await shared.close();
    await audit.append(stopEntry()).catch((error: unknown) => this.log.error({ err: error }, 'could not record stop'));
    await audit.close();
    // After the stop record: it is sent now if the receiver is keeping up, else at the next start.
    await stream?.close();
    // Exports the spans still buffered; a collector that is down costs at most the exporter's timeout.
    await tracing?.shutdown().catch((error: unknown) => this.log.warn({ err: error }, 'could not export the last spans'));
    this.log.info('sluice stopped');
  }
}

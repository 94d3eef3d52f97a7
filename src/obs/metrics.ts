// Every Prometheus metric Sluice exports, declared in one place. Labels come from closed enums
// or config-bounded sets, never from hostnames or other agent-controlled strings.
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();

  readonly decisions = new Counter({
    name: 'sluice_decisions_total',
    help: 'Decisions taken, by verdict and machine-readable reason.',
    labelNames: ['verdict', 'reason'] as const,
    registers: [this.registry],
  });

  readonly connectionsActive = new Gauge({
    name: 'sluice_connections_active',
    help: 'Connections in progress, by kind (client, tunnel, forward, upgrade).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly upstreamConnectSeconds = new Histogram({
    name: 'sluice_upstream_connect_seconds',
    help: 'Time to resolve and vet an upstream (name lookup and address checks, before any dial).',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly upstreamTcpConnectSeconds = new Histogram({
    name: 'sluice_upstream_tcp_connect_seconds',
    help: 'Time from the first TCP connection attempt to an established upstream socket (through a parent proxy: until its CONNECT answer).',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly bytes = new Counter({
    name: 'sluice_bytes_total',
    help: 'Bytes relayed, by direction (upstream = agent to destination).',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });

  readonly auditRecords = new Counter({
    name: 'sluice_audit_records_total',
    help: 'Audit records durably committed to the hash chain.',
    registers: [this.registry],
  });

  readonly auditWriteErrors = new Counter({
    name: 'sluice_audit_write_errors_total',
    help: 'Failed audit writes and retries; while the chain is failed every decision is refused.',
    registers: [this.registry],
  });

  readonly auditCommitSeconds = new Histogram({
    name: 'sluice_audit_commit_seconds',
    help: 'Time to write one group commit (durably, O_DSYNC, when audit.fsync is on) of audit records.',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });

  readonly auditStreamLag = new Gauge({
    name: 'sluice_audit_stream_lag_records',
    help: 'Durable audit records not yet acknowledged by the SIEM stream (audit.stream).',
    registers: [this.registry],
  });

  readonly auditStreamSent = new Counter({
    name: 'sluice_audit_stream_sent_total',
    help: 'Audit records the SIEM stream delivered (acknowledged by the receiver; a resend after a restart counts again).',
    registers: [this.registry],
  });

  readonly auditStreamErrors = new Counter({
    name: 'sluice_audit_stream_errors_total',
    help: 'Failed SIEM stream deliveries (connection, TLS, HTTP status or per-item errors); the batch is retried after back-off.',
    registers: [this.registry],
  });

  readonly rulesLoaded = new Gauge({
    name: 'sluice_rules_loaded',
    // Every process holds the same value (workers: N): the primary's sum would count it once per process.
    aggregator: 'max',
    help: 'Rules in the active rule set.',
    registers: [this.registry],
  });

  readonly blocklistEntries = new Gauge({
    name: 'sluice_blocklist_entries',
    aggregator: 'max',
    help: 'Entries (names and addresses) in the active copy of each blocklist source.',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });

  readonly blocklistRefreshes = new Counter({
    name: 'sluice_blocklist_refresh_total',
    help: 'Blocklist refresh attempts by source and outcome (updated, not_modified, error, too_large, shrink_refused).',
    labelNames: ['source', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly blocklistLastSuccess = new Gauge({
    name: 'sluice_blocklist_last_success_timestamp_seconds',
    aggregator: 'max',
    help: 'When each blocklist source was last confirmed current (downloaded or 304), Unix seconds.',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });

  readonly bundleVersion = new Gauge({
    name: 'sluice_bundle_version',
    aggregator: 'max',
    help: 'Version of the allowlist bundle in force (0 when none is).',
    registers: [this.registry],
  });

  readonly bundleVerifications = new Counter({
    name: 'sluice_bundle_verifications_total',
    help: 'Allowlist bundle verifications, by outcome (accepted, bad_signature, downgrade, expired, fetch_failure, ...).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly bundleLastSuccess = new Gauge({
    name: 'sluice_bundle_last_success_timestamp_seconds',
    aggregator: 'max',
    help: 'Unix time at which the bundle source last delivered or confirmed a verified bundle.',
    registers: [this.registry],
  });

  readonly bundleShadowWouldDeny = new Counter({
    name: 'sluice_bundle_shadow_would_deny_total',
    help: 'Requests a report-mode bundle would have denied (not enforced), by its reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly dnsQueries = new Counter({
    name: 'sluice_dns_queries_total',
    help: 'Queries to the policy DNS server, by outcome (answered, refused, rate_limited, ...).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly forbiddenDestinations = new Counter({
    name: 'sluice_forbidden_destinations_total',
    help: 'Destinations refused by the address guard, by address class (metadata, loopback, private, ...).',
    labelNames: ['class'] as const,
    registers: [this.registry],
  });

  readonly dnsCache = new Counter({
    name: 'sluice_dns_cache_total',
    help: 'Destination name lookups by cache outcome: hit, miss (not cached) or expired (cached, TTL passed).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly agentLimited = new Counter({
    name: 'sluice_agent_limited_total',
    help: 'Requests refused by an agent\'s own limits (agents[].limits), by agent and limit (rate, concurrency).',
    labelNames: ['agent', 'limit'] as const,
    registers: [this.registry],
  });

  readonly accessRequests = new Counter({
    name: 'sluice_access_requests_total',
    help: 'Access requests by event: created, denied, cleared, expired, dropped (agent over approvals.max_requests_per_agent).',
    labelNames: ['event'] as const,
    registers: [this.registry],
  });

  readonly held = new Gauge({
    name: 'sluice_held_requests',
    help: 'Requests held open now while their access request waits (on_unknown: hold).',
    registers: [this.registry],
  });

  readonly webhookDeliveries = new Counter({
    name: 'sluice_webhook_deliveries_total',
    help: 'Approval-request webhook attempts by outcome (delivered, failed, gave_up, dropped).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly approvalsActive = new Gauge({
    name: 'sluice_approvals_active',
    aggregator: 'max',
    help: 'Time-boxed approvals in force now (granted, not yet expired or revoked).',
    registers: [this.registry],
  });

  readonly inferenceTokens = new Counter({
    name: 'sluice_inference_tokens_total',
    help: 'Inference tokens metered, by agent, model (inference.models, else "other") and direction (input, output).',
    labelNames: ['agent', 'model', 'direction'] as const,
    registers: [this.registry],
  });

  readonly sharedStateUp = new Gauge({
    name: 'sluice_shared_state_up',
    help: 'Whether the store of approvals, access requests, rate limits and budgets answers: 1, or 0 while a fleet\'s Redis is unreachable (inference is then refused). Always 1 for the embedded store.',
    registers: [this.registry],
  });

  // Filled when scraped, from the budget accounts (see fillBudgetsOnScrape): a fleet's Redis then
  // shows every replica's usage, and no inference call pays for a report of every budget.
  #budgetSource: (() => Promise<void>) | undefined;

  readonly inferenceBudgetUsedRatio = new Gauge({
    name: 'sluice_inference_budget_used_ratio',
    aggregator: 'max',
    help: 'Share of each token budget used in its current UTC window (agent is the agent name, or group:NAME).',
    labelNames: ['agent', 'window'] as const,
    registers: [this.registry],
    collect: async () => {
      await this.#budgetSource?.();
    },
  });

  /** Sets sluice_inference_budget_used_ratio from `source` at every scrape. */
  fillBudgetsOnScrape(source: () => Promise<void>): void {
    this.#budgetSource = source;
  }

  readonly tlsLeafMintSeconds = new Histogram({
    name: 'sluice_tls_leaf_mint_seconds',
    help: 'Time to mint an interception leaf certificate (once per inference host and process).',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  readonly workerRestarts = new Counter({
    name: 'sluice_worker_restarts_total',
    help: 'Proxy worker processes (workers: N) that ended while Sluice ran and were started again.',
    registers: [this.registry],
  });

  /** workers: N — the primary's /metrics adds every worker's own */
  #workers: (() => Promise<WorkerMetrics[]>) | null = null;

  constructor(options: { processMetrics: boolean } = { processMetrics: true }) {
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** From now on the exposition sums these processes' metrics with this one's (prom-client's cluster aggregation). */
  gatherWorkers(workers: () => Promise<WorkerMetrics[]>): void {
    this.#workers = workers;
  }

  /** What /metrics serves: this process's metrics, plus the workers' once gatherWorkers was called. */
  async exposition(): Promise<string> {
    if (this.#workers === null) return this.registry.metrics();
    const [own, workers] = await Promise.all([this.registry.getMetricsAsJSON(), this.#workers()]);
    return AggregatorRegistry.aggregate([own, ...workers]).metrics();
  }
}

/** One process's metrics as prom-client serialises them, for the primary to aggregate. */
export type WorkerMetrics = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

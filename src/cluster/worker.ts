// A proxy worker of a cluster (workers: N): the pipeline and the proxy listeners, with the state
// that must be one (audit chain, Learn, approvals, access requests, limits, journal) in the primary.
import { dirname } from 'node:path';
import { guardConfinesAgents, listenOn, proxyStage } from '../ingress/proxy-stage.js';
import type { Mode } from '../agent.js';
import type { AuditLog } from '../audit/kinds.js';
import { SYSTEM_CLOCK } from '../clock.js';
import type { LoadedConfig } from '../config/load.js';
import { PACKAGE_ROOT } from '../config/package-root.js';
import { AddressGuard, LocalAddresses, loadParentProxies } from '../connect/index.js';
import { SluiceError } from '../errors.js';
import { IdentityResolver } from '../identity/identify.js';
import { RedirectedIdentity } from '../identity/redirected.js';
import type { LimitOutcome } from '../ingress/agent-limits.js';
import { ApprovedConnections } from '../ingress/approved-connections.js';
import { createProxyServer } from '../ingress/server.js';
import { drain } from '../ingress/shutdown.js';
import { startTransparentListeners } from '../ingress/transparent/start.js';
import { BudgetLimits, meterFor, type BudgetAccounts } from '../meter/index.js';
import type { Logger } from '../obs/log.js';
import { Metrics } from '../obs/metrics.js';
import { ApprovalIndex } from '../policy/approvals.js';
import { BlocklistManager } from '../policy/blocklist/manager.js';
import { loadBlocklistConfig } from '../policy/blocklist/sources.js';
import { HeldRequests } from '../policy/hold.js';
import { LivePolicy } from '../policy/live-policy.js';
import { loadRuleFiles } from '../policy/rules.js';
import { Endpoint } from './endpoint.js';
import type { PrimaryCall, PrimaryNotice, TicketedReservation, WorkerCall, WorkerNotice, WorkerReplies } from './messages.js';

type ToPrimary = Endpoint<WorkerCall, WorkerNotice, PrimaryCall, PrimaryNotice, WorkerReplies>;

const UNLIMITED: LimitOutcome = Object.freeze({ admitted: true, release: () => undefined });

/** Runs until the primary says stop (or is gone); resolves once the proxy listens. */
export async function startWorker(loaded: LoadedConfig, log: Logger): Promise<void> {
  const { config } = loaded;
  const clock = SYSTEM_CLOCK;
  const metrics = new Metrics();
  const rules = await loadRuleFiles(loaded.rulePaths);
  const live = new LivePolicy(rules, config.anonymous.allow, false);
  metrics.rulesLoaded.set(live.ruleCount);
  const modes = new Map<string, Mode>();
  const approved = new ApprovedConnections();
  const holds = new HeldRequests(config.agents, live, { maxHeld: config.approvals.max_held, maxHeldPerAgent: config.approvals.max_held_per_agent, metrics, now: () => clock.now() });
  const localAddresses = new LocalAddresses();
  const stopPolling = localAddresses.poll();
  const addressGuard = new AddressGuard(config.connect.allow_cidrs, localAddresses);
  const baseDir = loaded.file === null ? PACKAGE_ROOT : dirname(loaded.file);
  const parents = await loadParentProxies(config.connect, { baseDir, env: process.env, guard: addressGuard });
  // The primary downloads feeds; a worker reads the copies it wrote, when told they changed.
  const blocklists = new BlocklistManager({ config: await loadBlocklistConfig(loaded.blocklistSources), cacheDir: loaded.blocklistCacheDir, metrics, logger: log, onSwap: (set) => live.setBlocklist(set), parents, clock });
  await blocklists.load();

  let stopping = false;
  const reload = async (): Promise<void> => {
    try {
      live.replaceLocalRules(await loadRuleFiles(loaded.rulePaths));
      metrics.rulesLoaded.set(live.ruleCount);
    } catch (error) {
      // The primary read the same files and audited the refusal; the rules in force stay here too.
      log.warn({ err: error }, 'rule reload refused; the rules in force are unchanged');
    }
    await blocklists.load();
  };
  let closeListeners: (drainMs: number) => Promise<void> = async () => undefined;
  const channel = { send: (message: unknown): unknown => process.send?.(message) };
  const primary: ToPrimary = new Endpoint(channel, {
    serve: (call) => {
      switch (call.op) {
        case 'metrics':
          return metrics.registry.getMetricsAsJSON();
      }
    },
    hear: (notice) => {
      switch (notice.op) {
        case 'approvals':
          live.setApprovals(new ApprovalIndex(notice.approvals));
          return;
        case 'cut':
          approved.cut(notice.approval);
          return;
        case 'modes':
          modes.clear();
          for (const [name, mode] of Object.entries(notice.modes)) modes.set(name, mode);
          return;
        case 'denied':
          holds.release(({ agent, destination }) => agent.name === notice.agent && destination.host === notice.host && destination.port === notice.port);
          return;
        case 'reload':
          void reload().catch((error: unknown) => log.error({ err: error }, 'reload failed'));
          return;
        case 'blocklists':
          void blocklists.load().catch((error: unknown) => log.error({ err: error }, 'blocklist copies could not be read'));
          return;
        case 'stop':
          if (stopping) return;
          stopping = true;
          void closeListeners(notice.drainMs).then(
            () => process.exit(0),
            (error: unknown) => {
              log.error({ err: error }, 'unclean worker stop');
              process.exit(1);
            },
          );
          return;
      }
    },
  });
  process.on('message', (message) => primary.receive(message));
  // The primary coordinates every stop (it must outlive the workers' last records): signals that
  // reach a worker too (a terminal's Ctrl-C, a whole process group) wait for its word.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
  // A notice to a primary that just died fails to send: the disconnect below ends this worker.
  process.on('error', (error) => log.debug({ err: error }, 'message to the primary not delivered'));
  process.once('disconnect', () => {
    // The primary died: nothing this worker decides could be recorded any more.
    primary.close(new SluiceError('AUDIT_UNAVAILABLE', 'the primary process is gone'));
    log.error('primary process gone; worker exits');
    process.exit(1);
  });

  // A worker learns that the primary's chain refuses appends only from a rejected append. Until one
  // is accepted again, appends that nothing waits for are refused here at once, as the chain itself
  // would: a request an intercepted session covers is then refused, not forwarded unrecorded.
  let chainRefusal: unknown = null;
  const audit: AuditLog = {
    append: (entry, urgency = 'now') => {
      if (chainRefusal !== null && urgency === 'with_next_commit') return Promise.reject(chainRefusal);
      const call = primary.call({ op: 'audit', entry, urgency });
      call.then(
        () => {
          chainRefusal = null;
        },
        (error: unknown) => {
          chainRefusal = error;
        },
      );
      return call;
    },
  };
  const limited = new Set(config.agents.filter((agent) => agent.limits?.requests_per_second !== undefined || agent.limits?.max_concurrent !== undefined).map((agent) => agent.name));
  const now = (): number => clock.now();
  // Which agents have budgets is the config's; what they used and reserved is the primary's alone.
  const accounts: BudgetAccounts = {
    limits: new BudgetLimits(config.inference.budgets),
    // The primary's store failure comes back as the answer to plan.
    failure: null,
    plan: (request) => primary.call({ op: 'plan', request }),
    // The reservation came from the primary's plan above and still carries its ticket.
    settle: async (reservation, record) => void (await primary.call({ op: 'settle', reservation: reservation as TicketedReservation, record })),
    report: () => Promise.resolve([]),
    close: () => Promise.resolve(),
  };
  const meter = meterFor(config.inference, { accounts, metrics, audit, log, now });
  const tracing = config.otel.endpoint === undefined ? undefined : new (await import('../obs/tracing.js')).Tracing({ endpoint: config.otel.endpoint, serviceName: config.otel.service_name });
  const { deps, pools, interceptor } = await proxyStage(loaded, baseDir, {
    ...(tracing === undefined ? {} : { tracing }),
    identity: new IdentityResolver(config, modes),
    policy: () => live.current,
    now,
    approvals: { noteUse: (approval, requestId) => primary.notify({ op: 'approval_used', approval, requestId }) },
    approved,
    learn: { record: (record) => primary.notify({ op: 'learn', record }) },
    addressGuard,
    parents,
    // One limit per agent across the cluster: the primary keeps the buckets and the slots.
    agentLimits: {
      admit: async (agent) => {
        if (!limited.has(agent)) return UNLIMITED;
        const outcome = await primary.call({ op: 'admit', agent });
        if (!outcome.admitted) return outcome;
        let released = false;
        return {
          admitted: true,
          release: () => {
            if (released) return;
            released = true;
            primary.notify({ op: 'release', slot: outcome.slot });
          },
        };
      },
    },
    accessRequests: { record: (agent, host, port) => primary.call({ op: 'ask_access', agent, host, port }) },
    holds,
    meter,
    audit,
    metrics,
    log,
  });
  // The approvals and modes in force before the first request is taken; changes follow as notices.
  const state = await primary.call({ op: 'state' });
  live.setApprovals(new ApprovalIndex(state.approvals));
  for (const [name, mode] of Object.entries(state.modes)) modes.set(name, mode);
  const proxy = createProxyServer(deps, config.limits, pools, config.connect.verify_tunnel_sni, interceptor);
  const address = await listenOn(proxy, config.listen.proxy);
  const transparent = guardConfinesAgents(config) ? await startTransparentListeners({ ...deps, identity: new RedirectedIdentity(config, modes) }, config, pools, interceptor) : undefined;
  closeListeners = async (drainMs) => {
    // Held requests are answered as the policy in force decides them, then the listeners drain.
    holds.close();
    await Promise.all([drain(proxy, drainMs), transparent?.close()]);
    interceptor?.close();
    await pools.close();
    blocklists.stop();
    stopPolling();
    await tracing?.shutdown().catch(() => undefined);
    // The close records of the last requests are on their way: exit only once the primary has them.
    await primary.idle();
  };
  primary.notify({ op: 'listening', proxy: { address: address.address, family: address.family, port: address.port } });
}

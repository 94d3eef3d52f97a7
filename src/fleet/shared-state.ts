// Opens where approvals, agent rate limits and inference budgets live (`state`): this host's files
// (embedded, the default) or one Redis shared by a fleet of replicas. The composition root asks
// here once; each feature gets the storage its own interface defines.
import type { Redis } from 'ioredis';
import { readSecret } from '../audit/stream/from-config.js';
import type { Clock } from '../clock.js';
import type { ConfigFile, RedisStateConfig } from '../config/schema.js';
import { OperatorError } from '../errors.js';
import type { SharedRate } from '../ingress/agent-limits.js';
import { RedisRate } from '../ingress/redis-rate.js';
import { EmbeddedBudgets, RedisBudgets, BudgetLimits, type BudgetAccounts } from '../meter/index.js';
import type { Logger } from '../obs/log.js';
import type { Metrics } from '../obs/metrics.js';
import type { ApprovalRecords } from '../policy/approval-store.js';
import type { AccessRequestRecords } from '../policy/access-request-records.js';
import { RedisAccessRequests } from '../policy/redis-access-requests.js';
import { RedisApprovals } from '../policy/redis-approvals.js';
import { ANONYMOUS_AGENT_NAME } from '../agent.js';

export interface SharedState {
  readonly budgets: BudgetAccounts;
  /** undefined: the approvals file in the state directory */
  readonly approvals: ApprovalRecords | undefined;
  /** undefined: the access requests file in the state directory */
  readonly accessRequests: AccessRequestRecords | undefined;
  /** undefined: each replica's own buckets */
  readonly rates: SharedRate | undefined;
  close(): Promise<void>;
}

export interface SharedStateSources {
  readonly stateDir: string;
  /** the config file's directory: a relative password file is read from there */
  readonly baseDir: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly clock: Clock;
  readonly log: Logger;
  /** sluice_shared_state_up follows the connection; the CLI has none */
  readonly metrics?: Pick<Metrics, 'sharedStateUp'>;
}

export async function openSharedState(config: ConfigFile, sources: SharedStateSources): Promise<SharedState> {
  const now = (): number => sources.clock.now();
  const { redis: redisConfig } = config.state;
  if (config.state.backend === 'embedded' || redisConfig === undefined) {
    sources.metrics?.sharedStateUp.set(1);
    const budgets = await EmbeddedBudgets.open(sources.stateDir, config.inference.budgets, now, sources.log);
    return { budgets, approvals: undefined, accessRequests: undefined, rates: undefined, close: () => budgets.close() };
  }
  const redis = await connect(redisConfig, sources);
  const keyPrefix = redisConfig.key_prefix;
  const onError = (error: unknown, what: string): void => sources.log.error({ err: error }, what);
  // Subscribing takes a connection of its own; its subscription is queued until it connects.
  const watched = { redis, subscriber: () => redis.duplicate({ lazyConnect: false, enableOfflineQueue: true }), keyPrefix, pollMs: redisConfig.poll_ms, onError };
  return {
    budgets: new RedisBudgets({
      redis,
      keyPrefix,
      limits: new BudgetLimits(config.inference.budgets),
      agents: [ANONYMOUS_AGENT_NAME, ...config.agents.map((agent) => agent.name)],
      leaseMs: redisConfig.reservation_lease_ms,
      now,
      log: sources.log,
    }),
    approvals: new RedisApprovals(watched),
    accessRequests: new RedisAccessRequests(watched),
    rates: new RedisRate(redis, keyPrefix, now),
    close: async () => {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/**
 * Connects before anything else starts: a replica that cannot reach Redis at start refuses to
 * start (CONFIG_INVALID names the URL). Later outages are survived: the client reconnects, and
 * commands fail at once rather than queue, so budgets are refused instead of held.
 */
async function connect(config: RedisStateConfig, sources: SharedStateSources): Promise<Redis> {
  const password = config.password === undefined ? undefined : await readSecret(config.password, 'state.redis.password', sources);
  const { Redis } = await import('ioredis');
  const redis = new Redis(config.url, {
    ...(config.username === undefined ? {} : { username: config.username }),
    ...(password === undefined ? {} : { password }),
    connectTimeout: config.connect_timeout_ms,
    commandTimeout: config.command_timeout_ms,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    lazyConnect: true,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1_000),
  });
  let warned = false;
  const up = sources.metrics?.sharedStateUp;
  redis.on('close', () => up?.set(0));
  redis.on('error', (error: Error) => {
    // ioredis reports every failed reconnect; one line per outage is enough.
    if (!warned) sources.log.error({ err: error, redis: config.url }, 'Redis unreachable: inference refused, approvals frozen, rate limits per replica until it is back');
    warned = true;
  });
  redis.on('ready', () => {
    up?.set(1);
    if (warned) sources.log.info({ redis: config.url }, 'Redis reachable again');
    warned = false;
  });
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new OperatorError('CONFIG_INVALID', `state.redis.url: cannot reach ${config.url}: ${(error as Error).message}`, { cause: error });
  }
  return redis;
}

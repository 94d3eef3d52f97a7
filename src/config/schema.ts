// The shape of sluice.yaml: one schema with every default, so a file may say as little as it
// likes and a typo is an error. Stages compile their own sections into runtime form.
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { splitHostPort } from './host-port.js';

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):[0-9]{1,5}$/, 'expected host:port, e.g. 127.0.0.1:3128')
  .refine((text) => splitHostPort(text).port <= 65535, 'ports are 0..65535');
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lower-case hex SHA-256 digest (64 characters)');
const cidr = z
  .string()
  .refine((text) => ipaddr.IPv4.isValidCIDRFourPartDecimal(text) || ipaddr.IPv6.isValidCIDR(text), 'expected a CIDR such as 10.0.0.0/8 or fd00::/8');
const mode = z.enum(['strict', 'learn']);
// Which destinations a parent proxy serves: `*`, a host, `*.domain` (its subdomains), an IP
// address or a CIDR. connect/ normalises them; this only refuses what could never match.
const ROUTE_NAME = /^(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/;
const routePattern = z
  .string()
  .refine(
    (text) => text === '*' || ROUTE_NAME.test(text) || ipaddr.isValid(text.replace(/^\[(.*)\]$/, '$1')) || ipaddr.IPv4.isValidCIDRFourPartDecimal(text) || ipaddr.IPv6.isValidCIDR(text),
    'expected *, a host name, *.domain, an IP address or a CIDR',
  );

/** What an allowlist bundle's `name` may be; bundle.name pins it, so both share this. */
export const BUNDLE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const BUNDLE_NAME_RULE = 'names are 1-128 characters of A-Z a-z 0-9 . _ -';

export const agentSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'agent names are 1-64 characters of A-Z a-z 0-9 _ . -'),
  groups: z.array(z.string().min(1)).default([]),
  mode: mode.optional(),
  /** SHA-256 of the Proxy-Authorization token: the token itself is never stored. */
  token_sha256: z.array(sha256Hex).default([]),
  uids: z.array(z.number().int().min(0).max(4294967294)).default([]),
  cidrs: z.array(cidr).default([]),
  /** per-agent admission limits; absent, only the listener-wide limits apply */
  limits: z
    .strictObject({
      requests_per_second: z.number().positive().max(1_000_000).optional(),
      /** requests allowed at once above the rate; default: one second's worth */
      burst: z.number().int().min(1).max(10_000_000).optional(),
      /** requests and tunnels in progress at once (held ones count) */
      max_concurrent: z.number().int().min(1).max(1_000_000).optional(),
    })
    .refine((limits) => limits.burst === undefined || limits.requests_per_second !== undefined, { path: ['burst'], message: 'burst needs requests_per_second' })
    .optional(),
  /** Strict mode, no rule decided: refuse at once, or hold the request while a human is asked */
  on_unknown: z.enum(['deny', 'hold']).default('deny'),
  hold_timeout_ms: z.number().int().min(100).max(3_600_000).default(60_000),
});

/** A signed allowlist bundle (docs/bundles.md): where it comes from and which signers to trust. */
export const bundleSchema = z
  .strictObject({
    /** exactly one: a local file (watched), an https:// URL (polled), or an OCI reference */
    file: z.string().min(1).optional(),
    url: z.string().regex(/^https:\/\//, 'bundle URLs must be https://').optional(),
    oci: z.string().regex(/^[a-z0-9.-]+(:[0-9]+)?\/[a-z0-9._\/-]+([:@][A-Za-z0-9_.:-]+)$/, 'expected registry/repository:tag or registry/repository@sha256:<hex>').optional(),
    /** the bundle's own `name` must equal this: a key that signs for several fleets cannot cross them */
    name: z.string().regex(BUNDLE_NAME, BUNDLE_NAME_RULE).optional(),
    /** no lower version is accepted, even after the state volume (and its floor) was lost */
    min_version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    /** detached: base64 signature at FILE.sig / URL.sig; bundle: a sigstore or cosign bundle */
    signature: z.enum(['detached', 'bundle']).default('detached'),
    signature_file: z.string().min(1).optional(),
    signature_url: z.string().regex(/^https:\/\//, 'signature URLs must be https://').optional(),
    /** PEM CA certificates to trust for the URL or registry, beside the system store */
    ca_file: z.string().min(1).optional(),
    /** cosign public keys (PEM); any one verifies, so list old and new while rotating */
    keys: z.array(z.string().min(1)).default([]),
    keyless: z
      .strictObject({
        trusted_root: z.string().min(1).optional(),
        identity: z.string().min(1).optional(),
        identity_regexp: z.string().min(1).optional(),
        issuer: z.string().min(1).optional(),
        issuer_regexp: z.string().min(1).optional(),
      })
      .refine(
        (keyless) => (keyless.identity === undefined) !== (keyless.identity_regexp === undefined) && (keyless.issuer === undefined) !== (keyless.issuer_regexp === undefined),
        'pin exactly one of identity / identity_regexp and one of issuer / issuer_regexp',
      )
      .optional(),
    offline: z.enum(['fail_closed', 'cached_with_expiry', 'cached_indefinite', 'default_policy']).default('cached_with_expiry'),
    max_age_ms: z.number().int().min(1000).default(86_400_000),
    poll_interval_ms: z.number().int().min(1000).max(86_400_000).default(60_000),
    timeout_ms: z.number().int().min(100).max(120_000).default(10_000),
    max_bytes: z.number().int().min(1024).max(64 * 1_048_576).default(4 * 1_048_576),
  })
  .refine((bundle) => [bundle.file, bundle.url, bundle.oci].filter((source) => source !== undefined).length === 1, 'give exactly one of file, url and oci')
  .refine((bundle) => bundle.keys.length > 0 || bundle.keyless !== undefined, 'list at least one trusted key, or configure keyless');

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name');
/** A secret is read from a file (relative to the config file) or an environment variable, never written inline. */
const secret = z
  .strictObject({ file: z.string().min(1).optional(), env: envName.optional() })
  .refine((source) => (source.file === undefined) !== (source.env === undefined), 'give exactly one of file and env');
const streamHeader = z
  .strictObject({
    name: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected an HTTP header name'),
    value: z.string().optional(),
    value_file: z.string().min(1).optional(),
    value_env: envName.optional(),
  })
  .refine((header) => [header.value, header.value_file, header.value_env].filter((source) => source !== undefined).length === 1, 'give exactly one of value, value_file and value_env');
/** How every stream batches and retries. */
const streamPacing = {
  batch_size: z.number().int().min(1).max(10_000).default(500),
  flush_interval_ms: z.number().int().min(10).max(600_000).default(1_000),
  retry_initial_ms: z.number().int().min(10).max(600_000).default(1_000),
  retry_max_ms: z.number().int().min(10).max(3_600_000).default(60_000),
  timeout_ms: z.number().int().min(100).max(120_000).default(10_000),
};
/** PEM CA certificates trusted beside the system store; tls_verify false accepts any certificate. */
const streamTls = { ca_file: z.string().min(1).optional(), tls_verify: z.boolean().default(true) };
const streamUrl = z.string().regex(/^https?:\/\/[^\s@]+$/, 'expected an http:// or https:// URL without credentials');
const streamHttp = { url: streamUrl, headers: z.array(streamHeader).default([]), ...streamTls, ...streamPacing };
/** audit.stream: where the audit trail is streamed, at least once and in order (docs/audit.md). */
export const streamSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('webhook'), format: z.enum(['jsonl', 'ocsf']).default('jsonl'), ...streamHttp }),
  z.strictObject({
    type: z.literal('splunk_hec'),
    /** sent as `Authorization: Splunk <token>` */
    token: secret,
    index: z.string().min(1).optional(),
    sourcetype: z.string().min(1).default('sluice:audit'),
    ...streamHttp,
  }),
  z.strictObject({
    type: z.literal('elastic'),
    index: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'expected an index name of lower-case letters, digits, . _ and -'),
    /** sent as `Authorization: ApiKey <key>` */
    api_key: secret.optional(),
    ...streamHttp,
  }),
  z.strictObject({
    type: z.literal('syslog'),
    address: hostPort,
    tls: z.boolean().default(false),
    app_name: z.string().regex(/^[!-~]{1,48}$/, 'RFC 5424 APP-NAME: 1-48 printable ASCII characters').default('sluice'),
    ...streamTls,
    ...streamPacing,
  }),
]);

/**
 * Hosts whose TLS Sluice intercepts to meter inference: every model API the shipped rules allow
 * (rules/default.yaml `model-apis`; a test holds the two together). OpenAI-compatible APIs cover
 * most; `*.domain` names the subdomains of domain.
 */
export const DEFAULT_INFERENCE_HOSTS = [
  'api.openai.com',
  'api.anthropic.com',
  '*.openai.azure.com',
  'generativelanguage.googleapis.com',
  'api.mistral.ai',
  'api.groq.com',
  'api.together.xyz',
  'api.deepseek.com',
  'api.x.ai',
  'openrouter.ai',
] as const;

const tokenLimit = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

/** Token limits for one agent or one group (shared by its members); windows are UTC. */
export const budgetSchema = z
  .strictObject({
    agent: z.string().min(1).optional(),
    group: z.string().min(1).optional(),
    per_request: tokenLimit.optional(),
    hourly: tokenLimit.optional(),
    daily: tokenLimit.optional(),
    monthly: tokenLimit.optional(),
  })
  .refine((budget) => (budget.agent === undefined) !== (budget.group === undefined), 'give exactly one of agent and group')
  .refine((budget) => [budget.per_request, budget.hourly, budget.daily, budget.monthly].some((limit) => limit !== undefined), 'give at least one of per_request, hourly, daily, monthly');

export const configSchema = z.strictObject({
  mode: mode.default('learn'),
  listen: z
    .strictObject({
      proxy: hostPort.default('127.0.0.1:3128'),
      admin: hostPort.default('127.0.0.1:9090'),
      /** where the nft guard redirects agents' TCP 80 and 443; also bound on [::1] for IPv6 */
      transparent_http: hostPort.default('127.0.0.1:3080'),
      transparent_tls: hostPort.default('127.0.0.1:3443'),
      /** the policy-aware DNS server (UDP and TCP) that agents' port-53 traffic is redirected to;
       *  not 5353, where mDNS responders such as avahi listen on every address */
      dns: hostPort.default('127.0.0.1:5053'),
    })
    .prefault({}),
  /** Where the audit chain, Learn records and later bundle/blocklist caches live. */
  state_dir: z.string().min(1).optional(),
  /** Rule files or directories of them, relative to the config file. */
  rules: z.array(z.string().min(1)).optional(),
  /** The blocklist sources file (blocklists/sources.yaml), relative to the config file. */
  blocklists: z.string().min(1).optional(),
  anonymous: z
    .strictObject({
      allow: z.boolean().default(true),
      mode: mode.optional(),
    })
    .prefault({}),
  agents: z.array(agentSchema).default([]),
  bundle: bundleSchema.optional(),
  /** Time-boxed approvals (`sluice approve`), access requests from Strict-mode denials, holding requests while they wait, and the webhook announcing them. */
  approvals: z
    .strictObject({
      /** no approval lives longer than this */
      max_ttl_ms: z.number().int().min(1_000).max(30 * 86_400_000).default(86_400_000),
      /** pending requests kept per agent; later new destinations are only counted */
      max_requests_per_agent: z.number().int().min(1).max(100_000).default(100),
      /** a request not seen again for this long is dropped */
      request_ttl_ms: z.number().int().min(60_000).max(90 * 86_400_000).default(7 * 86_400_000),
      /** requests held at once across all agents (on_unknown: hold); past it, refused at once */
      max_held: z.number().int().min(1).max(100_000).default(256),
      /** requests one agent may have held at once, so no agent fills the hold for the others */
      max_held_per_agent: z.number().int().min(1).max(100_000).default(32),
      /** POSTed a signed JSON announcement of each new access request */
      webhook_url: z.string().regex(/^https?:\/\/[^\s]+$/, 'expected an http:// or https:// URL').optional(),
      /** a file holding the HMAC-SHA256 key, relative to the config file */
      webhook_secret_file: z.string().min(1).optional(),
      /** the name of an environment variable holding the HMAC-SHA256 key */
      webhook_secret_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name').optional(),
      webhook_timeout_ms: z.number().int().min(100).max(60_000).default(5_000),
      /** further attempts after a failed delivery, with doubling back-off from 1 s */
      webhook_retries: z.number().int().min(0).max(20).default(5),
    })
    .superRefine((approvals, context) => {
      const secrets = [approvals.webhook_secret_file, approvals.webhook_secret_env].filter((secret) => secret !== undefined).length;
      if (approvals.webhook_url !== undefined && secrets !== 1) {
        context.addIssue({ code: 'custom', path: ['webhook_url'], message: 'give exactly one of webhook_secret_file and webhook_secret_env: receivers check the signature' });
      }
      if (approvals.webhook_url === undefined && secrets > 0) context.addIssue({ code: 'custom', path: ['webhook_url'], message: 'a webhook secret is set but no webhook_url' });
    })
    .prefault({}),
  /** The nftables guard: which local users are agents (confined to Sluice) and which user Sluice runs as. */
  guard: z
    .strictObject({
      /** restricted in addition to every uid listed under agents */
      agent_uids: z.array(z.number().int().min(0).max(4294967294)).default([]),
      agent_gids: z.array(z.number().int().min(0).max(4294967294)).default([]),
      /** never restricted: Sluice's own traffic must reach the destinations it vets */
      sluice_user: z.union([z.number().int().min(0).max(4294967294), z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'expected a user name or numeric uid')]).default('sluice'),
      /** send agents' port-53 queries to Sluice's DNS listener wherever they were addressed */
      redirect_dns: z.boolean().default(true),
    })
    .prefault({}),
  connect: z
    .strictObject({
      /** DNS servers as host:port; empty means the system resolver. */
      resolvers: z.array(hostPort).default([]),
      timeout_ms: z.number().int().min(100).max(120_000).default(10_000),
      /** Ranges that are otherwise forbidden but that this deployment may reach on purpose. */
      allow_cidrs: z.array(z.strictObject({ name: z.string().min(1), cidr })).default([]),
      /** refuse a CONNECT tunnel whose TLS ClientHello names a different host (domain fronting) */
      verify_tunnel_sni: z.boolean().default(true),
      /** vetted answers kept by name for their TTL, within these bounds */
      dns_cache: z
        .strictObject({
          enabled: z.boolean().default(true),
          max_entries: z.number().int().min(1).max(1_000_000).default(10_000),
          min_ttl_ms: z.number().int().min(0).max(3_600_000).default(1_000),
          max_ttl_ms: z.number().int().min(1_000).max(86_400_000).default(300_000),
          /** for answers without a TTL: the system resolver (getaddrinfo) reports none */
          default_ttl_ms: z.number().int().min(0).max(86_400_000).default(30_000),
          /** a name with no address (NXDOMAIN, no A/AAAA) is remembered this long */
          negative_ttl_ms: z.number().int().min(0).max(60_000).default(5_000),
        })
        .superRefine((cache, context) => {
          if (cache.min_ttl_ms > cache.max_ttl_ms) context.addIssue({ code: 'custom', path: ['min_ttl_ms'], message: `${cache.min_ttl_ms} is above max_ttl_ms (${cache.max_ttl_ms})` });
          if (cache.default_ttl_ms < cache.min_ttl_ms || cache.default_ttl_ms > cache.max_ttl_ms) {
            context.addIssue({ code: 'custom', path: ['default_ttl_ms'], message: `${cache.default_ttl_ms} is outside min_ttl_ms..max_ttl_ms (${cache.min_ttl_ms}..${cache.max_ttl_ms})` });
          }
        })
        .prefault({}),
      /** parent proxies that destinations go through, first matching entry wins */
      upstream_proxy: z
        .array(
          z
            .strictObject({
              match: z.array(routePattern).min(1),
              proxy: z
                .string()
                .regex(/^http:\/\/[^\s/?#@]+:[0-9]{1,5}\/?$/, 'expected http://host:port; credentials go in credentials_file or credentials_env, never in the URL'),
              /** a file holding one line `user:password`, relative to the config file */
              credentials_file: z.string().min(1).optional(),
              /** the name of an environment variable holding `user:password` */
              credentials_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name').optional(),
            })
            .refine((entry) => entry.credentials_file === undefined || entry.credentials_env === undefined, {
              path: ['credentials_env'],
              message: 'give credentials_file or credentials_env, not both',
            }),
        )
        .default([]),
      /** PEM CA certificates trusted for upstream TLS beside the system store (never instead of it) */
      ca_file: z.string().min(1).optional(),
      /** destinations that never go through a parent proxy, whatever upstream_proxy matches */
      no_proxy: z.array(routePattern).default([]),
    })
    .prefault({}),
  /** The policy-aware DNS server on listen.dns that the guard sends agents' queries to. */
  dns: z
    .strictObject({
      /** resolvers answers come from; empty means connect.resolvers, else the system's servers */
      upstreams: z.array(hostPort).default([]),
      /** REFUSED tells the agent it was policy; NXDOMAIN pretends the name does not exist */
      refuse_with: z.enum(['refused', 'nxdomain']).default('refused'),
      timeout_ms: z.number().int().min(100).max(30_000).default(3_000),
      /** per agent: sustained queries per second, and the burst allowed above it */
      queries_per_second: z.number().positive().max(100_000).default(20),
      burst: z.number().int().min(1).max(1_000_000).default(200),
      /** per peer address, before identification; every local agent shares 127.0.0.1 and ::1 */
      peer_queries_per_second: z.number().positive().max(1_000_000).default(200),
      peer_burst: z.number().int().min(1).max(10_000_000).default(2_000),
      /** floods, malformed and unscreened queries are audited as one dns_summary per interval */
      summary_interval_ms: z.number().int().min(1_000).max(3_600_000).default(60_000),
      /** longer labels or names are refused as likely tunnelling (RFC 1035 allows 63 and 253) */
      max_label_length: z.number().int().min(1).max(63).default(50),
      max_name_length: z.number().int().min(1).max(253).default(200),
    })
    .prefault({}),
  /** Inference metering (docs/inference.md): TLS interception of model APIs, token budgets. */
  inference: z
    .strictObject({
      /** terminate agents' TLS to inference hosts with the local CA; off, nothing is metered */
      intercept: z.boolean().default(true),
      hosts: z.array(z.string().regex(/^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*$/, 'expected a lower-case host name or *.domain')).default([...DEFAULT_INFERENCE_HOSTS]),
      /** inference request bodies are read whole to be metered; larger ones are refused */
      max_body_bytes: z.number().int().min(1024).max(64 * 1_048_576).default(8 * 1_048_576),
      /** the output bound injected for a budgeted agent's call that sets none (and no per_request caps it) */
      default_output_tokens: z.number().int().min(1).max(10_000_000).default(4096),
      /** the model label values of sluice_inference_tokens_total; any other model counts as "other" */
      models: z.array(z.string().min(1)).default([]),
      budgets: z.array(budgetSchema).default([]),
    })
    .prefault({}),
  /** Where approvals, access requests, agent rate limits and budgets live: this host alone, or Redis shared by a fleet (docs/fleet.md). */
  state: z
    .strictObject({
      backend: z.enum(['embedded', 'redis']).default('embedded'),
      redis: z
        .strictObject({
          /** redis://host:port/db or rediss:// (TLS); credentials go in password, never in the URL */
          url: z.string().regex(/^rediss?:\/\/[^\s@/]+(\/[0-9]{1,2})?$/, 'expected redis://host:port[/db] or rediss://host:port[/db], without credentials'),
          username: z.string().min(1).optional(),
          /** the AUTH password, from a file (relative to the config file) or an environment variable */
          password: secret.optional(),
          /** every key Sluice writes starts with this, so fleets can share one Redis */
          key_prefix: z.string().regex(/^[A-Za-z0-9_.:{}-]{1,64}$/, 'key prefixes are 1-64 characters of A-Z a-z 0-9 _ . : { } -').default('sluice:'),
          connect_timeout_ms: z.number().int().min(100).max(60_000).default(2_000),
          /** a command unanswered this long fails: inference is then refused, not held */
          command_timeout_ms: z.number().int().min(10).max(60_000).default(500),
          /** how often each replica re-reads approvals and access requests besides the pub/sub notices (a missed notice heals by then) */
          poll_ms: z.number().int().min(100).max(60_000).default(1_000),
          /** a reservation a replica never settled (it died mid-call) stops counting after this */
          reservation_lease_ms: z.number().int().min(10_000).max(86_400_000).default(600_000),
        })
        .optional(),
    })
    .refine((state) => state.backend !== 'redis' || state.redis !== undefined, { path: ['redis'], message: 'backend: redis needs a redis section with at least url' })
    .prefault({}),
  limits: z
    .strictObject({
      max_header_bytes: z.number().int().min(1024).max(1_048_576).default(16_384),
      header_timeout_ms: z.number().int().min(100).max(600_000).default(10_000),
      idle_timeout_ms: z.number().int().min(100).max(86_400_000).default(120_000),
      max_connections: z.number().int().min(1).max(1_000_000).default(4_096),
    })
    .prefault({}),
  audit: z
    .strictObject({
      file: z.string().min(1).default('audit.jsonl'),
      /** fsync each group commit; turning this off trades durability for throughput. */
      fsync: z.boolean().default(true),
      /** a signed checkpoint after this many records or seconds, whichever comes first */
      checkpoint: z
        .strictObject({
          every_records: z.number().int().min(1).max(1_000_000).default(1000),
          every_seconds: z.number().int().min(1).max(86_400).default(60),
        })
        .prefault({}),
      rotate: z
        .strictObject({
          /** null: never by size */
          max_bytes: z.number().int().min(4096).nullable().default(100 * 1024 * 1024),
          daily: z.boolean().default(true),
        })
        .prefault({}),
      /** absent: keep rotated files for ever */
      retain: z
        .strictObject({
          max_age_days: z.number().int().min(1).max(36_500).optional(),
          max_total_bytes: z.number().int().min(4096).optional(),
        })
        .prefault({}),
      stream: streamSchema.optional(),
    })
    .prefault({}),
  /** The admin API on listen.admin (/v1): who may call it. /metrics, /healthz and /readyz stay open. */
  admin: z
    .strictObject({
      /** tokens besides those `sluice token create` keeps in the state directory; only their SHA-256 */
      tokens: z
        .array(
          z.strictObject({
            name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'token names are 1-64 characters of A-Z a-z 0-9 _ . -'),
            role: z.enum(['viewer', 'approver', 'admin']),
            token_sha256: sha256Hex,
          }),
        )
        .default([]),
      /** calls with a missing or unknown token a peer may make per minute before it gets 429 */
      max_failed_logins: z.number().int().min(1).max(100_000).default(10),
      /** when set, /metrics needs a Bearer token whose SHA-256 this is (probes stay open) */
      metrics_token_sha256: sha256Hex.optional(),
    })
    .prefault({}),
  /** OpenTelemetry: a span per request exported over OTLP/HTTP; off unless an endpoint is given. */
  otel: z
    .strictObject({
      endpoint: z.string().regex(/^https?:\/\/[^\s@]+$/, 'expected the OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces').optional(),
      service_name: z.string().min(1).default('sluice'),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
  /** Proxy processes (node:cluster): 1 is a single process; `auto` one per CPU core. */
  workers: z.union([z.literal('auto'), z.number().int().min(1).max(64)]).default(1),
})
  // Each worker would hold its own copy of the bundle's state: refused rather than silently split.
  .refine((config) => config.workers === 1 || config.bundle === undefined, { path: ['workers'], message: 'a signed allowlist bundle (bundle:) runs with workers: 1 only' });

export type ConfigFile = z.output<typeof configSchema>;
export type AgentConfig = z.output<typeof agentSchema>;
export type BundleConfig = z.output<typeof bundleSchema>;
export type ApprovalsConfig = z.output<typeof configSchema>['approvals'];
export type StreamConfig = z.output<typeof streamSchema>;
export type BudgetConfig = z.output<typeof budgetSchema>;
export type StateConfig = z.output<typeof configSchema>['state'];
export type RedisStateConfig = NonNullable<StateConfig['redis']>;

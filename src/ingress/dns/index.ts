// The policy DNS server's public surface, for the composition root: everything outside
// ingress/dns/ imports it from here.
export { handleQuery, type DnsOutcome, type DnsPeer, type DnsQueryEvent, type DnsVerdict, type QueryDeps } from './handle-query.js';
export { normaliseQueryName, screenName, type NameLimits } from './name-screen.js';
export { dnsRateLimiters, KeyedTokenBucket } from './rate-limiter.js';
export { PolicyDnsServer, type PolicyDnsOptions } from './server.js';
export { UpstreamResolver } from './upstream.js';
export { dnsVerdict } from './policy-verdict.js';
export { startPolicyDns, type PolicyDnsSetup, type RunningPolicyDns } from './start.js';
export { MAX_PENDING_REPLIES, type TcpBacklog } from './tcp-connection.js';

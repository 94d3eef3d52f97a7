// The connect stage's public surface: classify and vet addresses, resolve a name once (or from
// the cache), and dial only what was vetted, directly or through a parent proxy. Everything else
// in src/connect/ is an implementation detail.
export { ADDRESS_CLASSES, classifyAddress, METADATA_ADDRESSES, SPECIAL_RANGES_V4, SPECIAL_RANGES_V6, type AddressClass } from './address-class.js';
export { AddressGuard, METADATA_HOST_NAMES, type AddressVerdict, type AllowCidrConfig } from './address-guard.js';
export { ConnectConfigError } from './config-error.js';
export { LOCAL_ADDRESS_POLL_MS, LocalAddresses, type InterfaceReader, type PollTimer } from './local-addresses.js';
export { connectorFor, type ConnectorOptions } from './connector.js';
export { addressWithPort, CONNECTION_ATTEMPT_DELAY_MS, dial, type Dialled, type DialOptions } from './dial.js';
export { createDnsCache, DnsCache, type CacheOutcome, type CachedAnswer, type DnsCacheConfig, type DnsCacheOptions } from './dns-cache.js';
export { downloadAgent, type DownloadAgentOptions } from './download-agent.js';
export { loadParentProxies, ParentProxies, ParentProxy, type ParentProxySources, type UpstreamProxyConfig } from './parent-proxy.js';
export { createResolver, ServerResolver, SystemResolver, type ResolvedAddress, type Resolver } from './resolve.js';
export { ForbiddenDestinationError, resolveAndVet, type ParentHop, type ResolveAndVetDeps, type VettedAddress, type VettedDestination } from './resolve-and-vet.js';
export { errorCodeFor, UPSTREAM_ERROR_CODES, upstreamErrorFrom } from './upstream-errors.js';
export { UpstreamPools, type PooledUpstream, type UpstreamPoolOptions } from './upstream-pools.js';
export { upstreamReaderOf, UpstreamReader } from './upstream-reader.js';

// The parent (upstream) proxies of connect.upstream_proxy: which destinations each one serves,
// minus connect.no_proxy, and the credentials Sluice presents to it, kept out of logs and records.
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import ipaddr from 'ipaddr.js';
import { destinationOf, formatAuthority, normaliseHost, type Destination, type HostKind } from '../destination.js';
import type { AddressGuard } from './address-guard.js';
import { ConnectConfigError } from './config-error.js';

export interface UpstreamProxyConfig {
  readonly match: readonly string[];
  readonly proxy: string;
  readonly credentials_file?: string | undefined;
  readonly credentials_env?: string | undefined;
}

/** One parent proxy. Its credentials live in a private field: no serialiser or inspector sees them. */
export class ParentProxy {
  /** `host:port`, how logs and audit records name the parent */
  readonly label: string;
  readonly #authorization: string | undefined;

  constructor(
    readonly destination: Destination,
    authorization: string | undefined,
  ) {
    this.label = formatAuthority(destination);
    this.#authorization = authorization;
  }

  /** The Proxy-Authorization value to send, or undefined when the parent needs none. */
  authorization(): string | undefined {
    return this.#authorization;
  }

  toJSON(): string {
    return this.label;
  }
}

/** `[::1]` as URLs and configs bracket an IPv6 address */
const BRACKETED = /^\[(.*)\]$/;

type Target = { readonly host: string; readonly kind: HostKind };

/** `*`, names, `*.domain` suffixes, IP literals and CIDRs, compiled once for a Set lookup per request. */
class HostSet {
  private readonly any: boolean;
  private readonly exact = new Set<string>();
  /** `.domain` for each `*.domain`: strict subdomains, as in rule files */
  private readonly suffixes: string[] = [];
  private readonly ranges: [ipaddr.IPv4 | ipaddr.IPv6, number][] = [];

  constructor(patterns: readonly string[], field: string) {
    this.any = patterns.includes('*');
    patterns.forEach((pattern, index) => {
      if (pattern === '*') return;
      try {
        if (pattern.includes('/')) this.ranges.push(ipaddr.parseCIDR(pattern));
        else if (pattern.startsWith('*.')) this.suffixes.push(`.${normaliseHost(pattern.slice(2)).host}`);
        else this.exact.add(normaliseHost(pattern.replace(BRACKETED, '$1')).host);
      } catch (error) {
        throw new ConnectConfigError(`${field}[${index}]`, `${JSON.stringify(pattern)}: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
  }

  has(target: Target): boolean {
    if (this.any || this.exact.has(target.host)) return true;
    if (target.kind === 'name') return this.suffixes.some((suffix) => target.host.endsWith(suffix));
    if (this.ranges.length === 0) return false;
    const address = ipaddr.parse(target.host);
    return this.ranges.some(([range, bits]) => address.kind() === range.kind() && address.match(range, bits));
  }
}

export class ParentProxies {
  constructor(
    private readonly routes: readonly { readonly hosts: HostSet; readonly proxy: ParentProxy }[],
    private readonly direct: HostSet,
  ) {}

  /** The parent proxy a destination goes through, or undefined when Sluice dials it itself. */
  routeFor(target: Target): ParentProxy | undefined {
    if (this.direct.has(target)) return undefined;
    return this.routes.find((route) => route.hosts.has(target))?.proxy;
  }

  /** The same for a URL Sluice fetches itself (a bundle, a blocklist feed). */
  routeForUrl(url: string | URL): ParentProxy | undefined {
    const { hostname } = typeof url === 'string' ? new URL(url) : url;
    return this.routeFor(normaliseHost(hostname.replace(BRACKETED, '$1')));
  }
}

export interface ParentProxySources {
  /** the config file's directory: a relative credentials_file is read from there */
  readonly baseDir: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** when given, a parent at an IP address the guard refuses is a configuration error at start */
  readonly guard?: AddressGuard;
}

/** `user:password` → a Basic credential; the text itself never goes into an error message. */
function basic(text: string | undefined, field: string, where: string): string {
  const line = (text ?? '').split('\n')[0]?.replace(/\r$/, '') ?? '';
  if (line.indexOf(':') < 1) throw new ConnectConfigError(field, `${where} must hold one line "user:password"`);
  return `Basic ${Buffer.from(line, 'utf8').toString('base64')}`;
}

async function credentials(entry: UpstreamProxyConfig, field: string, sources: ParentProxySources): Promise<string | undefined> {
  if (entry.credentials_env !== undefined) {
    const value = sources.env[entry.credentials_env];
    if (value === undefined) throw new ConnectConfigError(`${field}.credentials_env`, `the environment variable ${entry.credentials_env} is not set`);
    return basic(value, `${field}.credentials_env`, `the environment variable ${entry.credentials_env}`);
  }
  if (entry.credentials_file === undefined) return undefined;
  const path = isAbsolute(entry.credentials_file) ? entry.credentials_file : resolve(sources.baseDir, entry.credentials_file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConnectConfigError(`${field}.credentials_file`, `cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return basic(text, `${field}.credentials_file`, path);
}

function parentAt(entry: UpstreamProxyConfig, field: string, guard: AddressGuard | undefined): Destination {
  const url = new URL(entry.proxy);
  const destination = destinationOf(url.hostname.replace(BRACKETED, '$1'), url.port === '' ? 80 : url.port);
  if (guard === undefined || destination.kind === 'name') return destination;
  const verdict = guard.vet(destination.host);
  if (!verdict.ok) {
    throw new ConnectConfigError(`${field}.proxy`, `${destination.host} is ${verdict.class}, which the address guard refuses; add a connect.allow_cidrs entry naming exactly it`);
  }
  return destination;
}

/** Compiles the section, reading credentials; undefined when no parent is configured (every destination is direct). */
export async function loadParentProxies(
  config: { readonly upstream_proxy: readonly UpstreamProxyConfig[]; readonly no_proxy: readonly string[] },
  sources: ParentProxySources,
): Promise<ParentProxies | undefined> {
  if (config.upstream_proxy.length === 0) return undefined;
  const routes = await Promise.all(
    config.upstream_proxy.map(async (entry, index) => {
      const field = `connect.upstream_proxy[${index}]`;
      const proxy = new ParentProxy(parentAt(entry, field, sources.guard), await credentials(entry, field, sources));
      return { hosts: new HostSet(entry.match, `${field}.match`), proxy };
    }),
  );
  return new ParentProxies(routes, new HostSet(config.no_proxy, 'connect.no_proxy'));
}

// Builds a BundleManager from the `bundle:` section of sluice.yaml: reads the trusted keys, the
// keyless trust root and CA files, and picks the file, HTTPS or OCI source.
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { BundleConfig } from '../../config/schema.js';
import type { ParentProxies } from '../../connect/index.js';
import type { Metrics } from '../../obs/metrics.js';
import type { HttpClientSettings } from './http-fetch.js';
import { FileBundleSource } from './file-source.js';
import { HttpsBundleSource } from './https-source.js';
import { compileIdentityPolicy } from './identity-policy.js';
import { BundleManager, type BundleCallbacks } from './manager.js';
import { OciBundleSource } from './oci-source.js';
import { loadKeyAnchor } from './public-key.js';
import type { BundleSource } from './source.js';
import { parseTrustedRoot, publicGoodTrustRoot } from './trusted-root.js';

export interface BundleWiring {
  readonly config: BundleConfig;
  /** the directory of sluice.yaml: relative paths in the section are resolved against it */
  readonly baseDir: string;
  /** Sluice's state directory; the bundle keeps its floor and last-known-good in STATE/bundle */
  readonly stateDir: string;
  readonly callbacks: BundleCallbacks;
  readonly metrics?: Metrics;
  /** connect.upstream_proxy: URL and OCI sources go through these parents */
  readonly parents?: ParentProxies | undefined;
}

export async function createBundleManager(wiring: BundleWiring): Promise<BundleManager> {
  const { config, baseDir } = wiring;
  const path = (file: string): string => (isAbsolute(file) ? file : resolve(baseDir, file));
  const keys = await Promise.all(config.keys.map(async (file) => loadKeyAnchor(await readFile(path(file), 'utf8'), file)));
  const keyless = config.keyless;
  const roots =
    keyless?.trusted_root === undefined ? [publicGoodTrustRoot()] : [parseTrustedRoot(await readFile(path(keyless.trusted_root), 'utf8'), keyless.trusted_root)];
  const identity =
    keyless === undefined
      ? undefined
      : compileIdentityPolicy({ identity: keyless.identity, identityRegexp: keyless.identity_regexp, issuer: keyless.issuer, issuerRegexp: keyless.issuer_regexp });
  const ca = config.ca_file === undefined ? undefined : await readFile(path(config.ca_file), 'utf8');
  return new BundleManager({
    source: sourceFor(config, path, { maxBytes: config.max_bytes, timeoutMs: config.timeout_ms, ca, parents: wiring.parents }),
    trust: { keys, roots, identity },
    stateDir: join(wiring.stateDir, 'bundle'),
    offline: { mode: config.offline, maxAgeMs: config.max_age_ms },
    pins: { name: config.name, minVersion: config.min_version },
    pollIntervalMs: config.poll_interval_ms,
    fetchTimeoutMs: config.timeout_ms,
    callbacks: wiring.callbacks,
    ...(wiring.metrics === undefined ? {} : { metrics: wiring.metrics }),
  });
}

function sourceFor(config: BundleConfig, path: (file: string) => string, http: HttpClientSettings): BundleSource {
  if (config.file !== undefined) {
    const file = path(config.file);
    const signatureFile = config.signature_file === undefined ? undefined : path(config.signature_file);
    const signature =
      config.signature === 'bundle'
        ? { sigstoreBundlePath: signatureFile ?? `${file}.sigstore.json` }
        : signatureFile === undefined
          ? {}
          : { signaturePath: signatureFile };
    return new FileBundleSource({ path: file, maxBytes: config.max_bytes, ...signature });
  }
  if (config.url !== undefined) {
    return new HttpsBundleSource({ ...http, url: config.url, signatureKind: config.signature, ...(config.signature_url === undefined ? {} : { signatureUrl: config.signature_url }) });
  }
  const reference = parseOciReference(config.oci ?? '');
  return new OciBundleSource({ ...http, ...reference });
}

/** `registry.example.com:5000/team/allowlist:prod` or `…/allowlist@sha256:<hex>` */
export function parseOciReference(text: string): { registry: string; repository: string; reference: string } {
  const slash = text.indexOf('/');
  const host = text.slice(0, slash);
  const rest = text.slice(slash + 1);
  const at = rest.indexOf('@');
  const colon = rest.lastIndexOf(':');
  const [repository, reference] = at >= 0 ? [rest.slice(0, at), rest.slice(at + 1)] : colon >= 0 ? [rest.slice(0, colon), rest.slice(colon + 1)] : [rest, 'latest'];
  return { registry: `https://${host}`, repository, reference };
}

// A bundle pulled from an OCI registry (distribution API): the manifest by tag or digest, the
// allowlist layer by digest, and cosign's `sha256-<digest>.sig` signature image beside it.
import { createHash } from 'node:crypto';
import { BoundedHttpClient, header, type HttpClientSettings, type HttpResponse } from './http-fetch.js';
import type { OciSignature } from './evidence.js';
import type { BundleSource, FetchResult } from './source.js';
import { RegistryAuth } from './registry-auth.js';
import { isRecord } from './trusted-root.js';
import { OperatorError } from '../../errors.js';

export interface OciSourceSettings extends HttpClientSettings {
  /** https://registry.example.com */
  readonly registry: string;
  readonly repository: string;
  /** a tag, or sha256:<hex> to pin one manifest */
  readonly reference: string;
}

const MANIFEST_ACCEPT = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');
const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
const CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate';
const REKOR_ANNOTATION = 'dev.sigstore.cosign/bundle';
const MAX_REDIRECTS = 3;

interface Layer {
  readonly digest: string;
  readonly size: number;
  readonly annotations: Readonly<Record<string, string>>;
}

export class OciBundleSource implements BundleSource {
  readonly description: string;
  private readonly client: BoundedHttpClient;
  private readonly auth: RegistryAuth;
  private lastManifestDigest: string | undefined;

  constructor(private readonly settings: OciSourceSettings) {
    this.description = `oci ${new URL(settings.registry).host}/${settings.repository}${settings.reference.startsWith('sha256:') ? '@' : ':'}${settings.reference}`;
    this.client = new BoundedHttpClient(settings);
    this.auth = new RegistryAuth(this.client, settings.repository);
  }

  async fetch(signal: AbortSignal): Promise<FetchResult> {
    const { bytes: manifest, digest } = await this.manifest(this.settings.reference, signal);
    if (digest === this.lastManifestDigest) return { kind: 'not_modified' };
    const layer = layersOf(manifest)[0];
    if (layer === undefined) throw new OperatorError('BUNDLE_FETCH_FAILED', `${this.description}: the manifest has no layers`);
    const artifact = await this.blob(layer, signal);
    const signatures = await this.signatures(digest, signal);
    this.lastManifestDigest = digest;
    return { kind: 'fetched', candidate: { artifact, evidence: { kind: 'oci', manifest, signatures }, origin: `${this.description}@${digest}` } };
  }

  invalidate(): void {
    this.lastManifestDigest = undefined;
  }

  close(): Promise<void> {
    return this.client.close();
  }

  /** cosign stores the signatures of manifest sha256:X as the image tagged sha256-X.sig */
  private async signatures(digest: string, signal: AbortSignal): Promise<OciSignature[]> {
    const tag = `${digest.replace(':', '-')}.sig`;
    const { bytes } = await this.manifest(tag, signal);
    const signatures: OciSignature[] = [];
    for (const layer of layersOf(bytes)) {
      const signature = layer.annotations[SIGNATURE_ANNOTATION];
      if (signature === undefined) continue;
      const payload = await this.blob(layer, signal);
      const certificate = layer.annotations[CERTIFICATE_ANNOTATION];
      const rekor = layer.annotations[REKOR_ANNOTATION];
      const legacy = {
        base64Signature: signature,
        ...(certificate === undefined ? {} : { cert: certificate }),
        ...(rekor === undefined ? {} : { rekorBundle: parseJson(rekor, `${tag} ${REKOR_ANNOTATION}`) }),
      };
      signatures.push({ payload, signature: { kind: 'bundle', bytes: Buffer.from(JSON.stringify(legacy)), source: `${this.description} ${tag}` } });
    }
    if (signatures.length === 0) throw new OperatorError('BUNDLE_FETCH_FAILED', `${this.description}: ${tag} holds no cosign signature`);
    return signatures;
  }

  private async manifest(reference: string, signal: AbortSignal): Promise<{ bytes: Buffer; digest: string }> {
    const url = `${this.base()}/manifests/${encodeURIComponent(reference)}`;
    const response = await this.auth.get(url, { accept: MANIFEST_ACCEPT }, signal);
    if (response.status !== 200) throw new OperatorError('BUNDLE_FETCH_FAILED', `${url}: HTTP ${response.status}`);
    const digest = `sha256:${createHash('sha256').update(response.body).digest('hex')}`;
    // The manifest is addressed by its hash: a registry that answers a digest with other bytes is lying.
    if (reference.startsWith('sha256:') && reference !== digest) throw new OperatorError('BUNDLE_FETCH_FAILED', `${url}: manifest digest ${digest} is not ${reference}`);
    const claimed = header(response, 'docker-content-digest');
    if (claimed !== undefined && claimed.startsWith('sha256:') && claimed !== digest) throw new OperatorError('BUNDLE_FETCH_FAILED', `${url}: Docker-Content-Digest ${claimed} is not the manifest's ${digest}`);
    return { bytes: response.body, digest };
  }

  /** Blobs often redirect to storage; follow a few https hops, credentials only to the registry. */
  private async blob(layer: Layer, signal: AbortSignal): Promise<Buffer> {
    if (!/^sha256:[0-9a-f]{64}$/.test(layer.digest)) throw new OperatorError('BUNDLE_FETCH_FAILED', `${this.description}: unsupported layer digest ${layer.digest}`);
    if (layer.size > this.settings.maxBytes) throw new OperatorError('BUNDLE_FETCH_FAILED', `${this.description}: layer of ${layer.size} bytes is over the cap`);
    let url = `${this.base()}/blobs/${layer.digest}`;
    let response: HttpResponse = await this.auth.get(url, {}, signal);
    for (let hop = 0; hop < MAX_REDIRECTS && [301, 302, 303, 307, 308].includes(response.status); hop++) {
      const location = header(response, 'location');
      if (location === undefined) break;
      url = new URL(location, url).toString();
      response = new URL(url).origin === new URL(this.settings.registry).origin ? await this.auth.get(url, {}, signal) : await this.client.get(url, {}, signal);
    }
    if (response.status !== 200) throw new OperatorError('BUNDLE_FETCH_FAILED', `${url}: HTTP ${response.status}`);
    const digest = `sha256:${createHash('sha256').update(response.body).digest('hex')}`;
    if (digest !== layer.digest) throw new OperatorError('BUNDLE_FETCH_FAILED', `${url}: blob hashes to ${digest}, not ${layer.digest}`);
    return response.body;
  }

  private base(): string {
    return `${this.settings.registry.replace(/\/+$/, '')}/v2/${this.settings.repository}`;
  }
}

function layersOf(manifest: Buffer): Layer[] {
  const json = parseJson(manifest.toString('utf8'), 'manifest');
  const layers = isRecord(json) ? json['layers'] : undefined;
  if (!Array.isArray(layers)) throw new OperatorError('BUNDLE_FETCH_FAILED', 'the manifest has no layers list');
  return layers.map((layer: unknown) => {
    if (!isRecord(layer) || typeof layer['digest'] !== 'string' || typeof layer['size'] !== 'number') throw new OperatorError('BUNDLE_FETCH_FAILED', 'a manifest layer lacks digest or size');
    const annotations = isRecord(layer['annotations']) ? layer['annotations'] : {};
    const strings = Object.fromEntries(Object.entries(annotations).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
    return { digest: layer['digest'], size: layer['size'], annotations: strings };
  });
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new OperatorError('BUNDLE_FETCH_FAILED', `${what} is not JSON`);
  }
}

// Local HTTPS servers on 127.0.0.1 for bundle source tests: a static bundle host with ETag and
// Last-Modified, and a minimal OCI registry (token auth, manifests, redirected blobs) holding
// images signed the way `cosign sign --key` signs them.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { signBase64, type TestKey } from './bundle-fixtures.js';

const run = promisify(execFile);

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
}

/** A self-signed certificate for 127.0.0.1, made with openssl in the test's temp dir. */
export async function makeTls(dir: string): Promise<TlsMaterial> {
  const key = join(dir, 'tls.key');
  const cert = join(dir, 'tls.crt');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  return { cert: await readFile(cert, 'utf8'), key: await readFile(key, 'utf8') };
}

export interface LocalServer {
  readonly origin: string;
  readonly requests: { method: string; url: string; headers: IncomingMessage['headers'] }[];
  close(): Promise<void>;
}

export async function startServer(tls: TlsMaterial, handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<LocalServer> {
  const requests: LocalServer['requests'] = [];
  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (request, response) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `https://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Serves files from a map with strong ETags and Last-Modified, answering conditional GETs with 304. */
export function staticFiles(files: Map<string, { body: Buffer; modified: Date }>, behaviour: { status?: number; stall?: boolean } = {}) {
  return (request: IncomingMessage, response: ServerResponse): void => {
    if (behaviour.stall === true) return;
    if (behaviour.status !== undefined) {
      response.writeHead(behaviour.status).end();
      return;
    }
    const file = files.get(request.url ?? '');
    if (file === undefined) {
      response.writeHead(404).end();
      return;
    }
    const etag = `"${createHash('sha256').update(file.body).digest('hex').slice(0, 16)}"`;
    const headers = { etag, 'last-modified': file.modified.toUTCString() };
    if (request.headers['if-none-match'] === etag) {
      response.writeHead(304, headers).end();
      return;
    }
    response.writeHead(200, { ...headers, 'content-length': file.body.length }).end(file.body);
  };
}

const sha = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** A registry holding blobs and manifests by digest and tags, behind anonymous Bearer token auth. */
export class TestRegistry {
  readonly blobs = new Map<string, Buffer>();
  readonly manifests = new Map<string, Buffer>();
  readonly tags = new Map<string, string>();
  readonly token = 'anon-pull-token';
  origin = '';

  handler = (request: IncomingMessage, response: ServerResponse): void => {
    const url = new URL(request.url ?? '/', 'https://registry.invalid');
    if (url.pathname === '/token') {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: this.token }));
      return;
    }
    const storage = /^\/storage\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
    if (storage?.[1] !== undefined) {
      const blob = this.blobs.get(storage[1]);
      response.writeHead(blob === undefined ? 404 : 200).end(blob);
      return;
    }
    if (request.headers.authorization !== `Bearer ${this.token}`) {
      const challenge = `Bearer realm="${this.origin}/token",service="test-registry",scope="repository:team/allowlist:pull"`;
      response.writeHead(401, { 'www-authenticate': challenge }).end();
      return;
    }
    const manifest = /^\/v2\/team\/allowlist\/manifests\/(.+)$/.exec(url.pathname);
    if (manifest?.[1] !== undefined) {
      const reference = decodeURIComponent(manifest[1]);
      const digest = reference.startsWith('sha256:') ? reference : this.tags.get(reference);
      const body = digest === undefined ? undefined : this.manifests.get(digest);
      if (body === undefined || digest === undefined) {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': digest }).end(body);
      return;
    }
    const blob = /^\/v2\/team\/allowlist\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
    if (blob?.[1] !== undefined) {
      // Like registries backed by object storage: blobs are a redirect away, on a path without auth.
      response.writeHead(307, { location: `/storage/${blob[1]}` }).end();
      return;
    }
    response.writeHead(404).end();
  };

  /** Pushes the allowlist as a one-layer OCI artifact, tags it, and signs its manifest like cosign. */
  push(tag: string, allowlist: string, key: TestKey): string {
    const layer = Buffer.from(allowlist);
    const digest = this.manifest(tag, [{ mediaType: 'application/yaml', body: layer, annotations: { 'org.opencontainers.image.title': 'allowlist.yaml' } }]);
    this.sign(digest, digest, key);
    return digest;
  }

  /** Writes the `sha256-<digest>.sig` image whose payload names `signedDigest`. */
  sign(digest: string, signedDigest: string, key: TestKey): void {
    const payload = Buffer.from(
      JSON.stringify({
        critical: { identity: { 'docker-reference': 'registry.invalid/team/allowlist' }, image: { 'docker-manifest-digest': signedDigest }, type: 'cosign container image signature' },
        optional: null,
      }),
    );
    this.signatureImage(digest, [{ payload, annotations: { 'dev.cosignproject.cosign/signature': signBase64(key, payload) } }]);
  }

  /** Writes the `sha256-<digest>.sig` image with the given layers, one per signature. */
  signatureImage(digest: string, layers: { payload: Buffer; annotations: Record<string, string> }[]): void {
    const mediaType = 'application/vnd.dev.cosign.simplesigning.v1+json';
    this.manifest(`${digest.replace(':', '-')}.sig`, layers.map((layer) => ({ mediaType, body: layer.payload, annotations: layer.annotations })));
  }

  private manifest(tag: string, layers: { mediaType: string; body: Buffer; annotations: Record<string, string> }[]): string {
    const config = Buffer.from('{}');
    this.blobs.set(sha(config), config);
    for (const layer of layers) this.blobs.set(sha(layer.body), layer.body);
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha(config), size: config.length },
        layers: layers.map((layer) => ({ mediaType: layer.mediaType, digest: sha(layer.body), size: layer.body.length, annotations: layer.annotations })),
      }),
    );
    const digest = sha(body);
    this.manifests.set(digest, body);
    this.tags.set(tag, digest);
    return digest;
  }
}

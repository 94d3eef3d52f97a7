// A bundle published at an HTTPS URL with its signature beside it, polled with conditional GETs
// (If-None-Match / If-Modified-Since); undici 7 follows no redirects, so a 3xx is a failure.
import type { SignatureInput } from './verify-signature.js';
import { BoundedHttpClient, header, type HttpClientSettings } from './http-fetch.js';
import type { BundleSource, FetchResult } from './source.js';
import { OperatorError } from '../../errors.js';

export interface HttpsSourceSettings extends HttpClientSettings {
  readonly url: string;
  /** default URL.sig (detached) or URL.sigstore.json (bundle) */
  readonly signatureUrl?: string;
  readonly signatureKind: SignatureInput['kind'];
}

export class HttpsBundleSource implements BundleSource {
  readonly description: string;
  private readonly client: BoundedHttpClient;
  private validators: { etag?: string; lastModified?: string } = {};

  constructor(private readonly settings: HttpsSourceSettings) {
    this.description = `url ${settings.url}`;
    this.client = new BoundedHttpClient(settings);
  }

  async fetch(signal: AbortSignal): Promise<FetchResult> {
    const { url } = this.settings;
    const conditional: Record<string, string> = {};
    if (this.validators.etag !== undefined) conditional['if-none-match'] = this.validators.etag;
    if (this.validators.lastModified !== undefined) conditional['if-modified-since'] = this.validators.lastModified;
    const response = await this.client.get(url, conditional, signal);
    if (response.status === 304) return { kind: 'not_modified' };
    if (response.status !== 200) throw new OperatorError('BUNDLE_FETCH_FAILED', `${url}: HTTP ${response.status}`);
    const signatureUrl = this.settings.signatureUrl ?? `${url}${this.settings.signatureKind === 'detached' ? '.sig' : '.sigstore.json'}`;
    const signature = await this.client.get(signatureUrl, {}, signal);
    if (signature.status !== 200) throw new OperatorError('BUNDLE_FETCH_FAILED', `${signatureUrl}: HTTP ${signature.status}`);
    const etag = header(response, 'etag');
    const lastModified = header(response, 'last-modified');
    this.validators = { ...(etag === undefined ? {} : { etag }), ...(lastModified === undefined ? {} : { lastModified }) };
    return {
      kind: 'fetched',
      candidate: {
        artifact: response.body,
        evidence: { kind: 'blob', signature: { kind: this.settings.signatureKind, bytes: signature.body, source: signatureUrl } },
        origin: url,
      },
    };
  }

  /** Called when the last fetch was refused: never let a 304 vouch for content we did not accept. */
  invalidate(): void {
    this.validators = {};
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

// Anonymous token auth for OCI registries (the Docker token protocol): on a 401 Bearer challenge,
// fetch a pull token from the realm it names and retry, reusing the token until it is refused.
import type { BoundedHttpClient, HttpResponse } from './http-fetch.js';
import { header } from './http-fetch.js';
import { isRecord } from './trusted-root.js';
import { OperatorError } from '../../errors.js';

export class RegistryAuth {
  private token: string | undefined;

  constructor(
    private readonly client: BoundedHttpClient,
    private readonly repository: string,
  ) {}

  async get(url: string, headers: Record<string, string>, signal: AbortSignal): Promise<HttpResponse> {
    const first = await this.client.get(url, this.withToken(headers), signal);
    if (first.status !== 401) return first;
    const challenge = header(first, 'www-authenticate');
    if (challenge === undefined || !/^bearer\s/i.test(challenge)) throw new OperatorError('BUNDLE_FETCH_FAILED', `${url}: HTTP 401 without a Bearer challenge`);
    this.token = await this.fetchToken(parseChallenge(challenge), signal);
    return this.client.get(url, this.withToken(headers), signal);
  }

  private withToken(headers: Record<string, string>): Record<string, string> {
    return this.token === undefined ? headers : { ...headers, authorization: `Bearer ${this.token}` };
  }

  private async fetchToken(params: Record<string, string>, signal: AbortSignal): Promise<string> {
    const realm = params['realm'];
    if (realm === undefined) throw new OperatorError('BUNDLE_FETCH_FAILED', 'registry challenge names no realm');
    const url = new URL(realm);
    if (params['service'] !== undefined) url.searchParams.set('service', params['service']);
    url.searchParams.set('scope', params['scope'] ?? `repository:${this.repository}:pull`);
    const response = await this.client.get(url.toString(), {}, signal);
    if (response.status !== 200) throw new OperatorError('BUNDLE_FETCH_FAILED', `${url.origin}${url.pathname}: token request failed with HTTP ${response.status}`);
    let json: unknown;
    try {
      json = JSON.parse(response.body.toString('utf8'));
    } catch {
      throw new OperatorError('BUNDLE_FETCH_FAILED', 'registry token response is not JSON');
    }
    const token = isRecord(json) ? (json['token'] ?? json['access_token']) : undefined;
    if (typeof token !== 'string' || token === '') throw new OperatorError('BUNDLE_FETCH_FAILED', 'registry token response holds no token');
    return token;
  }
}

/** `Bearer realm="https://auth/token",service="registry",scope="repository:x:pull"` → its parameters */
export function parseChallenge(challenge: string): Record<string, string> {
  const params: Record<string, string> = {};
  for (const match of challenge.replace(/^bearer\s+/i, '').matchAll(/([a-z_]+)="([^"]*)"/gi)) {
    const [, key, value] = match;
    if (key !== undefined && value !== undefined) params[key.toLowerCase()] = value;
  }
  return params;
}

// One bounded HTTPS GET for bundle sources: TLS only, no redirects followed, a size cap enforced
// while streaming, and timeouts on headers and body, so a hostile server cannot stall or flood us.
import { request, type Dispatcher } from 'undici';
import { downloadAgent, type ParentProxies } from '../../connect/index.js';
import { isOperatorError, OperatorError } from '../../errors.js';

export interface HttpClientSettings {
  readonly maxBytes: number;
  readonly timeoutMs: number;
  /** extra trusted CA certificates (PEM), e.g. a private registry's */
  readonly ca?: string | undefined;
  /** connect.upstream_proxy: the URL's host may have to go through a parent proxy */
  readonly parents?: ParentProxies | undefined;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

export class BoundedHttpClient {
  private readonly agent: Dispatcher;

  constructor(private readonly settings: HttpClientSettings) {
    this.agent = downloadAgent(settings.parents, { timeoutMs: settings.timeoutMs, ca: settings.ca });
  }

  async get(url: string, headers: Record<string, string>, signal: AbortSignal): Promise<HttpResponse> {
    if (!url.startsWith('https://')) throw new OperatorError('BUNDLE_FETCH_FAILED', `${url}: only https:// sources are accepted`);
    let response: Awaited<ReturnType<typeof request>>;
    try {
      response = await request(url, { method: 'GET', headers, signal, dispatcher: this.agent });
    } catch (error) {
      throw new OperatorError('BUNDLE_FETCH_FAILED', `${url}: ${describe(error)}`);
    }
    const declared = Number(response.headers['content-length'] ?? Number.NaN);
    if (declared > this.settings.maxBytes) {
      discard(response.body);
      throw new OperatorError('BUNDLE_FETCH_FAILED', `${url}: ${declared} bytes declared, over the ${this.settings.maxBytes}-byte cap`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of response.body) {
        const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
        size += buffer.length;
        if (size > this.settings.maxBytes) {
          discard(response.body);
          throw new OperatorError('BUNDLE_FETCH_FAILED', `${url}: body exceeds the ${this.settings.maxBytes}-byte cap`);
        }
        chunks.push(buffer);
      }
    } catch (error) {
      if (isOperatorError(error, 'BUNDLE_FETCH_FAILED')) throw error;
      throw new OperatorError('BUNDLE_FETCH_FAILED', `${url}: ${describe(error)}`);
    }
    return { status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) };
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

export function header(response: HttpResponse, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Drops a body we refuse to read; undici reports the abort as an error that must be listened for. */
function discard(body: NodeJS.ReadableStream & { destroy(): void }): void {
  body.on('error', () => undefined);
  body.destroy();
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = 'code' in error ? ` (${String(error.code)})` : '';
    return `${error.message}${code}`;
  }
  return String(error);
}

// One conditional GET of a feed into a temporary file: ETag / If-Modified-Since (RFC 9110
// §13.1), an overall deadline, and a byte cap enforced while streaming, not after.
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { interceptors, ProxyAgent, request, type Dispatcher } from 'undici';
import { downloadAgent, type ParentProxies } from '../../connect/index.js';
import { isOperatorError, OperatorError } from '../../errors.js';

export interface Validators {
  readonly etag: string | null;
  readonly lastModified: string | null;
}

export interface DownloadRequest {
  readonly url: string;
  /** validators of the copy on disk; null forces a full download */
  readonly validators: Validators | null;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  /** where the body goes; the caller renames it into place only once it is accepted */
  readonly target: string;
  readonly dispatcher: Dispatcher;
}

export type DownloadResult = { readonly status: 'not_modified' } | { readonly status: 'downloaded'; readonly validators: Validators; readonly bytes: number };

const MAX_REDIRECTIONS = 5;

/**
 * Through sources.yaml's own `proxy` when it names one, else as connect.upstream_proxy routes
 * each feed's host (direct when it names none); follows a few redirects (feeds move to CDNs).
 */
export function feedDispatcher(proxy: string | null, parents?: ParentProxies): Dispatcher {
  const base = proxy === null ? downloadAgent(parents) : new ProxyAgent(proxy);
  return base.compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTIONS }));
}

function header(value: string | string[] | undefined): string | null {
  return typeof value === 'string' ? value : (value?.[0] ?? null);
}

export async function download(job: DownloadRequest): Promise<DownloadResult> {
  const signal = AbortSignal.timeout(job.timeoutMs);
  const headers: Record<string, string> = { 'user-agent': 'sluice-blocklist/1', accept: 'text/plain, text/csv, */*' };
  if (job.validators?.etag != null) headers['if-none-match'] = job.validators.etag;
  if (job.validators?.lastModified != null) headers['if-modified-since'] = job.validators.lastModified;
  try {
    const response = await request(job.url, { method: 'GET', headers, signal, dispatcher: job.dispatcher });
    if (response.statusCode === 304) {
      await response.body.dump();
      return { status: 'not_modified' };
    }
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw new OperatorError('BLOCKLIST_HTTP_STATUS', `HTTP ${response.statusCode} from ${job.url}`);
    }
    const declared = Number(header(response.headers['content-length']) ?? Number.NaN);
    if (declared > job.maxBytes) {
      response.body.destroy();
      throw new OperatorError('BLOCKLIST_TOO_LARGE', `${job.url} declares ${declared} bytes, over the ${job.maxBytes}-byte cap`);
    }
    let bytes = 0;
    await pipeline(
      response.body,
      async function* capped(source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          bytes += chunk.length;
          if (bytes > job.maxBytes) throw new OperatorError('BLOCKLIST_TOO_LARGE', `${job.url} sent more than the ${job.maxBytes}-byte cap`);
          yield chunk;
        }
      },
      createWriteStream(job.target),
    );
    return {
      status: 'downloaded',
      validators: { etag: header(response.headers.etag), lastModified: header(response.headers['last-modified']) },
      bytes,
    };
  } catch (error) {
    if (isOperatorError(error)) throw error;
    if (signal.aborted) throw new OperatorError('BLOCKLIST_TIMEOUT', `${job.url} did not finish within ${job.timeoutMs} ms`, { cause: error });
    const reason = error instanceof Error ? error.message : String(error);
    throw new OperatorError('BLOCKLIST_NETWORK', `${job.url}: ${reason}`, { cause: error });
  }
}

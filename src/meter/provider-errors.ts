// Refusals in each provider's own error shape, so its SDK surfaces them once, cleanly: JSON
// bodies before a call starts, and error events injected into a stream Sluice has to cut.
import type { InferenceApi, Provider } from './api-shape.js';

export interface ProviderError {
  readonly status: number;
  /** OpenAI error type/code, Anthropic error type: the machine-readable reason */
  readonly code: string;
  readonly message: string;
}

const ANTHROPIC_TYPES: Readonly<Record<number, string>> = { 400: 'invalid_request_error', 413: 'request_too_large', 429: 'rate_limit_error', 503: 'overloaded_error' };
const GEMINI_STATUS: Readonly<Record<number, string>> = { 400: 'INVALID_ARGUMENT', 413: 'INVALID_ARGUMENT', 429: 'RESOURCE_EXHAUSTED', 503: 'UNAVAILABLE' };

function errorObject(provider: Provider, error: ProviderError): Record<string, unknown> {
  switch (provider) {
    case 'openai':
      return { error: { message: error.message, type: error.code, param: null, code: error.code } };
    case 'anthropic':
      return { type: 'error', error: { type: ANTHROPIC_TYPES[error.status] ?? 'api_error', message: error.message } };
    case 'gemini':
      return { error: { code: error.status, message: error.message, status: GEMINI_STATUS[error.status] ?? 'INTERNAL' } };
  }
}

/** The whole response: JSON body, `x-should-retry: false` (SDKs would retry a 429), `retry-after` when waiting helps. */
export function errorResponse(provider: Provider, error: ProviderError, retryAfterSeconds: number | undefined): { headers: [string, string][]; body: string } {
  const body = JSON.stringify(errorObject(provider, error));
  const headers: [string, string][] = [
    ['content-type', 'application/json'],
    ['content-length', String(Buffer.byteLength(body))],
    ['x-should-retry', 'false'],
  ];
  if (retryAfterSeconds !== undefined) headers.push(['retry-after', String(retryAfterSeconds)]);
  return { headers, body };
}

/**
 * The SSE event that ends a cut stream as an error: a silent close reads as a normal end to SDKs.
 * Chat Completions streams carry `data: {"error":…}`; the Responses API and Anthropic an `error` event.
 */
export function streamErrorEvent(api: InferenceApi, provider: Provider, error: ProviderError): string {
  if (api === 'openai-responses') return `event: error\ndata: ${JSON.stringify({ type: 'error', code: error.code, message: error.message, param: null })}\n\n`;
  if (provider === 'anthropic') return `event: error\ndata: ${JSON.stringify(errorObject(provider, error))}\n\n`;
  return `data: ${JSON.stringify(errorObject(provider, error))}\n\n`;
}

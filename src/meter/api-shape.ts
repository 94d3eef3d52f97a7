// The inference APIs Sluice meters, told apart by path, and what each request says about its
// cost: model, output bound (and how to lower or inject it), choice count, streaming.

export type InferenceApi = 'openai-chat' | 'openai-completions' | 'openai-responses' | 'anthropic-messages' | 'gemini';

/** The error and event shapes an API's SDKs understand. */
export type Provider = 'openai' | 'anthropic' | 'gemini';

export function providerOf(api: InferenceApi): Provider {
  return api === 'anthropic-messages' ? 'anthropic' : api === 'gemini' ? 'gemini' : 'openai';
}

/**
 * The API a POST to `path` (query included) calls, or null when it is no metered inference call:
 * model lists, and the token-counting endpoints, which are free.
 */
export function apiOf(method: string, path: string): InferenceApi | null {
  if (method !== 'POST') return null;
  const query = path.indexOf('?');
  const bare = query < 0 ? path : path.slice(0, query);
  if (bare.endsWith('/chat/completions')) return 'openai-chat';
  if (bare.endsWith('/completions')) return 'openai-completions';
  if (bare.endsWith('/responses')) return 'openai-responses';
  if (bare.endsWith('/messages')) return 'anthropic-messages';
  if (bare.endsWith(':generateContent') || bare.endsWith(':streamGenerateContent')) return 'gemini';
  return null;
}

type Json = Record<string, unknown>;

export interface InferenceRequest {
  readonly api: InferenceApi;
  readonly model: string;
  /** the output bound the agent asked for, per choice; undefined when it set none */
  readonly outputBound: number | undefined;
  /** `n` / `candidateCount`: the bound is per choice */
  readonly choices: number;
  readonly stream: boolean;
  readonly body: Json;
}

function positiveInt(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}

function objectAt(body: Json, key: string): Json | undefined {
  const value = body[key];
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}

/** Reads a request body; throws a plain Error saying why when it is not the JSON the API takes. */
export function readRequest(api: InferenceApi, path: string, bytes: Buffer): InferenceRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error('body is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('body is not a JSON object');
  const body = parsed as Json;
  switch (api) {
    case 'openai-chat':
    case 'openai-completions':
      return {
        api,
        model: typeof body.model === 'string' ? body.model : 'unknown',
        outputBound: positiveInt(body.max_completion_tokens) ?? positiveInt(body.max_tokens),
        choices: positiveInt(body.n) ?? 1,
        stream: body.stream === true,
        body,
      };
    case 'openai-responses':
      return { api, model: typeof body.model === 'string' ? body.model : 'unknown', outputBound: positiveInt(body.max_output_tokens), choices: 1, stream: body.stream === true, body };
    case 'anthropic-messages':
      return { api, model: typeof body.model === 'string' ? body.model : 'unknown', outputBound: positiveInt(body.max_tokens), choices: 1, stream: body.stream === true, body };
    case 'gemini': {
      // The model is in the path: /v1beta/models/gemini-2.0-flash:generateContent
      const model = /\/models\/([^/:?]+):/.exec(path)?.[1] ?? 'unknown';
      const config = objectAt(body, 'generationConfig');
      return { api, model, outputBound: positiveInt(config?.maxOutputTokens), choices: positiveInt(config?.candidateCount) ?? 1, stream: path.includes(':streamGenerateContent'), body };
    }
  }
}

/**
 * Sets the output bound to `bound` per choice. Chat Completions gets `max_completion_tokens`
 * (reasoning models reject `max_tokens`) unless the agent itself used `max_tokens`.
 */
export function withOutputBound(request: InferenceRequest, bound: number): Json {
  const body: Json = { ...request.body };
  switch (request.api) {
    case 'openai-chat':
      if (body.max_tokens !== undefined && body.max_completion_tokens === undefined) body.max_tokens = bound;
      else body.max_completion_tokens = bound;
      break;
    case 'openai-completions':
      body.max_tokens = bound;
      break;
    case 'openai-responses':
      body.max_output_tokens = bound;
      break;
    case 'anthropic-messages':
      body.max_tokens = bound;
      break;
    case 'gemini':
      body.generationConfig = { ...objectAt(body, 'generationConfig'), maxOutputTokens: bound };
      break;
  }
  return body;
}

/**
 * Chat and legacy completion streams report usage only when asked (`stream_options.include_usage`).
 * Returns the body asking for it, or null when the agent asked already (or it is no such stream).
 */
export function withStreamUsage(request: InferenceRequest, body: Json): Json | null {
  if (!request.stream || (request.api !== 'openai-chat' && request.api !== 'openai-completions')) return null;
  const options = objectAt(body, 'stream_options');
  if (options?.include_usage === true) return null;
  return { ...body, stream_options: { ...options, include_usage: true } };
}

/**
 * A documented bytes-based estimate (4 bytes per token, rounded up) for input before the provider
 * reports it, and for output a provider never reported.
 */
export function estimateTokens(bytes: number): number {
  return Math.ceil(bytes / 4);
}

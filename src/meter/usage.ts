// Reads token usage out of inference responses, JSON bodies and SSE events alike, following each
// provider's rules: usage values are running or final totals, so the last value wins, never a sum.
import type { InferenceApi } from './api-shape.js';
import type { SseEvent } from './sse.js';

export interface Usage {
  readonly input: number;
  readonly output: number;
}

type Json = Record<string, unknown>;

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

function objectAt(body: unknown, key: string): Json | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const value = (body as Json)[key];
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}

/** OpenAI Chat/Completions: `cached_tokens` is already inside `prompt_tokens`. */
function openAiUsage(usage: Json | undefined): Usage | undefined {
  const input = count(usage?.prompt_tokens);
  const output = count(usage?.completion_tokens);
  return input === undefined && output === undefined ? undefined : { input: input ?? 0, output: output ?? 0 };
}

/** Responses API `usage`: input_tokens / output_tokens (reasoning tokens are inside output). */
function responsesUsage(usage: Json | undefined): Usage | undefined {
  const input = count(usage?.input_tokens);
  const output = count(usage?.output_tokens);
  return input === undefined && output === undefined ? undefined : { input: input ?? 0, output: output ?? 0 };
}

/** Gemini `usageMetadata`: total minus prompt counts thoughts too; cachedContentTokenCount is inside the prompt. */
function geminiUsage(metadata: Json | undefined): Usage | undefined {
  const input = count(metadata?.promptTokenCount);
  const total = count(metadata?.totalTokenCount);
  const candidates = count(metadata?.candidatesTokenCount);
  if (input === undefined && total === undefined && candidates === undefined) return undefined;
  const output = total !== undefined && input !== undefined ? total - input : (candidates ?? 0) + (count(metadata?.thoughtsTokenCount) ?? 0);
  return { input: input ?? 0, output };
}

/**
 * Anthropic counts: input is every kind of input token (plain, cache writes, cache reads). A
 * message_delta's fields are running totals; gaps are filled from message_start.
 */
class AnthropicCounts {
  private fields: Record<string, number> = {};

  merge(usage: Json | undefined): void {
    if (usage === undefined) return;
    for (const key of ['input_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens', 'output_tokens']) {
      const value = count(usage[key]);
      if (value !== undefined) this.fields[key] = value;
    }
  }

  usage(): Usage | undefined {
    if (Object.keys(this.fields).length === 0) return undefined;
    const field = (key: string): number => this.fields[key] ?? 0;
    return { input: field('input_tokens') + field('cache_creation_input_tokens') + field('cache_read_input_tokens'), output: field('output_tokens') };
  }
}

/** Usage of a whole JSON response body (or Gemini's JSON array stream); undefined when it has none. */
export function usageOfJson(api: InferenceApi, text: string): Usage | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  switch (api) {
    case 'openai-chat':
    case 'openai-completions':
      return openAiUsage(objectAt(body, 'usage'));
    case 'openai-responses':
      return responsesUsage(objectAt(body, 'usage'));
    case 'anthropic-messages': {
      const counts = new AnthropicCounts();
      counts.merge(objectAt(body, 'usage'));
      return counts.usage();
    }
    case 'gemini': {
      const items = Array.isArray(body) ? (body as unknown[]) : [body];
      let last: Usage | undefined;
      for (const item of items) last = geminiUsage(objectAt(item, 'usageMetadata')) ?? last;
      return last;
    }
  }
}

/** What one SSE event means for the stream. */
export interface EventReading {
  /** the usage-only chunk Sluice asked for on its own: the agent never sees it */
  readonly strip: boolean;
}

/** Follows one SSE stream's usage event by event. */
export class StreamUsage {
  private latest: Usage | undefined;
  private readonly anthropic = new AnthropicCounts();

  constructor(
    private readonly api: InferenceApi,
    /** Sluice added `include_usage`: the final usage-only chunk is its own, not the agent's */
    private readonly stripAddedUsage: boolean,
  ) {}

  read(event: SseEvent): EventReading {
    if (event.data === '' || event.data === '[DONE]') return { strip: false };
    let data: unknown;
    try {
      data = JSON.parse(event.data);
    } catch {
      return { strip: false };
    }
    switch (this.api) {
      case 'openai-chat':
      case 'openai-completions': {
        // The final usage chunk is the one whose usage is set: Azure's first chunk also has empty
        // choices (prompt filter results), so empty choices alone say nothing.
        const usage = openAiUsage(objectAt(data, 'usage'));
        if (usage === undefined) return { strip: false };
        this.latest = usage;
        const choices = (data as Json).choices;
        return { strip: this.stripAddedUsage && Array.isArray(choices) && choices.length === 0 };
      }
      case 'openai-responses': {
        const type = (data as Json).type;
        if (type === 'response.completed' || type === 'response.incomplete' || type === 'response.failed') {
          this.latest = responsesUsage(objectAt(objectAt(data, 'response'), 'usage')) ?? this.latest;
        }
        return { strip: false };
      }
      case 'anthropic-messages': {
        const type = (data as Json).type;
        if (type === 'message_start') this.anthropic.merge(objectAt(objectAt(data, 'message'), 'usage'));
        else if (type === 'message_delta') this.anthropic.merge(objectAt(data, 'usage'));
        this.latest = this.anthropic.usage() ?? this.latest;
        return { strip: false };
      }
      case 'gemini':
        this.latest = geminiUsage(objectAt(data, 'usageMetadata')) ?? this.latest;
        return { strip: false };
    }
  }

  /** The latest usage the stream reported, running or final. */
  usage(): Usage | undefined {
    return this.latest;
  }
}

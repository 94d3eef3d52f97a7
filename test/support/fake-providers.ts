// A fake model provider over real TLS on 127.0.0.1 (certificate from the test CA) answering in
// OpenAI's and Anthropic's real JSON and SSE formats, with switches for the ways providers misbehave.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { listening, type EchoReport, type Origin } from './origins.js';
import type { TestCa } from './test-ca.js';

export interface ProviderBehaviour {
  /** output tokens the "model" produces, capped by the request's bound unless ignoreBound */
  outputTokens: number;
  inputTokens: number;
  /** report no usage anywhere (JSON or stream) */
  omitUsage: boolean;
  /** keep producing past the request's max tokens (a provider bug the meter must cut) */
  ignoreBound: boolean;
  /** hold each stream open until released: for tests that race concurrent calls */
  hold: Promise<void> | undefined;
}

export interface FakeProvider extends Origin {
  readonly behaviour: ProviderBehaviour;
  /** JSON bodies received, parsed */
  readonly bodies: Record<string, unknown>[];
}

function defaults(): ProviderBehaviour {
  return { outputTokens: 5, inputTokens: 11, omitUsage: false, ignoreBound: false, hold: undefined };
}

function sse(response: ServerResponse, events: readonly { event?: string; data: unknown }[]): void {
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (const { event, data } of events) response.write(`${event === undefined ? '' : `event: ${event}\n`}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  response.end();
}

function json(response: ServerResponse, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  response.end(text);
}

function produced(behaviour: ProviderBehaviour, bound: unknown): number {
  return behaviour.ignoreBound || typeof bound !== 'number' ? behaviour.outputTokens : Math.min(bound, behaviour.outputTokens);
}

function openAiChat(behaviour: ProviderBehaviour, body: Record<string, unknown>, response: ServerResponse): void {
  const output = produced(behaviour, body.max_completion_tokens ?? body.max_tokens);
  const usage = { prompt_tokens: behaviour.inputTokens, completion_tokens: output, total_tokens: behaviour.inputTokens + output, prompt_tokens_details: { cached_tokens: 2 } };
  const base = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: body.model };
  if (body.stream !== true) {
    json(response, { id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: body.model, choices: [{ index: 0, message: { role: 'assistant', content: 'x'.repeat(output) }, finish_reason: 'stop' }], ...(behaviour.omitUsage ? {} : { usage }) });
    return;
  }
  const options = body.stream_options as { include_usage?: boolean } | undefined;
  const events: { data: unknown }[] = [
    // Azure's first chunk: empty choices, prompt filter results, usage null.
    { data: { ...base, choices: [], prompt_filter_results: [], usage: null } },
    ...Array.from({ length: output }, () => ({ data: { ...base, choices: [{ index: 0, delta: { content: 'x' }, finish_reason: null }], usage: null } })),
    { data: { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: null } },
  ];
  if (options?.include_usage === true && !behaviour.omitUsage) events.push({ data: { ...base, choices: [], usage } });
  events.push({ data: '[DONE]' });
  sse(response, events);
}

function anthropicMessages(behaviour: ProviderBehaviour, body: Record<string, unknown>, response: ServerResponse): void {
  const output = produced(behaviour, body.max_tokens);
  const startUsage = { input_tokens: behaviour.inputTokens, cache_creation_input_tokens: 3, cache_read_input_tokens: 4, output_tokens: 1 };
  const message = { id: 'msg_1', type: 'message', role: 'assistant', model: body.model, content: [] as unknown[], stop_reason: null, stop_sequence: null };
  if (body.stream !== true) {
    const usage = { ...startUsage, output_tokens: output };
    json(response, { ...message, content: [{ type: 'text', text: 'x'.repeat(output) }], stop_reason: 'end_turn', ...(behaviour.omitUsage ? {} : { usage }) });
    return;
  }
  const events: { event: string; data: unknown }[] = [
    { event: 'message_start', data: { type: 'message_start', message: { ...message, ...(behaviour.omitUsage ? {} : { usage: startUsage }) } } },
    { event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } } },
  ];
  for (let produced = 1; produced <= output; produced += 1) {
    events.push({ event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'x' } } });
    // Running totals, as Anthropic sends them (some deployments send several message_delta events).
    if (!behaviour.omitUsage && (produced % 4 === 0 || produced === output)) events.push({ event: 'message_delta', data: { type: 'message_delta', delta: { stop_reason: produced === output ? 'end_turn' : null, stop_sequence: null }, usage: { output_tokens: produced } } });
  }
  events.push({ event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } }, { event: 'message_stop', data: { type: 'message_stop' } });
  sse(response, events);
}

function openAiResponses(behaviour: ProviderBehaviour, body: Record<string, unknown>, response: ServerResponse): void {
  const output = produced(behaviour, body.max_output_tokens);
  const usage = { input_tokens: behaviour.inputTokens, output_tokens: output, total_tokens: behaviour.inputTokens + output };
  const done = { id: 'resp_1', object: 'response', status: 'completed', model: body.model, output: [{ type: 'message', id: 'msg_1', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'x'.repeat(output), annotations: [] }] }], ...(behaviour.omitUsage ? {} : { usage }) };
  if (body.stream !== true) return json(response, done);
  sse(response, [
    { event: 'response.created', data: { type: 'response.created', sequence_number: 0, response: { ...done, status: 'in_progress', output: [] } } },
    { event: 'response.output_text.delta', data: { type: 'response.output_text.delta', sequence_number: 1, item_id: 'msg_1', output_index: 0, content_index: 0, delta: 'x'.repeat(output) } },
    { event: 'response.completed', data: { type: 'response.completed', sequence_number: 2, response: done } },
  ]);
}

/** `port` 443 only inside a test's own network namespace (the transparent listener assumes it). */
export async function startFakeProvider(ca: TestCa, port = 0): Promise<FakeProvider> {
  const requests: EchoReport[] = [];
  const bodies: Record<string, unknown>[] = [];
  const behaviour = defaults();
  const server = createServer({ key: ca.key, cert: ca.cert }, (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, rawHeaders: request.rawHeaders, bodyBytes: text.length, body: text });
      const body = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
      bodies.push(body);
      const answer = (): void => {
        const path = request.url ?? '';
        if (path.endsWith('/chat/completions')) openAiChat(behaviour, body, response);
        else if (path.endsWith('/messages')) anthropicMessages(behaviour, body, response);
        else if (path.endsWith('/responses')) openAiResponses(behaviour, body, response);
        else json(response, { object: 'list', data: [] });
      };
      if (behaviour.hold === undefined) answer();
      else void behaviour.hold.then(answer);
    });
  });
  const origin = await listening(server, requests, port);
  return { ...origin, behaviour, bodies };
}

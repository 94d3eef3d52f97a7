// Runs one call with an official provider SDK the way its users set it up behind Sluice: HTTPS_PROXY
// read by undici's EnvHttpProxyAgent, the local CA trusted through NODE_EXTRA_CA_CERTS (read at
// process start, hence a child process). Prints what the SDK returned or raised as one JSON line.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { EnvHttpProxyAgent, fetch as undiciFetch } from 'undici';

export type SdkCall = 'chat' | 'chat-stream' | 'responses' | 'responses-stream' | 'messages' | 'messages-stream';

export interface SdkRequest {
  readonly call: SdkCall;
  readonly baseURL: string;
  readonly model: string;
  readonly maxTokens?: number;
}

export type SdkOutcome =
  | { readonly ok: true; readonly text: string; readonly usage: unknown; readonly chunks: number }
  | { readonly ok: false; readonly status: number | null; readonly errorClass: string; readonly message: string; readonly chunks: number };

async function call(request: SdkRequest, counted: { chunks: number }): Promise<{ text: string; usage: unknown }> {
  const dispatcher = new EnvHttpProxyAgent();
  // undici's own fetch with its EnvHttpProxyAgent: Node 20's built-in fetch bundles another undici.
  const proxied = (input: unknown, init?: Record<string, unknown>): ReturnType<typeof undiciFetch> => undiciFetch(input as string, { ...init, dispatcher } as Parameters<typeof undiciFetch>[1]);
  const fetch = proxied as unknown as typeof globalThis.fetch;
  const messages = [{ role: 'user' as const, content: 'Say hi' }];
  if (request.call.startsWith('messages')) {
    const client = new Anthropic({ apiKey: 'sk-ant-test', baseURL: request.baseURL, fetch, maxRetries: 2 });
    const params = { model: request.model, max_tokens: request.maxTokens ?? 64, messages };
    if (request.call === 'messages') {
      const message = await client.messages.create(params);
      return { text: message.content.map((block) => (block.type === 'text' ? block.text : '')).join(''), usage: message.usage };
    }
    let text = '';
    let usage: unknown = null;
    for await (const event of await client.messages.create({ ...params, stream: true })) {
      counted.chunks += 1;
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
      if (event.type === 'message_delta') usage = event.usage;
    }
    return { text, usage };
  }
  const client = new OpenAI({ apiKey: 'sk-test', baseURL: request.baseURL, fetch, maxRetries: 2 });
  const bound = request.maxTokens === undefined ? {} : { max_completion_tokens: request.maxTokens };
  switch (request.call) {
    case 'chat': {
      const completion = await client.chat.completions.create({ model: request.model, messages, ...bound });
      return { text: completion.choices[0]?.message.content ?? '', usage: completion.usage };
    }
    case 'chat-stream': {
      let text = '';
      let usage: unknown = null;
      for await (const chunk of await client.chat.completions.create({ model: request.model, messages, stream: true, ...bound })) {
        counted.chunks += 1;
        text += chunk.choices[0]?.delta.content ?? '';
        if (chunk.usage !== undefined && chunk.usage !== null) usage = chunk.usage;
      }
      return { text, usage };
    }
    case 'responses': {
      const response = await client.responses.create({ model: request.model, input: 'Say hi', ...(request.maxTokens === undefined ? {} : { max_output_tokens: request.maxTokens }) });
      return { text: response.output_text, usage: response.usage };
    }
    default: {
      let text = '';
      let usage: unknown = null;
      for await (const event of await client.responses.create({ model: request.model, input: 'Say hi', stream: true })) {
        counted.chunks += 1;
        if (event.type === 'response.output_text.delta') text += event.delta;
        if (event.type === 'response.completed') usage = event.response.usage;
      }
      return { text, usage };
    }
  }
}

const request = JSON.parse(process.argv[2] ?? '{}') as SdkRequest;
const counted = { chunks: 0 };
let outcome: SdkOutcome;
try {
  outcome = { ok: true, ...(await call(request, counted)), chunks: counted.chunks };
} catch (error) {
  const status = typeof (error as { status?: unknown }).status === 'number' ? (error as { status: number }).status : null;
  outcome = { ok: false, status, errorClass: (error as Error).constructor.name, message: (error as Error).message, chunks: counted.chunks };
}
process.stdout.write(`${JSON.stringify(outcome)}\n`);

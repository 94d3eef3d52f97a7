// The metering stage's parsing rules, table-driven: usage from each provider's JSON and SSE
// (the rules peers get wrong), SSE split across chunks, output bounds read, lowered and injected,
// and the UTC windows budgets roll over on.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { apiOf, readRequest, withOutputBound, withStreamUsage, type InferenceApi } from '../src/meter/api-shape.js';
import { InferenceHosts } from '../src/meter/inference-hosts.js';
import { SseSplitter } from '../src/meter/sse.js';
import { StreamUsage, usageOfJson } from '../src/meter/usage.js';
import { windowEnd, windowStart } from '../src/meter/windows.js';

function stream(api: InferenceApi, stripAdded: boolean, text: string): { usage: unknown; kept: string } {
  const splitter = new SseSplitter();
  const reader = new StreamUsage(api, stripAdded);
  let kept = '';
  // One byte at a time: events split anywhere must come out whole.
  for (const byte of Buffer.from(text)) {
    for (const event of splitter.push(Buffer.from([byte]))) if (!reader.read(event).strip) kept += event.raw.toString();
  }
  return { usage: reader.usage(), kept };
}

test('an SSE event whose multi-byte characters are split across chunks passes through byte for byte', () => {
  const text = 'data: {"delta":"d\u00e9j\u00e0 vu \u{1F642} \u6f22\u5b57"}\n\n';
  const bytes = Buffer.from(text, 'utf8');
  const splitter = new SseSplitter();
  const events = [];
  for (const byte of bytes) events.push(...splitter.push(Buffer.from([byte])));
  assert.equal(events.length, 1);
  assert.deepEqual(events[0]?.raw, bytes);
  assert.equal(JSON.parse(events[0]?.data ?? '').delta, 'd\u00e9j\u00e0 vu \u{1F642} \u6f22\u5b57');
});

describe('usage from streams', () => {
  const chunk = (choices: unknown[], usage: unknown): string => `data: ${JSON.stringify({ id: 'c', choices, usage })}\n\n`;

  test('OpenAI chat: the chunk with usage set is final; Azure\'s empty first chunk is not it; Sluice\'s own is stripped', () => {
    const text = chunk([], null) + chunk([{ delta: { content: 'a' } }], null) + chunk([], { prompt_tokens: 7, completion_tokens: 2, prompt_tokens_details: { cached_tokens: 5 } }) + 'data: [DONE]\n\n';
    const added = stream('openai-chat', true, text);
    assert.deepEqual(added.usage, { input: 7, output: 2 }, 'cached tokens are already inside prompt_tokens');
    assert.ok(!added.kept.includes('prompt_tokens') && added.kept.includes('[DONE]') && added.kept.startsWith('data: {"id":"c","choices":[]'));
    assert.ok(stream('openai-chat', false, text).kept.includes('prompt_tokens'), 'usage the agent asked for is kept');
  });

  test('vLLM continuous usage: the last value wins, chunks are never summed', () => {
    const text = chunk([{ delta: { content: 'a' } }], { prompt_tokens: 7, completion_tokens: 1 }) + chunk([{ delta: { content: 'b' } }], { prompt_tokens: 7, completion_tokens: 2 });
    assert.deepEqual(stream('openai-chat', false, text).usage, { input: 7, output: 2 });
  });

  test('Anthropic: message_delta totals are running, gaps filled from message_start, every input kind counted', () => {
    const text = [
      'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":10,"cache_creation_input_tokens":20,"cache_read_input_tokens":30,"output_tokens":1}}}\n\n',
      'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":4}}\n\n',
      'event: message_delta\r\ndata: {"type":"message_delta","usage":{"output_tokens":9}}\r\n\r\n',
    ].join('');
    assert.deepEqual(stream('anthropic-messages', false, text).usage, { input: 60, output: 9 });
  });

  test('Responses API: usage from response.completed, response.incomplete and response.failed', () => {
    for (const type of ['response.completed', 'response.incomplete', 'response.failed']) {
      const text = `event: ${type}\ndata: ${JSON.stringify({ type, response: { id: 'r', usage: { input_tokens: 3, output_tokens: 4 } } })}\n\n`;
      assert.deepEqual(stream('openai-responses', false, text).usage, { input: 3, output: 4 }, type);
    }
  });

  test('Gemini: usageMetadata, last value wins; thoughts count as output', () => {
    const text = `data: ${JSON.stringify({ usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 1, totalTokenCount: 6 } })}\n\ndata: ${JSON.stringify({ usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 3, thoughtsTokenCount: 4, totalTokenCount: 12, cachedContentTokenCount: 2 } })}\n\n`;
    assert.deepEqual(stream('gemini', false, text).usage, { input: 5, output: 7 });
  });
});

describe('usage from JSON bodies', () => {
  const cases: [InferenceApi, unknown, unknown][] = [
    ['openai-chat', { usage: { prompt_tokens: 1, completion_tokens: 2 } }, { input: 1, output: 2 }],
    ['openai-responses', { usage: { input_tokens: 3, output_tokens: 4 } }, { input: 3, output: 4 }],
    ['anthropic-messages', { usage: { input_tokens: 1, cache_read_input_tokens: 2, output_tokens: 3 } }, { input: 3, output: 3 }],
    ['gemini', [{ usageMetadata: { promptTokenCount: 1, totalTokenCount: 2 } }, { usageMetadata: { promptTokenCount: 1, totalTokenCount: 5 } }], { input: 1, output: 4 }],
    ['openai-chat', { choices: [] }, undefined],
  ];
  for (const [api, body, expected] of cases) {
    test(`${api}: ${JSON.stringify(body).slice(0, 60)}`, () => assert.deepEqual(usageOfJson(api, JSON.stringify(body)), expected));
  }
});

describe('requests', () => {
  test('apiOf tells the metered APIs apart and leaves token counting and model lists free', () => {
    assert.equal(apiOf('POST', '/v1/chat/completions'), 'openai-chat');
    assert.equal(apiOf('POST', '/openai/deployments/d/chat/completions?api-version=2024-10-21'), 'openai-chat');
    assert.equal(apiOf('POST', '/v1/messages'), 'anthropic-messages');
    assert.equal(apiOf('POST', '/v1/messages/count_tokens'), null);
    assert.equal(apiOf('POST', '/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse'), 'gemini');
    assert.equal(apiOf('POST', '/v1beta/models/gemini-2.0-flash:countTokens'), null);
    assert.equal(apiOf('GET', '/v1/models'), null);
  });

  test('bounds: max_completion_tokens injected for chat, the agent\'s max_tokens kept when it used it, Gemini per candidate', () => {
    const chat = readRequest('openai-chat', '/v1/chat/completions', Buffer.from('{"model":"m","n":3,"stream":true}'));
    assert.deepEqual([chat.outputBound, chat.choices, chat.stream], [undefined, 3, true]);
    assert.deepEqual(withOutputBound(chat, 10), { model: 'm', n: 3, stream: true, max_completion_tokens: 10 });
    assert.deepEqual(withStreamUsage(chat, chat.body), { model: 'm', n: 3, stream: true, stream_options: { include_usage: true } });
    const legacy = readRequest('openai-chat', '/v1/chat/completions', Buffer.from('{"model":"m","max_tokens":500}'));
    assert.deepEqual(withOutputBound(legacy, 10), { model: 'm', max_tokens: 10 });
    const gemini = readRequest('gemini', '/v1beta/models/g-1:generateContent', Buffer.from('{"generationConfig":{"candidateCount":2,"maxOutputTokens":900,"temperature":0}}'));
    assert.deepEqual([gemini.model, gemini.outputBound, gemini.choices, gemini.stream], ['g-1', 900, 2, false]);
    assert.deepEqual(withOutputBound(gemini, 40).generationConfig, { candidateCount: 2, maxOutputTokens: 40, temperature: 0 });
    assert.throws(() => readRequest('anthropic-messages', '/v1/messages', Buffer.from('[1]')), /not a JSON object/);
  });
});

test('UTC windows: hour, day and month boundaries, December into January', () => {
  const at = Date.UTC(2026, 11, 31, 23, 30);
  assert.equal(windowStart('hourly', at), Date.UTC(2026, 11, 31, 23));
  assert.equal(windowEnd('daily', at), Date.UTC(2027, 0, 1));
  assert.equal(windowEnd('monthly', at), Date.UTC(2027, 0, 1));
  assert.equal(windowStart('monthly', at), Date.UTC(2026, 11, 1));
});

test('inference hosts: exact names and strict subdomains of *.domain', () => {
  const hosts = new InferenceHosts(['api.openai.com', '*.openai.azure.com']);
  assert.deepEqual(['api.openai.com', 'x.openai.azure.com', 'a.b.openai.azure.com', 'openai.azure.com', 'evilapi.openai.com'].map((host) => hosts.has(host)), [true, true, true, false, false]);
});

// The official openai (v6) and @anthropic-ai/sdk clients behind Sluice as their users set them up
// (HTTPS_PROXY, NODE_EXTRA_CA_CERTS with the exported CA) against a fake provider over TLS:
// metering of JSON and SSE calls, clean 429s, clamped bounds, cut streams, missing usage, races.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { REPO_ROOT } from './support/cli.js';
import { startFakeProvider } from './support/fake-providers.js';
import type { SdkOutcome, SdkRequest } from './support/sdk-client.js';
import { ALLOW_LOOPBACK, startSluice, type RunningSluice } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';
import { makeTestCa } from './support/test-ca.js';
import { until } from './support/until.js';

const SDK_CLIENT = join(REPO_ROOT, 'dist', 'test', 'support', 'sdk-client.js');
const AGENTS = ['free', 'spent', 'clamped', 'cutter', 'racer', 'noisy'];

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Runs one SDK call in a child process configured like an agent: proxy and CA from the environment. */
function sdk(sluice: RunningSluice, agent: string, request: SdkRequest): Promise<SdkOutcome> {
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HTTPS_PROXY: `http://${agent}:token-${agent}@127.0.0.1:${sluice.proxyPort}`,
    NO_PROXY: '',
    NODE_EXTRA_CA_CERTS: join(sluice.stateDir, 'ca.pem'),
  };
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [SDK_CLIENT, JSON.stringify(request)], { env, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error !== null && stdout === '') reject(new Error(`${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as SdkOutcome);
    });
  });
}

async function inferenceRecords(sluice: RunningSluice, agent: string): Promise<Record<string, unknown>[]> {
  return (await sluice.auditRecords()).filter((record) => record.kind === 'inference' && record.agent === agent);
}

const BUDGETS = `inference:
  hosts: [localhost]
  models: [gpt-test, claude-test]
  budgets:
    - { agent: spent, hourly: 10 }
    - { agent: clamped, per_request: 60 }
    - { agent: cutter, per_request: 60 }
    - { agent: racer, hourly: 220 }
`;

describe('official SDKs through Sluice', () => {
  const fixture = suiteFixture(async (keep) => {
    const ca = keep(await makeTestCa(), (made) => made.remove());
    const provider = keep(await startFakeProvider(ca));
    const agents = `agents:\n${AGENTS.map((name) => `  - { name: ${name}, token_sha256: ["${sha256(`token-${name}`)}"] }`).join('\n')}\n`;
    const sluice = keep(await startSluice({ config: `${ALLOW_LOOPBACK}\n  ca_file: ${ca.caFile}\n${agents}${BUDGETS}` }));
    return { provider, sluice, base: `https://localhost:${provider.port}` };
  });

  test('openai chat completions, plain and streamed, are metered; the usage chunk Sluice asked for is not shown', async () => {
    const { sluice, base, provider } = fixture();
    const plain = await sdk(sluice, 'free', { call: 'chat', baseURL: `${base}/v1`, model: 'gpt-test', maxTokens: 50 });
    assert.deepEqual(plain.ok && { text: plain.text, usage: (plain.usage as { completion_tokens: number }).completion_tokens }, { text: 'xxxxx', usage: 5 });
    const streamed = await sdk(sluice, 'free', { call: 'chat-stream', baseURL: `${base}/v1`, model: 'gpt-test', maxTokens: 50 });
    assert.ok(streamed.ok, JSON.stringify(streamed));
    assert.equal(streamed.text, 'xxxxx');
    assert.equal(streamed.usage, null, 'the client never asked for usage, so it sees none');
    assert.equal(streamed.chunks, 7, 'Azure-style first chunk, five deltas, the finish chunk: no usage-only chunk');
    const sent = provider.bodies.at(-1) as { stream_options?: { include_usage?: boolean } };
    assert.equal(sent.stream_options?.include_usage, true);
    await until(async () => (await inferenceRecords(sluice, 'free')).length >= 2, 'two inference records');
    const [first, second] = await inferenceRecords(sluice, 'free');
    assert.deepEqual([first?.input_tokens, first?.output_tokens, second?.input_tokens, second?.output_tokens, second?.estimated], [11, 5, 11, 5, false]);
  });

  test('anthropic messages and the OpenAI Responses API, plain and streamed, count every input token kind', async () => {
    const { sluice, base } = fixture();
    const before = (await inferenceRecords(sluice, 'free')).length;
    const plain = await sdk(sluice, 'free', { call: 'messages', baseURL: base, model: 'claude-test' });
    assert.ok(plain.ok && plain.text === 'xxxxx', JSON.stringify(plain));
    const streamed = await sdk(sluice, 'free', { call: 'messages-stream', baseURL: base, model: 'claude-test' });
    assert.ok(streamed.ok && streamed.text === 'xxxxx', JSON.stringify(streamed));
    const responses = await sdk(sluice, 'free', { call: 'responses-stream', baseURL: `${base}/v1`, model: 'gpt-test' });
    assert.ok(responses.ok && responses.text === 'xxxxx', JSON.stringify(responses));
    await until(async () => (await inferenceRecords(sluice, 'free')).length >= before + 3, 'three more inference records');
    const records = (await inferenceRecords(sluice, 'free')).slice(before);
    // Anthropic input = input_tokens + cache_creation_input_tokens + cache_read_input_tokens = 11 + 3 + 4.
    assert.deepEqual(records.map((record) => [record.api, record.input_tokens, record.output_tokens]), [
      ['anthropic-messages', 18, 5],
      ['anthropic-messages', 18, 5],
      ['openai-responses', 11, 5],
    ]);
    const metrics = await (await fetch(`${sluice.adminUrl}/metrics`)).text();
    assert.match(metrics, /^sluice_inference_tokens_total\{agent="free",model="claude-test",direction="input"\} 36$/m);
  });

  test('an agent over its budget gets a 429 in the provider shape, once, without a retry or a byte upstream', async () => {
    const { sluice, base, provider } = fixture();
    const upstreamBefore = provider.requests.length;
    const openai = await sdk(sluice, 'spent', { call: 'chat', baseURL: `${base}/v1`, model: 'gpt-test', maxTokens: 50 });
    assert.deepEqual(!openai.ok && [openai.status, openai.errorClass], [429, 'RateLimitError']);
    assert.match(openai.ok ? '' : openai.message, /Token budget exceeded: agent:spent has no hourly tokens left/);
    const anthropic = await sdk(sluice, 'spent', { call: 'messages-stream', baseURL: base, model: 'claude-test' });
    assert.deepEqual(!anthropic.ok && [anthropic.status, anthropic.errorClass], [429, 'RateLimitError']);
    assert.equal(provider.requests.length, upstreamBefore);
    await until(async () => (await inferenceRecords(sluice, 'spent')).length >= 2, 'two refusals recorded');
    const records = await inferenceRecords(sluice, 'spent');
    assert.equal(records.length, 2, 'x-should-retry: false kept the SDKs from retrying');
    assert.deepEqual(records.map((record) => [record.outcome, record.limit, record.budget]), [
      ['over_budget', 'hourly', 'agent:spent'],
      ['over_budget', 'hourly', 'agent:spent'],
    ]);
  });

  test('an output bound larger than the per-request budget is lowered, and a missing one injected', async () => {
    const { sluice, base, provider } = fixture();
    const lowered = await sdk(sluice, 'clamped', { call: 'chat', baseURL: `${base}/v1`, model: 'gpt-test', maxTokens: 500 });
    assert.ok(lowered.ok, JSON.stringify(lowered));
    const sent = provider.bodies.at(-1) as { max_completion_tokens: number };
    assert.ok(sent.max_completion_tokens > 0 && sent.max_completion_tokens < 60, `sent ${sent.max_completion_tokens}`);
    const injected = await sdk(sluice, 'clamped', { call: 'chat', baseURL: `${base}/v1`, model: 'gpt-test' });
    assert.ok(injected.ok, JSON.stringify(injected));
    const second = provider.bodies.at(-1) as { max_completion_tokens?: number; max_tokens?: number };
    assert.ok(second.max_completion_tokens !== undefined && second.max_completion_tokens < 60 && second.max_tokens === undefined);
  });

  test('a stream that runs past its reservation ends with an error event the SDK raises, and is charged', async () => {
    const { sluice, base, provider } = fixture();
    provider.behaviour.ignoreBound = true;
    provider.behaviour.outputTokens = 80;
    try {
      const anthropic = await sdk(sluice, 'cutter', { call: 'messages-stream', baseURL: base, model: 'claude-test', maxTokens: 500 });
      assert.ok(!anthropic.ok, JSON.stringify(anthropic));
      assert.match(anthropic.message, /Token budget exceeded: the response ran past/);
      assert.ok(anthropic.chunks > 3, 'the stream was delivered up to the cut');
      await until(async () => (await inferenceRecords(sluice, 'cutter')).some((record) => record.outcome === 'cut'), 'cut record');
      const cut = (await inferenceRecords(sluice, 'cutter')).find((record) => record.outcome === 'cut');
      assert.equal(cut?.estimated, true);
      assert.ok(Number(cut?.output_tokens) >= Number(cut?.clamped_to), 'charged at least its reservation');
    } finally {
      provider.behaviour.ignoreBound = false;
      provider.behaviour.outputTokens = 5;
    }
  });

  test('a call with no usage is charged an estimate (JSON) or its whole reservation (stream), never zero', async () => {
    const { sluice, base, provider } = fixture();
    provider.behaviour.omitUsage = true;
    try {
      assert.ok((await sdk(sluice, 'noisy', { call: 'chat', baseURL: `${base}/v1`, model: 'gpt-test', maxTokens: 50 })).ok);
      assert.ok((await sdk(sluice, 'noisy', { call: 'messages-stream', baseURL: base, model: 'claude-test', maxTokens: 50 })).ok);
    } finally {
      provider.behaviour.omitUsage = false;
    }
    await until(async () => (await inferenceRecords(sluice, 'noisy')).length >= 2, 'two records');
    const [json, stream] = await inferenceRecords(sluice, 'noisy');
    assert.equal(json?.estimated, true);
    assert.ok(Number(json?.input_tokens) > 0 && Number(json?.output_tokens) > 0);
    assert.equal(stream?.estimated, true);
    assert.ok(Number(stream?.output_tokens) >= 50, `a stream without usage is charged its bound: ${String(stream?.output_tokens)}`);
  });

  test('concurrent calls racing a nearly spent budget cannot overshoot it: the last fitting one is clamped, the rest refused', async () => {
    const { sluice, base, provider } = fixture();
    let release = (): void => undefined;
    provider.behaviour.hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    provider.behaviour.outputTokens = 64;
    const upstreamBefore = provider.requests.length;
    try {
      // Each call reserves its input estimate plus 64: two fit the 220, a third only with its bound
      // lowered to what is left, the fourth not at all. All are in flight before any settles.
      const calls = Array.from({ length: 4 }, () => sdk(sluice, 'racer', { call: 'chat', baseURL: `${base}/v1`, model: 'gpt-test', maxTokens: 64 }));
      await until(async () => provider.requests.length === upstreamBefore + 3 && (await inferenceRecords(sluice, 'racer')).length === 1, 'three calls upstream, one refused', 60_000);
      const bounds = provider.bodies.slice(-3).map((body) => Number(body.max_completion_tokens)).sort((a, b) => a - b);
      assert.ok(bounds[0] !== undefined && bounds[0] < 64 && bounds[1] === 64 && bounds[2] === 64, `bounds sent: ${bounds.join(', ')}`);
      release();
      const outcomes = await Promise.all(calls);
      assert.equal(outcomes.filter((outcome) => outcome.ok).length, 3);
      assert.equal(outcomes.filter((outcome) => !outcome.ok && outcome.status === 429).length, 1);
    } finally {
      provider.behaviour.hold = undefined;
      provider.behaviour.outputTokens = 5;
    }
    await until(async () => (await inferenceRecords(sluice, 'racer')).length === 4, 'every call recorded');
    const report = (await sluice.sluice.budgetReport()).budgets.find((entry) => entry.subject === 'agent:racer');
    assert.ok(report !== undefined && report.windows.hourly.used <= 220, `used ${report?.windows.hourly.used}`);
    assert.equal(report?.windows.hourly.reserved, 0);
  });
});

// With otel.endpoint set, each request gets a span exported over OTLP/HTTP to a local receiver,
// continuing the agent's W3C traceparent, and its decision record carries the trace id.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { curl } from './support/curl.js';
import { startHttpOrigin } from './support/origins.js';
import { startHttpReceiver } from './support/siem-receivers.js';
import { ALLOW_LOOPBACK, startSluice } from './support/sluice.js';

interface OtlpValue {
  readonly stringValue?: string;
  readonly intValue?: number | string;
}
interface OtlpSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly status?: { readonly code?: number };
  readonly attributes: readonly { readonly key: string; readonly value: OtlpValue }[];
}
interface OtlpExport {
  readonly resourceSpans: readonly {
    readonly resource: { readonly attributes: readonly { readonly key: string; readonly value: OtlpValue }[] };
    readonly scopeSpans: readonly { readonly spans: readonly OtlpSpan[] }[];
  }[];
}

function attribute(span: OtlpSpan | undefined, key: string): string | undefined {
  const value = span?.attributes.find((entry) => entry.key === key)?.value;
  return value?.stringValue ?? (value?.intValue === undefined ? undefined : String(value.intValue));
}

test('a request span continues the agent traceparent, and the decision record names the trace', async () => {
  const collector = await startHttpReceiver(() => ({ status: 200, body: '{}' }));
  const origin = await startHttpOrigin();
  const running = await startSluice({ config: `${ALLOW_LOOPBACK}\notel:\n  endpoint: ${collector.url}/v1/traces\n  service_name: sluice-test` });
  const traceId = randomBytes(16).toString('hex');
  const parentId = randomBytes(8).toString('hex');
  try {
    const traced = await curl(['-x', running.proxyUrl, '-H', `traceparent: 00-${traceId}-${parentId}-01`, `http://127.0.0.1:${origin.port}/traced`]);
    assert.equal(traced.status, 200, traced.stderr);
    const denied = await curl(['-x', running.proxyUrl, 'http://169.254.169.254/latest/meta-data/']);
    assert.equal(denied.status, 403);
    // The agent's traceparent still reaches the origin: Sluice adds a span, it does not cut the trace.
    assert.equal(origin.requests[0]?.headers['traceparent'], `00-${traceId}-${parentId}-01`);
    await running.stop();

    const spans = collector.requests.flatMap((request) => {
      assert.equal(request.path, '/v1/traces');
      const body = JSON.parse(request.body) as OtlpExport;
      for (const resource of body.resourceSpans) assert.equal(resource.resource.attributes.find((entry) => entry.key === 'service.name')?.value.stringValue, 'sluice-test');
      return body.resourceSpans.flatMap((resource) => resource.scopeSpans.flatMap((scope) => scope.spans));
    });
    const decisions = (await running.auditRecords()).filter((record) => record.kind === 'decision');
    assert.equal(decisions.length, 2);
    const [allowed, refused] = decisions;
    assert.equal(allowed?.['trace_id'], traceId, 'the audit row links to the agent trace');
    assert.match(String(refused?.['trace_id']), /^[0-9a-f]{32}$/);
    assert.notEqual(refused?.['trace_id'], traceId, 'no traceparent: a trace of its own');

    const child = spans.find((span) => span.traceId === traceId);
    assert.equal(child?.parentSpanId, parentId);
    assert.equal(child?.name, 'sluice forward');
    assert.equal(attribute(child, 'sluice.request_id'), allowed?.['request_id']);
    assert.equal(attribute(child, 'sluice.verdict'), allowed?.['verdict']);
    assert.equal(attribute(child, 'sluice.agent'), 'anonymous');
    assert.equal(attribute(child, 'server.address'), '127.0.0.1');
    assert.equal(attribute(child, 'sluice.outcome'), 'ok');
    const refusal = spans.find((span) => span.traceId === refused?.['trace_id']);
    assert.equal(attribute(refusal, 'sluice.verdict'), 'deny');
    assert.equal(attribute(refusal, 'sluice.reason'), refused?.['reason']);
  } finally {
    await running.close();
    await origin.close();
    await collector.close();
  }
});

test('without otel.endpoint no trace id is recorded', async () => {
  const running = await startSluice();
  try {
    await curl(['-x', running.proxyUrl, 'http://169.254.169.254/']);
    const decision = (await running.auditRecords()).find((record) => record.kind === 'decision');
    assert.ok(decision !== undefined);
    assert.equal('trace_id' in decision, false);
  } finally {
    await running.close();
  }
});

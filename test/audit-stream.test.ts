// The audit stream delivers the chain to a SIEM at least once, in order and without gaps, through
// real local receivers: a JSON-lines webhook, Splunk HEC over TLS, Elastic bulk and syslog over TCP/TLS.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { configIssues } from './support/config-issues.js';
import { rawExchange } from './support/raw-http.js';
import { startHttpReceiver, startSyslogCollector, type HttpReceiver } from './support/siem-receivers.js';
import { startSluice, type AuditLine, type RunningSluice } from './support/sluice.js';
import { makeTestCa } from './support/test-ca.js';
import { until as untilDefault } from './support/until.js';

/** Deliveries wait on retries and restarts: generous on a shared, busy machine. */
const until = (condition: () => boolean | Promise<boolean>, what: string): Promise<void> => untilDefault(condition, what, 60_000);

/** Quick pacing so a test's outage and recovery take milliseconds, not the default seconds. */
const PACING = ['    batch_size: 4', '    flush_interval_ms: 20', '    retry_initial_ms: 20', '    retry_max_ms: 200'];

function streamConfig(lines: readonly string[]): string {
  return ['audit:', '  fsync: false', '  stream:', ...lines.map((line) => `    ${line}`), ...PACING].join('\n');
}

/** Real traffic: a CONNECT the guard refuses (loopback is forbidden) and a rule reload. */
async function traffic(running: RunningSluice): Promise<void> {
  const reply = await rawExchange(running.proxyPort, ['CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n']);
  assert.equal(reply.status, 403);
  await running.sluice.reload();
}

async function metric(running: RunningSluice, name: string): Promise<number> {
  const text = await (await fetch(`${running.adminUrl}/metrics`)).text();
  const value = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1];
  assert.ok(value !== undefined, `${name} is exposed`);
  return Number(value);
}

function jsonLines(body: string): AuditLine[] {
  return body.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as AuditLine);
}

/** Splunk HEC bodies are JSON objects concatenated with nothing between them. */
function concatenatedJson(body: string): unknown[] {
  const values: unknown[] = [];
  let depth = 0;
  let start = 0;
  let inString = false;
  for (let index = 0; index < body.length; index += 1) {
    const char = body[index];
    if (inString) {
      if (char === '\\') index += 1;
      else if (char === '"') inString = false;
    } else if (char === '"') inString = true;
    else if (char === '{') depth += 1;
    else if (char === '}' && --depth === 0) {
      values.push(JSON.parse(body.slice(start, index + 1)));
      start = index + 1;
    }
  }
  assert.equal(body.slice(start).trim(), '', 'nothing after the last event');
  return values;
}

/** Delivered seqs must never skip ahead of what was delivered before (resends are fine). */
function assertNoGap(seqs: readonly number[], through: number): void {
  let highest = 0;
  for (const seq of seqs) {
    assert.ok(seq <= highest + 1, `seq ${seq} delivered after only 1..${highest}`);
    highest = Math.max(highest, seq);
  }
  assert.equal(highest, through);
}

function lastSeq(records: readonly AuditLine[]): number {
  return Number(records.at(-1)?.['seq']);
}

async function allDelivered(running: RunningSluice, delivered: () => readonly number[]): Promise<AuditLine[]> {
  const records = await running.auditRecords();
  await until(() => delivered().includes(lastSeq(records)), `seq ${lastSeq(records)} delivered`);
  await until(async () => (await metric(running, 'sluice_audit_stream_lag_records')) === 0, 'no lag');
  return records;
}

test('a webhook that is down while Sluice restarts receives every record once, in order, from where it stopped', async () => {
  const receiver = await startHttpReceiver();
  const config = streamConfig(['type: webhook', `url: ${receiver.url}/ingest`]);
  let running = await startSluice({ config });
  const delivered = (): number[] => receiver.accepted.flatMap((request) => jsonLines(request.body).map((record) => Number(record['seq'])));
  try {
    await until(() => delivered().length > 0, 'the start record delivered');
    assert.equal(receiver.accepted[0]?.headers['content-type'], 'application/x-ndjson');
    assert.equal(receiver.accepted[0]?.path, '/ingest');
    receiver.down = true;
    for (let round = 0; round < 3; round += 1) await traffic(running);
    await until(async () => (await metric(running, 'sluice_audit_stream_errors_total')) >= 2, 'deliveries failing');
    assert.ok((await metric(running, 'sluice_audit_stream_lag_records')) > 0);
    const before = delivered().length;
    // Restarted while the SIEM is still down: the records wait in the audit file, the cursor on disk.
    await running.stop();
    running = await startSluice({ dir: running.dir, config });
    await traffic(running);
    await until(() => receiver.requests.length > receiver.accepted.length + 2, 'the restarted Sluice retrying');
    assert.equal(delivered().length, before);
    receiver.down = false;
    const records = await allDelivered(running, delivered);
    // Nothing was acknowledged twice: every 503 batch was resent, every 200 batch never again.
    assert.deepEqual(delivered(), records.map((record) => Number(record['seq'])));
    const received = receiver.accepted.flatMap((request) => jsonLines(request.body));
    assert.deepEqual(received.map((record) => record['hash']), records.map((record) => record['hash']));
    assert.ok(received.some((record) => record.kind === 'decision' && record['verdict'] === 'deny'));
    assert.ok((await metric(running, 'sluice_audit_stream_sent_total')) > 0);
    const cursor = JSON.parse(await readFile(join(running.stateDir, 'audit-stream.cursor'), 'utf8')) as { seq: number; hash: string };
    assert.deepEqual(cursor, { seq: lastSeq(records), hash: records.at(-1)?.['hash'] });
  } finally {
    await running.close();
    await receiver.close();
  }
});

test('a clean stop sends the stop record and its checkpoint, and the next start resumes after them', async () => {
  const receiver = await startHttpReceiver();
  const config = streamConfig(['type: webhook', `url: ${receiver.url}/`]);
  let running = await startSluice({ config });
  const delivered = (): AuditLine[] => receiver.accepted.flatMap((request) => jsonLines(request.body));
  try {
    await until(() => delivered().length > 0, 'the start record delivered');
    await running.stop();
    assert.deepEqual(delivered().slice(-2).map((record) => record.kind), ['stop', 'checkpoint']);
    const stopSeq = Number(delivered().at(-1)?.['seq']);
    running = await startSluice({ dir: running.dir, config });
    await until(() => delivered().at(-1)?.kind === 'start', 'the second start record delivered');
    assert.deepEqual(delivered().map((record) => Number(record['seq'])), Array.from({ length: stopSeq + 1 }, (_, index) => index + 1));
  } finally {
    await running.close();
    await receiver.close();
  }
});

test('Splunk HEC over TLS: the event endpoint, the token from a file, events concatenated, the test CA trusted', async () => {
  const ca = await makeTestCa();
  const receiver = await startHttpReceiver(() => ({ status: 200, body: '{"text":"Success","code":0}' }), ca);
  const dir = await mkdtemp(join(tmpdir(), 'sluice-test-'));
  await writeFile(join(dir, 'hec-token'), '0b5e-hec-token\n');
  const running = await startSluice({ dir, config: streamConfig(['type: splunk_hec', `url: ${receiver.url}`, 'token: { file: hec-token }', `ca_file: ${ca.caFile}`, 'index: agents']) });
  try {
    await traffic(running);
    const delivered = (): number[] =>
      receiver.accepted.flatMap((request) => concatenatedJson(request.body).map((event) => Number((event as { event: AuditLine }).event['seq'])));
    const records = await allDelivered(running, delivered);
    assertNoGap(delivered(), lastSeq(records));
    const first = receiver.accepted[0];
    assert.equal(first?.path, '/services/collector/event');
    assert.equal(first?.headers.authorization, 'Splunk 0b5e-hec-token');
    const event = concatenatedJson(first?.body ?? '')[0] as { time: number; sourcetype: string; index: string; event: AuditLine };
    assert.equal(event.sourcetype, 'sluice:audit');
    assert.equal(event.index, 'agents');
    assert.equal(event.time, Date.parse(String(event.event['ts'])) / 1000);
  } finally {
    await running.close();
    await receiver.close();
    await ca.remove();
  }
});

test('a receiver whose certificate is not trusted gets nothing: every attempt fails and is counted', async () => {
  const ca = await makeTestCa();
  const receiver = await startHttpReceiver(() => ({ status: 200, body: '{}' }), ca);
  const running = await startSluice({ config: streamConfig(['type: webhook', `url: ${receiver.url}/`]) });
  try {
    await until(async () => (await metric(running, 'sluice_audit_stream_errors_total')) >= 2, 'TLS failures counted');
    assert.equal(receiver.requests.length, 0);
    assert.ok(running.logs.some((line) => line['msg'] === 'audit stream delivery failed; the records wait in the audit file and are retried' && /certificate/i.test(JSON.stringify(line['err']))));
  } finally {
    await running.close();
    await receiver.close();
    await ca.remove();
  }
});

/** An Elastic stand-in: `create` stores a new _id (201) and answers 409 for one it has; the first answer is lost. */
function elasticBulk(stored: Map<string, AuditLine>): (request: { body: string }) => { status: number; body: string } {
  let answered = 0;
  return (request) => {
    const lines = request.body.split('\n').filter((line) => line !== '');
    const items: unknown[] = [];
    for (let index = 0; index < lines.length; index += 2) {
      const action = JSON.parse(lines[index] ?? '') as { create: { _index: string; _id: string } };
      const id = action.create._id;
      const exists = stored.has(id);
      if (!exists) stored.set(id, JSON.parse(lines[index + 1] ?? '') as AuditLine);
      items.push({ create: exists ? { _index: action.create._index, _id: id, status: 409, error: { type: 'version_conflict_engine_exception', reason: 'document already exists' } } : { _index: action.create._index, _id: id, status: 201 } });
    }
    answered += 1;
    // The first bulk is stored, but its answer is lost (a proxy's 502): Sluice must resend it.
    if (answered === 1) return { status: 502, body: 'bad gateway' };
    return { status: 200, body: JSON.stringify({ errors: items.some((item) => (item as { create: { status: number } }).create.status !== 201), items }) };
  };
}

test('Elastic bulk: a resent batch answers 409, which counts as delivered; each record is stored once under its hash', async () => {
  const stored = new Map<string, AuditLine>();
  const receiver: HttpReceiver = await startHttpReceiver(elasticBulk(stored));
  const running = await startSluice({ config: streamConfig(['type: elastic', `url: ${receiver.url}/`, 'index: sluice-audit', 'api_key: { env: ES_API_KEY }']), env: { ES_API_KEY: 'a2V5OnNlY3JldA==' } });
  try {
    await traffic(running);
    const records = await allDelivered(running, () => [...stored.values()].map((record) => Number(record['seq'])));
    assert.equal(stored.size, records.length);
    for (const record of records) assert.equal(stored.get(String(record['hash']))?.['seq'], record['seq']);
    assert.equal(await metric(running, 'sluice_audit_stream_errors_total'), 1);
    assert.equal(receiver.requests[0]?.path, '/_bulk');
    assert.equal(receiver.requests[0]?.headers.authorization, 'ApiKey a2V5OnNlY3JldA==');
    assert.ok(receiver.requests[1]?.body.includes('"_id"'));
    assert.equal(stored.get(String(records[0]?.['hash']))?.['@timestamp'], records[0]?.['ts']);
  } finally {
    await running.close();
    await receiver.close();
  }
});

test('syslog over TCP: octet-counted RFC 5424 frames; a collector down for a while misses nothing', async () => {
  const collector = await startSyslogCollector();
  const running = await startSluice({ config: streamConfig(['type: syslog', `address: 127.0.0.1:${collector.port}`]) });
  const delivered = (): number[] => collector.messages.map((message) => message.record.seq);
  try {
    await until(() => delivered().length > 0, 'the start record delivered');
    await collector.stop();
    for (let round = 0; round < 3; round += 1) await traffic(running);
    await until(async () => (await metric(running, 'sluice_audit_stream_errors_total')) >= 2, 'deliveries failing');
    await collector.start();
    const records = await allDelivered(running, delivered);
    assertNoGap(delivered(), lastSeq(records));
    assert.deepEqual(collector.malformed, []);
    const deny = collector.messages.find((message) => message.record['verdict'] === 'deny');
    assert.equal(deny?.pri, 16 * 8 + 4, 'local0.warning for a denial');
    assert.equal(deny?.msgId, 'decision');
    assert.equal(deny?.hostname, hostname());
    assert.equal(deny?.appName, 'sluice');
    assert.equal(deny?.timestamp, deny?.record['ts']);
    assert.equal(collector.messages.find((message) => message.record.kind === 'start')?.pri, 16 * 8 + 6);
  } finally {
    await running.close();
    await collector.close();
  }
});

test('syslog over TLS verifies the collector against the configured CA', async () => {
  const ca = await makeTestCa();
  const collector = await startSyslogCollector(ca);
  const running = await startSluice({ config: streamConfig(['type: syslog', `address: 127.0.0.1:${collector.port}`, 'tls: true', `ca_file: ${ca.caFile}`, 'app_name: sluice-edge']) });
  try {
    await traffic(running);
    const records = await allDelivered(running, () => collector.messages.map((message) => message.record.seq));
    assert.deepEqual(collector.messages.map((message) => message.record.hash), records.map((record) => record['hash']));
    assert.equal(collector.messages[0]?.appName, 'sluice-edge');
  } finally {
    await running.close();
    await collector.close();
    await ca.remove();
  }
});

test('a receiver that never answers slows no request: the proxy answers while the records wait', async () => {
  // Accepts the connection and reads, but never responds: each delivery waits for timeout_ms.
  const hang = createServer((socket) => socket.resume());
  await new Promise<void>((resolve) => hang.listen(0, '127.0.0.1', resolve));
  const port = (hang.address() as { port: number }).port;
  const running = await startSluice({ config: [streamConfig(['type: webhook', `url: http://127.0.0.1:${port}/`]), '    timeout_ms: 60000'].join('\n') });
  try {
    for (let round = 0; round < 10; round += 1) await traffic(running);
    assert.ok((await metric(running, 'sluice_audit_stream_lag_records')) >= 20);
    assert.equal(await metric(running, 'sluice_audit_stream_sent_total'), 0);
    // Nor does it hold the shutdown beyond its short flush deadline (the test would time out).
    await running.stop();
  } finally {
    await running.close();
    await new Promise<void>((resolve) => hang.close(() => resolve()));
  }
});

test('a stream configuration error names its line and field; a missing secret stops the start', async () => {
  assert.match(configIssues('audit:\n  stream:\n    type: kafka\n    url: http://x/\n'), /sluice\.yaml:3:\d+: audit\.stream\.type/);
  assert.match(configIssues('audit:\n  stream:\n    type: splunk_hec\n    url: https://splunk:8088\n    token: { file: a, env: B }\n'), /sluice\.yaml:5:\d+: audit\.stream\.token: give exactly one of file and env/);
  assert.match(configIssues('audit:\n  stream:\n    type: webhook\n    url: https://user:pw@siem/\n'), /sluice\.yaml:4:\d+: audit\.stream\.url: expected an http/);
  const dir = await mkdtemp(join(tmpdir(), 'sluice-test-'));
  try {
    await assert.rejects(
      startSluice({ dir, config: streamConfig(['type: splunk_hec', 'url: https://127.0.0.1:1', 'token: { env: HEC_TOKEN }']) }),
      (error: Error) => /audit\.stream\.token\.env: the environment variable HEC_TOKEN is not set/.test(error.message) && 'code' in error && error.code === 'CONFIG_INVALID',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an audit file replaced while Sluice was stopped restarts the stream at seq 1, saying why', async () => {
  const receiver = await startHttpReceiver();
  const config = streamConfig(['type: webhook', `url: ${receiver.url}/`]);
  let running = await startSluice({ config });
  const delivered = (): AuditLine[] => receiver.accepted.flatMap((request) => jsonLines(request.body));
  try {
    await traffic(running);
    await running.stop();
    const before = delivered().length;
    assert.ok(before >= 4);
    await rm(join(running.stateDir, 'audit.jsonl'));
    running = await startSluice({ dir: running.dir, config });
    await until(() => delivered().length > before, 'the new chain delivered');
    assert.deepEqual(delivered().slice(before).map((record) => [record['seq'], record.kind]), [[1, 'start']]);
    assert.ok(running.logs.some((line) => line['msg'] === 'audit stream cursor unusable; resending the chain from seq 1' && /beyond the chain's last record 0/.test(String(line['why']))));
  } finally {
    await running.close();
    await receiver.close();
  }
});

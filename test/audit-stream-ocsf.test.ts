// `audit.stream.format: ocsf`: the webhook receives OCSF 1.8.0 events, one per line, each valid
// against its class's JSON Schema; records OCSF has no class for are skipped, the cursor moves on.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { curl } from './support/curl.js';
import { ocsfValidator, readOcsfSchema, type OcsfValidate } from './support/ocsf-validator.js';
import { startHttpOrigin } from './support/origins.js';
import { startHttpReceiver } from './support/siem-receivers.js';
import { ALLOW_LOOPBACK, startSluice, type RunningSluice } from './support/sluice.js';
import { until as untilDefault } from './support/until.js';

const until = (condition: () => boolean | Promise<boolean>, what: string): Promise<void> => untilDefault(condition, what, 60_000);

const validators: ReadonlyMap<number, OcsfValidate> = new Map([
  [4001, ocsfValidator(await readOcsfSchema('network_activity'))],
  [4002, ocsfValidator(await readOcsfSchema('http_activity'))],
  [4003, ocsfValidator(await readOcsfSchema('dns_activity'))],
]);

type OcsfEvent = Record<string, unknown> & { readonly class_uid: number; readonly activity_id: number; readonly unmapped: { readonly seq: number; readonly hash: string } };

async function metric(running: RunningSluice, name: string): Promise<number> {
  const text = await (await fetch(`${running.adminUrl}/metrics`)).text();
  const value = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1];
  assert.ok(value !== undefined, `${name} is exposed`);
  return Number(value);
}

test('a webhook with format ocsf receives valid OCSF events for the decisions only, and the cursor passes the rest', async () => {
  const receiver = await startHttpReceiver();
  const origin = await startHttpOrigin();
  const config = [
    ALLOW_LOOPBACK,
    'audit:',
    '  fsync: false',
    '  stream:',
    '    type: webhook',
    `    url: ${receiver.url}/ocsf`,
    '    format: ocsf',
    '    batch_size: 4',
    '    flush_interval_ms: 20',
    '    retry_initial_ms: 20',
    '    retry_max_ms: 200',
  ].join('\n');
  const running = await startSluice({ config, rules: { 'deny.yaml': 'rules:\n  - id: deny-port-one\n    action: deny\n    hosts: [localhost]\n    ports: [1]\n' } });
  const events = (): OcsfEvent[] => receiver.accepted.flatMap((request) => request.body.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as OcsfEvent));
  try {
    assert.equal((await curl(['-x', running.proxyUrl, `http://127.0.0.1:${origin.port}/get`])).status, 200);
    assert.equal((await curl(['-x', running.proxyUrl, '-X', 'POST', '-d', 'x=1', `http://127.0.0.1:${origin.port}/post`])).status, 200);
    assert.equal((await curl(['-x', running.proxyUrl, 'http://localhost:1/denied'])).status, 403);
    await running.sluice.reload();
    const records = await running.auditRecords();
    const last = records.at(-1);
    assert.ok(last !== undefined);
    // The last record is a reload, which OCSF has no class for: its batch may send nothing at all.
    await until(async () => (await metric(running, 'sluice_audit_stream_lag_records')) === 0, 'no lag');
    const cursor = JSON.parse(await readFile(join(running.stateDir, 'audit-stream.cursor'), 'utf8')) as { seq: number };
    assert.ok(cursor.seq >= Number(last['seq']), 'the cursor passed the records that map to nothing');
    const received = events();
    assert.equal(receiver.accepted[0]?.headers['content-type'], 'application/x-ndjson');
    for (const event of received) {
      const validate = validators.get(event.class_uid);
      assert.ok(validate !== undefined, `class_uid ${event.class_uid} is one of the three mapped classes`);
      assert.deepEqual(validate(event).map((error) => `${error.instancePath} ${error.keyword} ${error.message ?? ''}`), [], JSON.stringify(event));
    }
    const decisions = records.filter((record) => record.kind === 'decision');
    assert.deepEqual(received.map((event) => event.unmapped.seq), decisions.map((record) => record['seq']), 'one event per decision, in order');
    assert.deepEqual(received.map((event) => [event.class_uid, event.activity_id, event['action_id']]), [[4002, 3, 1], [4002, 6, 1], [4002, 3, 2]]);
    assert.ok(receiver.accepted.every((request) => request.body !== ''), 'a batch with nothing to send is not posted');
  } finally {
    await running.close();
    await receiver.close();
    await origin.close();
  }
});

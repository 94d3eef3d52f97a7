// `sluice audit export`: JSON lines, CSV and OCSF out of a real chain, filtered by time, agent and
// verdict; every OCSF event is validated against the JSON Schema of its class (Ajv), not spot-checked.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decisionEntry, dnsEntry, dnsSummaryEntry, tunnelScreenEntry, type AuditEntry, type DecisionFacts } from '../src/audit/kinds.js';
import { loadSigningKeys } from '../src/audit/signing-key.js';
import { AuditTrail } from '../src/audit/trail.js';
import { runSluice } from './support/cli.js';
import { curl } from './support/curl.js';
import { ManualTimer } from './support/manual-timer.js';
import { ocsfValidator, readOcsfSchema, type OcsfValidate } from './support/ocsf-validator.js';
import { startHttpOrigin, startHttpsOrigin } from './support/origins.js';
import { ALLOW_LOOPBACK, startSluice } from './support/sluice.js';
import { makeTestCa } from './support/test-ca.js';

const root = await mkdtemp(join(tmpdir(), 'sluice-export-'));
after(() => rm(root, { recursive: true, force: true }));

const validators: ReadonlyMap<number, OcsfValidate> = new Map([
  [4001, ocsfValidator(await readOcsfSchema('network_activity'))],
  [4002, ocsfValidator(await readOcsfSchema('http_activity'))],
  [4003, ocsfValidator(await readOcsfSchema('dns_activity'))],
]);

type OcsfEvent = Record<string, unknown> & { readonly class_uid: number; readonly activity_id: number; readonly type_uid: number };

/** Every line of an OCSF export, each one validated against its class's schema. */
function validated(stdout: string): OcsfEvent[] {
  const events = stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as OcsfEvent);
  for (const event of events) {
    const validate = validators.get(event.class_uid);
    assert.ok(validate !== undefined, `class_uid ${event.class_uid} is one of the three mapped classes`);
    assert.deepEqual(validate(event).map((error) => `${error.instancePath} ${error.keyword} ${error.message ?? ''}`), [], JSON.stringify(event));
  }
  return events;
}

const TOKEN = 'export-test-token';

test('a real proxy run exports as OCSF events that all validate, HTTP Connect and method activities included', async () => {
  const ca = await makeTestCa();
  const http = await startHttpOrigin();
  const https = await startHttpsOrigin(ca);
  const sluice = await startSluice({
    config: `${ALLOW_LOOPBACK}\nagents:\n  - { name: builder, token_sha256: ["${createHash('sha256').update(TOKEN).digest('hex')}"] }`,
    rules: { 'deny.yaml': 'rules:\n  - id: deny-port-one\n    action: deny\n    hosts: [localhost]\n    ports: [1]\n' },
  });
  try {
    const auth = ['-U', `builder:${TOKEN}`];
    assert.equal((await curl(['-x', sluice.proxyUrl, ...auth, `http://127.0.0.1:${http.port}/get`])).status, 200);
    assert.equal((await curl(['-x', sluice.proxyUrl, ...auth, '-X', 'POST', '-d', 'x=1', `http://127.0.0.1:${http.port}/post`])).status, 200);
    assert.equal((await curl(['-x', sluice.proxyUrl, ...auth, '-X', 'PROPFIND', `http://127.0.0.1:${http.port}/dav`])).status, 200);
    assert.equal((await curl(['-x', sluice.proxyUrl, ...auth, 'http://localhost:1/denied'])).status, 403);
    assert.equal((await curl(['-x', sluice.proxyUrl, ...auth, '--cacert', ca.caFile, `https://localhost:${https.port}/tunnel`])).status, 200);
    assert.equal((await curl(['-x', sluice.proxyUrl, `http://127.0.0.1:${http.port}/anonymous`])).status, 200);
  } finally {
    await sluice.stop();
    await http.close();
    await https.close();
    await ca.remove();
  }
  const exported = await runSluice(['audit', 'export', '--format', 'ocsf', sluice.stateDir]);
  assert.equal(exported.code, 0, exported.stderr);
  const events = validated(exported.stdout);
  const activities = events.map((event) => [event.class_uid, event.activity_id, (event['http_request'] as { http_method?: string } | undefined)?.http_method]);
  assert.deepEqual(activities, [[4002, 3, 'GET'], [4002, 6, 'POST'], [4002, 99, 'PROPFIND'], [4002, 3, 'GET'], [4002, 1, 'CONNECT'], [4002, 3, 'GET']]);
  const denied = events[3];
  assert.deepEqual([denied?.['action_id'], denied?.['disposition_id'], denied?.['status_code'], denied?.['firewall_rule']], [2, 2, 'rule_deny', { uid: 'deny-port-one', name: 'deny-port-one' }]);
  assert.deepEqual(events[0]?.['actor'], { user: { name: 'builder', uid: 'builder' } });
  assert.deepEqual((events[0]?.['metadata'] as { profiles: string[] }).profiles, ['security_control', 'host']);
  // Unidentified clients admitted by anonymous.allow are audited as the agent "anonymous".
  assert.deepEqual(events[5]?.['actor'], { user: { name: 'anonymous', uid: 'anonymous' } });
  for (const event of events) {
    const unmapped = event['unmapped'] as { seq: number; hash: string };
    assert.ok(Number.isInteger(unmapped.seq) && /^[0-9a-f]{64}$/.test(unmapped.hash), 'seq and hash of the record ride in unmapped');
  }

  const jsonl = await runSluice(['audit', 'export', '--format', 'jsonl', '--agent', 'builder', '--verdict', 'deny', sluice.stateDir]);
  assert.equal(jsonl.code, 0, jsonl.stderr);
  const rows = jsonl.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.deepEqual(rows.map((row) => [row['kind'], row['host'], row['verdict']]), [['decision', 'localhost', 'deny']]);
  await rm(sluice.dir, { recursive: true, force: true });
});

const facts = (overrides: Partial<DecisionFacts>): DecisionFacts => ({
  id: 'req-1', kind: 'forward', ingress: 'explicit', client: '192.0.2.7:40100', method: 'GET',
  destination: { host: 'api.example', port: 443 }, agent: { name: 'builder', via: 'token', mode: 'enforce' },
  decision: { ruleId: 'r1' }, bundleVersion: null, ...overrides,
});

/** Every shape a record can take on its way to OCSF, including those only transparent and DNS listeners write. */
const SYNTHETIC: readonly AuditEntry[] = [
  decisionEntry(facts({ kind: 'tunnel', method: 'CONNECT' }), 'allow', 'rule_allow', ['203.0.113.5']),
  decisionEntry(facts({ method: 'DELETE', path: '/x' }), 'learn', 'learn', undefined),
  decisionEntry(facts({ method: 'PATCH', path: '=HYPERLINK("http://evil")', client: '[2001:db8::7]:5000' }), 'deny', 'no_matching_rule', undefined),
  decisionEntry(facts({ ingress: 'transparent_tls', method: 'TLS', kind: 'tunnel' }), 'allow', 'rule_allow', ['203.0.113.9']),
  decisionEntry(facts({ ingress: 'transparent_tls', method: 'TLS', kind: 'tunnel', forbidden: { addressClass: 'metadata', address: '169.254.169.254' } }), 'deny', 'destination_forbidden', undefined),
  decisionEntry(facts({ method: 'OPTIONS', client: '2001:db8::7:5000', decision: { ruleId: null } }), 'error', 'audit_unavailable', undefined),
  decisionEntry(facts({ method: 'HEAD', agent: undefined as never }), 'deny', 'anonymous_denied', undefined),
  tunnelScreenEntry('req-9', { code: 'SNI_MISMATCH', message: 'TLS server name differs from the requested host' }),
  decisionEntry(facts({ ingress: 'transparent_http', method: 'POST', path: '/upload', destination: { host: 'plain.example', port: 80 } }), 'deny', 'no_matching_rule', undefined),
  ...(['answered', 'learned', 'refused', 'suspicious', 'rate_limited', 'type_refused', 'forbidden_address', 'nxdomain', 'upstream_failed', 'unidentified', 'malformed', 'audit_unavailable'] as const).map((outcome, index) =>
    dnsEntry({ agent: index % 3 === 0 ? null : { name: 'builder', via: 'uid' }, peer: { address: '10.0.0.2', port: 5353, transport: index % 2 === 0 ? 'udp' : 'tcp' }, name: outcome === 'malformed' ? '' : `${outcome}.example`, type: 'A', outcome, removed: 0 })),
  dnsSummaryEntry(new Date('2026-03-01T00:00:00Z'), [{ agent: 'builder', peer: '10.0.0.2', outcome: 'rate_limited', count: 40 }, { agent: null, peer: '::1', outcome: 'malformed', count: 2 }], 0),
  { kind: 'stop' },
];

test('every kind of traffic record exports to a valid OCSF event of its class, with type_uid, verdict and rcode mapped', async () => {
  const dir = await mkdtemp(join(root, 'synthetic-'));
  const trail = await AuditTrail.open(join(dir, 'audit.jsonl'), { fsync: false }, {
    keys: await loadSigningKeys(dir), checkpoint: { everyRecords: 1000, everySeconds: 60 }, rotate: { maxBytes: null, daily: false },
    retain: { maxAgeDays: null, maxTotalBytes: null }, schedule: new ManualTimer().schedule,
  });
  for (const entry of SYNTHETIC) await trail.append(entry);
  await trail.close();

  for (const refuseWith of ['refused', 'nxdomain'] as const) {
    const exported = await runSluice(['audit', 'export', '--format', 'ocsf', '--dns-refuse-with', refuseWith, join(dir, 'audit.jsonl')]);
    assert.equal(exported.code, 0, exported.stderr);
    const events = validated(exported.stdout);
    // dns_summary gives one event per row; stop and checkpoint records are not traffic.
    assert.equal(events.length, SYNTHETIC.length - 1 + 1);
    for (const event of events) assert.equal(event.type_uid, event.class_uid * 100 + event.activity_id);
    const summary = (event: OcsfEvent): string => `${event.class_uid}/${event.activity_id}/${String(event['action_id'])}/${String(event['disposition_id'])}`;
    assert.deepEqual(events.slice(0, 8).map(summary), ['4002/1/1/1', '4002/2/1/1', '4002/9/2/2', '4001/1/1/1', '4001/5/2/2', '4002/5/2/27', '4002/4/2/2', '4002/1/2/2']);
    assert.deepEqual([events[2]?.['src_endpoint'], events[5]?.['src_endpoint']], [{ ip: '2001:db8::7', port: 5000 }, { ip: '2001:db8::7', port: 5000 }]);
    assert.equal(events[6]?.['actor'], undefined, 'an unidentified client has no actor');
    assert.deepEqual((events[6]?.['metadata'] as { profiles: string[] }).profiles, ['security_control']);
    assert.equal(events[4]?.['severity_id'], 3, 'a forbidden destination is Medium');
    // Redirected plain HTTP is Network Activity by its ingress; its method and path ride in unmapped.
    const transparentHttp = events[8];
    assert.deepEqual([transparentHttp?.class_uid, transparentHttp?.activity_id, transparentHttp?.type_uid, transparentHttp?.['http_request']], [4001, 5, 400105, undefined]);
    assert.deepEqual((transparentHttp?.['unmapped'] as Record<string, unknown>)?.['method'], 'POST');
    assert.deepEqual((transparentHttp?.['unmapped'] as Record<string, unknown>)?.['path'], '/upload');
    assert.deepEqual((transparentHttp?.['unmapped'] as Record<string, unknown>)?.['ingress'], 'transparent_http');
    assert.deepEqual(events[4]?.['dst_endpoint'], { hostname: 'api.example', port: 443, ip: '169.254.169.254' });
    const refused = events.find((event) => (event['query'] as { hostname?: string } | undefined)?.hostname === 'refused.example');
    assert.equal(refused?.['rcode_id'], refuseWith === 'refused' ? 5 : 3);
    const failed = events.find((event) => (event['query'] as { hostname?: string } | undefined)?.hostname === 'upstream_failed.example');
    assert.deepEqual([failed?.['rcode_id'], failed?.['disposition_id']], [2, 27]);
    assert.deepEqual(events.filter((event) => event['count'] !== undefined).map((event) => [event['count'], event['src_endpoint']]), [[40, { ip: '10.0.0.2' }], [2, { ip: '::1' }]]);
  }

  const csv = await runSluice(['audit', 'export', '--format', 'csv', '--verdict', 'deny', join(dir, 'audit.jsonl')]);
  assert.equal(csv.code, 0, csv.stderr);
  const lines = csv.stdout.trim().split('\n');
  assert.equal(lines[0], 'seq,ts,kind,request_id,agent,client,method,host,port,path,verdict,reason,rule,detail,hash');
  assert.ok(lines.slice(1).every((line) => line.includes(',deny,')), 'only denials');
  assert.ok(lines.some((line) => line.includes(`"'=HYPERLINK(""http://evil"")"`)), 'a formula-looking cell is defused and quoted');

  const now = Date.now();
  const none = await runSluice(['audit', 'export', '--format', 'jsonl', '--since', new Date(now + 60_000).toISOString(), dir]);
  assert.deepEqual([none.code, none.stdout], [0, '']);
  const all = await runSluice(['audit', 'export', '--format', 'jsonl', '--since', '2020-01-01T00:00:00Z', '--until', new Date(now + 60_000).toISOString(), dir]);
  assert.equal(all.stdout.trim().split('\n').length, SYNTHETIC.length + 1, 'every record, the shutdown checkpoint included');
  const fromSeq = await runSluice(['audit', 'export', '--format', 'jsonl', '--from-seq', '5', dir]);
  assert.equal((JSON.parse(fromSeq.stdout.split('\n')[0] ?? '{}') as { seq: number }).seq, 5);
});

test('export refuses bad usage with exit 2 and a damaged record with exit 1 naming file and line', async () => {
  const usage = await runSluice(['audit', 'export', '--format', 'xml', root]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--format expects jsonl, csv or ocsf, got "xml"/);
  assert.match((await runSluice(['audit', 'export', '--format', 'csv', '--since', 'yesterday', root])).stderr, /--since expects an ISO-8601 time/);
  assert.match((await runSluice(['audit', 'export', '--format', 'csv', '--verdict', 'maybe', root])).stderr, /--verdict expects one of allow, learn, deny, error/);
  const damaged = join(root, 'damaged.jsonl');
  await writeFile(damaged, '{"kind":"stop","seq":1}\n');
  const broken = await runSluice(['audit', 'export', '--format', 'jsonl', damaged]);
  assert.equal(broken.code, 1);
  assert.match(broken.stderr, /damaged\.jsonl:1: malformed/);
});

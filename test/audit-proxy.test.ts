// The audit chain as the running proxy writes it: allowed, denied, malformed and tunnelled traffic
// each leave records whose request ids match what the agent saw and what was logged; the real
// `sluice audit verify` accepts the file across restarts and a recovered torn tail, and rejects
// a record edited with sed at its seq.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { curl } from './support/curl.js';
import { startHttpOrigin, startHttpsOrigin } from './support/origins.js';
import { rawExchange } from './support/raw-http.js';
import { runSluice } from './support/cli.js';
import { ALLOW_LOOPBACK, startSluice, type SluiceSetup } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';
import { makeTestCa } from './support/test-ca.js';

type AuditLine = Record<string, unknown> & { readonly seq: number; readonly kind: string; readonly hash: string; readonly prev: string };

const SETUP = {
  config: ALLOW_LOOPBACK,
  rules: { 'deny.yaml': 'rules:\n  - id: deny-port-one\n    action: deny\n    hosts: [localhost]\n    ports: [1]\n' },
} as const satisfies SluiceSetup;

/** Every request id the agent was shown: Sluice-Decision headers (also on CONNECT replies) and JSON error bodies. */
function shownIds(text: string): string[] {
  const ids = [...text.matchAll(/sluice-decision:[^\r\n]*request-id=([^\s;]+)/gi)].map((match) => match[1] ?? '');
  const body = /\{"error":.*\}\s*$/.exec(text);
  if (body !== null) ids.push((JSON.parse(body[0]) as { error: { request_id: string } }).error.request_id);
  return ids;
}

async function readChain(file: string): Promise<AuditLine[]> {
  const text = await readFile(file, 'utf8');
  return text.trimEnd().split('\n').map((line) => JSON.parse(line) as AuditLine);
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !condition(); waited += 20) {
    if (waited > 5_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('the audit chain through the running proxy', () => {
  const fixture = suiteFixture(async (keep) => {
    const ca = keep(await makeTestCa(), (made) => made.remove());
    const http = keep(await startHttpOrigin());
    const https = keep(await startHttpsOrigin(ca));
    const first = keep(await startSluice(SETUP));
    return { ca, http, https, first, auditFile: join(first.stateDir, 'audit.jsonl') };
  });
  /** request id → what the agent was shown for it */
  const shown = new Map<string, string>();

  test('allowed, denied, malformed and tunnelled requests each leave a record with the id the agent saw and a log line', async () => {
    const { ca, http, https, first, auditFile } = fixture();
    const proxyPort = first.proxyPort;
    const allowed = await curl(['-x', first.proxyUrl, `http://127.0.0.1:${http.port}/allowed`]);
    assert.equal(allowed.status, 200);
    const denied = await curl(['-x', first.proxyUrl, 'http://localhost:1/denied']);
    assert.equal(denied.status, 403);
    const malformed = await rawExchange(proxyPort, ['GET /origin-form HTTP/1.1\r\nHost: example.com\r\n\r\n']);
    assert.equal(malformed.status, 400);
    const tunnel = await curl(['-x', first.proxyUrl, '--cacert', ca.caFile, `https://localhost:${https.port}/tunnelled`]);
    assert.equal(tunnel.status, 200, tunnel.stderr);
    for (const [label, text] of [['allowed', allowed.headers], ['denied', denied.headers + denied.body], ['malformed', malformed.text], ['tunnel', tunnel.headers]] as const) {
      const ids = new Set(shownIds(text));
      assert.equal(ids.size, 1, `${label}: one request id shown, in header and body alike (${[...ids].join(', ')})`);
      shown.set([...ids][0] ?? '', label);
    }
    await until(() => first.logs.filter((line) => line.msg === 'close').length >= 2, 'close log lines of the allowed request and the tunnel');
    await first.stop();

    const chain = await readChain(auditFile);
    assert.deepEqual(chain.map((record) => record.seq), chain.map((_, index) => index + 1));
    const judged = chain.filter((record) => record.kind === 'decision' || record.kind === 'bad_request');
    assert.deepEqual(judged.map((record) => shown.get(String(record.request_id))), ['allowed', 'denied', 'malformed', 'tunnel']);
    for (const record of judged) {
      const message = record.kind === 'decision' ? 'decision' : 'bad request';
      assert.ok(first.logs.some((line) => line.msg === message && line.request_id === record.request_id), `a "${message}" log line names ${String(record.request_id)}`);
    }
    const byLabel = (label: string): AuditLine | undefined => judged.find((record) => shown.get(String(record.request_id)) === label);
    assert.equal(byLabel('allowed')?.verdict, 'learn');
    assert.equal(byLabel('denied')?.verdict, 'deny');
    assert.equal(byLabel('denied')?.rule, 'deny-port-one');
    assert.equal(byLabel('malformed')?.code, 'ORIGIN_FORM');
    assert.equal(byLabel('tunnel')?.request_kind, 'tunnel');
    for (const label of ['allowed', 'denied', 'tunnel']) assert.equal(byLabel(label)?.ingress, 'explicit', `${label}: reached the explicit proxy`);

    for (const label of ['allowed', 'tunnel']) {
      const id = byLabel(label)?.request_id;
      const close = chain.find((record) => record.kind === 'close' && record.request_id === id);
      assert.ok(close !== undefined, `a close record for the ${label} request`);
      // A tunnel names the address:port it dialled; forwarding names the vetted address (a pool dials).
      assert.match(String(close.upstream), label === 'tunnel' ? new RegExp(`^127\\.0\\.0\\.1:${https.port}$`) : /^127\.0\.0\.1(:\d+)?$/);
      assert.equal(close.outcome, 'ok');
      // Who and where, repeated from the decision: a SIEM attributes the bytes without a join.
      assert.deepEqual([close.agent, close.host, close.port], [byLabel(label)?.agent, byLabel(label)?.host, byLabel(label)?.port]);
      assert.ok(close.agent !== null && close.host !== null);
      assert.ok(typeof close.bytes_up === 'number' && typeof close.bytes_down === 'number' && (close.bytes_down as number) > 0, `${label}: byte counts`);
      assert.ok(typeof close.duration_ms === 'number' && close.duration_ms >= 0);
      assert.ok(close.seq > (byLabel(label)?.seq ?? Infinity), 'the close follows its decision');
    }
    assert.ok((chain.find((record) => record.kind === 'close' && record.request_id === byLabel('tunnel')?.request_id)?.bytes_up as number) > 0, 'the ClientHello went up the tunnel');
    assert.equal(chain[0]?.kind, 'start');
    assert.deepEqual(chain.slice(-2).map((record) => [record.kind, record['trigger']]), [['stop', undefined], ['checkpoint', 'shutdown']]);

    const verify = await runSluice(['audit', 'verify', auditFile]);
    assert.equal(verify.stdout, `ok: ${chain.length} records verified\nhead: seq ${chain.length} sha256 ${chain.at(-1)?.hash}\n`);
    assert.equal(verify.code, 0);
  });

  test('a restart on the same state directory continues seq and prev, and the whole file verifies', async () => {
    const { http, first, auditFile } = fixture();
    const before = await readChain(auditFile);
    const second = await startSluice({ ...SETUP, dir: first.dir });
    try {
      assert.equal((await curl(['-x', second.proxyUrl, `http://127.0.0.1:${http.port}/after-restart`])).status, 200);
    } finally {
      await second.stop();
    }
    const chain = await readChain(auditFile);
    const restart = chain[before.length];
    assert.deepEqual(chain.slice(0, before.length), before, 'earlier records are untouched');
    assert.equal(restart?.kind, 'start');
    assert.equal(restart.seq, before.length + 1);
    assert.equal(restart.prev, before.at(-1)?.hash);
    const verify = await runSluice(['audit', 'verify', auditFile]);
    assert.match(verify.stdout, new RegExp(`^ok: ${chain.length} records verified\n`));
    assert.equal(verify.code, 0);
  });

  test('a torn half line is moved aside at start, logged and recorded as audit_recovery, and the file still verifies', async () => {
    const { first, auditFile } = fixture();
    const before = await readChain(auditFile);
    const torn = Buffer.from(`{"kind":"decision","prev":"${before.at(-1)?.hash}","request_id":"torn-`);
    await appendFile(auditFile, torn);
    const third = await startSluice({ ...SETUP, dir: first.dir });
    await third.stop();
    const logged = third.logs.find((line) => line.msg === 'audit log had a torn last record; it was moved aside and recorded in the chain');
    assert.ok(logged !== undefined, 'the start logs the recovery');
    assert.equal(logged.level, 50);
    const chain = await readChain(auditFile);
    const recovery = chain[before.length];
    assert.equal(recovery?.kind, 'audit_recovery');
    assert.equal(recovery.seq, before.length + 1);
    assert.equal(recovery.prev, before.at(-1)?.hash);
    assert.equal(recovery.torn_bytes, torn.length);
    assert.equal(recovery.torn_sha256, createHash('sha256').update(torn).digest('hex'));
    assert.deepEqual(await readFile(join(first.stateDir, String(recovery.torn_file))), torn, 'the torn bytes are kept, not discarded');
    assert.deepEqual((logged.recovery as Record<string, unknown>).recordSeq, recovery.seq);
    // The recovery record is the resumed head: a start checkpoint signs it before anything else.
    assert.deepEqual([chain[before.length + 1]?.kind, chain[before.length + 1]?.['trigger']], ['checkpoint', 'start']);
    assert.equal(chain[before.length + 2]?.kind, 'start');
    const verify = await runSluice(['audit', 'verify', auditFile]);
    assert.match(verify.stdout, new RegExp(`^ok: ${chain.length} records verified\n`));
    assert.equal(verify.code, 0);
  });

  test('a record edited with sed makes verify fail at that record\'s seq', async () => {
    const { auditFile } = fixture();
    const chain = await readChain(auditFile);
    const denied = chain.find((record) => record.kind === 'decision' && record.verdict === 'deny');
    assert.ok(denied !== undefined);
    // seq n is line n: the chain starts at 1 and holds one record per line.
    await promisify(execFile)('sed', ['-i', `${denied.seq}s/"verdict":"deny"/"verdict":"allow"/`, auditFile]);
    const edited = await readChain(auditFile);
    assert.equal(edited[denied.seq - 1]?.verdict, 'allow', 'sed changed the record');
    const verify = await runSluice(['audit', 'verify', auditFile]);
    assert.match(verify.stdout, new RegExp(`^broken at seq ${denied.seq} \\(line ${denied.seq}\\): edited record \\(hash does not match its content\\)`));
    assert.equal(verify.code, 1);
  });
});

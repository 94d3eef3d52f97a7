// TLS interception of inference hosts through explicit CONNECT: the agent sees a leaf from
// Sluice's CA and its calls are metered, other hosts stay opaque tunnels, upstream TLS is verified,
// and fronting (SNI or Host naming another host) and Realtime upgrades are refused.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { connect as connectTcp } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { connect as connectTls } from 'node:tls';
import { curl } from './support/curl.js';
import { startFakeProvider } from './support/fake-providers.js';
import { startHttpsOrigin } from './support/origins.js';
import { ALLOW_LOOPBACK, startSluice } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';
import { makeTestCa } from './support/test-ca.js';
import { until } from './support/until.js';

const CHAT = JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 50 });

describe('inference interception on CONNECT', () => {
  const fixture = suiteFixture(async (keep) => {
    const ca = keep(await makeTestCa(), (made) => made.remove());
    const provider = keep(await startFakeProvider(ca));
    const opaque = keep(await startHttpsOrigin(ca));
    const config = `${ALLOW_LOOPBACK}\n  ca_file: ${ca.caFile}\ninference:\n  hosts: [localhost]\n  models: [gpt-test]\n`;
    const sluice = keep(await startSluice({ config }));
    const sluiceCa = join(sluice.dir, 'sluice-ca.pem');
    await writeFile(sluiceCa, await import('node:fs/promises').then((fs) => fs.readFile(join(sluice.stateDir, 'ca.pem'), 'utf8')));
    return { ca, provider, opaque, sluice, sluiceCa };
  });

  test('a model API call is answered through a leaf from the local CA and metered', async () => {
    const { provider, sluice, sluiceCa } = fixture();
    const url = `https://localhost:${provider.port}/v1/chat/completions`;
    const result = await curl(['-x', sluice.proxyUrl, '--cacert', sluiceCa, '-H', 'content-type: application/json', '-d', CHAT, url]);
    assert.equal(result.status, 200, result.stderr + result.body);
    assert.equal((JSON.parse(result.body) as { usage: { completion_tokens: number } }).usage.completion_tokens, 5);
    const untrusted = await curl(['-x', sluice.proxyUrl, '--cacert', fixture().ca.caFile, '-d', CHAT, url]);
    assert.equal(untrusted.exitCode, 60, 'the origin CA does not vouch for what the agent sees: Sluice terminated TLS');
    await until(async () => (await sluice.auditRecords()).some((record) => record.kind === 'inference'), 'inference record');
    const record = (await sluice.auditRecords()).find((line) => line.kind === 'inference');
    assert.deepEqual({ outcome: record?.outcome, input: record?.input_tokens, output: record?.output_tokens, estimated: record?.estimated, model: record?.model }, { outcome: 'settled', input: 11, output: 5, estimated: false, model: 'gpt-test' });
    const metrics = await (await fetch(`${sluice.adminUrl}/metrics`)).text();
    assert.match(metrics, /^sluice_inference_tokens_total\{agent="anonymous",model="gpt-test",direction="output"\} 5$/m);
  });

  test('a host that is no inference API stays an opaque tunnel', async () => {
    const { opaque, sluice, ca } = fixture();
    const result = await curl(['-x', sluice.proxyUrl, '--cacert', ca.caFile, `https://127.0.0.1:${opaque.port}/plain`]);
    assert.equal(result.status, 200, result.stderr);
  });

  test('a Host header naming another host inside the session is refused as misdirected', async () => {
    const { provider, sluice, sluiceCa } = fixture();
    const result = await curl(['-x', sluice.proxyUrl, '--cacert', sluiceCa, '-H', 'Host: origin.test', '-d', CHAT, `https://localhost:${provider.port}/v1/chat/completions`]);
    assert.equal(result.status, 421);
    assert.match(result.body, /MISDIRECTED_REQUEST/);
  });

  test('a ClientHello naming another host than the CONNECT is refused before any leaf is shown', async () => {
    const { provider, sluice } = fixture();
    const socket = connectTcp(sluice.proxyPort, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(`CONNECT localhost:${provider.port} HTTP/1.1\r\nHost: localhost:${provider.port}\r\n\r\n`);
    const [reply] = (await once(socket, 'data')) as [Buffer];
    assert.match(reply.toString(), /^HTTP\/1\.1 200 /);
    const tls = connectTls({ socket, servername: 'origin.test', rejectUnauthorized: false });
    const [error] = (await once(tls, 'error')) as [Error & { code?: string }];
    assert.match(error.code ?? error.message, /ALERT_ACCESS_DENIED|access denied/i);
    await until(async () => (await sluice.auditRecords()).some((record) => record.kind === 'tunnel_screen' && record.reason === 'sni_mismatch'), 'tunnel_screen record');
  });

  test('a Realtime WebSocket upgrade is refused with a clear error, never relayed unmetered', async () => {
    const { provider, sluice, sluiceCa } = fixture();
    const result = await curl(['-x', sluice.proxyUrl, '--cacert', sluiceCa, '-H', 'Upgrade: websocket', '-H', 'Connection: Upgrade', '-H', 'Sec-WebSocket-Version: 13', '-H', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', `https://localhost:${provider.port}/v1/realtime?model=gpt-realtime`]);
    assert.equal(result.status, 403);
    assert.match(result.body, /REALTIME_REFUSED/);
  });
});

test('upstream TLS is verified against the system store: an unknown CA fails the call, never downgraded', async (t) => {
  const ca = await makeTestCa();
  t.after(() => ca.remove());
  const provider = await startFakeProvider(ca);
  t.after(() => provider.close());
  const sluice = await startSluice({ config: `${ALLOW_LOOPBACK}\ninference:\n  hosts: [localhost]\n` });
  t.after(() => sluice.close());
  const result = await curl(['-x', sluice.proxyUrl, '--cacert', join(sluice.stateDir, 'ca.pem'), '-d', CHAT, `https://localhost:${provider.port}/v1/chat/completions`]);
  assert.equal(result.status, 502);
  assert.match(result.body, /UPSTREAM_TLS/);
  assert.equal(provider.requests.length, 0);
});

// The transparent TLS listener (where the nft guard redirects agents' port 443) hands inference
// hosts to the same interceptor as CONNECT: the agent's TLS ends at a leaf from the local CA and
// its calls are metered under the agent its socket's owner names. Runs in its own network
// namespace, where the fake provider may listen on 443 as the real one does.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { test } from 'node:test';
import { startFakeProvider } from './support/fake-providers.js';
import { insideLoopbackNamespace } from './support/netns.js';
import { ALLOW_LOOPBACK, startSluice } from './support/sluice.js';
import { makeTestCa } from './support/test-ca.js';
import { until } from './support/until.js';

if (insideLoopbackNamespace(import.meta.url)) {
  test('a redirected TLS connection to an inference host is intercepted and metered for its owner', async (t) => {
    const ca = await makeTestCa();
    t.after(() => ca.remove());
    const provider = await startFakeProvider(ca, 443);
    t.after(() => provider.close());
    const sluice = await startSluice({
      config: `${ALLOW_LOOPBACK}\n  ca_file: ${ca.caFile}\nagents:\n  - { name: ops, uids: [0] }\ninference:\n  hosts: [localhost]\n`,
      listen: { transparent_http: '127.0.0.1:0', transparent_tls: '127.0.0.1:0', dns: '127.0.0.1:0' },
    });
    t.after(() => sluice.close());
    const port = sluice.sluice.transparentTlsPort;
    assert.ok(port !== undefined);
    const trusted = await readFile(join(sluice.stateDir, 'ca.pem'), 'utf8');
    const body = JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 20 });
    // As the redirect delivers it: to Sluice's port, SNI and Host naming the provider.
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const call = request({ host: '127.0.0.1', port, servername: 'localhost', ca: trusted, method: 'POST', path: '/v1/chat/completions', headers: { host: 'localhost', 'content-type': 'application/json' } }, (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
      });
      call.on('error', reject);
      call.end(body);
    });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(provider.requests.length, 1);
    await until(async () => (await sluice.auditRecords()).some((record) => record.kind === 'inference'), 'inference record');
    const record = (await sluice.auditRecords()).find((line) => line.kind === 'inference');
    assert.deepEqual([record?.agent, record?.input_tokens, record?.output_tokens], ['ops', 11, 5]);
  });
}

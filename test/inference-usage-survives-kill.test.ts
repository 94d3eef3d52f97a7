// A real Sluice process killed with SIGKILL in the middle of metered calls: every call it had
// counted as settled (its token metric) is still charged after the restart, and the journal opens clean.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runSluice } from './support/cli.js';
import { curl } from './support/curl.js';
import { startFakeProvider } from './support/fake-providers.js';
import { freePort, spawnSluice } from './support/sluice-process.js';
import { makeTestCa } from './support/test-ca.js';
import { until } from './support/until.js';

const CHAT = JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 50 });
// The fake provider reports 11 input and 5 output tokens per call.
const PER_CALL = 16;

function settledTokens(adminPort: number): Promise<number> {
  return new Promise((resolve, reject) => {
    get(`http://127.0.0.1:${adminPort}/metrics`, (response) => {
      let text = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      response.on('end', () => {
        let sum = 0;
        for (const line of text.split('\n')) if (line.startsWith('sluice_inference_tokens_total{')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
        resolve(sum);
      });
    }).once('error', reject);
  });
}

test('a kill -9 during a burst of metered calls loses no usage Sluice had counted as settled', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-usage-kill-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ca = await makeTestCa();
  t.after(() => ca.remove());
  const provider = await startFakeProvider(ca);
  t.after(() => provider.close());
  const proxyPort = await freePort();
  const adminPort = await freePort();
  const config = join(dir, 'sluice.yaml');
  await writeFile(join(dir, 'blocklists.yaml'), 'sources: []\n');
  await writeFile(
    config,
    `listen:\n  proxy: "127.0.0.1:${proxyPort}"\n  admin: "127.0.0.1:${adminPort}"\nstate_dir: state\nrules: []\nblocklists: blocklists.yaml\n` +
      `connect:\n  allow_cidrs: [{ name: test-origins, cidr: 127.0.0.0/8 }]\n  ca_file: ${ca.caFile}\n` +
      `inference:\n  hosts: [localhost]\n  budgets:\n    - { agent: anonymous, daily: 1000000 }\n`,
  );
  const chat = (): Promise<unknown> =>
    curl(['-x', `http://127.0.0.1:${proxyPort}`, '--cacert', join(dir, 'state', 'ca.pem'), '-H', 'content-type: application/json', '-d', CHAT, `https://localhost:${provider.port}/v1/chat/completions`]);

  const first = spawnSluice(['run', '--config', config]);
  t.after(() => first.stop('SIGKILL', 1_000));
  await first.waitForLog('sluice started', 120_000);
  // A burst of concurrent calls; the kill lands once some have settled and others are in flight.
  const burst = Array.from({ length: 24 }, () => chat().catch(() => undefined));
  await until(async () => (await settledTokens(adminPort)) >= 4 * PER_CALL, 'a few calls settled', 60_000);
  const counted = await settledTokens(adminPort);
  assert.deepEqual(await first.stop('SIGKILL'), { code: null, signal: 'SIGKILL' });
  await Promise.all(burst);

  const journal = await readFile(join(dir, 'state', 'inference-usage.jsonl'), 'utf8');
  const shown = await runSluice(['budget', 'show', '--config', config, '--json']);
  assert.equal(shown.code, 0, `the journal a kill left opens clean: ${shown.stderr}\n${journal}`);
  const daily = (JSON.parse(shown.stdout) as { budgets: { windows: { daily: { used: number } } }[] }).budgets[0]?.windows.daily.used ?? 0;
  assert.ok(daily >= counted, `settled before the kill: ${counted} tokens; in the journal after it: ${daily}`);
  assert.equal(daily % PER_CALL, 0, 'whole calls only: a line the kill cut short is never half counted');

  const second = spawnSluice(['run', '--config', config]);
  t.after(() => second.stop('SIGKILL', 1_000));
  await second.waitForLog('sluice started', 120_000);
  assert.equal(((await chat()) as { status: number }).status, 200, 'the restarted Sluice meters again');
  await until(async () => (await settledTokens(adminPort)) === PER_CALL, 'the new call settled');
  const after = await runSluice(['budget', 'show', '--config', config, '--json']);
  assert.equal((JSON.parse(after.stdout) as { budgets: { windows: { daily: { used: number } } }[] }).budgets[0]?.windows.daily.used, daily + PER_CALL, 'the counts carried over the restart');
  assert.deepEqual(await second.stop('SIGTERM'), { code: 0, signal: null });
});

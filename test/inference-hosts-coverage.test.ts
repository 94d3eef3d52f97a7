// Every model API the shipped rules allow is metered: a host added to rules/default.yaml's
// `model-apis` (or any known model API another rule allows) without metering fails here, and
// `sluice check` warns an operator whose config leaves an allowed model API unmetered.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { ANONYMOUS_AGENT_NAME } from '../src/agent.js';
import { DEFAULT_INFERENCE_HOSTS } from '../src/config/schema.js';
import { destinationOf } from '../src/destination.js';
import { InferenceHosts, KNOWN_INFERENCE_HOSTS } from '../src/meter/index.js';
import { loadRuleFiles } from '../src/policy/rules.js';
import { freshDir, REPO_ROOT, runSluice } from './support/cli.js';

const DEFAULT_RULES = join(REPO_ROOT, 'rules', 'default.yaml');

test('each host of the model-apis rule is on the default inference list', async () => {
  const document = parse(await readFile(DEFAULT_RULES, 'utf8')) as { rules: { id: string; hosts: string[] }[] };
  const modelApis = document.rules.find((rule) => rule.id === 'model-apis');
  assert.ok(modelApis !== undefined && modelApis.hosts.length > 5);
  const unmetered = modelApis.hosts.filter((host) => !(DEFAULT_INFERENCE_HOSTS as readonly string[]).includes(host));
  assert.deepEqual(unmetered, [], 'allowed as model APIs but escaping metering: meter them (inference.hosts default) or take them out of model-apis');
});

test('no shipped rule allows a known model API that the default config does not meter', async () => {
  const rules = await loadRuleFiles([DEFAULT_RULES]);
  const metered = new InferenceHosts(DEFAULT_INFERENCE_HOSTS);
  const agent = { name: ANONYMOUS_AGENT_NAME, groups: [], mode: 'strict' as const, via: 'anonymous' as const };
  const escaping = KNOWN_INFERENCE_HOSTS.filter((host) => rules.firstMatch('allow', { agent, destination: destinationOf(host, 443) }) !== undefined && !metered.has(host));
  assert.deepEqual(escaping, []);
});

test('sluice check warns, without failing, when a rule allows a model API inference.hosts leaves out', async (t) => {
  const dir = await freshDir(t);
  await writeFile(join(dir, 'sluice.yaml'), `rules: [${DEFAULT_RULES}]\ninference:\n  hosts: [api.openai.com]\n`);
  const result = await runSluice(['check', join(dir, 'sluice.yaml')]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /default\.yaml: warning: rule model-apis allows api\.anthropic\.com, a model API that inference\.hosts does not meter/);
  assert.doesNotMatch(result.stderr, /allows api\.openai\.com/);
  const clean = await runSluice(['check', DEFAULT_RULES]);
  assert.equal(clean.code, 0);
  assert.equal(clean.stderr, '', 'the shipped rules with the default hosts warn about nothing');
});

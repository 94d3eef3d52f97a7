// Measures decide(), the pure policy step every request takes, on the realistic rule set (10,000
// rules, 20 of them RE2): CPU time per decision for one host asked again and again, and for hosts
// that change from one request to the next, as an agent's traffic does.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Agent } from '../src/agent.js';
import { destinationOf } from '../src/destination.js';
import { decide, type DecideArgs, type Policy } from '../src/policy/decide.js';
import { loadRuleFiles } from '../src/policy/rules.js';
import { REALISTIC_RULES, writeRealisticRules } from './support/realistic.js';

const DECISIONS = Number(process.env.DECIDE_BENCH_DECISIONS ?? 300_000);
const ORIGIN = 'origin.sluice-bench.test';
// The origin's rule is loaded last; the other two hosts match no rule (strict mode denies them).
const HOSTS = [ORIGIN, 'a.b.c.unknown.example', 'api7.nowhere.example.com'];

/** CPU nanoseconds per decision over `requests` taken in turn; throws if the verdicts are not the expected ones. */
function measure(policy: Policy, requests: readonly DecideArgs[]): number {
  const rounds = Math.ceil(DECISIONS / requests.length);
  const started = process.cpuUsage();
  let allowed = 0;
  for (let round = 0; round < rounds; round++) {
    for (const request of requests) if (decide(policy, request).verdict === 'allow') allowed++;
  }
  const used = process.cpuUsage(started);
  const expected = requests.filter((request) => request.destination.host === ORIGIN).length * rounds;
  if (allowed !== expected) throw new Error(`expected ${expected} allowed decisions, got ${allowed}: the bench measured the wrong thing`);
  return Math.round(((used.user + used.system) * 1000) / (rounds * requests.length));
}

const dir = await mkdtemp(join(tmpdir(), 'sluice-decide-bench-'));
try {
  const file = join(dir, 'rules.yaml');
  await writeRealisticRules(file, ORIGIN, 443);
  const policy: Policy = { rules: await loadRuleFiles([file]), anonymousAllowed: true };
  const agent: Agent = { name: 'bench', groups: [], mode: 'strict', via: 'anonymous' };
  const requests = HOSTS.map((host): DecideArgs => ({ agent, destination: destinationOf(host, 443), now: Date.now() }));
  const repeated = Object.fromEntries(requests.map((request) => [request.destination.host, measure(policy, [request])]));
  const alternating = measure(policy, requests);
  process.stdout.write(`${JSON.stringify({ rules: REALISTIC_RULES, decisions_per_case: DECISIONS, ns_per_decision: { repeated_host: repeated, alternating_hosts: alternating } })}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}

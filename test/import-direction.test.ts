// The layout's dependency rules, checked on every import under src/: stages import only later
// stages (ingress → identity → policy → connect → meter → audit), the shared leaves and the edges
// they may use, so no module climbs back into a stage a connection has already left.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { importCycles, importEdges, unitOf, type ImportEdge } from './support/import-graph.js';

const STAGES = ['ingress', 'identity', 'policy', 'connect', 'meter', 'audit'];
/** Wires the stages together; only the command line starts it. */
const COMPOSITION_ROOT = 'app.ts';
/** The composition of a cluster (workers: N): the primary and its proxy workers, built from the root's parts. */
const CLUSTER = 'cluster';
/** The places at the edges, and what each may import besides the leaves: no stage. */
const EDGES: Readonly<Record<string, readonly string[]>> = {
  config: [],
  obs: [],
  guard: ['config'],
  // The admin API drives the running process's policy state (approvals, modes, explain), reads the
  // meter's budgets, and audits what it does.
  admin: ['config', 'obs', 'policy', 'meter', 'audit'],
  // Opens the storage each feature defines (approvals, rate limits, budgets) for this host or a fleet.
  fleet: ['config', 'obs', 'ingress', 'policy', 'meter', 'audit'],
};
/** What every stage may use besides the stages after it. */
const SHARED = ['config', 'obs'];

/** The other modules at the root of src/ (errors, destination, agent): values every stage shares, importing none. */
function isLeaf(unit: string): boolean {
  return unit.endsWith('.ts') && unit !== COMPOSITION_ROOT;
}

/** Why `edge` breaks the rules, or null when it keeps them. */
function violation({ from, to }: ImportEdge): string | null {
  const source = unitOf(from);
  const target = unitOf(to);
  if (source === target) return null;
  if (target === 'cli') return 'nothing outside cli/ imports the command line';
  if (target === COMPOSITION_ROOT) return source === 'cli' || source === CLUSTER ? null : 'only cli/ and cluster/ start the composition root';
  if (target === CLUSTER) return source === 'cli' ? null : 'only cli/ starts a cluster';
  if (source === 'cli' || source === COMPOSITION_ROOT || source === CLUSTER) return null;
  if (isLeaf(source)) return isLeaf(target) ? null : `${source} is a leaf and imports no folder`;
  if (isLeaf(target)) return null;
  const edge = EDGES[source];
  if (edge !== undefined) return edge.includes(target) ? null : `${source}/ imports no stage and no ${target}/`;
  const at = STAGES.indexOf(source);
  if (at < 0) return `${source}/ is not a known place; add it to this test's rules`;
  if (SHARED.includes(target)) return null;
  const targetAt = STAGES.indexOf(target);
  if (targetAt < 0) return `the ${source} stage may not import ${target}/`;
  return targetAt > at ? null : `${target} comes before ${source} in the pipeline`;
}

describe('import direction under src/', () => {
  test('no stage imports a stage that comes before it, and leaves, config and obs import no stage', async () => {
    const edges = await importEdges();
    assert.ok(edges.length > 100, `only ${edges.length} imports found: is src/ where the test looks?`);
    const broken = edges.flatMap((edge) => {
      const why = violation(edge);
      return why === null ? [] : [`${edge.from} imports ${edge.to}: ${why}`];
    });
    assert.deepEqual(broken, []);
  });

  test('no modules import one another round a loop', async () => {
    assert.deepEqual(importCycles(await importEdges()), []);
    assert.deepEqual(importCycles([{ from: 'a.ts', to: 'b.ts' }, { from: 'b.ts', to: 'c.ts' }, { from: 'c.ts', to: 'a.ts' }, { from: 'c.ts', to: 'd.ts' }]), [['a.ts', 'b.ts', 'c.ts']]);
  });

  test('the rules refuse an upward import, so the check above can fail', () => {
    assert.match(violation({ from: 'policy/decide.ts', to: 'ingress/destination.ts' }) ?? '', /ingress comes before policy/);
    assert.match(violation({ from: 'connect/dial.ts', to: 'identity/identify.ts' }) ?? '', /identity comes before connect/);
    assert.match(violation({ from: 'audit/chain.ts', to: 'policy/decide.ts' }) ?? '', /policy comes before audit/);
    assert.match(violation({ from: 'destination.ts', to: 'ingress/context.ts' }) ?? '', /leaf/);
    assert.match(violation({ from: 'obs/metrics.ts', to: 'connect/dial.ts' }) ?? '', /imports no stage/);
    assert.equal(violation({ from: 'ingress/pipeline.ts', to: 'connect/index.ts' }), null);
    assert.equal(violation({ from: 'policy/decide.ts', to: 'destination.ts' }), null);
  });
});

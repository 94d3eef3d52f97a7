// The Learn store survives a reopen, writes on its own after the debounce, keeps a corrupt file
// aside; its proposals load back as rules; `sluice learn` reads it without changing it.
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { proposeRules } from '../src/policy/learn-proposal.js';
import { LearnStore } from '../src/policy/learn-store.js';
import { compileRules, loadRuleFiles, parseRuleText } from '../src/policy/rules.js';
import { decide } from '../src/policy/decide.js';
import { parseConnectTarget } from '../src/ingress/request-target.js';
import { freshDir, runSluice } from './support/cli.js';

const T0 = new Date('2026-11-01T10:00:00.000Z');
const T1 = new Date('2026-11-02T10:00:00.000Z');

describe('LearnStore', () => {
  test('keeps first_seen, last_seen and count per (host, port, agent) across a reopen', async (t) => {
    const file = join(await freshDir(t, 'sluice-learn-'), 'learn.json');
    const store = await LearnStore.open(file);
    store.record({ agent: 'builder', host: 'api.example.com', port: 443, at: T1 });
    store.record({ agent: 'builder', host: 'api.example.com', port: 443, at: T0 });
    store.record({ agent: 'builder', host: 'api.example.com', port: 80, at: T0 });
    store.record({ agent: 'other', host: 'api.example.com', port: 443, at: T0 });
    await store.close();

    const reopened = await LearnStore.open(file);
    assert.equal(reopened.corrupt, null);
    assert.deepEqual(reopened.entries(), [
      { host: 'api.example.com', port: 80, agent: 'builder', firstSeen: T0, lastSeen: T0, count: 1 },
      { host: 'api.example.com', port: 443, agent: 'builder', firstSeen: T0, lastSeen: T1, count: 2 },
      { host: 'api.example.com', port: 443, agent: 'other', firstSeen: T0, lastSeen: T0, count: 1 },
    ]);
    await reopened.close();
  });

  test('writes on its own after the debounce interval, without close()', async (t) => {
    const file = join(await freshDir(t, 'sluice-learn-'), 'learn.json');
    const store = await LearnStore.open(file, { flushMs: 50 });
    t.after(() => store.close());
    store.record({ agent: 'a', host: 'x.example.com', port: 443, at: T0 });
    await assert.rejects(readFile(file, 'utf8'), { code: 'ENOENT' });
    for (let i = 0; i < 100; i++) {
      await sleep(20);
      const text = await readFile(file, 'utf8').catch(() => '');
      if (text !== '') {
        assert.equal((JSON.parse(text) as { entries: unknown[] }).entries.length, 1);
        return;
      }
    }
    assert.fail('the store was never written');
  });

  test('moves a corrupt file aside, reports it and starts empty', async (t) => {
    const dir = await freshDir(t, 'sluice-learn-');
    const file = join(dir, 'learn.json');
    await writeFile(file, '{"version": 1, "entries": [ truncated');
    const store = await LearnStore.open(file);
    assert.ok(store.corrupt !== null);
    assert.match(store.corrupt.reason, /JSON/);
    assert.match(store.corrupt.movedTo ?? '', /learn\.json\.corrupt-\d+$/);
    assert.equal(await readFile(store.corrupt.movedTo ?? '', 'utf8'), '{"version": 1, "entries": [ truncated');
    assert.deepEqual(store.entries(), []);
    store.record({ agent: 'a', host: 'x.example.com', port: 443, at: T0 });
    await store.close();
    assert.deepEqual((await readdir(dir)).sort(), ['learn.json', store.corrupt.movedTo?.slice(dir.length + 1)].sort());
  });

  test('a read-only open leaves a corrupt file where it is', async (t) => {
    const file = join(await freshDir(t, 'sluice-learn-'), 'learn.json');
    await writeFile(file, '{"version": 1, "entries": [{"host": 3}]}');
    const store = await LearnStore.open(file, { readOnly: true });
    assert.deepEqual(store.corrupt, { movedTo: null, reason: 'entry 0 is malformed' });
    await store.close();
    assert.equal(await readFile(file, 'utf8'), '{"version": 1, "entries": [{"host": 3}]}');
  });

  test('stops adding triples at maxEntries and counts what it dropped', async (t) => {
    const file = join(await freshDir(t, 'sluice-learn-'), 'learn.json');
    const store = await LearnStore.open(file, { maxEntries: 2 });
    for (const host of ['a.example.com', 'b.example.com', 'c.example.com', 'a.example.com']) store.record({ agent: 'a', host, port: 443, at: T0 });
    assert.equal(store.entries().length, 2);
    assert.equal(store.dropped, 1);
    await store.close();
  });
});

describe('proposeRules', () => {
  test('proposes one allow rule per host that loads back and allows only the ports and agents seen', async (t) => {
    const dir = await freshDir(t, 'sluice-learn-');
    const store = await LearnStore.open(join(dir, 'learn.json'));
    store.record({ agent: 'builder', host: 'api.example.com', port: 443, at: T0 });
    store.record({ agent: 'tester', host: 'api.example.com', port: 8443, at: T1 });
    store.record({ agent: 'builder', host: 'cdn.example.com', port: 443, at: T0 });
    store.record({ agent: 'builder', host: 'my_host.example.org', port: 443, at: T0 });
    store.record({ agent: 'builder', host: '2001:db8::1', port: 443, at: T0 });
    const text = proposeRules(store.entries()).text;
    await store.close();
    const file = join(dir, 'proposed.yaml');
    await writeFile(file, text);
    const rules = await loadRuleFiles([file]);
    assert.deepEqual(rules.rules.map((rule) => rule.id), ['learned.api.example.com', 'learned.cdn.example.com', 'learned.my-host.example.org', 'learned.2001-db8--1']);
    const builder = { name: 'builder', groups: [], via: 'token', mode: 'strict' } as const;
    const policy = { rules, anonymousAllowed: true };
    assert.equal(decide(policy, { agent: builder, destination: parseConnectTarget('api.example.com:443'), now: 0 }).verdict, 'allow');
    assert.equal(decide(policy, { agent: { ...builder, name: 'tester' }, destination: parseConnectTarget('api.example.com:8443'), now: 0 }).verdict, 'allow');
    assert.equal(decide(policy, { agent: builder, destination: parseConnectTarget('api.example.com:80'), now: 0 }).verdict, 'deny');
    assert.equal(decide(policy, { agent: { ...builder, name: 'stranger' }, destination: parseConnectTarget('api.example.com:443'), now: 0 }).verdict, 'deny');
    assert.equal(decide(policy, { agent: builder, destination: parseConnectTarget('www.example.com:443'), now: 0 }).verdict, 'deny');
  });

  test('an empty store proposes an empty, loadable rule file', () => {
    const document = parseRuleText('empty.yaml', proposeRules([]).text);
    assert.equal(compileRules([document]).size, 0);
  });

  test('leaves out hosts that are not plain names or addresses, and says so', () => {
    const { text } = proposeRules([{ host: '*.example.com', port: 443, agent: 'a', firstSeen: T0, lastSeen: T0, count: 1 }]);
    assert.match(text, /# skipped "\*\.example\.com"/);
    assert.equal(compileRules([parseRuleText('skip.yaml', text)]).size, 0);
  });
});

describe('sluice learn', () => {
  test('lists and proposes from a state directory without changing the store', async (t) => {
    const dir = await freshDir(t, 'sluice-learn-');
    const file = join(dir, 'learn.json');
    const store = await LearnStore.open(file);
    store.record({ agent: 'builder', host: 'api.example.com', port: 443, at: T0 });
    store.record({ agent: 'builder', host: 'api.example.com', port: 443, at: T1 });
    await store.close();
    const before = await readFile(file, 'utf8');

    const list = await runSluice(['learn', 'list', '--state-dir', dir]);
    assert.equal(list.code, 0);
    assert.deepEqual(list.stdout.trimEnd().split('\n'), [
      'HOST             PORT  AGENT    COUNT  FIRST_SEEN                LAST_SEEN',
      'api.example.com  443   builder  2      2026-11-01T10:00:00.000Z  2026-11-02T10:00:00.000Z',
    ]);

    const propose = await runSluice(['learn', 'propose', '--state-dir', dir]);
    assert.equal(propose.code, 0);
    assert.deepEqual(parseRuleText('proposed.yaml', propose.stdout).spec.rules.map((rule) => rule.id), ['learned.api.example.com']);
    assert.equal(await readFile(file, 'utf8'), before);
  });

  test('filters by --agent and --since, and proposes nothing a blocklist lists', async (t) => {
    const dir = await freshDir(t, 'sluice-learn-');
    await writeFile(join(dir, 'sluice.yaml'), 'state_dir: state\nblocklists: sources.yaml\n');
    await writeFile(join(dir, 'sources.yaml'), 'local: local.txt\nsources: []\n');
    await writeFile(join(dir, 'local.txt'), 'tracker.example.net\n');
    await mkdir(join(dir, 'state'));
    const store = await LearnStore.open(join(dir, 'state', 'learn.json'));
    const recent = new Date(Date.now() - 60_000);
    store.record({ agent: 'builder', host: 'api.example.com', port: 443, at: recent });
    store.record({ agent: 'builder', host: 'old.example.com', port: 443, at: T0 });
    store.record({ agent: 'builder', host: 'cdn.tracker.example.net', port: 443, at: recent });
    store.record({ agent: 'other', host: 'other.example.org', port: 443, at: recent });
    await store.close();
    const config = ['--config', join(dir, 'sluice.yaml')];

    const list = await runSluice(['learn', 'list', '--agent', 'builder', '--since', '1h', ...config]);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(list.stdout.trimEnd().split('\n').slice(1).map((line) => line.split(/\s+/)[0]), ['api.example.com', 'cdn.tracker.example.net']);
    const sinceTime = await runSluice(['learn', 'list', '--since', '2026-11-01T00:00:00Z', '--agent', 'builder', ...config]);
    assert.match(sinceTime.stdout, /old\.example\.com/);

    const propose = await runSluice(['learn', 'propose', '--agent', 'builder', '--since', '1d', ...config]);
    assert.equal(propose.code, 0, propose.stderr);
    assert.deepEqual(parseRuleText('proposed.yaml', propose.stdout).spec.rules.map((rule) => rule.id), ['learned.api.example.com']);
    assert.match(propose.stdout, /# left out "cdn\.tracker\.example\.net": listed by blocklist local \(entry tracker\.example\.net\)/);
    assert.match(propose.stderr, /^warning: left out cdn\.tracker\.example\.net: listed by blocklist local/m);

    const bad = await runSluice(['learn', 'list', '--since', 'yesterday', ...config]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--since "yesterday" is neither a time/);
  });

  test('finds the store through --config and reports a corrupt one without moving it', async (t) => {
    const dir = await freshDir(t, 'sluice-learn-');
    await writeFile(join(dir, 'sluice.yaml'), 'state_dir: state\n');
    await mkdir(join(dir, 'state'));
    await writeFile(join(dir, 'state', 'learn.json'), 'not json');
    const result = await runSluice(['learn', 'list', '--config', join(dir, 'sluice.yaml')]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /state\/learn\.json is not a readable Learn store/);
    assert.deepEqual(await readdir(join(dir, 'state')), ['learn.json']);
  });

  test('rejects an unknown action', async () => {
    const result = await runSluice(['learn', 'forget']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /expected "list" or "propose"/);
  });
});

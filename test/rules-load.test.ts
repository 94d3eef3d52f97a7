// Rule-file loading: every broken fixture (public-suffix wildcards, bad regex, typo'd key, bad
// port, missing hosts, duplicate id across files) is reported at its exact file:line:column.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatIssue, SourceError } from '../src/config/yaml.js';
import { loadRuleFiles, parseRuleText } from '../src/policy/rules.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'rules');

async function loadErrors(paths: readonly string[]): Promise<string[]> {
  try {
    await loadRuleFiles(paths);
  } catch (error) {
    assert.ok(error instanceof SourceError, `expected a SourceError, got ${String(error)}`);
    return error.issues.map(formatIssue);
  }
  assert.fail('the rules loaded without error');
}

describe('loadRuleFiles', () => {
  test('rejects wildcards and include_subdomains over public suffixes, private ones included', async () => {
    const file = join(FIXTURES, 'broken', 'public-suffix.yaml');
    assert.deepEqual(await loadErrors([file]), [
      `${file}:5:13: rules.0.hosts.0: wildcard "*.com" covers every domain under the public suffix "com"; name the registrable domain instead`,
      `${file}:9:9: rules.1.hosts.0: wildcard "*.co.uk" covers every domain under the public suffix "co.uk"; name the registrable domain instead`,
      `${file}:14:9: rules.2.hosts.1: wildcard "*.github.io" covers every domain under the public suffix "github.io"; name the registrable domain instead`,
      `${file}:17:13: rules.3.hosts.0: include_subdomains on "com" covers every domain under the public suffix "com"; name the registrable domain instead`,
    ]);
  });

  test('reports bad regexes, unknown keys with a suggestion, bad ports and missing hosts at their positions', async () => {
    const file = join(FIXTURES, 'broken', 'bad-fields.yaml');
    assert.deepEqual(await loadErrors([file]), [
      `${file}:4:13: rules.0.hosts.0: invalid re2 pattern "^(api$": missing ): ^(api$`,
      `${file}:8:5: rules.1.include_subdomain: unknown key "include_subdomain" (did you mean "include_subdomains"?)`,
      `${file}:12:18: rules.2.ports.1: ports are 1..65535`,
      `${file}:13:5: rules.3.hosts: required: a list of hosts`,
      `${file}:17:13: rules.4.paths.0: invalid re2 pattern "^/(?=admin)": invalid perl operator: (?=`,
    ]);
  });

  test('reports every error of every file in one go', async () => {
    const errors = await loadErrors([join(FIXTURES, 'broken'), join(FIXTURES, 'duplicate')]);
    assert.equal(errors.length, 10);
    assert.match(errors[0] ?? '', /bad-fields\.yaml:4:13:/);
    assert.match(errors.at(-1) ?? '', /b\.yml:5:9:/);
  });

  test('names both places of an id defined in two files', async () => {
    const dir = join(FIXTURES, 'duplicate');
    assert.deepEqual(await loadErrors([dir]), [
      `${join(dir, 'b.yml')}:5:9: rules.1.id: duplicate rule id "shared", first defined at ${join(dir, 'a.yaml')}:2:9`,
    ]);
  });

  test('loads a directory\'s .yaml and .yml files in name order', async () => {
    const dir = join(FIXTURES, 'good');
    const rules = await loadRuleFiles([dir]);
    assert.equal(rules.size, 2);
    assert.deepEqual(rules.files, [join(dir, '10-apis.yaml'), join(dir, '20-deny.yml')]);
    assert.deepEqual(rules.rules.map((rule) => rule.id), ['apis', 'no-paste']);
  });

  test('reports a missing path instead of loading nothing', async () => {
    const missing = join(FIXTURES, 'no-such-dir');
    const [error] = await loadErrors([missing]);
    assert.match(error ?? '', new RegExp(`^${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1:1: cannot read rules: ENOENT`));
  });

  test('points at an unquoted wildcard, which YAML reads as an alias', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-rules-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'alias.yaml');
    await writeFile(file, 'rules:\n  - id: a\n    action: allow\n    hosts: [*.example.com]\n');
    assert.deepEqual(await loadErrors([file]), [`${file}:4:13: unknown YAML alias *.example.com; quote wildcards: "*.example.com"`]);
  });
});

describe('parseRuleText', () => {
  test('rejects unanchored host regexes, misplaced wildcards and IP wildcards', () => {
    const text = [
      'rules:',
      '  - id: loose',
      '    action: allow',
      '    hosts: ["re2:example\\\\.com", "api.*.example.com", "*.10.0.0.1"]',
      '',
    ].join('\n');
    assert.throws(
      () => parseRuleText('inline.yaml', text),
      (error: unknown) => {
        assert.ok(error instanceof SourceError);
        assert.deepEqual(error.issues.map(formatIssue), [
          'inline.yaml:4:13: rules.0.hosts.0: re2 host pattern "example\\\\.com" must be anchored with ^ and $',
          'inline.yaml:4:34: rules.0.hosts.1: "*" is only allowed as one leading "*." label in "api.*.example.com"',
          'inline.yaml:4:55: rules.0.hosts.2: wildcard "*.10.0.0.1" has an IP address as its base; wildcards apply to names',
        ]);
        return true;
      },
    );
  });

  test('rejects an empty agents list, which would make a deny rule deny nobody', () => {
    assert.throws(
      () => parseRuleText('inline.yaml', 'rules:\n  - {id: x, action: deny, hosts: [a.example.com], agents: []}\n'),
      (error: unknown) => {
        assert.ok(error instanceof SourceError);
        assert.deepEqual(error.issues.map(formatIssue), ['inline.yaml:2:59: rules.0.agents: list at least one agent, or leave agents out']);
        return true;
      },
    );
  });

  test('accepts private zones that are not on the public suffix list', () => {
    const document = parseRuleText('inline.yaml', 'rules:\n  - {id: corp, action: allow, hosts: ["*.internal"], ports: [8080]}\n');
    assert.equal(document.spec.rules.length, 1);
  });
});

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { SourceError } from '../src/config/yaml.js';
import { looksLikeBundle, parseBundleText } from '../src/policy/bundle/document.js';
import { makeKey, signBase64 } from './support/bundle-fixtures.js';
import { REPO_ROOT, runSluice } from './support/cli.js';

function issuesOf(text: string): string[] {
  try {
    parseBundleText('b.yaml', text);
  } catch (error) {
    assert.ok(error instanceof SourceError);
    return error.issues.map((issue) => `${issue.line}:${issue.column} ${issue.message}`);
  }
  assert.fail('expected the bundle to be refused');
}

describe('allowlist bundle document', () => {
  test('parses the shipped example into a compiled rule set', async () => {
    const file = join(REPO_ROOT, 'examples', 'bundle', 'allowlist.yaml');
    const text = await readFile(file, 'utf8');
    assert.ok(looksLikeBundle(text));
    const bundle = parseBundleText(file, text);
    assert.equal(bundle.name, 'agents-egress');
    assert.equal(bundle.version, 12);
    assert.equal(bundle.enforce, 'enforce');
    assert.equal(bundle.ruleSet.size, 5);
    assert.deepEqual(bundle.issuedAt, new Date('2026-11-23T09:00:00Z'));
    assert.deepEqual(bundle.expiresAt, new Date('2027-02-21T09:00:00Z'));
  });

  test('defaults to enforce mode and no expiry', () => {
    const bundle = parseBundleText('b.yaml', 'name: a\nversion: 1\nissued_at: 2026-01-01T00:00:00+02:00\nrules: []\n');
    assert.equal(bundle.enforce, 'enforce');
    assert.equal(bundle.expiresAt, undefined);
    assert.equal(bundle.ruleSet.size, 0);
  });

  test('reports every header problem at its line and column', () => {
    const issues = issuesOf('name: x\nversion: 0\nissued_at: 2026-01-01\nenforce: shadow\nrulez: []\n');
    assert.deepEqual(issues, [
      '2:10 version: versions start at 1',
      '3:12 issued_at: an RFC 3339 timestamp with a zone, such as 2026-11-23T12:00:00Z',
      '4:10 enforce: enforce is "enforce" or "report"',
      '1:1 rules: required: a list of rules',
      '5:1 rulez: unknown key "rulez" (did you mean "rules"?)',
    ]);
  });

  test('refuses a fractional version and an expiry before issue', () => {
    assert.match(issuesOf('name: a\nversion: 1.5\nissued_at: 2026-01-01T00:00:00Z\nrules: []\n').join(), /2:10 version: the version is a whole number/);
    assert.match(
      issuesOf('name: a\nversion: 1\nissued_at: 2026-01-02T00:00:00Z\nexpires_at: 2026-01-01T00:00:00Z\nrules: []\n').join(),
      /expires_at: expires_at must be after issued_at/,
    );
  });

  test('checks rules with the rules/ schema, including duplicate ids', () => {
    const rule = '  - id: a\n    action: allow\n    hosts: [a.example.com]\n';
    assert.match(issuesOf(`name: a\nversion: 1\nissued_at: 2026-01-01T00:00:00Z\nrules:\n${rule}  - id: b\n    action: maybe\n    hosts: [b.example.com]\n`).join(), /rules\.1\.action/);
    assert.match(issuesOf(`name: a\nversion: 1\nissued_at: 2026-01-01T00:00:00Z\nrules:\n${rule}${rule}`).join(), /duplicate rule id "a"/);
  });

  test('sluice bundle verify prints the signed example bundle\'s version and rule count', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-bundle-doc-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const key = makeKey();
    const example = join(REPO_ROOT, 'examples', 'bundle', 'allowlist.yaml');
    await writeFile(join(dir, 'k.pub'), key.publicPem);
    await writeFile(join(dir, 'a.sig'), signBase64(key, await readFile(example)));
    const result = await runSluice(['bundle', 'verify', example, '--signature', join(dir, 'a.sig'), '--key', join(dir, 'k.pub')]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /bundle: agents-egress version 12, 5 rules, enforce mode, issued 2026-11-23T09:00:00.000Z, expires 2027-02-21T09:00:00.000Z/);
  });

  test('sluice bundle verify refuses a correctly signed bundle whose schema is invalid', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-bundle-doc-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const key = makeKey();
    const text = 'name: a\nversion: 3\nissued_at: 2026-01-01T00:00:00Z\nrules:\n  - id: a\n    action: permit\n    hosts: [a.example.com]\n';
    await writeFile(join(dir, 'b.yaml'), text);
    await writeFile(join(dir, 'k.pub'), key.publicPem);
    await writeFile(join(dir, 'b.sig'), signBase64(key, text));
    const result = await runSluice(['bundle', 'verify', join(dir, 'b.yaml'), '--signature', join(dir, 'b.sig'), '--key', join(dir, 'k.pub')]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /schema error: signature verified but the bundle is invalid:\n.*b\.yaml:6:13: rules\.0\.action/);
  });
});

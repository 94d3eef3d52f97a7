// docs/errors.md and the catalogue in src/errors.ts must not drift: every code is documented with
// its status and side, no documented code is stale, and each row says what it means and what to do;
// the operator errors' table lists exactly the codes an OperatorError can carry.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { ERROR_CATALOGUE, OPERATOR_ERROR_CODES, SluiceError, type ErrorCode } from '../src/errors.js';
import { REPO_ROOT } from './support/cli.js';

interface DocumentedCode {
  readonly status: number;
  readonly side: string;
  readonly meaning: string;
  readonly action: string;
  readonly line: number;
}

const CATALOGUE_HEADER = '| code | status | side | meaning | what to do |';
const OPERATOR_HEADER = '| code | where | meaning |';

/** Rows of the catalogue table: the one whose header is CATALOGUE_HEADER, up to the first non-row line. */
function documentedCodes(markdown: string): Map<string, DocumentedCode[]> {
  const lines = markdown.split('\n');
  const start = lines.indexOf(CATALOGUE_HEADER);
  assert.ok(start >= 0, `docs/errors.md has a table headed ${CATALOGUE_HEADER}`);
  const rows = new Map<string, DocumentedCode[]>();
  for (let index = start + 2; index < lines.length && (lines[index] ?? '').startsWith('|'); index += 1) {
    const cells = (lines[index] ?? '').split('|').slice(1, -1).map((cell) => cell.trim());
    assert.equal(cells.length, 5, `docs/errors.md:${index + 1}: five cells`);
    const [code = '', status = '', side = '', meaning = '', action = ''] = cells;
    const name = /^`([A-Z][A-Z0-9_]*)`$/.exec(code)?.[1];
    assert.ok(name !== undefined, `docs/errors.md:${index + 1}: the first cell is one code in backticks, got ${code}`);
    const entries = rows.get(name) ?? [];
    entries.push({ status: Number(status), side, meaning, action, line: index + 1 });
    rows.set(name, entries);
  }
  return rows;
}

describe('docs/errors.md matches the error catalogue', () => {
  let documented: Map<string, DocumentedCode[]>;
  const codes = Object.keys(ERROR_CATALOGUE) as ErrorCode[];

  before(async () => {
    documented = documentedCodes(await readFile(join(REPO_ROOT, 'docs', 'errors.md'), 'utf8'));
  });

  test('documents every code of the catalogue exactly once', () => {
    const missing = codes.filter((code) => !documented.has(code));
    assert.deepEqual(missing, [], 'codes in src/errors.ts without a row in docs/errors.md');
    for (const [code, rows] of documented) assert.equal(rows.length, 1, `${code} is documented ${rows.length} times`);
  });

  test('lists no code the catalogue no longer has', () => {
    const stale = [...documented.keys()].filter((code) => !Object.hasOwn(ERROR_CATALOGUE, code));
    assert.deepEqual(stale, [], 'rows in docs/errors.md for codes that are not in src/errors.ts');
  });

  test('gives each code the HTTP status and side the proxy uses', () => {
    for (const code of codes) {
      const row = documented.get(code)?.[0];
      if (row === undefined) continue;
      const error = new SluiceError(code);
      assert.equal(row.status, error.status, `docs/errors.md:${row.line}: ${code} status`);
      assert.equal(row.side, error.side, `docs/errors.md:${row.line}: ${code} side`);
    }
  });

  test('says what each code means and what to do about it', () => {
    for (const [code, [row]] of documented) {
      assert.ok(row !== undefined);
      assert.ok(row.meaning.length >= 20, `docs/errors.md:${row.line}: ${code} needs a meaning`);
      assert.ok(row.action.length >= 15, `docs/errors.md:${row.line}: ${code} needs an action`);
    }
  });

  test('keeps the table in catalogue order, so a new code has an obvious place', () => {
    const order = [...documented.keys()].filter((code) => Object.hasOwn(ERROR_CATALOGUE, code));
    assert.deepEqual(order, codes.filter((code) => documented.has(code)));
  });
});

/** Each code of the operator table (a row may name several) with the line it is on. */
function operatorCodes(markdown: string): { code: string; line: number }[] {
  const lines = markdown.split('\n');
  const start = lines.indexOf(OPERATOR_HEADER);
  assert.ok(start >= 0, `docs/errors.md has a table headed ${OPERATOR_HEADER}`);
  const codes: { code: string; line: number }[] = [];
  for (let index = start + 2; index < lines.length && (lines[index] ?? '').startsWith('|'); index += 1) {
    const cells = (lines[index] ?? '').split('|').slice(1, -1).map((cell) => cell.trim());
    assert.equal(cells.length, 3, `docs/errors.md:${index + 1}: three cells`);
    assert.ok((cells[2] ?? '').length >= 20, `docs/errors.md:${index + 1}: says what the error means`);
    const named = [...(cells[0] ?? '').matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((match) => match[1] ?? '');
    assert.ok(named.length > 0, `docs/errors.md:${index + 1}: the first cell names codes in backticks`);
    for (const code of named) codes.push({ code, line: index + 1 });
  }
  return codes;
}

describe('docs/errors.md lists the operator errors', () => {
  test('names every OperatorError code once, and no other', async () => {
    const documented = operatorCodes(await readFile(join(REPO_ROOT, 'docs', 'errors.md'), 'utf8'));
    const names = documented.map((entry) => entry.code);
    assert.deepEqual([...names].sort(), [...OPERATOR_ERROR_CODES].sort());
    for (const code of names) assert.ok(!Object.hasOwn(ERROR_CATALOGUE, code), `${code} is in both tables`);
  });
});

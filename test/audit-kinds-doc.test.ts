// docs/audit.md names every kind of audit record and every field each can carry, exactly as the
// union in src/audit/kinds.ts does; the union and its field list are held together at compile time.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AUDIT_FIELDS, type AuditEntry, type AuditKind } from '../src/audit/kinds.js';
import { REPO_ROOT } from './support/cli.js';

type KeysOf<T> = T extends unknown ? keyof T : never;
type FieldsOf<K extends AuditKind> = Exclude<KeysOf<Extract<AuditEntry, { kind: K }>>, 'kind'>;
/** True only when AUDIT_FIELDS lists every field of every kind, and nothing else. */
type Listed = { [K in AuditKind]: [FieldsOf<K>] extends [(typeof AUDIT_FIELDS)[K][number]] ? ([(typeof AUDIT_FIELDS)[K][number]] extends [FieldsOf<K>] ? true : false) : false };
const everyFieldListed: [Listed[AuditKind]] extends [true] ? true : never = true;

const TABLE_HEADER = '| kind | when | fields | notes |';

/** kind → its documented fields and line, from the table under TABLE_HEADER. */
function documentedKinds(markdown: string): Map<string, { fields: string[]; line: number }[]> {
  const lines = markdown.split('\n');
  const start = lines.indexOf(TABLE_HEADER);
  assert.ok(start >= 0, `docs/audit.md has a table headed ${TABLE_HEADER}`);
  const kinds = new Map<string, { fields: string[]; line: number }[]>();
  for (let index = start + 2; index < lines.length && (lines[index] ?? '').startsWith('|'); index += 1) {
    const cells = (lines[index] ?? '').split('|').slice(1, -1).map((cell) => cell.trim());
    assert.equal(cells.length, 4, `docs/audit.md:${index + 1}: four cells`);
    const kind = /^`([a-z][a-z0-9_]*)`$/.exec(cells[0] ?? '')?.[1];
    assert.ok(kind !== undefined, `docs/audit.md:${index + 1}: the first cell is one kind in backticks, got ${cells[0]}`);
    const fields = [...(cells[2] ?? '').matchAll(/`([a-z][a-z0-9_]*)`/g)].map((match) => match[1] ?? '');
    kinds.set(kind, [...(kinds.get(kind) ?? []), { fields, line: index + 1 }]);
  }
  return kinds;
}

describe('docs/audit.md matches the audit record kinds', () => {
  test('lists every kind once, with exactly the fields that kind can carry', async () => {
    assert.equal(everyFieldListed, true);
    const documented = documentedKinds(await readFile(join(REPO_ROOT, 'docs', 'audit.md'), 'utf8'));
    const kinds = Object.keys(AUDIT_FIELDS) as AuditKind[];
    assert.deepEqual(
      kinds.filter((kind) => !documented.has(kind)),
      [],
      'kinds in src/audit/kinds.ts without a row in docs/audit.md',
    );
    assert.deepEqual(
      [...documented.keys()].filter((kind) => !Object.hasOwn(AUDIT_FIELDS, kind)),
      [],
      'rows in docs/audit.md for kinds Sluice no longer writes',
    );
    for (const kind of kinds) {
      const rows = documented.get(kind) ?? [];
      assert.equal(rows.length, 1, `${kind} is documented ${rows.length} times`);
      const [row] = rows;
      if (row === undefined) continue;
      assert.deepEqual([...row.fields].sort(), [...AUDIT_FIELDS[kind]].sort(), `docs/audit.md:${row.line}: the fields of ${kind}`);
    }
  });
});

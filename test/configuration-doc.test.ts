// docs/configuration.md and examples/sluice.yaml follow the config schema: every key of
// src/config/schema.ts has a row in the doc with the schema's own default, and the example shows
// every section (its commented-out bundle block still validates once uncommented).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { configSchema } from '../src/config/schema.js';
import { loadYamlText } from '../src/config/yaml.js';
import { REPO_ROOT } from './support/cli.js';

/** The parts of a JSON Schema (as zod writes it) that name keys and defaults. */
interface SchemaNode {
  readonly type?: string;
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly items?: SchemaNode;
  readonly default?: unknown;
  /** a discriminated union (audit.stream): its variants' keys are documented together */
  readonly oneOf?: readonly SchemaNode[];
  readonly anyOf?: readonly SchemaNode[];
}

/** Every settable key as `section.key` (list items as `list[].key`), with its default. */
function schemaKeys(node: SchemaNode, path = '', keys = new Map<string, unknown>()): Map<string, unknown> {
  const variants = node.oneOf ?? node.anyOf;
  if (variants !== undefined && variants.some((variant) => variant.properties !== undefined)) {
    for (const variant of variants) schemaKeys(variant, path, keys);
    return keys;
  }
  if (node.properties !== undefined) {
    for (const [name, child] of Object.entries(node.properties)) schemaKeys(child, path === '' ? name : `${path}.${name}`, keys);
    return keys;
  }
  keys.set(path, node.default);
  if (node.type === 'array' && node.items?.properties !== undefined) schemaKeys(node.items, `${path}[]`, keys);
  return keys;
}

describe('the configuration reference and example follow the schema', () => {
  test('the example sets every top-level key of the schema, and its commented bundle block is valid once uncommented', async () => {
    const example = await readFile(join(REPO_ROOT, 'examples', 'sluice.yaml'), 'utf8');
    for (const key of Object.keys(configSchema.shape)) assert.match(example, new RegExp(`^(# )?${key}:`, 'm'), `examples/sluice.yaml shows ${key}`);
    const lines = example.split('\n');
    const from = lines.indexOf('# bundle:');
    assert.ok(from >= 0);
    let to = from;
    while ((lines[to] ?? '').startsWith('#')) to += 1;
    const enabled = [...lines.slice(0, from), ...lines.slice(from, to).map((line) => line.slice(2)), ...lines.slice(to)].join('\n');
    const { value } = loadYamlText('examples/sluice.yaml (bundle enabled)', enabled, configSchema);
    assert.equal(value.bundle?.url, 'https://policy.example.com/agents/allowlist.yaml');
  });

  test('docs/configuration.md documents every key of the schema with its default', async () => {
    const doc = await readFile(join(REPO_ROOT, 'docs', 'configuration.md'), 'utf8');
    for (const key of Object.keys(configSchema.shape)) assert.match(doc, new RegExp(`^## \`${key}\`$`, 'm'), `docs/configuration.md has a section for ${key}`);
    const rows = new Map<string, string>();
    for (const line of doc.split('\n')) {
      const cells = line.split('|').map((cell) => cell.trim());
      const key = /^`([a-z0-9_.[\]]+)`$/.exec(cells[1] ?? '')?.[1];
      if (key !== undefined && cells[2] !== undefined) rows.set(key, cells[2]);
    }
    const keys = schemaKeys(z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as SchemaNode);
    assert.ok(keys.size >= 50, `walked the schema: ${keys.size} keys`);
    for (const [key, fallback] of keys) {
      const cell = rows.get(key);
      assert.ok(cell !== undefined, `docs/configuration.md has a row for ${key}`);
      const expected = fallback === undefined ? '—' : `\`${typeof fallback === 'string' ? fallback : JSON.stringify(fallback)}\``;
      assert.equal(cell, expected, `docs/configuration.md: default of ${key}`);
    }
    const stale = [...rows.keys()].filter((key) => !keys.has(key));
    assert.deepEqual(stale, [], 'rows for keys the schema does not have');
  });
});

// docs/openapi.yaml and the admin API's router agree both ways: every registered route is
// documented with the role it needs, and every documented operation is registered.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { REPO_ROOT } from './support/cli.js';
import { startSluice } from './support/sluice.js';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

describe('docs/openapi.yaml', () => {
  test('lists exactly the registered admin routes, each with its role', async (t) => {
    const sluice = await startSluice();
    t.after(() => sluice.close());
    const document = parse(await readFile(join(REPO_ROOT, 'docs', 'openapi.yaml'), 'utf8')) as { paths: Record<string, Record<string, { 'x-sluice-role'?: string }>> };
    const documented = Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.entries(operations)
        .filter(([method]) => METHODS.includes(method))
        .map(([method, operation]) => `${method.toUpperCase()} ${path} ${operation['x-sluice-role'] ?? '(no role)'}`),
    );
    const registered = sluice.sluice.adminRoutes.map((route) => `${route.method} ${route.path} ${route.role}`);
    assert.ok(registered.length >= 10, `found ${registered.length} routes`);
    assert.deepEqual(registered.filter((route) => !documented.includes(route)), [], 'registered routes missing from docs/openapi.yaml (or with another role)');
    assert.deepEqual(documented.filter((route) => !registered.includes(route)), [], 'documented operations Sluice does not register');
  });
});

// `sluice` loads a command's module only when that command runs: the overview, --version and
// another command's help work even in an install whose proxy modules cannot load at all.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT } from './support/sluice-cli.js';

let install = '';

async function sluice(...args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await promisify(execFile)(process.execPath, [join(install, 'dist', 'src', 'cli', 'main.js'), ...args], { timeout: 20_000 });
    return { code: 0, stderr: '' };
  } catch (error) {
    const failed = error as { code?: unknown; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stderr: failed.stderr ?? '' };
  }
}

before(async () => {
  install = await mkdtemp(join(tmpdir(), 'sluice-lazy-'));
  await cp(join(REPO_ROOT, 'dist', 'src'), join(install, 'dist', 'src'), { recursive: true });
  await cp(join(REPO_ROOT, 'package.json'), join(install, 'package.json'));
  await symlink(join(REPO_ROOT, 'node_modules'), join(install, 'node_modules'));
  // The composition root, which only `sluice run` needs, now fails the moment it is imported.
  await writeFile(join(install, 'dist', 'src', 'app.js'), "throw new Error('app.js was loaded');\n");
});

after(() => rm(install, { recursive: true, force: true }));

test('--version, --help and other commands never import the proxy', async () => {
  assert.deepEqual(await sluice('--version'), { code: 0, stderr: '' });
  assert.deepEqual(await sluice('--help'), { code: 0, stderr: '' });
  assert.deepEqual(await sluice('audit', '--help'), { code: 0, stderr: '' });
  assert.deepEqual(await sluice('check', '--help'), { code: 0, stderr: '' });
});

test('the command that needs the proxy does import it, so the check above can fail', async () => {
  const run = await sluice('run', '--help');
  assert.equal(run.code, 1);
  assert.match(run.stderr, /app\.js/);
});

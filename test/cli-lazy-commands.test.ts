// `sluice` loads a command's module only when that command runs: the overview, --version and
// another command's help work even in an install whose proxy modules cannot load at all.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { copyInstall, runSluice, type CliResult } from './support/cli.js';

const install = await copyInstall({ after });
// The composition root, which only `sluice run` needs, now fails the moment it is imported.
await writeFile(join(install.dir, 'dist', 'src', 'app.js'), "throw new Error('app.js was loaded');\n");

function sluice(...args: string[]): Promise<CliResult> {
  return runSluice(args, { cli: install.cli });
}

test('--version, --help and other commands never import the proxy', async () => {
  for (const args of [['--version'], ['--help'], ['audit', '--help'], ['check', '--help']]) {
    const result = await sluice(...args);
    assert.deepEqual([result.code, result.stderr], [0, ''], args.join(' '));
  }
});

test('the command that needs the proxy does import it, so the check above can fail', async () => {
  // `sluice run` imports the proxy only once it starts one (its help, and a cluster worker, do not).
  const config = join(install.dir, 'lazy.yaml');
  await writeFile(config, 'listen: { proxy: "127.0.0.1:0", admin: "127.0.0.1:0" }\nstate_dir: lazy-state\n');
  const run = await sluice('run', '--config', config);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /app\.js/);
});

// Every `sluice` command given the same broken configuration fails the same way: exit 1 and one
// file:line:column line per problem on stderr; bad usage is exit 2 everywhere.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runSluice } from './support/cli.js';

describe('sluice exit statuses', () => {
  let dir: string;
  let broken: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-exit-'));
    broken = join(dir, 'sluice.yaml');
    // `modes` for `mode`: unknown key, on line 2 column 1.
    await writeFile(broken, `state_dir: ${join(dir, 'state')}\nmodes: strict\n`);
  });

  after(() => rm(dir, { recursive: true, force: true }));

  const commands: readonly (readonly string[])[] = [['run'], ['learn', 'list'], ['nft', 'render'], ['blocklist', 'check', 'example.com']];

  for (const command of commands) {
    test(`sluice ${command.join(' ')} exits 1 with the config's file:line:column`, async () => {
      const result = await runSluice([...command, '--config', broken]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, new RegExp(`^${broken}:2:1: .*modes`));
    });
  }

  test('every command exits 2 on an option it does not know', async () => {
    for (const command of [...commands, ['check', 'x'], ['audit', 'verify', 'x'], ['bundle', 'verify', 'x']]) {
      const result = await runSluice([...command, '--no-such-option']);
      assert.equal(result.code, 2, `sluice ${command.join(' ')}: ${result.stderr}`);
    }
  });
});

// UID identity has one mechanism, the sock_diag addon: an install whose addon did not build must
// not start with agents named by uid (no silent /proc fallback, no agent left unidentifiable).
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { copyInstall, runSluice } from './support/cli.js';
import { spawnSluice } from './support/sluice-process.js';

// The built package without build/Release: what an install whose node-gyp step failed looks like.
const install = await copyInstall({ after });
await mkdir(join(install.dir, 'etc'));
await writeFile(join(install.dir, 'etc', 'blocklists.yaml'), 'sources: []\n');

function configFor(agents: string): string {
  return `listen: { proxy: "127.0.0.1:0", admin: "127.0.0.1:0", transparent_http: "127.0.0.1:0", transparent_tls: "127.0.0.1:0", dns: "127.0.0.1:0" }
state_dir: state
rules: []
blocklists: blocklists.yaml
log: { level: info }
agents:
${agents}
`;
}

test('sluice run refuses to start when agents are named by uid and the sock_diag addon cannot load', async () => {
  const config = join(install.dir, 'etc', 'uids.yaml');
  await writeFile(config, configFor('  - { name: coder, uids: [1001] }'));
  const { code, stderr } = await runSluice(['run', '--config', config], { cli: install.cli });
  assert.equal(code, 1, stderr);
  assert.match(stderr, /cannot start: .*UID identity needs the sock_diag addon \(build\/Release\/sock_diag\.node; run npm rebuild\)/);
});

test('the same install starts when no agent is named by uid: the addon is only needed for uids', async (t) => {
  const config = join(install.dir, 'etc', 'tokens.yaml');
  await writeFile(config, configFor(`  - { name: builder, token_sha256: ["${'0'.repeat(64)}"] }`));
  const sluice = spawnSluice(['run', '--config', config], { cli: install.cli });
  t.after(() => sluice.stop('SIGKILL', 1_000));
  await sluice.waitForLog('sluice started');
  assert.deepEqual(await sluice.stop('SIGTERM'), { code: 0, signal: null });
});

// UID identity has one mechanism, the sock_diag addon: an install whose addon did not build must
// not start with agents named by uid (no silent /proc fallback, no agent left unidentifiable).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { REPO_ROOT } from './support/sluice-cli.js';

let install = '';

/** Runs `sluice run` from `install` (a copy of the built package) and resolves when it exits. */
function run(config: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [join(install, 'dist', 'src', 'cli', 'main.js'), 'run', '--config', config], { timeout: 20_000 }, (_error, _stdout, stderr) =>
      resolve({ code: child.exitCode, stderr }),
    );
  });
}

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

before(async () => {
  // The built package without build/Release: what an install whose node-gyp step failed looks like.
  install = await mkdtemp(join(tmpdir(), 'sluice-no-addon-'));
  await cp(join(REPO_ROOT, 'dist', 'src'), join(install, 'dist', 'src'), { recursive: true });
  await cp(join(REPO_ROOT, 'package.json'), join(install, 'package.json'));
  await symlink(join(REPO_ROOT, 'node_modules'), join(install, 'node_modules'));
  await mkdir(join(install, 'etc'));
  await writeFile(join(install, 'etc', 'blocklists.yaml'), 'sources: []\n');
});

after(() => rm(install, { recursive: true, force: true }));

test('sluice run refuses to start when agents are named by uid and the sock_diag addon cannot load', async () => {
  const config = join(install, 'etc', 'uids.yaml');
  await writeFile(config, configFor('  - { name: coder, uids: [1001] }'));
  const { code, stderr } = await run(config);
  assert.equal(code, 1, stderr);
  assert.match(stderr, /cannot start: .*UID identity needs the sock_diag addon \(build\/Release\/sock_diag\.node; run npm rebuild\)/);
});

test('the same install starts when no agent is named by uid: the addon is only needed for uids', async () => {
  const config = join(install, 'etc', 'tokens.yaml');
  await writeFile(config, configFor(`  - { name: builder, token_sha256: ["${'0'.repeat(64)}"] }`));
  const child = spawn(process.execPath, [join(install, 'dist', 'src', 'cli', 'main.js'), 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const started = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 15_000);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.includes('"msg":"sluice started"')) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
  child.kill('SIGTERM');
  assert.ok(started, out);
  assert.equal(await exited, 0);
});

// Runs a test file inside a fresh network namespace that has only loopback, so a test may dial
// metadata, private or documentation addresses knowing no packet can leave the machine.
//
// How: the test file calls `insideLoopbackNamespace(import.meta.url, setup)` at top level. In the
// ordinary process it re-executes the same file (same node binary, flags and environment) as
// `unshare -n -m sh -c 'ip link set lo up && SETUP && exec node FILE'`, with stdio inherited, and
// returns false so the outer process defines no tests. The child's test output goes straight to
// whoever runs the file (`node --test` parses it as if the outer process had written it) and its
// exit code becomes the outer one. Inside, the function checks that only `lo` exists and returns
// true; the file then defines its tests. The private mount namespace lets SETUP bind-mount files
// such as /etc/resolv.conf without touching the host's. Needs root (or CAP_SYS_ADMIN), as on the
// dev machine and in CI; without it the file fails loudly instead of running on the host network.
import { spawn } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';

const MARKER = 'SLUICE_TEST_NETNS';

/** The namespace has only `lo`; anything else means we are not isolated and must not go on. */
function assertIsolated(): void {
  const names = Object.keys(networkInterfaces()).filter((name) => name !== 'lo');
  if (names.length > 0) throw new Error(`expected a loopback-only network namespace, found ${names.join(', ')}`);
}

/**
 * True in the isolated child, where the caller defines its tests; false in the outer process,
 * which only waits for the child. `setup` holds shell commands run as root inside the namespace
 * before the tests (routes, addresses on lo, bind mounts), written by the test, never by input.
 */
export function insideLoopbackNamespace(moduleUrl: string, setup: readonly string[] = []): boolean {
  if (process.env[MARKER] === '1') {
    assertIsolated();
    return true;
  }
  const script = ['ip link set lo up', ...setup, 'exec "$@"'].join(' && ');
  const args = ['-n', '-m', 'sh', '-c', script, 'sh', process.execPath, ...process.execArgv, fileURLToPath(moduleUrl)];
  const child = spawn('unshare', args, { stdio: 'inherit', env: { ...process.env, [MARKER]: '1' } });
  child.on('error', (error) => {
    process.stderr.write(`cannot start a network namespace (unshare -n needs root): ${error.message}\n`);
    process.exitCode = 1;
  });
  child.on('exit', (code, signal) => {
    process.exitCode = code ?? (signal === null ? 1 : 128);
  });
  return false;
}

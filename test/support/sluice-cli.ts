// Runs the built `sluice` CLI as a child process, the way an operator would, and collects its
// exit code and output; also locates the repository root and the vendored sigstore test vectors.
import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/test/support/sluice-cli.js → the repository root */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI = resolve(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
/** The sigstore conformance cases, vendored so a clone needs nothing beside it (see their README). */
export const CONFORMANCE_VECTORS = resolve(REPO_ROOT, 'test', 'fixtures', 'sigstore-conformance');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function runSluice(args: readonly string[], options: { cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(process.execPath, [CLI, ...args], { cwd: options.cwd ?? REPO_ROOT, timeout: 30_000 }, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== 'number') {
        reject(error);
        return;
      }
      resolvePromise({ code: error === null ? 0 : Number(error.code), stdout, stderr });
    });
  });
}

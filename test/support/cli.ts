// Runs `sluice` the way an operator would: the built CLI as a child process, or one command's
// module in this process with its output captured; plus the paths and temporary directories
// every CLI test needs.
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CliIo, Command } from '../../src/cli/command.js';

/** dist/test/support/cli.js → the repository root */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI = resolve(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
/** The sigstore conformance cases, vendored so a clone needs nothing beside it (see their README). */
export const CONFORMANCE_VECTORS = resolve(REPO_ROOT, 'test', 'fixtures', 'sigstore-conformance');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** another install's main.js (a copied dist/) instead of this checkout's */
  readonly cli?: string;
}

/** The exit code and output of `sluice ARGS`; rejects only when the process could not run at all. */
export function runSluice(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const settings = { cwd: options.cwd ?? REPO_ROOT, timeout: 30_000, ...(options.env === undefined ? {} : { env: options.env }) };
    execFile(process.execPath, [options.cli ?? CLI, ...args], settings, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== 'number') {
        reject(error);
        return;
      }
      resolvePromise({ code: error === null ? 0 : Number(error.code), stdout, stderr });
    });
  });
}

/** Runs one command's module in this process, lines joined as a child's output would be. */
export async function runCommand(command: Command, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (line) => void out.push(line), err: (line) => void err.push(line), env };
  const code = await command.run(args, io);
  return { code, stdout: out.map((line) => `${line}\n`).join(''), stderr: err.map((line) => `${line}\n`).join('') };
}

/** A new temporary directory, removed with everything in it when the test (or suite) ends. */
export async function freshDir(t: { after(fn: () => Promise<void>): void }, prefix = 'sluice-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A copy of the built package (dist/src, the admin page, package.json; node_modules linked) without
 * build/, as an install whose addon did not build looks; its main.js is `cli`. Tests may break modules in it.
 */
export async function copyInstall(t: { after(fn: () => Promise<void>): void }): Promise<{ readonly dir: string; readonly cli: string }> {
  const dir = await freshDir(t, 'sluice-install-');
  await cp(join(REPO_ROOT, 'dist', 'src'), join(dir, 'dist', 'src'), { recursive: true });
  // Shipped as files (package.json "files"), read at start: the admin page's HTML, script and style.
  await cp(join(REPO_ROOT, 'src', 'admin', 'page'), join(dir, 'src', 'admin', 'page'), { recursive: true });
  await cp(join(REPO_ROOT, 'package.json'), join(dir, 'package.json'));
  await symlink(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'));
  return { dir, cli: join(dir, 'dist', 'src', 'cli', 'main.js') };
}

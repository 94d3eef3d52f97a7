// Which Sluice the figures belong to: the commit, and whether src/ had uncommitted changes when
// the bench ran (in a shared tree it often does).
import { execFile } from 'node:child_process';

function git(args: readonly string[], cwd: string): Promise<string | null> {
  return new Promise((resolve) => {
    execFile('git', [...args], { cwd, timeout: 5_000 }, (error, stdout) => resolve(error === null ? stdout.trim() : null));
  });
}

export async function sourceRevision(repoRoot: string): Promise<{ commit: string | null; srcModified: boolean | null }> {
  const [commit, status] = await Promise.all([git(['rev-parse', 'HEAD'], repoRoot), git(['status', '--porcelain', '--', 'src'], repoRoot)]);
  return { commit, srcModified: status === null ? null : status !== '' };
}

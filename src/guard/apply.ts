// Loads or removes the guard by piping a ruleset into `nft -f -`; nft applies a file as one
// transaction, so agents never see a half-replaced table.
import { spawn } from 'node:child_process';
import { SluiceError } from '../errors.js';

export interface NftOptions {
  /** path of the nft binary; `nft` from PATH by default */
  readonly binary?: string;
  /** parse and validate against the kernel without committing (`nft -c`) */
  readonly checkOnly?: boolean;
}

export function runNft(ruleset: string, options: NftOptions = {}): Promise<void> {
  const args = options.checkOnly === true ? ['-c', '-f', '-'] : ['-f', '-'];
  return new Promise((resolve, reject) => {
    const child = spawn(options.binary ?? 'nft', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    const stderr: Buffer[] = [];
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) => reject(new SluiceError('GUARD_APPLY_FAILED', error.message, { cause: error })));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new SluiceError('GUARD_APPLY_FAILED', Buffer.concat(stderr).toString('utf8').trim() || `nft exited with ${String(code)}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(ruleset);
  });
}

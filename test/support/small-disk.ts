// A tmpfs of a few hundred KiB that a test can fill to the last byte and free again: a real
// ENOSPC for the audit chain. Mount it only inside insideLoopbackNamespace's private mount
// namespace, so the host never sees it.
import { execFile } from 'node:child_process';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const FILLER = '.filler';

export interface SmallDisk {
  readonly dir: string;
  /** writes a file until the disk refuses another byte */
  fill(): Promise<void>;
  /** deletes that file */
  free(): Promise<void>;
  unmount(): Promise<void>;
}

export async function mountSmallDisk(dir: string, kib: number): Promise<SmallDisk> {
  await run('mount', ['-t', 'tmpfs', '-o', `size=${kib}k,mode=0700`, 'sluice-small-disk', dir]);
  return {
    dir,
    fill: async () => {
      const handle = await open(join(dir, FILLER), 'a');
      const block = Buffer.alloc(4096, 0x2e);
      try {
        for (;;) await handle.write(block);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      } finally {
        await handle.close();
      }
    },
    free: () => rm(join(dir, FILLER), { force: true }),
    unmount: async () => {
      await run('umount', [dir]);
    },
  };
}

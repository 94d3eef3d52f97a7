// Reads from the environment where state lives (SLUICE_STATE_DIR, XDG, root or not): the CLI is
// the one place besides the composition root that may look at process.env.
import type { Placement } from '../config/load.js';
import type { CliIo } from './command.js';

export function placementFrom(io: CliIo): Placement {
  return {
    stateDirOverride: io.env.SLUICE_STATE_DIR,
    xdgStateHome: io.env.XDG_STATE_HOME,
    home: io.env.HOME,
    isRoot: typeof process.getuid === 'function' && process.getuid() === 0,
  };
}

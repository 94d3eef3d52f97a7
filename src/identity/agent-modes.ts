// Learn/Strict switched per agent at run time (PUT /v1/agents/{name}/mode), kept in
// STATE_DIR/agent-modes.json until the config changes that agent's mode: then the config wins again.
import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Mode } from '../agent.js';
import { writeFileAtomic } from '../state-file.js';

export const AGENT_MODES_FILE = 'agent-modes.json';
const FORMAT_VERSION = 1;

interface Override {
  readonly mode: Mode;
  /** the mode the config gave when the override was made; a different one now voids it */
  readonly configured: Mode;
}

function isMode(value: unknown): value is Mode {
  return value === 'strict' || value === 'learn';
}

export class AgentModes {
  #overrides = new Map<string, Override>();

  private constructor(
    private readonly file: string,
    private readonly configured: ReadonlyMap<string, Mode>,
  ) {}

  static fileIn(stateDir: string): string {
    return join(stateDir, AGENT_MODES_FILE);
  }

  /**
   * Reads the overrides, dropping (and reporting) those for agents the config no longer has or
   * whose configured mode changed since; an unreadable file is moved aside and reported.
   */
  static async open(file: string, configured: ReadonlyMap<string, Mode>, report: (what: string) => void): Promise<AgentModes> {
    const modes = new AgentModes(file, configured);
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (text === undefined) return modes;
    let dropped = false;
    try {
      const root = JSON.parse(text) as { version?: unknown; agents?: unknown };
      if (root?.version !== FORMAT_VERSION || root.agents === null || typeof root.agents !== 'object') throw new Error('expected {"version": 1, "agents": {...}}');
      for (const [name, raw] of Object.entries(root.agents as Record<string, { mode?: unknown; configured?: unknown }>)) {
        if (!isMode(raw?.mode) || !isMode(raw.configured)) throw new Error(`agents.${name}: mode and configured must be strict or learn`);
        if (configured.get(name) !== raw.configured) {
          report(`run-time mode of agent "${name}" dropped: the config changed its mode since`);
          dropped = true;
          continue;
        }
        modes.#overrides.set(name, { mode: raw.mode, configured: raw.configured });
      }
    } catch (error) {
      const aside = `${file}.corrupt-${Date.now()}`;
      await rename(file, aside);
      report(`${file} unreadable (${error instanceof Error ? error.message : String(error)}); moved to ${aside}, the config's modes apply`);
      modes.#overrides.clear();
    }
    // Forgotten for good: going back to the old config does not bring the switch back.
    if (dropped) await modes.#write(modes.#overrides);
    return modes;
  }

  /** The run-time mode of the agent, when one was set. */
  get(name: string): Mode | undefined {
    return this.#overrides.get(name)?.mode;
  }

  knows(name: string): boolean {
    return this.configured.has(name);
  }

  /** Every agent's mode in force: the override, else the config's. */
  effective(): Record<string, Mode> {
    return Object.fromEntries([...this.configured].map(([name, mode]) => [name, this.get(name) ?? mode]));
  }

  /** Sets and persists the agent's mode; the next connection identified as it uses it. */
  async set(name: string, mode: Mode): Promise<void> {
    const configured = this.configured.get(name);
    if (configured === undefined) throw new Error(`no agent named "${name}" in the config`);
    const next = new Map(this.#overrides);
    next.set(name, { mode, configured });
    await this.#write(next);
    this.#overrides = next;
  }

  async #write(overrides: ReadonlyMap<string, Override>): Promise<void> {
    await writeFileAtomic(this.file, `${JSON.stringify({ version: FORMAT_VERSION, agents: Object.fromEntries(overrides) }, null, 2)}\n`);
  }
}

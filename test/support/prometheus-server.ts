// Runs a real Prometheus (Debian's `prometheus` binary) on 127.0.0.1 with a generated config and a
// throwaway storage directory, and reads it back through its HTTP API.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from './until.js';

export interface PromSample {
  readonly metric: Record<string, string>;
  readonly value: readonly [number, string];
}

export interface PromQueryResult {
  readonly status: 'success' | 'error';
  readonly error?: string;
  readonly data?: { readonly resultType: string; readonly result: readonly PromSample[] };
}

export interface PromRule {
  readonly name: string;
  readonly health: string;
  readonly lastError?: string;
}

export interface RunningPrometheus {
  readonly url: string;
  readonly dir: string;
  query(expression: string): Promise<PromQueryResult>;
  rules(): Promise<PromRule[]>;
  close(): Promise<void>;
}

/**
 * `config` is the prometheus.yml text; `files` are written beside it (rule files it names).
 * Prometheus picks its own port (`:0`) and logs it, so there is no race for a free port.
 */
export async function startPrometheus(config: string, files: Readonly<Record<string, string>> = {}): Promise<RunningPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-prometheus-'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  await writeFile(join(dir, 'prometheus.yml'), config);
  const child = spawn('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    '--web.listen-address=127.0.0.1:0',
  ], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (log += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  const close = async (): Promise<void> => {
    if (!gone) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await until(() => gone || /msg="Listening on" address=\S+/.test(log), 'Prometheus to listen');
    const address = /msg="Listening on" address=(\S+)/.exec(log)?.[1];
    if (address === undefined) throw new Error(`prometheus exited:\n${log}`);
    const url = `http://${address}`;
    await until(async () => (await fetch(`${url}/-/ready`).catch(() => null))?.ok === true, 'Prometheus to be ready');
    return {
      url,
      dir,
      query: async (expression) => (await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: expression }).toString()}`)).json() as Promise<PromQueryResult>,
      rules: async () => {
        const body = await (await fetch(`${url}/api/v1/rules`)).json() as { data: { groups: { rules: PromRule[] }[] } };
        return body.data.groups.flatMap((group) => group.rules);
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

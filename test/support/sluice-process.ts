// Runs `sluice run` as a real child process, as a service manager would: keeps its stdout log
// lines, waits for a given line, stops it with a signal and reports how it exited.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { CLI, REPO_ROOT } from './cli.js';

export type LogLine = Record<string, unknown>;

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface SluiceProcess {
  readonly child: ChildProcess;
  /** every stdout line that parsed as a JSON object, in order */
  readonly logs: LogLine[];
  /** stdout lines that were not JSON objects (pino writes none) */
  readonly strayLines: string[];
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<Exit>;
  /** the exit, or a rejection naming what it printed if it is still running after `timeoutMs` */
  exitWithin(timeoutMs: number): Promise<Exit>;
  /** resolves with the first log line whose msg is `message` (already seen or still to come) */
  waitForLog(message: string, timeoutMs?: number): Promise<LogLine>;
  /** sends `signal` and waits for the exit; SIGKILLs after `timeoutMs` */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
}

export interface SpawnOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** another install's main.js (see copyInstall) instead of this checkout's */
  readonly cli?: string;
}

export function spawnSluice(args: readonly string[], options: SpawnOptions = {}): SluiceProcess {
  const child = spawn(process.execPath, [options.cli ?? CLI, ...args], { cwd: options.cwd ?? REPO_ROOT, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogLine[] = [];
  const strayLines: string[] = [];
  let out = '';
  let err = '';
  let pending = '';
  const waiters: { message: string; resolve: (line: LogLine) => void }[] = [];
  const take = (line: string): void => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      parsed = undefined;
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      strayLines.push(line);
      return;
    }
    const entry = parsed as LogLine;
    logs.push(entry);
    for (const waiter of waiters.filter((candidate) => candidate.message === entry.msg)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(entry);
    }
  };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) if (line !== '') take(line);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const waitForLog = (message: string, timeoutMs = 15_000): Promise<LogLine> => {
    const seen = logs.find((line) => line.msg === message);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${message}" log line within ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
      const early = (exit: Exit): void => reject(new Error(`sluice exited (${exit.code ?? exit.signal}) before logging "${message}"; stderr: ${err}`));
      void exited.then(early);
      waiters.push({
        message,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<Exit> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  const exitWithin = async (timeoutMs: number): Promise<Exit> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`sluice still running after ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
    });
    try {
      return await Promise.race([exited, late]);
    } finally {
      clearTimeout(timer);
    }
  };
  return { child, logs, strayLines, stdout: () => out, stderr: () => err, exited, exitWithin, waitForLog, stop };
}

/** A port that was free a moment ago on 127.0.0.1: bind port 0, read it, close. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Whether 127.0.0.1:port can be bound right now. */
export async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  const free = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (free) await new Promise<void>((resolve) => server.close(() => resolve()));
  return free;
}

// Every process the bench starts goes through here, so one call stops them all: at the end, on
// an error, on Ctrl-C, or when the overall time limit fires.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createServer } from 'node:net';
import { withOpenFileLimit } from './limits.js';

const running = new Set<ChildProcess>();
let refusing = false;

/** Once the run is being abandoned, a measurement still in progress must not start anything new. */
export function refuseNewChildren(): void {
  refusing = true;
}

/** Every child may have to hold 10,000 sockets (idle tunnels), so each starts with a raised open-files limit. */
export function startChild(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  if (refusing) throw new Error(`not starting ${command}: the bench is stopping`);
  const wrapped = withOpenFileLimit(command, args);
  const child = spawn(wrapped.command, wrapped.args, options);
  running.add(child);
  child.once('exit', () => running.delete(child));
  child.once('error', () => running.delete(child));
  return child;
}

/** SIGTERM, then SIGKILL if it has not gone within `graceMs`. */
export function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export function stopAll(): Promise<void> {
  return Promise.all([...running].map((child) => stopChild(child))).then(() => undefined);
}

/** Last resort from a synchronous 'exit' handler. */
export function killAllNow(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** Runs a node script that prints JSON (one line, or one document); rejects on a non-zero exit or after `timeoutMs`. */
export function runJsonScript(script: string, args: readonly string[], timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = startChild(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const timer = setTimeout(() => {
      stderr += `\n(stopped after ${timeoutMs} ms)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) {
        // One JSON line, or a script that pretty-prints a single JSON document.
        for (const text of [stdout.trim().split('\n').at(-1) ?? '', stdout.trim()]) {
          try {
            resolve(JSON.parse(text));
            return;
          } catch {
            // try the next reading, then report what the script printed
          }
        }
      }
      reject(new Error(`${script} exited ${code}: ${stderr.trim() || stdout.trim()}`));
    });
  });
}

/**
 * Reads a child's stdout as JSON lines: each call resolves with the next line, or rejects if the
 * child exits before printing it.
 */
export function jsonLines(child: ChildProcess): () => Promise<unknown> {
  let buffered = '';
  const ready: string[] = [];
  const waiting: Array<(line: string | null) => void> = [];
  child.stdout?.setEncoding('utf8').on('data', (text: string) => {
    buffered += text;
    for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      const waiter = waiting.shift();
      if (waiter === undefined) ready.push(line);
      else waiter(line);
    }
  });
  child.once('exit', () => {
    for (const waiter of waiting.splice(0)) waiter(null);
  });
  return () =>
    new Promise<string | null>((resolve) => {
      const line = ready.shift();
      if (line !== undefined) resolve(line);
      else if (child.exitCode !== null || child.signalCode !== null) resolve(null);
      else waiting.push(resolve);
    }).then((line) => {
      if (line === null) throw new Error(`child process exited (${child.exitCode ?? child.signalCode}) before it answered`);
      return JSON.parse(line) as unknown;
    });
}

/** A port that was free a moment ago on 127.0.0.1 (the listener is closed before use). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

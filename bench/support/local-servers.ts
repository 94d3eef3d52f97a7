// Starts the bench origin (origin-server.ts) as its own process and learns its port.
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startChild, stopChild } from './children.js';

const ORIGIN_SCRIPT = fileURLToPath(new URL('./origin-server.js', import.meta.url));

export interface RunningOrigin {
  readonly port: number;
  stop(): Promise<void>;
}

export function startOrigin(timeoutMs = 10_000): Promise<RunningOrigin> {
  const child: ChildProcess = startChild(process.execPath, [ORIGIN_SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => {
      void stopChild(child);
      reject(new Error('origin did not report its port'));
    }, timeoutMs);
    child.once('exit', (code) => reject(new Error(`origin exited (${code}) before it was ready`)));
    child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
      const newline = stdout.indexOf('\n');
      if (newline < 0) return;
      clearTimeout(timer);
      const { port } = JSON.parse(stdout.slice(0, newline)) as { port: number };
      resolve({
        port,
        stop: () => {
          child.stdin?.end();
          return stopChild(child);
        },
      });
    });
  });
}

// The idle-tunnels client, run as a child process: opens N tunnels through the proxy (each proven
// with one keep-alive GET), reports, holds them idle until told, then reports how many survived.
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import { OriginPath } from './raw-client.js';
import type { OriginAddress } from './tasks.js';

export interface IdleClientArgs {
  readonly origin: OriginAddress;
  readonly proxy: number;
  readonly count: number;
  /** tunnels being opened at once: enough to be quick, few enough not to overflow accept queues */
  readonly concurrency: number;
}

/** The first line the client prints, once every tunnel is open or has failed. */
export interface IdleOpened {
  readonly opened: number;
  readonly failed: number;
  readonly firstError: string | null;
  readonly openSeconds: number;
}

/** The second line, after the orchestrator asked it to close. */
export interface IdleClosed {
  /** tunnels still open when the hold ended (neither side had closed them) */
  readonly stillOpen: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as IdleClientArgs;
const path = new OriginPath(args.origin, args.proxy);
const open = new Set<Socket>();
let failed = 0;
let firstError: string | null = null;

async function openOne(): Promise<void> {
  const { socket, rest } = await path.open();
  try {
    await path.getSmall(socket, rest, false);
  } catch (error) {
    socket.destroy();
    throw error;
  }
  open.add(socket);
  socket.on('error', () => socket.destroy());
  socket.once('close', () => open.delete(socket));
}

async function opener(next: { index: number }): Promise<void> {
  while (next.index < args.count) {
    next.index++;
    await openOne().catch((error: unknown) => {
      failed++;
      firstError ??= error instanceof Error ? error.message : String(error);
    });
  }
}

const started = performance.now();
const next = { index: 0 };
await Promise.all(Array.from({ length: Math.min(args.concurrency, args.count) }, () => opener(next)));
const opened: IdleOpened = { opened: open.size, failed, firstError, openSeconds: (performance.now() - started) / 1000 };
process.stdout.write(`${JSON.stringify(opened)}\n`);

// Any line (or the end) on stdin ends the hold.
process.stdin.once('data', finish);
process.stdin.once('end', finish);

function finish(): void {
  const closed: IdleClosed = { stillOpen: open.size };
  process.stdout.write(`${JSON.stringify(closed)}\n`);
  for (const socket of open) socket.destroy();
  process.exit(0);
}

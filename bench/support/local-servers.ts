// Starts the bench's own servers, the origin (origin-server.ts) and the DNS server (dns-server.ts),
// each as its own process, and talks to them over stdio: each reports its address as a JSON line.
import { fileURLToPath } from 'node:url';
import { jsonLines, startChild, stopChild } from './children.js';

const ORIGIN_SCRIPT = fileURLToPath(new URL('./origin-server.js', import.meta.url));
const DNS_SCRIPT = fileURLToPath(new URL('./dns-server.js', import.meta.url));

/** The name the realistic profile reaches the origin by; .test is reserved (RFC 6761), never real. */
export const ORIGIN_NAME = 'origin.sluice-bench.test';

export interface RunningOrigin {
  readonly port: number;
  stop(): Promise<void>;
}

export interface RunningDns {
  readonly host: string;
  readonly port: number;
  /** queries answered since the server started */
  queries(): Promise<number>;
  stop(): Promise<void>;
}

interface ScriptServer {
  /** what the script printed first: where it listens */
  readonly address: unknown;
  /** sends the script an empty line and resolves with the JSON line it answers */
  readonly ask: () => Promise<unknown>;
  readonly stop: () => Promise<void>;
}

async function startScript(script: string, args: readonly string[], timeoutMs = 10_000): Promise<ScriptServer> {
  const child = startChild(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const nextLine = jsonLines(child);
  const stop = (): Promise<void> => {
    child.stdin?.end();
    return stopChild(child);
  };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${script} did not report its address within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const address = await Promise.race([nextLine(), deadline]);
    // Answers come back in the order asked, so concurrent questions each get their own.
    const ask = (): Promise<unknown> => {
      const answer = nextLine();
      child.stdin?.write('\n');
      return answer;
    };
    return { address, ask, stop };
  } catch (error) {
    await stop();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

export async function startOrigin(): Promise<RunningOrigin> {
  const server = await startScript(ORIGIN_SCRIPT, []);
  const { port } = server.address as { port: number };
  return { port, stop: server.stop };
}

/**
 * Squid sends queries to port 53 only, so the server first tries 53 on an otherwise unused
 * loopback address (possible as root); elsewhere it takes any port and squid reads a hosts file.
 */
export async function startDns(ttlSeconds: number): Promise<RunningDns> {
  const candidates = [
    { host: '127.0.0.153', port: 53 },
    { host: '127.0.0.1', port: 0 },
  ];
  const server = await startScript(DNS_SCRIPT, [JSON.stringify({ names: [ORIGIN_NAME], candidates, ttlSeconds })]);
  const { host, port } = server.address as { host: string; port: number };
  const queries = async (): Promise<number> => ((await server.ask()) as { queries: number }).queries;
  return { host, port, queries, stop: server.stop };
}

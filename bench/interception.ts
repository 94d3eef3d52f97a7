// Measures what intercepting an inference host costs: minting a leaf certificate, the latency a
// metered call adds over the same call through an opaque tunnel (after the leaf exists), and the
// time to the first byte of a stream. Sluice runs as its own process, as deployed; the client and
// the local TLS origin share this one.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { ProxyAgent, request } from 'undici';
import { LocalCa } from '../src/ingress/tls/local-ca.js';
import { freePort, startChild, stopChild } from './support/children.js';
import { cpuMillis } from './support/limits.js';
import { httpOk, waitUntil } from './support/readiness.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

const SAMPLES = Number(process.env.INTERCEPT_BENCH_SAMPLES ?? 300);
// Enough calls for V8 to optimise the per-request path: a deployed Sluice runs for days, so the
// figure that matters is the warmed one (20 left much of it in the baseline compiler).
const WARMUP = 200;
const MINTS = 50;

interface Figures {
  readonly p50_ms: number;
  readonly p99_ms: number;
}

function figures(samples: number[]): Figures {
  samples.sort((a, b) => a - b);
  const at = (quantile: number): number => Math.round((samples[Math.min(samples.length - 1, Math.floor(quantile * samples.length))] ?? 0) * 1000) / 1000;
  return { p50_ms: at(0.5), p99_ms: at(0.99) };
}

const CHAT = JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 16 });
const USAGE = { prompt_tokens: 9, completion_tokens: 5, total_tokens: 14 };

/** A provider-like origin: a JSON completion, or an SSE stream whose first event comes at once. */
function startOrigin(key: string, cert: string): Promise<{ port: number; close(): void }> {
  const server = createServer({ key, cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { stream?: boolean };
      if (body.stream !== true) {
        const text = JSON.stringify({ id: 'c', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'hello' } }], usage: USAGE });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(text.length) });
        res.end(text);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (let index = 0; index < 5; index++) res.write(`data: ${JSON.stringify({ id: 'c', choices: [{ index: 0, delta: { content: 'x' } }], usage: null })}\n\n`);
      res.write(`data: ${JSON.stringify({ id: 'c', choices: [], usage: USAGE })}\n\ndata: [DONE]\n\n`);
      res.end();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as AddressInfo).port, close: () => server.close() })));
}

/**
 * Sequential calls on one keep-alive connection: total time, time to the first body byte, and the
 * CPU the Sluice process (`pid`) used per measured call, which varies far less between runs than
 * latency on a shared machine.
 */
async function calls(dispatcher: ProxyAgent, url: string, stream: boolean, pid: number): Promise<{ total: Figures; first_byte: Figures; sluice_cpu_ms_per_call: number | null }> {
  const totals: number[] = [];
  const firsts: number[] = [];
  const body = stream ? JSON.stringify({ ...(JSON.parse(CHAT) as object), stream: true }) : CHAT;
  let cpuAtStart: number | null = null;
  for (let index = 0; index < WARMUP + SAMPLES; index++) {
    if (index === WARMUP) cpuAtStart = await cpuMillis(pid);
    const started = performance.now();
    const response = await request(url, { method: 'POST', dispatcher, body, headers: { 'content-type': 'application/json' } });
    let first = 0;
    for await (const chunk of response.body) if (first === 0 && (chunk as Buffer).length > 0) first = performance.now();
    if (index < WARMUP) continue;
    totals.push(performance.now() - started);
    firsts.push(first - started);
  }
  const cpuAtEnd = await cpuMillis(pid);
  const cpu = cpuAtStart === null || cpuAtEnd === null ? null : Math.round(((cpuAtEnd - cpuAtStart) / SAMPLES) * 1000) / 1000;
  return { total: figures(totals), first_byte: figures(firsts), sluice_cpu_ms_per_call: cpu };
}

const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-intercept-'));
try {
  // Leaf minting: the leaf key is made when the CA is opened, so every mint only signs.
  const { ca: mintCa } = await LocalCa.open(join(dir, 'mint'));
  const mints: number[] = [];
  for (let index = 0; index < MINTS; index++) {
    const started = performance.now();
    mintCa.leafFor(`host-${index}.example`);
    mints.push(performance.now() - started);
  }

  const { ca: originCa } = await LocalCa.open(join(dir, 'origin-ca'));
  const originLeaf = originCa.leafFor('localhost');
  const origin = await startOrigin(originLeaf.key, originLeaf.cert);
  // The opaque tunnel's origin is named by address: a CONNECT to it must carry no other SNI.
  const addressLeaf = originCa.leafFor('127.0.0.1');
  const opaqueOrigin = await startOrigin(addressLeaf.key, addressLeaf.cert);
  await writeFile(join(dir, 'origin-ca.pem'), originCa.certificatePem);
  await writeFile(join(dir, 'blocklists.yaml'), 'sources: []\n');
  const results: Record<string, unknown> = {};
  for (const fsync of [true, false]) {
    const stateDir = join(dir, `state-${fsync}`);
    const admin = await freePort();
    const proxyPort = await freePort();
    await writeFile(
      join(dir, 'sluice.yaml'),
      `listen: { proxy: "127.0.0.1:${proxyPort}", admin: "127.0.0.1:${admin}" }\nstate_dir: ${stateDir}\nrules: []\nblocklists: ${join(dir, 'blocklists.yaml')}\nlog: { level: error }\naudit: { fsync: ${fsync} }\nconnect:\n  ca_file: origin-ca.pem\n  allow_cidrs: [{ name: bench, cidr: 127.0.0.0/8 }]\ninference:\n  hosts: [localhost]\n`,
    );
    const sluice = startChild(process.execPath, [CLI, 'run', '--config', join(dir, 'sluice.yaml')], { stdio: ['ignore', 'ignore', 'inherit'] });
    try {
      await waitUntil('sluice', sluice, () => httpOk(`http://127.0.0.1:${admin}/readyz`), 60_000);
      const proxy = `http://127.0.0.1:${proxyPort}`;
      const { ca: sluiceCa } = await LocalCa.open(stateDir);
      const intercepted = new ProxyAgent({ uri: proxy, requestTls: { ca: sluiceCa.certificatePem }, connections: 1 });
      const opaque = new ProxyAgent({ uri: proxy, requestTls: { ca: originCa.certificatePem }, connections: 1 });
      const pid = sluice.pid ?? 0;
      const metered = await calls(intercepted, `https://localhost:${origin.port}/v1/chat/completions`, false, pid);
      const tunnelled = await calls(opaque, `https://127.0.0.1:${opaqueOrigin.port}/v1/chat/completions`, false, pid);
      const meteredStream = await calls(intercepted, `https://localhost:${origin.port}/v1/chat/completions`, true, pid);
      const tunnelledStream = await calls(opaque, `https://127.0.0.1:${opaqueOrigin.port}/v1/chat/completions`, true, pid);
      results[`audit_fsync_${fsync}`] = {
        intercepted_json: metered,
        opaque_tunnel_json: tunnelled,
        added_p50_ms: Math.round((metered.total.p50_ms - tunnelled.total.p50_ms) * 1000) / 1000,
        intercepted_stream: meteredStream,
        opaque_tunnel_stream: tunnelledStream,
      };
      await intercepted.close();
      await opaque.close();
    } finally {
      await stopChild(sluice);
    }
  }
  origin.close();
  opaqueOrigin.close();
  process.stdout.write(`${JSON.stringify({ samples: SAMPLES, leaf_mint_ms: figures(mints), ...results }, null, 2)}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}

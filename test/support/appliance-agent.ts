// One probe of the namespace end-to-end test, run as an agent's UID: connects the way the probe
// says and prints what happened as JSON (the reply, or the error code it ended with).
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import dnsPacket from 'dns-packet';
import { becomeUser } from './as-user.js';

export type Probe =
  | { readonly op: 'tcp' | 'udp'; readonly host: string; readonly port: number }
  | { readonly op: 'https'; readonly host: string; readonly port: number; readonly servername: string; readonly ca: string; readonly proxy?: number }
  | { readonly op: 'http'; readonly host: string; readonly port: number; readonly hostHeader: string; readonly proxy?: number }
  | { readonly op: 'dns'; readonly host: string; readonly port: number; readonly name: string }
  | { readonly op: 'raw'; readonly host: string; readonly port: number; readonly hex: string };

export interface ProbeOutcome {
  readonly reply?: string;
  readonly status?: number;
  readonly error?: string;
  readonly rcode?: string;
  readonly addresses?: string[];
}

function codeOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error);
}

function opened(socket: Socket, event: 'connect' | 'secureConnect'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    socket.once(event, () => resolve(socket));
    socket.once('error', reject);
  });
}

function readAll(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.once('end', () => resolve(text));
    socket.once('error', reject);
  });
}

function httpOutcome(text: string): ProbeOutcome {
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
  return { status, reply: text.slice(text.indexOf('\r\n\r\n') + 4) };
}

/** CONNECT through the explicit proxy; resolves to the tunnel, or to the refusal's status. */
async function tunnel(proxy: number, authority: string): Promise<Socket | number> {
  const socket = await opened(connect({ host: '127.0.0.1', port: proxy }), 'connect');
  socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  const head = await new Promise<string>((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      if (!text.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.pause();
      resolve(text);
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
  return status === 200 ? socket : status;
}

async function probe(spec: Probe): Promise<ProbeOutcome> {
  switch (spec.op) {
    case 'tcp':
      return { reply: (await readAll(await opened(connect({ host: spec.host, port: spec.port }), 'connect'))).trim() };
    case 'udp':
      return new Promise((resolve) => {
        const socket = createSocket(spec.host.includes(':') ? 'udp6' : 'udp4');
        socket.on('error', (error) => resolve({ error: codeOf(error) }));
        socket.send('ping', spec.port, spec.host, (error) => resolve(error === null ? { reply: 'sent' } : { error: codeOf(error) }));
      });
    case 'https': {
      const via = spec.proxy === undefined ? undefined : await tunnel(spec.proxy, `${spec.servername}:443`);
      if (typeof via === 'number') return { status: via };
      const options = { servername: spec.servername, ca: readFileSync(spec.ca, 'utf8') };
      const socket = await opened(via === undefined ? tlsConnect({ host: spec.host, port: spec.port, ...options }) : tlsConnect({ socket: via, ...options }), 'secureConnect');
      socket.write(`GET / HTTP/1.1\r\nHost: ${spec.servername}\r\nConnection: close\r\n\r\n`);
      return httpOutcome(await readAll(socket));
    }
    case 'http': {
      const socket = await opened(connect(spec.proxy === undefined ? { host: spec.host, port: spec.port } : { host: '127.0.0.1', port: spec.proxy }), 'connect');
      const target = spec.proxy === undefined ? '/' : `http://${spec.hostHeader}/`;
      socket.write(`GET ${target} HTTP/1.1\r\nHost: ${spec.hostHeader}\r\nConnection: close\r\n\r\n`);
      return httpOutcome(await readAll(socket));
    }
    case 'raw': {
      const socket = await opened(connect({ host: spec.host, port: spec.port }), 'connect');
      socket.write(Buffer.from(spec.hex, 'hex'));
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      await new Promise((resolve) => socket.once('close', resolve));
      return { reply: Buffer.concat(chunks).toString('hex') };
    }
    case 'dns': {
      const socket = createSocket(spec.host.includes(':') ? 'udp6' : 'udp4');
      const reply = new Promise<ProbeOutcome>((resolve) => {
        socket.on('message', (message) => {
          const packet = dnsPacket.decode(message);
          resolve({ rcode: (packet as { rcode?: string }).rcode ?? '', addresses: (packet.answers ?? []).map((answer) => ('data' in answer ? String(answer.data) : '')) });
        });
        socket.on('error', (error) => resolve({ error: codeOf(error) }));
      });
      socket.send(dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: spec.name }] }), spec.port, spec.host);
      return reply;
    }
  }
}

// Started by runAsUser: `UID:GID PROBE-JSON`.
const [user, spec] = process.argv.slice(2);
if (spec !== undefined) {
  becomeUser(user);
  const timer = setTimeout(() => {
    process.stdout.write(JSON.stringify({ error: 'TIMEOUT' }));
    process.exit(0);
  }, 5000);
  const outcome = await probe(JSON.parse(spec) as Probe).catch((error: unknown) => ({ error: codeOf(error) }));
  clearTimeout(timer);
  process.stdout.write(JSON.stringify(outcome));
  process.exit(0);
}

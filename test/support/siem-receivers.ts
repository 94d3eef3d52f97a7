// Local SIEM receivers for the audit stream tests: an HTTP(S) endpoint that can be taken down
// (answers 503) and a syslog collector over TCP or TLS that parses octet-counted RFC 5424 frames.
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { TestCa } from './test-ca.js';

export interface ReceivedRequest {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

export interface HttpReceiver {
  readonly port: number;
  readonly url: string;
  /** every request that reached the handler, down or not */
  readonly requests: ReceivedRequest[];
  /** the requests answered 2xx, in arrival order */
  readonly accepted: ReceivedRequest[];
  /** while true every request is answered 503 and its body dropped */
  down: boolean;
  close(): Promise<void>;
}

/** `answer` decides the status and body of each request that arrives while the receiver is up. */
export async function startHttpReceiver(
  answer: (request: ReceivedRequest) => { status: number; body: string } = () => ({ status: 200, body: '{}' }),
  tls?: TestCa,
): Promise<HttpReceiver> {
  const requests: ReceivedRequest[] = [];
  const accepted: ReceivedRequest[] = [];
  const handler = (request: IncomingMessage, response: ServerResponse): void => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const received: ReceivedRequest = { path: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(received);
      const { status, body } = receiver.down ? { status: 503, body: 'down for maintenance' } : answer(received);
      if (status >= 200 && status <= 299) accepted.push(received);
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(body);
    });
  };
  const server: HttpServer = tls === undefined ? createHttpServer(handler) : createHttpsServer({ key: tls.key, cert: tls.cert }, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const receiver: HttpReceiver = {
    port,
    url: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    requests,
    accepted,
    down: false,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return receiver;
}

/** One RFC 5424 message as the collector parsed it. */
export interface SyslogMessage {
  readonly pri: number;
  readonly timestamp: string;
  readonly hostname: string;
  readonly appName: string;
  readonly msgId: string;
  readonly record: { readonly seq: number; readonly hash: string; readonly kind: string } & Readonly<Record<string, unknown>>;
}

const RFC5424 = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) ([\s\S]*)$/;

export interface SyslogCollector {
  readonly port: number;
  readonly messages: SyslogMessage[];
  /** frames that did not parse (there should be none) */
  readonly malformed: string[];
  /** closes the listener and every connection; `start` listens again on the same port */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Reads octet-counted frames (RFC 6587 §3.4.1: `LENGTH SP MESSAGE`) from one connection. */
function collect(socket: Socket, messages: SyslogMessage[], malformed: string[]): void {
  let buffered = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (;;) {
      const space = buffered.indexOf(0x20);
      if (space < 0) return;
      const length = Number(buffered.subarray(0, space).toString('ascii'));
      if (!Number.isSafeInteger(length) || length <= 0) {
        malformed.push(buffered.toString('utf8'));
        socket.destroy();
        return;
      }
      if (buffered.length < space + 1 + length) return;
      const text = buffered.subarray(space + 1, space + 1 + length).toString('utf8');
      buffered = buffered.subarray(space + 1 + length);
      const match = RFC5424.exec(text);
      if (match === null) {
        malformed.push(text);
        continue;
      }
      messages.push({
        pri: Number(match[1]),
        timestamp: match[2] ?? '',
        hostname: match[3] ?? '',
        appName: match[4] ?? '',
        msgId: match[6] ?? '',
        record: JSON.parse(match[8] ?? '') as SyslogMessage['record'],
      });
    }
  });
  socket.on('error', () => socket.destroy());
}

export async function startSyslogCollector(tls?: TestCa): Promise<SyslogCollector> {
  const messages: SyslogMessage[] = [];
  const malformed: string[] = [];
  const sockets = new Set<Socket>();
  let server: TcpServer | null = null;
  let port = 0;
  const start = async (): Promise<void> => {
    const onConnection = (socket: Socket): void => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      collect(socket, messages, malformed);
    };
    const listener = tls === undefined ? createTcpServer(onConnection) : createTlsServer({ key: tls.key, cert: tls.cert }, onConnection);
    await new Promise<void>((resolve) => listener.listen(port, '127.0.0.1', resolve));
    port = (listener.address() as AddressInfo).port;
    server = listener;
  };
  const stop = async (): Promise<void> => {
    const listener = server;
    server = null;
    if (listener === null) return;
    const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  await start();
  return {
    get port() {
      return port;
    },
    messages,
    malformed,
    stop,
    start,
    close: stop,
  };
}

// Origin servers the proxy tests talk to on 127.0.0.1: an HTTP/HTTPS echo that reports what it
// received (method, path, headers, body) and a raw WebSocket-style upgrade echo.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TestCa } from './test-ca.js';

export interface EchoReport {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly rawHeaders: string[];
  readonly bodyBytes: number;
  readonly body: string;
}

export interface Origin {
  readonly server: Server;
  readonly port: number;
  readonly requests: EchoReport[];
  close(): Promise<void>;
}

function echo(requests: EchoReport[]) {
  return (request: IncomingMessage, response: ServerResponse): void => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      const report: EchoReport = {
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        rawHeaders: request.rawHeaders,
        bodyBytes: body.length,
        body: body.length <= 4096 ? body.toString('utf8') : '',
      };
      requests.push(report);
      if ((request.url ?? '').startsWith('/bytes/')) {
        const size = Number((request.url ?? '').slice('/bytes/'.length));
        response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
        response.end(Buffer.alloc(size, 0x61));
        return;
      }
      const payload = JSON.stringify(report);
      response.writeHead(200, { 'content-type': 'application/json', 'x-origin': 'echo', connection: 'keep-alive, x-drop-me', 'x-drop-me': '1' });
      response.end(payload);
    });
  };
}

/** Listens on 127.0.0.1 (port 0 unless given) and wraps `server` as an Origin recording into `requests`. */
export async function listening(server: Server, requests: EchoReport[], port = 0): Promise<Origin> {
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export function startHttpOrigin(): Promise<Origin> {
  const requests: EchoReport[] = [];
  const server = createHttpServer(echo(requests));
  // A minimal upgrade echo: answers 101, then echoes every byte back.
  server.on('upgrade', (request: IncomingMessage, socket, head: Buffer) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, rawHeaders: request.rawHeaders, bodyBytes: 0, body: '' });
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  });
  return listening(server, requests);
}

export function startHttpsOrigin(ca: TestCa): Promise<Origin> {
  const requests: EchoReport[] = [];
  return listening(createHttpsServer({ key: ca.key, cert: ca.cert }, echo(requests)), requests);
}

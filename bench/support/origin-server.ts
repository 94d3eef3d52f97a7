// The local origin every target forwards to, run as its own process so its event loop is not
// shared with the client or the proxy: a small keep-alive response, a bulk download, an upload sink.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const SMALL_BODY = Buffer.from('sluice bench origin: small response\n');
const CHUNK = Buffer.alloc(1 << 20, 0x61);
const MAX_BYTES = 4 * 1024 * 1024 * 1024;

function sendBytes(response: ServerResponse, total: number): void {
  response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
  let remaining = total;
  const pump = (): void => {
    while (remaining > 0) {
      const size = Math.min(remaining, CHUNK.length);
      remaining -= size;
      if (!response.write(size === CHUNK.length ? CHUNK : CHUNK.subarray(0, size))) {
        response.once('drain', pump);
        return;
      }
    }
    response.end();
  };
  pump();
}

function sink(request: IncomingMessage, response: ServerResponse): void {
  let received = 0;
  request.on('data', (chunk: Buffer) => {
    received += chunk.length;
  });
  request.on('end', () => {
    const body = `${received}\n`;
    response.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) });
    response.end(body);
  });
}

const server = createServer((request, response) => {
  const url = new URL(request.url ?? '/', 'http://origin.invalid');
  if (request.method === 'GET' && url.pathname === '/small') {
    response.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(SMALL_BODY.length) });
    response.end(SMALL_BODY);
    return;
  }
  const size = Number(url.searchParams.get('n'));
  if (request.method === 'GET' && url.pathname === '/bytes' && Number.isSafeInteger(size) && size >= 0 && size <= MAX_BYTES) {
    sendBytes(response, size);
    return;
  }
  if (request.method === 'POST' && url.pathname === '/sink') {
    sink(request, response);
    return;
  }
  response.writeHead(404, { 'content-length': '0' });
  response.end();
});
// Keep-alive clients must not be cut off between the warm-up and the measured run.
server.keepAliveTimeout = 120_000;
server.maxRequestsPerSocket = 0;

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
// The orchestrator closes our stdin when it is done, or dies: either way this process must not outlive it.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.once('SIGTERM', () => process.exit(0));

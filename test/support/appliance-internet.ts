// The "internet" of the namespace end-to-end test, run with `unshare -n`: waits for its end of a
// veth, then serves HTTP, HTTPS and a plain TCP port on 198.18.0.1 and 2001:db8::1.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

const run = promisify(execFile);
const [keyFile, certFile] = process.argv.slice(2);
const ADDRESSES = ['198.18.0.1', '2001:db8::1'];

// Running at all means unshare has moved us into the new namespace: only now may the test put
// the veth's far end here (`ip link ... netns PID` before that would land it in the old one).
process.stdout.write('inside\n');
const lines = createInterface({ input: process.stdin });
const go = await new Promise<boolean>((resolve) => {
  lines.once('line', (line) => resolve(line === 'go'));
  lines.once('close', () => resolve(false));
});
if (!go) process.exit(1);

await run('ip', ['link', 'set', 'lo', 'up']);
await run('ip', ['addr', 'add', '198.18.0.1/15', 'dev', 'sl-net']);
await run('ip', ['-6', 'addr', 'add', '2001:db8::1/64', 'dev', 'sl-net', 'nodad']);
await run('ip', ['link', 'set', 'sl-net', 'up']);

const key = await readFile(keyFile ?? '', 'utf8');
const cert = await readFile(certFile ?? '', 'utf8');
const answer = (scheme: string) => (request: import('node:http').IncomingMessage, response: import('node:http').ServerResponse): void => {
  const body = `${scheme} origin for ${request.headers.host ?? '?'}`;
  response.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), connection: 'close' }).end(body);
};
const listening: Promise<void>[] = [];
for (const address of ADDRESSES) {
  for (const [server, port] of [
    [createHttpServer(answer('http')), 80],
    [createHttpsServer({ key, cert }, answer('https')), 443],
    [createServer((socket) => socket.end('direct\n')), 8080],
  ] as const) {
    listening.push(new Promise((resolve) => server.listen(port, address, () => resolve())));
  }
}
await Promise.all(listening);
process.stdout.write('ready\n');
// Lives until the test closes stdin; the namespace goes with it.
lines.once('close', () => process.exit(0));

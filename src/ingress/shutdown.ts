// Stops a listener without waiting on its connections: CONNECT tunnels and relays take their
// sockets out of the HTTP server's hands, so server.close() alone would wait for each to end.
import type { Server, Socket } from 'node:net';

const openSockets = new WeakMap<Server, Set<Socket>>();

/** Remembers every connection the server accepts until it closes. Call once, at creation. */
export function trackConnections(server: Server): void {
  const sockets = new Set<Socket>();
  openSockets.set(server, sockets);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
}

/** Stops accepting, destroys every open connection (tunnels included) and resolves once closed. */
export function closeNow(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    for (const socket of openSockets.get(server) ?? []) socket.destroy();
  });
}

/**
 * Stops accepting and lets the connections open now finish (idle keep-alive ones close at once);
 * whatever is still open after `deadlineMs` (a long tunnel) is destroyed.
 */
export async function drain(server: Server, deadlineMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const closed = new Promise<boolean>((resolve) => server.close(() => resolve(true)));
  if ('closeIdleConnections' in server && typeof server.closeIdleConnections === 'function') server.closeIdleConnections();
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), deadlineMs);
  });
  const drained = await Promise.race([closed, late]);
  clearTimeout(timer);
  if (!drained) for (const socket of openSockets.get(server) ?? []) socket.destroy();
  await closed;
}

// Binds a redirect target on its configured loopback address and on the other family's loopback
// too: the guard's redirect sends IPv4 to 127.0.0.1 and IPv6 to ::1, on the same port.
import type { AddressInfo } from 'node:net';
import { splitHostPort } from '../config/host-port.js';

export interface BindAddress {
  readonly host: string;
  readonly port: number;
}

const TWIN: Readonly<Record<string, string>> = { '127.0.0.1': '::1', '::1': '127.0.0.1', localhost: '::1' };

/** `127.0.0.1:3443` → 127.0.0.1 and ::1 on 3443; any other host is bound alone. */
export function redirectTargets(hostPort: string): BindAddress[] {
  const { host, port } = splitHostPort(hostPort);
  const twin = TWIN[host];
  return twin === undefined ? [{ host, port }] : [{ host: host === 'localhost' ? '127.0.0.1' : host, port }, { host: twin, port }];
}

/** Something with a Node-style listen(port, host, callback). */
export interface Listenable {
  listen(port: number, host: string, callback: () => void): unknown;
  once(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
  address(): AddressInfo | string | null;
}

/**
 * Listens with one server per address, all on the first address's port (0 picks one). A missing
 * twin family (a host without IPv6) is skipped; the configured address itself must bind.
 */
export async function listenOnAll<S extends Listenable>(targets: readonly BindAddress[], create: () => S): Promise<{ servers: S[]; port: number }> {
  const servers: S[] = [];
  let port = targets[0]?.port ?? 0;
  for (const [index, target] of targets.entries()) {
    const server = create();
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(index === 0 ? target.port : port, target.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (index > 0 && (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT')) continue;
      throw error;
    }
    const address = server.address();
    if (index === 0 && address !== null && typeof address === 'object') port = address.port;
    servers.push(server);
  }
  return { servers, port };
}

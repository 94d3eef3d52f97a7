// An undici `connect` function for a Pool bound to one vetted destination: every connection the
// pool opens goes through `dial`, so undici never resolves a name or reaches an unvetted address.
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { isIP, type Socket } from 'node:net';
import type { buildConnector } from 'undici';
import { SluiceError } from '../errors.js';
import { formatAuthority } from '../destination.js';
import { dial } from './dial.js';
import type { VettedDestination } from './resolve-and-vet.js';

export interface ConnectorOptions {
  readonly timeoutMs: number;
  /** told which vetted address each new connection reached (for close records) and how long the dial took */
  readonly onConnected?: (address: string, port: number, connectMs: number) => void;
  /**
   * Settings for origins that are https (TLS is used exactly when the pool's origin is https).
   * The certificate is always checked against the vetted destination, never a Host header.
   */
  readonly tls?: {
    /** defaults to the destination host; never sent as SNI when it is an IP literal */
    readonly servername?: string;
    /** extra trust anchors (tests, private CAs); the system store is used otherwise */
    readonly ca?: ConnectionOptions['ca'];
  };
}

function defaultPort(protocol: string): number {
  return protocol === 'https:' ? 443 : 80;
}

/** The pool must only ever ask for the destination it was built for; anything else is a bug. */
function sameDestination(vetted: VettedDestination, options: buildConnector.Options): boolean {
  const host = options.hostname.startsWith('[') ? options.hostname.slice(1, -1) : options.hostname;
  const port = options.port === '' ? defaultPort(options.protocol) : Number(options.port);
  return host.toLowerCase() === vetted.destination.host && port === vetted.destination.port;
}

function startTls(socket: Socket, vetted: VettedDestination, tls: NonNullable<ConnectorOptions['tls']>, session: Buffer | undefined): TLSSocket {
  const name = tls.servername ?? vetted.destination.host;
  return tlsConnect({
    socket,
    // RFC 6066 §3: SNI carries host names only, never an address literal.
    ...(isIP(name) === 0 ? { servername: name } : {}),
    // The certificate is checked against the name the agent asked for, not the dialled address.
    host: name,
    ALPNProtocols: ['http/1.1'],
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(session === undefined ? {} : { session }),
  });
}

export function connectorFor(vetted: VettedDestination, options: ConnectorOptions): buildConnector.connector {
  let session: Buffer | undefined;
  return (connectOptions, callback) => {
    if (!sameDestination(vetted, connectOptions) || connectOptions.httpSocket !== undefined) {
      const asked = `${connectOptions.hostname}:${connectOptions.port}`;
      callback(new SluiceError('INTERNAL', `connector for ${formatAuthority(vetted.destination)} asked to reach ${asked}`), null);
      return;
    }
    const started = performance.now();
    dial(vetted, { timeoutMs: options.timeoutMs }).then(
      ({ socket, address, port, connectMs }) => {
        options.onConnected?.(address, port, connectMs);
        socket.setKeepAlive(true, 60_000);
        if (connectOptions.protocol !== 'https:') {
          callback(null, socket);
          return;
        }
        const secure = startTls(socket, vetted, options.tls ?? {}, session);
        const remaining = Math.max(1, options.timeoutMs - (performance.now() - started));
        const handshakeTimer = setTimeout(() => secure.destroy(new SluiceError('UPSTREAM_TIMEOUT', `TLS handshake with ${formatAuthority(vetted.destination)}`)), remaining);
        let answered = false;
        secure.on('session', (ticket: Buffer) => {
          session = ticket;
        });
        secure.once('secureConnect', () => {
          clearTimeout(handshakeTimer);
          answered = true;
          callback(null, secure);
        });
        // Kept after the handshake like undici's own connector, so a late error is never unhandled
        // before the pool attaches its listeners.
        secure.on('error', (error) => {
          clearTimeout(handshakeTimer);
          if (answered) return;
          answered = true;
          callback(error, null);
        });
      },
      (error: unknown) => callback(error instanceof Error ? error : new SluiceError('INTERNAL', String(error)), null),
    );
  };
}

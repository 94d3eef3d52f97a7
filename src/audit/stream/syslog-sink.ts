// Delivers audit batches as RFC 5424 syslog messages over TCP or TLS, octet-counted (RFC 6587
// §3.4.1) so a record holding a newline cannot split a frame. One connection, reopened on failure.
import { connect as tcpConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { OperatorError } from '../../errors.js';
import type { AuditRecord } from '../record.js';
import type { StreamSink } from './sink.js';

export interface SyslogSinkOptions {
  readonly host: string;
  readonly port: number;
  /** absent: plain TCP */
  readonly tls?: { readonly ca?: string; readonly verify: boolean };
  /** RFC 5424 HOSTNAME and APP-NAME of every message */
  readonly hostname: string;
  readonly appName: string;
  readonly timeoutMs: number;
}

/** facility local0 (16); RFC 5424 §6.2.1 PRI = facility * 8 + severity */
const LOCAL0 = 16 * 8;
const WARNING = 4;
const INFORMATIONAL = 6;

/** One message: PRI, version 1, the record's own timestamp, MSGID = its kind, no structured data, the record as JSON. */
export function syslogFrame(record: AuditRecord, hostname: string, appName: string): string {
  const refused = record['verdict'] === 'deny' || record['verdict'] === 'error';
  const message = `<${LOCAL0 + (refused ? WARNING : INFORMATIONAL)}>1 ${record.ts} ${hostname} ${appName} - ${record.kind} - ${JSON.stringify(record)}`;
  return `${Buffer.byteLength(message)} ${message}`;
}

export class SyslogSink implements StreamSink {
  readonly #options: SyslogSinkOptions;
  #socket: Socket | null = null;

  constructor(options: SyslogSinkOptions) {
    this.#options = options;
  }

  get target(): string {
    const { host, port } = this.#options;
    return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
  }

  async deliver(records: readonly AuditRecord[]): Promise<void> {
    const { hostname, appName, timeoutMs } = this.#options;
    const frames = records.map((record) => syslogFrame(record, hostname, appName)).join('');
    try {
      const socket = this.#socket ?? (await this.#connect());
      await new Promise<void>((resolve, reject) => {
        // A collector that stops reading leaves the write pending forever: give up, reconnect later.
        const timer = setTimeout(() => reject(new Error(`the collector took no data for ${timeoutMs} ms`)), timeoutMs);
        socket.write(frames, (error) => {
          clearTimeout(timer);
          if (error === undefined || error === null) resolve();
          else reject(error);
        });
      });
    } catch (error) {
      this.#drop();
      throw new OperatorError('AUDIT_STREAM_DELIVERY', `syslog ${this.target}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  close(): Promise<void> {
    const socket = this.#socket;
    this.#socket = null;
    if (socket === null) return Promise.resolve();
    return new Promise((resolve) => {
      socket.once('close', () => resolve());
      socket.end();
      // A collector that stopped reading must not hold the shutdown up.
      socket.setTimeout(Math.min(this.#options.timeoutMs, 1_000), () => socket.destroy());
    });
  }

  #connect(): Promise<Socket> {
    const { host, port, tls, timeoutMs } = this.#options;
    return new Promise((resolve, reject) => {
      const ready = tls === undefined ? 'connect' : 'secureConnect';
      const socket =
        tls === undefined
          ? tcpConnect({ host, port })
          : tlsConnect({ host, port, ...(isIP(host) === 0 ? { servername: host } : {}), rejectUnauthorized: tls.verify, ...(tls.ca === undefined ? {} : { ca: tls.ca }) });
      const timer = setTimeout(() => socket.destroy(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
      const fail = (error: Error): void => {
        clearTimeout(timer);
        reject(error);
      };
      socket.once('error', fail);
      socket.once(ready, () => {
        clearTimeout(timer);
        socket.off('error', fail);
        // A collector that closes or resets is noticed here; the next batch reconnects.
        socket.on('error', () => this.#drop(socket));
        socket.on('close', () => this.#drop(socket));
        // Collectors send nothing back; anything they do is read and ignored.
        socket.resume();
        this.#socket = socket;
        resolve(socket);
      });
    });
  }

  #drop(socket: Socket | null = this.#socket): void {
    if (socket === null) return;
    socket.destroy();
    if (this.#socket === socket) this.#socket = null;
  }
}

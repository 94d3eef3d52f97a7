// What the SIEM stream delivers to: an HTTP receiver or a syslog collector. Each takes a batch in
// seq order and resolves only once the receiver has it.
import type { AuditRecord } from '../record.js';

export interface StreamSink {
  /** where records go, for logs (an origin or host:port, never a credential) */
  readonly target: string;
  /** Resolves once every record is handed over; rejects with AUDIT_STREAM_DELIVERY otherwise. */
  deliver(records: readonly AuditRecord[]): Promise<void>;
  close(): Promise<void>;
}

// Starts the SIEM stream for the composition root: the audit source, the cursor in the state
// directory, and the metrics and log lines of its deliveries. The source reads across rotated files.
import { join } from 'node:path';
import type { StreamConfig } from '../../config/schema.js';
import type { Logger } from '../../obs/log.js';
import type { Metrics } from '../../obs/metrics.js';
import type { ChainHead } from '../record.js';
import { StreamCursor } from './cursor.js';
import type { StreamSink } from './sink.js';
import { ChainAuditSource } from './source.js';
import { AuditStreamer } from './streamer.js';

/** Where the stream keeps the seq and hash of the last record its receiver confirmed. */
export const STREAM_CURSOR_FILE = 'audit-stream.cursor';

export interface StreamSetup {
  readonly config: StreamConfig;
  readonly sink: StreamSink;
  readonly auditFile: string;
  readonly stateDir: string;
  readonly fsync: boolean;
  /** the chain's durable head now: the stream may read up to it */
  readonly durable: ChainHead;
  readonly metrics: Metrics;
  readonly log: Logger;
}

function cursorIn(stateDir: string, fsync: boolean): StreamCursor {
  return new StreamCursor(join(stateDir, STREAM_CURSOR_FILE), { fsync });
}

/**
 * The first seq the stream has yet to deliver according to its saved cursor (1 without one):
 * what retention must keep while the chain opens, before the stream itself has started.
 */
export async function savedUndeliveredFrom(stateDir: string): Promise<number> {
  const loaded = await cursorIn(stateDir, false).load();
  return loaded.kind === 'saved' ? loaded.cursor.seq + 1 : 1;
}

export function startAuditStream(setup: StreamSetup): Promise<AuditStreamer> {
  const { config, sink, metrics, log } = setup;
  return AuditStreamer.start(new ChainAuditSource(setup.auditFile), sink, cursorIn(setup.stateDir, setup.fsync), setup.durable, {
    batchSize: config.batch_size,
    flushIntervalMs: config.flush_interval_ms,
    retry: { initialMs: config.retry_initial_ms, maxMs: Math.max(config.retry_initial_ms, config.retry_max_ms) },
    onSent: (records) => metrics.auditStreamSent.inc(records),
    onLag: (records) => metrics.auditStreamLag.set(records),
    onError: (error) => {
      metrics.auditStreamErrors.inc();
      log.warn({ err: error, target: sink.target }, 'audit stream delivery failed; the records wait in the audit file and are retried');
    },
    onRestart: (why) => log.error({ why, target: sink.target }, 'audit stream cursor unusable; resending the chain from seq 1'),
  });
}

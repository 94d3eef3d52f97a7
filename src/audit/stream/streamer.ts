// Streams the audit chain to a SIEM at least once, in seq order: records wait in the audit file
// (no second copy) until the sink confirms them; the cursor moves only after that. Never blocks appends.
import { isOperatorError, type OperatorError } from '../../errors.js';
import { realTimer, type Schedule, type Scheduled } from '../schedule.js';
import type { ChainHead } from '../record.js';
import { START_OF_CHAIN, type StreamCursor } from './cursor.js';
import type { StreamSink } from './sink.js';
import type { AuditSource } from './source.js';

/** How long a shutdown waits for the receiver to take the last records. */
export const SHUTDOWN_FLUSH_MS = 2_000;

export interface StreamerOptions {
  readonly batchSize: number;
  /** a batch smaller than batchSize waits this long for company before it is sent */
  readonly flushIntervalMs: number;
  /** after a failed delivery, wait initialMs, doubling to maxMs, then retry from the cursor */
  readonly retry: { readonly initialMs: number; readonly maxMs: number };
  readonly schedule?: Schedule;
  readonly onSent?: (records: number) => void;
  readonly onError?: (error: unknown) => void;
  /** durable records not yet confirmed, after every change */
  readonly onLag?: (records: number) => void;
  /** the saved cursor could not be used; streaming restarts at seq 1 */
  readonly onRestart?: (why: string) => void;
}

export class AuditStreamer {
  readonly #source: AuditSource;
  readonly #sink: StreamSink;
  readonly #cursorStore: StreamCursor;
  readonly #options: StreamerOptions;
  readonly #schedule: Schedule;
  #cursor: ChainHead = START_OF_CHAIN;
  #durable: number;
  #timer: Scheduled | null = null;
  #backoffMs = 0;
  #running: Promise<void> | null = null;
  #closing = false;

  private constructor(source: AuditSource, sink: StreamSink, cursor: StreamCursor, durable: ChainHead, options: StreamerOptions) {
    this.#source = source;
    this.#sink = sink;
    this.#cursorStore = cursor;
    this.#durable = durable.seq;
    this.#options = options;
    this.#schedule = options.schedule ?? realTimer;
  }

  /** Loads the cursor and starts delivering what the chain already holds beyond it. */
  static async start(source: AuditSource, sink: StreamSink, cursor: StreamCursor, durable: ChainHead, options: StreamerOptions): Promise<AuditStreamer> {
    const streamer = new AuditStreamer(source, sink, cursor, durable, options);
    const loaded = await cursor.load();
    if (loaded.kind === 'unreadable') options.onRestart?.(`${cursor.file} is unreadable (${loaded.detail})`);
    if (loaded.kind === 'saved') {
      if (loaded.cursor.seq > durable.seq) options.onRestart?.(`${cursor.file} is at seq ${loaded.cursor.seq}, beyond the chain's last record ${durable.seq}; the chain was replaced`);
      else streamer.#cursor = loaded.cursor;
    }
    streamer.#reportLag();
    streamer.#wake();
    return streamer;
  }

  /** The last record the receiver confirmed. */
  get cursor(): ChainHead {
    return this.#cursor;
  }

  /** The chain made records up to `durable` safe on disk: they may be sent now. */
  committed(durable: ChainHead): void {
    if (durable.seq <= this.#durable) return;
    this.#durable = durable.seq;
    this.#reportLag();
    this.#wake();
  }

  /**
   * Stops streaming. Unless the receiver is failing, what waits is sent once, so a clean shutdown's
   * last records arrive now; a slow receiver gets SHUTDOWN_FLUSH_MS, then its request is aborted.
   * Whatever was not confirmed waits in the audit file for the next start.
   */
  async close(): Promise<void> {
    const flush = this.#backoffMs === 0 && this.#running === null;
    this.#closing = true;
    this.#timer?.cancel();
    this.#timer = null;
    if (flush) this.#running = this.#drain();
    const settled = this.#running;
    if (settled !== null) {
      let deadline: Scheduled | undefined;
      await Promise.race([settled, new Promise<void>((resolve) => (deadline = this.#schedule(resolve, SHUTDOWN_FLUSH_MS)))]);
      deadline?.cancel();
    }
    // Aborts a delivery still in flight; #drain catches that and, closing, schedules nothing.
    await this.#sink.close();
    await settled;
  }

  #wake(): void {
    if (this.#closing || this.#running !== null || this.#timer !== null) return;
    const waiting = this.#durable - this.#cursor.seq;
    if (waiting <= 0) return;
    if (waiting >= this.#options.batchSize) this.#run();
    else this.#later(this.#options.flushIntervalMs);
  }

  #later(delayMs: number): void {
    this.#timer = this.#schedule(() => {
      this.#timer = null;
      this.#run();
    }, delayMs);
  }

  #run(): void {
    if (this.#closing || this.#running !== null) return;
    this.#running = this.#drain().finally(() => {
      this.#running = null;
      // Records committed while the last batch was in flight are picked up here (unless backing off).
      this.#wake();
    });
  }

  /** Sends every durable record beyond the cursor, in batches; on failure, backs off and stops. */
  async #drain(): Promise<void> {
    while (this.#durable > this.#cursor.seq) {
      try {
        const records = await this.#source.read(this.#cursor, this.#durable, this.#options.batchSize);
        const last = records.at(-1);
        if (last === undefined) return;
        await this.#sink.deliver(records);
        const next = { seq: last.seq, hash: last.hash };
        await this.#cursorStore.save(next);
        this.#cursor = next;
        this.#backoffMs = 0;
        this.#options.onSent?.(records.length);
        this.#reportLag();
      } catch (error) {
        if (isOperatorError(error, 'AUDIT_STREAM_CURSOR')) {
          this.#restart(error);
          continue;
        }
        this.#options.onError?.(error);
        this.#backoffMs = this.#backoffMs === 0 ? this.#options.retry.initialMs : Math.min(this.#backoffMs * 2, this.#options.retry.maxMs);
        if (!this.#closing) this.#later(this.#backoffMs);
        return;
      }
    }
  }

  /** The saved cursor names a record this chain does not hold: resend from the start (duplicates, never a gap). */
  #restart(error: OperatorError): void {
    this.#options.onRestart?.(error.message);
    this.#cursor = START_OF_CHAIN;
    this.#reportLag();
  }

  #reportLag(): void {
    this.#options.onLag?.(Math.max(0, this.#durable - this.#cursor.seq));
  }
}

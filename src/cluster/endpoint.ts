// One end of the IPC channel between the primary and a worker: numbered calls matched to their
// replies, notices one way, and every call still waiting failed when the channel goes.
import { ERROR_CATALOGUE, isSluiceError, SluiceError, type ErrorCode } from '../errors.js';
import { isClusterMessage, type Message } from './messages.js';

export interface Channel {
  send(message: unknown): unknown;
}

export interface EndpointHandlers<In, Notice> {
  /** answers a call from the other end; a thrown error becomes the caller's rejection */
  readonly serve: (call: In) => unknown;
  readonly hear: (notice: Notice) => void;
}

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

export class Endpoint<Out extends { op: string }, OutNotice, In, InNotice, Replies extends Record<Out['op'], unknown>> {
  #next = 0;
  readonly #pending = new Map<number, Pending>();
  #closed: SluiceError | null = null;
  #onIdle: (() => void)[] = [];
  #outbox: Exclude<Message<unknown, unknown>, { type: 'batch' }>[] = [];

  constructor(
    private readonly channel: Channel,
    private readonly handlers: EndpointHandlers<In, InNotice>,
  ) {}

  call<K extends Out['op']>(call: Extract<Out, { op: K }>): Promise<Replies[K]> {
    if (this.#closed !== null) return Promise.reject(this.#closed);
    this.#next += 1;
    const id = this.#next;
    return new Promise<Replies[K]>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.#send({ type: 'call', id, call });
    });
  }

  notify(notice: OutNotice): void {
    if (this.#closed === null) this.#send({ type: 'notice', notice });
  }

  /** Feeds one message from the channel; anything that is not ours is ignored. */
  receive(message: unknown): void {
    if (!isClusterMessage<In, InNotice>(message)) return;
    switch (message.type) {
      case 'batch':
        for (const each of message.messages) this.receive(each);
        return;
      case 'notice':
        this.handlers.hear(message.notice);
        return;
      case 'reply': {
        const pending = this.#pending.get(message.id);
        if (pending === undefined) return;
        this.#pending.delete(message.id);
        this.#idleCheck();
        if (message.ok) pending.resolve(message.value);
        else pending.reject(rebuilt(message.code, message.message));
        return;
      }
      case 'call':
        void this.#answer(message.id, message.call);
        return;
    }
  }

  /** Resolves once no call waits for its reply (a worker's last records have reached the primary). */
  idle(): Promise<void> {
    if (this.#pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#onIdle.push(resolve));
  }

  #idleCheck(): void {
    if (this.#pending.size > 0) return;
    for (const resolve of this.#onIdle.splice(0)) resolve();
  }

  /** The other end is gone: every call waiting, and every later one, fails with `error`. */
  close(error: SluiceError): void {
    this.#closed ??= error;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
    this.#idleCheck();
  }

  async #answer(id: number, call: In): Promise<void> {
    try {
      const value = await this.handlers.serve(call);
      this.#send({ type: 'reply', id, ok: true, value: value ?? null });
    } catch (error) {
      const failure = isSluiceError(error) ? error : new SluiceError('INTERNAL', error instanceof Error ? error.message : String(error));
      this.#send({ type: 'reply', id, ok: false, code: failure.code, message: failure.message });
    }
  }

  /**
   * Queues the message; everything queued in this turn of the event loop goes as one batch at its
   * end. Under load that is one write and one wake-up of the other process for many decisions.
   */
  #send(message: Exclude<Message<unknown, unknown>, { type: 'batch' }>): void {
    this.#outbox.push(message);
    if (this.#outbox.length === 1) queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    const messages = this.#outbox;
    this.#outbox = [];
    try {
      this.channel.send(messages.length === 1 ? messages[0] : { type: 'batch', messages });
    } catch (error) {
      // The channel closed under us (the other process died): the exit handler closes this end.
      const why = new SluiceError('INTERNAL', `cluster channel closed: ${error instanceof Error ? error.message : String(error)}`);
      for (const message of messages) {
        if (message.type !== 'call') continue;
        this.#pending.get(message.id)?.reject(why);
        this.#pending.delete(message.id);
      }
      this.#idleCheck();
    }
  }
}

/** The error the other end threw, with its code and its message as it was (not prefixed twice). */
function rebuilt(code: ErrorCode, message: string): SluiceError {
  const prefix = ERROR_CATALOGUE[code].message;
  if (message === prefix) return new SluiceError(code);
  return new SluiceError(code, message.startsWith(`${prefix}: `) ? message.slice(prefix.length + 2) : message);
}

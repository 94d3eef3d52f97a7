// An incremental Server-Sent Events splitter (WHATWG HTML §9.2): bytes in as they arrive, whole
// events out with their raw bytes, so a stream can be read, passed on, or have one event dropped.
import { StringDecoder } from 'node:string_decoder';

export interface SseEvent {
  /** the `event:` field, undefined for the default `message` */
  readonly event: string | undefined;
  /** the `data:` lines joined with \n */
  readonly data: string;
  /** the event's bytes as received, blank line included */
  readonly raw: Buffer;
}

const BLANK_LINE = /\r\n\r\n|\n\n|\r\r/;

export class SseSplitter {
  private pending = '';
  // A character whose UTF-8 bytes straddle two chunks must not turn into two replacement marks.
  private readonly decoder = new StringDecoder('utf8');

  /** Events completed by `chunk`; a partial event waits for the next chunk. */
  push(chunk: Buffer): SseEvent[] {
    this.pending += this.decoder.write(chunk);
    const events: SseEvent[] = [];
    for (let match = BLANK_LINE.exec(this.pending); match !== null; match = BLANK_LINE.exec(this.pending)) {
      const end = match.index + match[0].length;
      const text = this.pending.slice(0, end);
      this.pending = this.pending.slice(end);
      events.push(parse(text));
    }
    return events;
  }

  /** What is left when the stream ends: an event cut short, passed on unread. */
  rest(): Buffer {
    const rest = Buffer.from(this.pending + this.decoder.end(), 'utf8');
    this.pending = '';
    return rest;
  }
}

function parse(text: string): SseEvent {
  let event: string | undefined;
  const data: string[] = [];
  for (const line of text.split(/\r\n|\n|\r/)) {
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return { event, data: data.join('\n'), raw: Buffer.from(text, 'utf8') };
}

// RFC 9112 checks an intermediary must make that Node's parser (llhttp) leaves to the
// application: version, a single Host, unambiguous framing. Anything doubtful is refused, never
// forwarded, because a proxy and an origin that frame a message differently enable smuggling.
import type { IncomingMessage } from 'node:http';
import { SluiceError, type ErrorCode } from '../errors.js';

const CONTENT_LENGTH = /^[0-9]{1,15}$/;
// RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT, the last word of the request line.
const VERSION_AT_END = / HTTP\/([0-9])\.([0-9])$/;
const LF = 0x0a;
const CR = 0x0d;

export function checkRequestHead(request: IncomingMessage): void {
  // §2.3: only the HTTP/1.x versions this proxy implements; llhttp also accepts 0.9 and 2.0 lines.
  if (request.httpVersionMajor !== 1 || (request.httpVersionMinor !== 0 && request.httpVersionMinor !== 1)) {
    throw new SluiceError('BAD_HTTP_VERSION', `HTTP/${request.httpVersion}`);
  }
  let hosts = 0;
  let lengths = 0;
  let transferEncoding: string | undefined;
  const raw = request.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    const value = raw[i + 1] ?? '';
    if (name === 'host') hosts += 1;
    else if (name === 'content-length') {
      lengths += 1;
      if (!CONTENT_LENGTH.test(value)) throw new SluiceError('BAD_FRAMING', 'invalid Content-Length');
    } else if (name === 'transfer-encoding') {
      transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
    }
  }
  // RFC 9110 §7.2 and the many smuggling variants built on two Host lines.
  if (hosts > 1) throw new SluiceError('DUPLICATE_HOST');
  // §6.3: several Content-Length lines, or one beside Transfer-Encoding, is ambiguous framing.
  if (lengths > 1) throw new SluiceError('BAD_FRAMING', 'more than one Content-Length');
  if (transferEncoding !== undefined) {
    if (lengths > 0) throw new SluiceError('BAD_FRAMING', 'Content-Length together with Transfer-Encoding');
    // §6.1: Transfer-Encoding in an HTTP/1.0 request means the framing cannot be trusted.
    if (request.httpVersionMinor === 0) throw new SluiceError('BAD_FRAMING', 'Transfer-Encoding in an HTTP/1.0 request');
    const codings = transferEncoding.split(',').map((coding) => coding.trim().toLowerCase());
    if (codings.length !== 1 || codings[0] !== 'chunked') {
      throw new SluiceError('BAD_FRAMING', `unsupported Transfer-Encoding ${JSON.stringify(transferEncoding)}`);
    }
  }
}

/**
 * What an HPE_INVALID_VERSION from llhttp means. It reports both a version this proxy does not
 * speak (`HTTP/3.0`: 505) and a request line that does not end in CRLF (`HTTP/1.1` then a bare
 * LF), which is a malformed request (400), not a version problem. `packet` is the chunk being
 * parsed and `parsed` how far the parser got: one past the offending byte.
 */
export function versionErrorCode(packet: Buffer | undefined, parsed: number | undefined): ErrorCode {
  if (packet === undefined || parsed === undefined || parsed < 1) return 'BAD_REQUEST';
  const offending = Math.min(parsed, packet.length) - 1;
  const start = offending === 0 ? 0 : packet.lastIndexOf(LF, offending - 1) + 1;
  let end = start;
  while (end < packet.length && packet[end] !== CR && packet[end] !== LF) end += 1;
  const version = VERSION_AT_END.exec(packet.toString('latin1', start, end));
  if (version === null) return 'BAD_REQUEST';
  return version[1] === '1' && (version[2] === '0' || version[2] === '1') ? 'BAD_REQUEST' : 'BAD_HTTP_VERSION';
}

/** Whether the request carries a body we must stream on: chunked, or a non-zero length. */
export function hasBody(request: IncomingMessage): boolean {
  if (request.headers['transfer-encoding'] !== undefined) return true;
  const length = request.headers['content-length'];
  return length !== undefined && length !== '0';
}

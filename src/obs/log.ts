// pino logger construction: JSON lines, credentials redacted wherever they might appear.
import { destination as pinoDestination, pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

const REDACT = [
  'headers["proxy-authorization"]',
  'headers.authorization',
  // a request object nested in an error or context (a parent proxy's credentials travel there)
  '*.headers["proxy-authorization"]',
  '*.headers.authorization',
  'headers.cookie',
  'headers["x-api-key"]',
  'token',
  '*.token',
];

/**
 * Without a destination, lines go to stdout through an asynchronous writer: a synchronous write per
 * request on the proxy's event loop cost about a tenth of its throughput. The audit chain, not
 * the log, is the durable record; call `logger.flush()` before exiting.
 */
export function createLogger(level: LevelWithSilent, destination?: DestinationStream): Logger {
  const sink = destination ?? pinoDestination({ dest: 1, sync: false });
  return pino({ level, base: { service: 'sluice' }, redact: { paths: REDACT, censor: '[redacted]' } }, sink);
}

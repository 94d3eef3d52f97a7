// pino logger construction: JSON lines, credentials redacted wherever they might appear.
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

const REDACT = [
  'headers["proxy-authorization"]',
  'headers.authorization',
  'headers.cookie',
  'headers["x-api-key"]',
  'token',
  '*.token',
];

export function createLogger(level: LevelWithSilent, destination?: DestinationStream): Logger {
  return pino({ level, base: { service: 'sluice' }, redact: { paths: REDACT, censor: '[redacted]' } }, destination);
}

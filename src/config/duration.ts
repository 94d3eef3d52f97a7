// Durations as operators write them (90s, 30m, 6h, 1d, 1h30m) in config files and on the command
// line, parsed in one place so a file and a flag accept exactly the same spellings.
import { z } from 'zod';

const DURATION = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

export const DURATION_HINT = 'expected a duration such as 90s, 30m, 6h, 1d or 1h30m';

/** Milliseconds, or null when the text is not a positive duration in days, hours, minutes and seconds (in that order). */
export function parseDuration(text: string): number | null {
  const match = DURATION.exec(text);
  if (match === null) return null;
  const [days = '0', hours = '0', minutes = '0', seconds = '0'] = match.slice(1).map((part) => part ?? '0');
  const ms = (((Number(days) * 24 + Number(hours)) * 60 + Number(minutes)) * 60 + Number(seconds)) * 1000;
  return ms > 0 ? ms : null;
}

export const durationSchema = z
  .string()
  .refine((text) => parseDuration(text) !== null, DURATION_HINT)
  .transform((text) => parseDuration(text) ?? 0);

// Durations as operators write them (90s, 30m, 6h, 1d) in config files and on the command line,
// parsed in one place so a file and a flag accept exactly the same spellings.
import { z } from 'zod';

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^([1-9][0-9]*)(s|m|h|d)$/;

export const DURATION_HINT = 'expected a duration such as 90s, 30m, 6h or 1d';

/** Milliseconds, or null when the text is not a positive whole number followed by s, m, h or d. */
export function parseDuration(text: string): number | null {
  const match = DURATION.exec(text);
  if (match === null) return null;
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

export const durationSchema = z
  .string()
  .regex(DURATION, DURATION_HINT)
  .transform((text) => parseDuration(text) ?? 0);

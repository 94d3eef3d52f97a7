// The UTC budget windows: where the hour, day and month an instant falls in begin and end.

export const WINDOWS = ['hourly', 'daily', 'monthly'] as const;
export type Window = (typeof WINDOWS)[number];

export function windowStart(window: Window, at: number): number {
  const date = new Date(at);
  switch (window) {
    case 'hourly':
      return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate(), date.getUTCHours());
    case 'daily':
      return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
    case 'monthly':
      return Date.UTC(date.getUTCFullYear(), date.getUTCMonth());
  }
}

export function windowEnd(window: Window, at: number): number {
  const start = new Date(windowStart(window, at));
  switch (window) {
    case 'hourly':
      return start.getTime() + 3_600_000;
    case 'daily':
      return start.getTime() + 86_400_000;
    case 'monthly':
      return Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1);
  }
}

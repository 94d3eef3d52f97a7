// Reading admin API bodies and queries: each field checked with a message naming it, so a caller
// learns exactly what to fix (ADMIN_BAD_REQUEST).
import { apiError } from './router.js';

export function requiredString(body: Readonly<Record<string, unknown>>, field: string, pattern?: RegExp): string {
  const value = body[field];
  if (typeof value !== 'string' || value === '') throw apiError('ADMIN_BAD_REQUEST', `${field}: expected a non-empty string`);
  if (pattern !== undefined && !pattern.test(value)) throw apiError('ADMIN_BAD_REQUEST', `${field}: "${value}" does not match ${pattern.source}`);
  return value;
}

export function optionalString(body: Readonly<Record<string, unknown>>, field: string): string | null {
  const value = body[field];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw apiError('ADMIN_BAD_REQUEST', `${field}: expected a string`);
  return value;
}

export function optionalPort(value: unknown, field: string): number | null {
  if (value === undefined || value === null || value === '') return null;
  const port = typeof value === 'string' && /^[0-9]{1,5}$/.test(value) ? Number(value) : value;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw apiError('ADMIN_BAD_REQUEST', `${field}: expected a port 1..65535`);
  return port;
}

export function requiredQuery(query: URLSearchParams, field: string): string {
  const value = query.get(field);
  if (value === null || value === '') throw apiError('ADMIN_BAD_REQUEST', `query parameter ${field} is required`);
  return value;
}

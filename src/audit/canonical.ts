// Canonical JSON for audit hashing (RFC 8785-like): sorted keys, no whitespace, ECMAScript number
// and string forms, so the same record always hashes the same on every machine and Node version.
import { SluiceError } from '../errors.js';

export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/**
 * Serialises a plain JSON value canonically. Throws AUDIT_RECORD_INVALID for anything JSON.stringify
 * would silently alter or drop (undefined, NaN, Infinity, Dates, Maps, class instances, holes,
 * cycles), because a record that does not round-trip cannot be re-verified from its line.
 */
export function canonicalJson(value: unknown): string {
  return serialise(value, '$', new Set());
}

function serialise(value: unknown, path: string, ancestors: Set<object>): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw invalid(path, `${String(value)} is not a finite number`);
      return JSON.stringify(value);
    case 'object':
      if (value === null) return 'null';
      return serialiseContainer(value, path, ancestors);
    default:
      throw invalid(path, `a ${typeof value} is not a JSON value`);
  }
}

function serialiseContainer(value: object, path: string, ancestors: Set<object>): string {
  if (ancestors.has(value)) throw invalid(path, 'circular reference');
  ancestors.add(value);
  try {
    if (Array.isArray(value)) return serialiseArray(value, path, ancestors);
    const prototype: unknown = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) {
      throw invalid(path, `${describe(value)} is not a plain object`);
    }
    if (Object.getOwnPropertySymbols(value).length > 0) throw invalid(path, 'symbol keys are not JSON');
    return `{${members(value as Record<string, unknown>, path, ancestors).map((member) => member.text).join(',')}}`;
  } finally {
    ancestors.delete(value);
  }
}

export interface CanonicalMember {
  readonly key: string;
  /** `"key":value`, canonical */
  readonly text: string;
}

function members(record: Record<string, unknown>, path: string, ancestors: Set<object>): CanonicalMember[] {
  // Array.prototype.sort without a comparator orders by UTF-16 code unit, as RFC 8785 §3.2.3 asks.
  return Object.keys(record)
    .sort()
    .map((key) => ({ key, text: `${JSON.stringify(key)}:${serialise(record[key], `${path}.${key}`, ancestors)}` }));
}

/**
 * The sorted, serialised members of a plain object, so a caller can hash the object and then add
 * one more member (the hash itself) without serialising everything twice.
 */
export function canonicalMembers(record: Record<string, unknown>): CanonicalMember[] {
  return members(record, '$', new Set<object>([record]));
}

function serialiseArray(items: readonly unknown[], path: string, ancestors: Set<object>): string {
  const parts: string[] = [];
  for (let index = 0; index < items.length; index += 1) {
    if (!(index in items)) throw invalid(`${path}[${index}]`, 'sparse array hole');
    parts.push(serialise(items[index], `${path}[${index}]`, ancestors));
  }
  return `[${parts.join(',')}]`;
}

function describe(value: object): string {
  const name = value.constructor?.name;
  return typeof name === 'string' && name !== '' ? `a ${name}` : 'an exotic object';
}

function invalid(path: string, why: string): SluiceError {
  return new SluiceError('AUDIT_RECORD_INVALID', `${path}: ${why}`);
}

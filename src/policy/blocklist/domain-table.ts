// A read-only hash set of domain names held in typed arrays: no per-name JS objects, so a million
// names cost tens of megabytes, add nothing for the GC to trace, and move between threads for free.

/** The raw arrays, as posted from the compiling worker (their buffers are transferred). */
export interface DomainTableData {
  /** every name's ASCII bytes, back to back */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** name i spans bytes[offsets[i]] .. bytes[offsets[i + 1]] */
  readonly offsets: Uint32Array<ArrayBuffer>;
  /**
   * open addressing, two ints per slot: name index + 1 (0 when empty), then that name's hash,
   * side by side so a probe touches one cache line; the slot count is a power of two
   */
  readonly slots: Int32Array<ArrayBuffer>;
  /**
   * one bit per hash bucket, eight bits per name: small enough to stay in cache, so most parent
   * domains that are not listed are ruled out without touching the large arrays
   */
  readonly filter: Uint32Array<ArrayBuffer>;
}

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/**
 * Names are hashed from their last character to their first, so one right-to-left pass over a
 * host yields the hash of each parent domain as the scan reaches its first label.
 */
export function hashStep(hash: number, charCode: number): number {
  return Math.imul(hash ^ charCode, FNV_PRIME);
}

export const HASH_SEED = FNV_OFFSET;

function slotOf(hash: number, mask: number): number {
  let h = hash;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h & mask;
}

function filterBit(hash: number, shift: number): number {
  return Math.imul(hash, 0x9e3779b1) >>> shift;
}

function filterShift(filter: Uint32Array): number {
  return 32 - Math.log2(filter.length * 32);
}

export function hashName(name: string, start = 0): number {
  let hash = HASH_SEED;
  for (let i = name.length - 1; i >= start; i--) hash = hashStep(hash, name.charCodeAt(i));
  return hash;
}

export class DomainTable {
  readonly size: number;
  private readonly mask: number;
  private readonly shift: number;

  constructor(private readonly data: DomainTableData) {
    this.size = data.offsets.length - 1;
    this.mask = data.slots.length / 2 - 1;
    this.shift = filterShift(data.filter);
  }

  static empty(): DomainTable {
    return new DomainTable({ bytes: new Uint8Array(0), offsets: new Uint32Array(1), slots: new Int32Array(2), filter: new Uint32Array(1) });
  }

  /** Whether host.slice(start) is in the table, given its hash; allocates nothing. */
  hasSuffix(host: string, start: number, hash: number): boolean {
    const { slots, offsets, bytes, filter } = this.data;
    const bit = filterBit(hash, this.shift);
    if (((filter[bit >>> 5] ?? 0) & (1 << (bit & 31))) === 0) return false;
    const length = host.length - start;
    for (let slot = slotOf(hash, this.mask); ; slot = (slot + 1) & this.mask) {
      const entry = slots[2 * slot] ?? 0;
      if (entry === 0) return false;
      if (slots[2 * slot + 1] !== hash) continue;
      const from = offsets[entry - 1] ?? 0;
      if ((offsets[entry] ?? 0) - from !== length) continue;
      let same = true;
      for (let i = 0; i < length; i++) {
        if (bytes[from + i] !== host.charCodeAt(start + i)) {
          same = false;
          break;
        }
      }
      if (same) return true;
    }
  }

  /** Memory the table holds, for status pages and the bench. */
  get byteLength(): number {
    return this.data.bytes.byteLength + this.data.offsets.byteLength + this.data.slots.byteLength + this.data.filter.byteLength;
  }

  has(name: string): boolean {
    return this.hasSuffix(name, 0, hashName(name));
  }

  /** Every name, for the cache check and tests; not for the request path. */
  *names(): Generator<string> {
    const decoder = new TextDecoder('latin1');
    for (let i = 0; i < this.size; i++) yield decoder.decode(this.data.bytes.subarray(this.data.offsets[i], this.data.offsets[i + 1]));
  }
}

/** Accumulates names (already normalised: ASCII only) and drops duplicates as it goes. */
export class DomainTableBuilder {
  private bytes = new Uint8Array(1 << 16);
  private used = 0;
  private offsets = new Uint32Array(1 << 12);
  private nameHashes = new Int32Array(1 << 12);
  private count = 0;
  private slots = new Int32Array(1 << 13);

  get size(): number {
    return this.count;
  }

  /** Adds a name; false when it was already present. */
  add(name: string): boolean {
    const hash = hashName(name);
    const mask = this.slots.length - 1;
    let slot = slotOf(hash, mask);
    for (let entry = this.slots[slot] ?? 0; entry !== 0; entry = this.slots[slot] ?? 0) {
      if (this.nameHashes[entry - 1] === hash && this.equals(entry - 1, name)) return false;
      slot = (slot + 1) & mask;
    }
    if (this.used + name.length > this.bytes.length) this.bytes = grow(this.bytes, this.used + name.length);
    if (this.count + 2 > this.offsets.length) {
      this.offsets = grow(this.offsets, this.count + 2);
      this.nameHashes = grow(this.nameHashes, this.count + 2);
    }
    for (let i = 0; i < name.length; i++) this.bytes[this.used + i] = name.charCodeAt(i);
    this.offsets[this.count] = this.used;
    this.used += name.length;
    this.nameHashes[this.count] = hash;
    this.count++;
    this.offsets[this.count] = this.used;
    this.slots[slot] = this.count;
    // Keep the load factor under one half so misses end after a probe or two.
    if (this.count * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    return true;
  }

  finish(): DomainTableData {
    const slots = new Int32Array(this.slots.length * 2);
    for (let slot = 0; slot < this.slots.length; slot++) {
      const entry = this.slots[slot] ?? 0;
      slots[2 * slot] = entry;
      if (entry !== 0) slots[2 * slot + 1] = this.nameHashes[entry - 1] ?? 0;
    }
    let words = 1;
    while (words * 32 < this.count * 8) words *= 2;
    const filter = new Uint32Array(words);
    const shift = filterShift(filter);
    for (let index = 0; index < this.count; index++) {
      const bit = filterBit(this.nameHashes[index] ?? 0, shift);
      filter[bit >>> 5] = (filter[bit >>> 5] ?? 0) | (1 << (bit & 31));
    }
    return { bytes: this.bytes.slice(0, this.used), offsets: this.offsets.slice(0, this.count + 1), slots, filter };
  }

  private equals(index: number, name: string): boolean {
    const from = this.offsets[index] ?? 0;
    if ((this.offsets[index + 1] ?? 0) - from !== name.length) return false;
    for (let i = 0; i < name.length; i++) if (this.bytes[from + i] !== name.charCodeAt(i)) return false;
    return true;
  }

  private rehash(capacity: number): void {
    const slots = new Int32Array(capacity);
    const mask = capacity - 1;
    for (let index = 0; index < this.count; index++) {
      let slot = slotOf(this.nameHashes[index] ?? 0, mask);
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = index + 1;
    }
    this.slots = slots;
  }
}

function grow<T extends Uint8Array | Uint32Array | Int32Array>(array: T, needed: number): T {
  let length = array.length * 2;
  while (length < needed) length *= 2;
  const next = new (array.constructor as new (length: number) => T)(length);
  next.set(array);
  return next;
}

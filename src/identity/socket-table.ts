// Reads the kernel's socket tables (/proc/net/{tcp,udp}{,6}): how addresses are spelt there and
// which UID owns each row. The socket-owner lookups for explicit and redirected clients share it.
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import ipaddr from 'ipaddr.js';

const LITTLE_ENDIAN = endianness() === 'LE';

export interface SocketRow {
  readonly local: string;
  readonly remote: string;
  /** hex TCP state (01 ESTABLISHED) or UDP state (07 unconnected) */
  readonly state: string;
  readonly uid: number;
}

/** Each 32-bit word of the address in host byte order, then `:PORT` in hex. */
export function procSpelling(bytes: readonly number[], port: number): string {
  let hex = '';
  for (let word = 0; word < bytes.length; word += 4) {
    const group = bytes.slice(word, word + 4);
    for (const byte of LITTLE_ENDIAN ? group.reverse() : group) hex += byte.toString(16).padStart(2, '0');
  }
  return `${hex.toUpperCase()}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** An address as the IPv4 table spells it (when it is IPv4) and as the IPv6 table does (a dual-stack socket shows IPv4 as mapped). */
export function procSpellings(address: string, port: number): { readonly v4?: string; readonly v6: string } {
  const parsed = ipaddr.process(address);
  if (parsed.kind() === 'ipv4') {
    const v4 = parsed as ipaddr.IPv4;
    return { v4: procSpelling(v4.octets, port), v6: procSpelling(v4.toIPv4MappedAddress().toByteArray(), port) };
  }
  return { v6: procSpelling((parsed as ipaddr.IPv6).toByteArray(), port) };
}

/** The table's rows; an unreadable table (no /proc, another namespace) has none. */
export async function readSocketTable(path: string): Promise<SocketRow[]> {
  let table: string;
  try {
    table = await readFile(path, 'utf8');
  } catch {
    return [];
  }
  const rows: SocketRow[] = [];
  // Columns: sl local_address rem_address st tx:rx tr:when retrnsmt uid ...
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const uid = Number(fields[7]);
    if (fields.length < 8 || !Number.isInteger(uid)) continue;
    rows.push({ local: fields[1] ?? '', remote: fields[2] ?? '', state: fields[3] ?? '', uid });
  }
  return rows;
}

// The kernel's socket table through the sock_diag addon built from sock-diag/sock_diag.c: who owns a
// TCP or UDP socket, found by exact tuple or filtered inside the kernel, with no /proc text to parse.
import { createRequire } from 'node:module';
import ipaddr from 'ipaddr.js';
import { SluiceError } from '../errors.js';

const AF_INET = 2;
const AF_INET6 = 10;
const PROTOCOL = { tcp: 6, udp: 17 } as const;
// One bit per kernel socket state (include/net/tcp_states.h): 1 is ESTABLISHED; 7 is CLOSE,
// which is what an unconnected UDP socket reports.
const ESTABLISHED = 1 << 1;
const UNCONNECTED = 1 << 7;
const LIVE_STATES = { tcp: ESTABLISHED, udp: ESTABLISHED | UNCONNECTED } as const;

export type Transport = keyof typeof PROTOCOL;

interface SockDiagAddon {
  establishedOwner(local: Buffer, localPort: number, remote: Buffer, remotePort: number): number;
  localEndOwners(protocol: number, dumpFamily: number, address: Buffer, port: number, states: number): number[];
  originalDestination(fd: number, ipv6: boolean): [Buffer, number] | null;
}

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** Built by node-gyp (binding.gyp) during npm install, like re2; relative to dist/src/identity. */
const ADDON = '../../../build/Release/sock_diag.node';

let addon: SockDiagAddon | undefined;

/** The addon, loaded once. Throws IDENTITY_UNAVAILABLE saying why when it cannot load. */
export function loadSockDiag(): SockDiagAddon {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)(ADDON) as SockDiagAddon;
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new SluiceError('IDENTITY_UNAVAILABLE', `UID identity needs the sock_diag addon (build/Release/sock_diag.node; run npm rebuild): ${why}`);
    }
  }
  return addon;
}

/** 4 bytes for IPv4, IPv4-mapped IPv6 included (the kernel hashes those as IPv4), else 16. */
function addressBytes(address: string): Buffer {
  const parsed = ipaddr.process(address);
  return Buffer.from(parsed.kind() === 'ipv4' ? (parsed as ipaddr.IPv4).octets : (parsed as ipaddr.IPv6).toByteArray());
}

/**
 * The uid owning the ESTABLISHED TCP socket whose own end is `local` and whose peer is `remote`,
 * or undefined when no such socket exists (closed, half-closed, TIME_WAIT, another namespace).
 * Throws when the kernel cannot be asked.
 */
export function establishedOwner(local: Endpoint, remote: Endpoint): number | undefined {
  const uid = loadSockDiag().establishedOwner(addressBytes(local.address), local.port, addressBytes(remote.address), remote.port);
  return uid < 0 ? undefined : uid;
}

/**
 * The uids of every live socket (TCP: ESTABLISHED; UDP: connected or not) bound to exactly
 * (address, port), whatever its peer. An IPv4 address is also looked for among dual-stack IPv6
 * sockets, which show it IPv4-mapped.
 */
export function localEndOwners(transport: Transport, address: string, port: number): number[] {
  const sockDiag = loadSockDiag();
  const bytes = addressBytes(address);
  const families = bytes.length === 4 ? [AF_INET, AF_INET6] : [AF_INET6];
  return families.flatMap((family) => sockDiag.localEndOwners(PROTOCOL[transport], family, bytes, port, LIVE_STATES[transport]));
}

/**
 * Where the connection on `fd` (an accepted socket whose own end is `local`) was addressed before
 * a NAT redirect (SO_ORIGINAL_DST). A connection that was not translated was addressed to `local`.
 */
export function originalDestination(fd: number, local: Endpoint): Endpoint {
  const original = loadSockDiag().originalDestination(fd, addressBytes(local.address).length === 16);
  if (original === null) return local;
  const [bytes, port] = original;
  return { address: ipaddr.fromByteArray([...bytes]).toString(), port };
}

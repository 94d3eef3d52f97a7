// The addresses assigned to this host's own interfaces, kept current by polling, so the guard can
// refuse them: a service bound to 0.0.0.0 (admin, sshd, a database) answers on the host's public IP.
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import ipaddr from 'ipaddr.js';

/** How often the interfaces are re-read: an address added at run time is refused within this. */
export const LOCAL_ADDRESS_POLL_MS = 5_000;

export type InterfaceReader = () => NodeJS.Dict<NetworkInterfaceInfo[]>;

/** setInterval/clearInterval, injectable so a test can drive the poll without waiting. */
export interface PollTimer {
  every(ms: number, tick: () => void): () => void;
}

const REAL_TIMER: PollTimer = {
  every(ms, tick) {
    const handle = setInterval(tick, ms).unref();
    return () => clearInterval(handle);
  },
};

/**
 * The form an address is looked up by: no IPv6 zone, and an IPv4-mapped IPv6 address as its IPv4
 * address, because the kernel delivers a connection to `::ffff:a.b.c.d` to the IPv4 address.
 */
export function localKey(address: ipaddr.IPv4 | ipaddr.IPv6): string {
  if (address instanceof ipaddr.IPv4) return address.toString();
  if (address.isIPv4MappedAddress()) return address.toIPv4Address().toString();
  return new ipaddr.IPv6(address.parts).toString();
}

function snapshot(read: InterfaceReader): ReadonlySet<string> {
  const keys = new Set<string>();
  for (const entries of Object.values(read())) {
    for (const entry of entries ?? []) if (ipaddr.isValid(entry.address)) keys.add(localKey(ipaddr.parse(entry.address)));
  }
  return keys;
}

export class LocalAddresses {
  private current: ReadonlySet<string>;

  /** Reads the interfaces once now, so even a guard that is never polled knows the host's addresses. */
  constructor(private readonly read: InterfaceReader = networkInterfaces) {
    this.current = snapshot(read);
  }

  /** A Set lookup: this runs for every resolved address, the interface read never does. */
  has(key: string): boolean {
    return this.current.has(key);
  }

  /** A failed read keeps the last set: forgetting the host's addresses would open them. */
  refresh(): void {
    try {
      this.current = snapshot(this.read);
    } catch {
      // getifaddrs failing is transient (ENOMEM, EMFILE); the next poll tries again.
    }
  }

  /** Re-reads the interfaces every `ms` until the returned function is called. */
  poll(ms: number = LOCAL_ADDRESS_POLL_MS, timer: PollTimer = REAL_TIMER): () => void {
    return timer.every(ms, () => this.refresh());
  }
}

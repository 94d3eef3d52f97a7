// How a client going direct finds the origin by name: asks the bench's DNS server for every new
// connection, as a program without a proxy would (the proxy targets resolve the name themselves).
import { Resolver } from 'node:dns';
import type { LookupFunction } from 'node:net';
import type { OriginAddress } from './tasks.js';

/** A `lookup` for net.connect, or undefined when the origin is an IP literal. */
export function originLookup(origin: OriginAddress): LookupFunction | undefined {
  if (origin.resolver === null) return undefined;
  const resolver = new Resolver({ timeout: 2_000, tries: 1 });
  resolver.setServers([origin.resolver]);
  return (hostname, options, callback) => {
    resolver.resolve4(hostname, (error, addresses) => {
      const address = addresses?.[0];
      if (error !== null || address === undefined) callback(error ?? new Error(`${hostname}: no A record`), '', 4);
      // Node asks for every address when it may race IPv4 against IPv6 (autoSelectFamily).
      else if (options.all === true) callback(null, [{ address, family: 4 }]);
      else callback(null, address, 4);
    });
  };
}

// A Resolver that counts its calls, so a test can prove how many lookups happened, not only how
// many DNS packets a server saw.
import type { ResolvedAddress, Resolver } from '../../src/connect/index.js';

export class CountingResolver implements Resolver {
  calls = 0;
  constructor(private readonly inner: Resolver) {}
  resolveAll(name: string): Promise<readonly ResolvedAddress[]> {
    this.calls++;
    return this.inner.resolveAll(name);
  }
}

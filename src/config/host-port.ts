// Splits the `host:port` / `[v6]:port` strings the config uses for listeners and resolvers.
// One parser, so the schema, the listeners, the guard and the resolver read them alike.

export interface HostPort {
  /** without brackets */
  readonly host: string;
  readonly port: number;
}

export function splitHostPort(text: string): HostPort {
  const colon = text.lastIndexOf(':');
  const host = text.slice(0, colon);
  return { host: host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host, port: Number(text.slice(colon + 1)) };
}

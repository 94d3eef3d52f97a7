// Builds TLS ClientHello records field by field, so tests can make the variants real clients
// never send: duplicate names, ECH, bad lengths, hellos split over several records.

export interface Extension {
  readonly type: number;
  readonly data: Buffer;
}

function u16(value: number): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16BE(value);
  return out;
}

export function vector16(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([u16(body.length), body]);
}

export function vector8(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([body.length]), body]);
}

export function serverNameExtension(...names: string[]): Extension {
  return { type: 0, data: vector16(...names.map((name) => Buffer.concat([Buffer.from([0]), vector16(Buffer.from(name, 'latin1'))]))) };
}

export function alpnExtension(...protocols: string[]): Extension {
  return { type: 16, data: vector16(...protocols.map((protocol) => vector8(Buffer.from(protocol, 'latin1')))) };
}

export const echExtension: Extension = { type: 0xfe0d, data: Buffer.from([0, 0, 1, 0, 1, 7, 0, 0, 0, 0]) };

/** The handshake message (type 1, 24-bit length) of a ClientHello with these extensions. */
export function clientHelloMessage(extensions: readonly Extension[] | null): Buffer {
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 7),
    vector8(Buffer.alloc(32, 9)),
    vector16(Buffer.from([0x13, 0x01, 0x13, 0x02])),
    vector8(Buffer.from([0])),
    extensions === null ? Buffer.alloc(0) : vector16(...extensions.map((ext) => Buffer.concat([u16(ext.type), vector16(ext.data)]))),
  ]);
  const header = Buffer.from([1, 0, 0, 0]);
  header.writeUIntBE(body.length, 1, 3);
  return Buffer.concat([header, body]);
}

/** Wraps a handshake message in handshake records whose fragments have the given sizes. */
export function records(message: Buffer, fragmentSizes: readonly number[] = [message.length]): Buffer {
  const out: Buffer[] = [];
  let offset = 0;
  for (const size of fragmentSizes) {
    const fragment = message.subarray(offset, offset + size);
    out.push(Buffer.from([22, 3, 1]), u16(fragment.length), fragment);
    offset += size;
  }
  if (offset < message.length) throw new Error('fragment sizes do not cover the message');
  return Buffer.concat(out);
}

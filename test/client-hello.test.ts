// The transparent TLS listener's ClientHello parser: real hellos from Node and openssl, hellos
// split across records and segments, crafted attacks, truncation and fuzzing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello, type ClientHelloParse } from '../src/ingress/tls/client-hello.js';
import { alpnExtension, clientHelloMessage, echExtension, records, serverNameExtension, vector16 } from './support/client-hello-builder.js';

const captured = new Map<string, Buffer>();
const server = createServer();
const waiting: Array<(hello: Buffer) => void> = [];
server.on('connection', (socket) => {
  let bytes = Buffer.alloc(0);
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => {
    bytes = Buffer.concat([bytes, chunk]);
    if (parseClientHello(bytes).kind === 'incomplete' && bytes.length < MAX_CLIENT_HELLO_BYTES) return;
    socket.destroy();
    waiting.shift()?.(bytes);
  });
});

function capture(start: (port: number) => () => void): Promise<Buffer> {
  return new Promise((resolve) => {
    let stop = (): void => undefined;
    waiting.push((hello) => {
      stop();
      resolve(hello);
    });
    stop = start((server.address() as AddressInfo).port);
  });
}

function fromNode(options: { servername?: string; ALPNProtocols?: string[] }): Promise<Buffer> {
  return capture((port) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ...options });
    socket.on('error', () => undefined);
    return () => socket.destroy();
  });
}

function fromOpenssl(args: string[]): Promise<Buffer> {
  return capture((port) => {
    const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], { stdio: ['pipe', 'ignore', 'ignore'] });
    return () => child.kill();
  });
}


function expectHello(result: ClientHelloParse): Extract<ClientHelloParse, { kind: 'hello' }> {
  assert.equal(result.kind, 'hello', JSON.stringify(result));
  return result as Extract<ClientHelloParse, { kind: 'hello' }>;
}

/** mulberry32: a seeded generator, so a failing fuzz case can be replayed */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  captured.set('node', await fromNode({ servername: 'API.Example.test', ALPNProtocols: ['h2', 'http/1.1'] }));
  captured.set('node-no-sni', await fromNode({}));
  captured.set('openssl', await fromOpenssl(['-servername', 'files.example.test', '-alpn', 'http/1.1']));
  captured.set('openssl-tls12', await fromOpenssl(['-servername', 'legacy.example.test', '-tls1_2']));
  captured.set('openssl-no-sni', await fromOpenssl(['-noservername']));
});
after(() => new Promise((resolve) => server.close(resolve)));

describe('real ClientHellos', () => {
  test('reads the lower-cased SNI and ALPN from Node\'s tls.connect', () => {
    const hello = expectHello(parseClientHello(captured.get('node') ?? Buffer.alloc(0)));
    assert.equal(hello.sni, 'api.example.test');
    assert.deepEqual(hello.alpn, ['h2', 'http/1.1']);
    assert.equal(hello.ech, false);
    assert.equal(hello.length, captured.get('node')?.length);
  });

  test('reports no SNI when Node connects by address', () => {
    assert.equal(expectHello(parseClientHello(captured.get('node-no-sni') ?? Buffer.alloc(0))).sni, null);
  });

  test('reads the SNI from openssl s_client, TLS 1.3 and 1.2, and notices when it sends none', () => {
    assert.equal(expectHello(parseClientHello(captured.get('openssl') ?? Buffer.alloc(0))).sni, 'files.example.test');
    assert.equal(expectHello(parseClientHello(captured.get('openssl-tls12') ?? Buffer.alloc(0))).sni, 'legacy.example.test');
    assert.equal(expectHello(parseClientHello(captured.get('openssl-no-sni') ?? Buffer.alloc(0))).sni, null);
  });

  test('asks for more bytes on every proper prefix of a real hello', () => {
    for (const [name, hello] of captured) {
      for (let cut = 0; cut < hello.length; cut++) {
        assert.equal(parseClientHello(hello.subarray(0, cut)).kind, 'incomplete', `${name} cut at ${cut}`);
      }
    }
  });

  test('reassembles a real hello re-split into records of 1 to 50 bytes', () => {
    const rng = random(6);
    const node = captured.get('node') ?? Buffer.alloc(0);
    const message = node.subarray(5);
    for (let round = 0; round < 50; round++) {
      const sizes: number[] = [];
      for (let left = message.length; left > 0; left -= sizes[sizes.length - 1] ?? 0) sizes.push(Math.min(left, 1 + Math.floor(rng() * 50)));
      const split = records(message, sizes);
      assert.equal(expectHello(parseClientHello(split)).sni, 'api.example.test');
      assert.equal(parseClientHello(split.subarray(0, split.length - 1)).kind, 'incomplete');
    }
  });
});

describe('crafted ClientHellos', () => {
  const parse = (extensions: Parameters<typeof clientHelloMessage>[0]): ClientHelloParse => parseClientHello(records(clientHelloMessage(extensions)));
  const invalid = (result: ClientHelloParse, reason: RegExp): void => {
    assert.equal(result.kind, 'invalid', JSON.stringify(result));
    assert.match((result as { reason: string }).reason, reason);
  };

  test('flags an encrypted ClientHello even though it carries an outer SNI', () => {
    const hello = expectHello(parse([serverNameExtension('public.example.test'), echExtension]));
    assert.equal(hello.ech, true);
  });

  test('accepts a TLS 1.2 hello with no extensions at all, as one without SNI', () => {
    assert.equal(expectHello(parse(null)).sni, null);
  });

  test('refuses two host_names, so the checked name is the only name', () => {
    invalid(parse([serverNameExtension('allowed.example.test', 'evil.example.test')]), /more than one host_name/);
  });

  test('refuses a duplicated server_name extension', () => {
    invalid(parse([serverNameExtension('a.example.test'), serverNameExtension('b.example.test')]), /appears twice/);
  });

  test('refuses IP literals, trailing dots, and names with stray characters', () => {
    invalid(parse([serverNameExtension('169.254.169.254')]), /IP literal/);
    invalid(parse([serverNameExtension('example.test.')]), /not a DNS name/);
    invalid(parse([serverNameExtension('exa\0mple.test')]), /not a DNS name/);
    invalid(parse([serverNameExtension('ex ample.test')]), /not a DNS name/);
    invalid(parse([serverNameExtension('\u00e9.example.test')]), /not a DNS name/);
  });

  test('refuses plain HTTP from the first byte', () => {
    invalid(parseClientHello(Buffer.from('G')), /record type 71/);
  });

  test('refuses records that are not handshake, empty, or oversized', () => {
    const message = clientHelloMessage([serverNameExtension('a.example.test')]);
    const alert = Buffer.concat([Buffer.from([21, 3, 3, 0, 2, 2, 40]), records(message)]);
    invalid(parseClientHello(alert), /record type 21/);
    invalid(parseClientHello(Buffer.from([22, 3, 1, 0, 0])), /record length 0/);
    invalid(parseClientHello(Buffer.from([22, 3, 1, 0x40, 0x01])), /record length 16385/);
    invalid(parseClientHello(Buffer.from([22, 2, 0, 0, 1])), /legacy_record_version/);
  });

  test('refuses a handshake that is not a ClientHello or declares more than the cap', () => {
    invalid(parseClientHello(records(Buffer.from([2, 0, 0, 1, 0]))), /not ClientHello/);
    invalid(parseClientHello(records(Buffer.from([1, 0x01, 0x00, 0x00, 0]))), /exceeds/);
  });

  test('refuses bytes after the hello inside its record, yet leaves later records alone', () => {
    const message = clientHelloMessage([serverNameExtension('a.example.test')]);
    invalid(parseClientHello(records(Buffer.concat([message, Buffer.from([1, 2, 3])]))), /after the ClientHello/);
    const early = Buffer.concat([records(message), Buffer.from([23, 3, 3, 0, 1, 0])]);
    assert.equal(expectHello(parseClientHello(early)).length, early.length - 6);
  });

  test('refuses an extension list whose inner length overruns its container', () => {
    const bad = { type: 0, data: vector16(Buffer.from([0, 0, 50, 0x61])) };
    invalid(parse([bad]), /host_name runs past/);
    invalid(parse([alpnExtension('h2'), { type: 16, data: Buffer.from([0, 1]) }]), /appears twice/);
    invalid(parse([{ type: 16, data: Buffer.from([0, 0]) }]), /protocol_name_list length 0/);
  });
});

describe('fuzzed ClientHellos', () => {
  const kinds = new Set(['hello', 'incomplete', 'invalid']);

  test('returns a typed result for 5000 mutated real hellos and never throws', () => {
    const rng = random(42);
    const seeds = [...captured.values()];
    const counts = { hello: 0, incomplete: 0, invalid: 0 };
    for (let round = 0; round < 5000; round++) {
      const copy = Buffer.from(seeds[round % seeds.length] ?? Buffer.alloc(0));
      const flips = 1 + Math.floor(rng() * 4);
      for (let i = 0; i < flips; i++) copy[Math.floor(rng() * copy.length)] = Math.floor(rng() * 256);
      const cut = rng() < 0.3 ? Math.floor(rng() * copy.length) : copy.length;
      const result = parseClientHello(copy.subarray(0, cut));
      assert.ok(kinds.has(result.kind));
      counts[result.kind] += 1;
      if (result.kind === 'hello' && result.sni !== null) assert.match(result.sni, /^[a-z0-9_.-]+$/);
    }
    assert.ok(counts.invalid > 100 && counts.hello > 100, JSON.stringify(counts));
  });

  test('returns a typed result for random bytes behind a handshake record header', () => {
    const rng = random(7);
    for (let round = 0; round < 3000; round++) {
      const body = Buffer.from(Array.from({ length: Math.floor(rng() * 300) }, () => Math.floor(rng() * 256)));
      const header = Buffer.from([22, 3, 1, 0, 0]);
      header.writeUInt16BE(Math.min(body.length, 0xffff), 3);
      if (rng() < 0.5 && body.length > 0) body[0] = 1;
      assert.ok(kinds.has(parseClientHello(Buffer.concat([header, body])).kind));
    }
  });
});

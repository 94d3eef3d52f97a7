// The CONNECT-tunnel SNI check: a ClientHello inside a tunnel must name the CONNECT host.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tunnelSniVerdict } from '../src/ingress/tls/tunnel-sni.js';
import { clientHelloMessage, echExtension, records, serverNameExtension } from './support/client-hello-builder.js';

const hello = (...names: string[]): Buffer => records(clientHelloMessage(names.length === 0 ? [] : [serverNameExtension(...names)]));

test('passes a ClientHello naming the CONNECT host', () => {
  assert.deepEqual(tunnelSniVerdict(hello('api.example.test'), 'api.example.test', true), { kind: 'pass' });
});

test('denies a ClientHello naming another host than the CONNECT (domain fronting)', () => {
  const verdict = tunnelSniVerdict(hello('evil.example.test'), 'api.example.test', true);
  assert.equal(verdict.kind, 'deny');
  assert.equal(verdict.kind === 'deny' ? verdict.error.code : '', 'SNI_MISMATCH');
});

test('waits for the rest of a ClientHello split across segments', () => {
  const bytes = hello('api.example.test');
  assert.deepEqual(tunnelSniVerdict(bytes.subarray(0, 0), 'api.example.test', true), { kind: 'wait' });
  assert.deepEqual(tunnelSniVerdict(bytes.subarray(0, 20), 'api.example.test', true), { kind: 'wait' });
});

test('passes protocols that are not TLS', () => {
  assert.deepEqual(tunnelSniVerdict(Buffer.from('SSH-2.0-OpenSSH_9.6\r\n'), 'git.example.test', true), { kind: 'pass' });
});

test('denies ECH, a missing SNI to a named host and a malformed hello, but not a missing SNI to an IP', () => {
  const ech = records(clientHelloMessage([serverNameExtension('api.example.test'), echExtension]));
  const codes = [tunnelSniVerdict(ech, 'api.example.test', true), tunnelSniVerdict(hello(), 'api.example.test', true), tunnelSniVerdict(Buffer.from([22, 3, 1, 0, 0]), 'x.test', true)].map(
    (verdict) => (verdict.kind === 'deny' ? verdict.error.code : verdict.kind),
  );
  assert.deepEqual(codes, ['ECH_REFUSED', 'SNI_MISSING', 'CLIENT_HELLO_INVALID']);
  assert.deepEqual(tunnelSniVerdict(hello(), '192.0.2.10', false), { kind: 'pass' });
});

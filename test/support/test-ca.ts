// A throwaway certificate authority and server certificate for 127.0.0.1/localhost, made with the
// openssl CLI in a temporary directory, so HTTPS tests use real TLS with a CA the test trusts.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCa {
  readonly caCert: string;
  readonly caFile: string;
  readonly key: string;
  readonly cert: string;
  remove(): Promise<void>;
}

export async function makeTestCa(names: readonly string[] = ['localhost', 'origin.test']): Promise<TestCa> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-ca-'));
  const file = (name: string): string => join(dir, name);
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '2', '-subj', '/CN=Sluice Test CA']);
  await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=localhost']);
  const san = ['IP:127.0.0.1', 'IP:::1', ...names.map((name) => `DNS:${name}`)].join(',');
  await writeFile(file('ext.cnf'), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  await run('openssl', ['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file('server.pem'), '-days', '2', '-extfile', file('ext.cnf')]);
  return {
    caCert: await readFile(file('ca.pem'), 'utf8'),
    caFile: file('ca.pem'),
    key: await readFile(file('server.key'), 'utf8'),
    cert: await readFile(file('server.pem'), 'utf8'),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

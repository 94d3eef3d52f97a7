// The local certificate authority Sluice intercepts inference hosts with: created once in the
// state directory (key 0600), then one leaf certificate per host, minted on first use and cached.
import { createPrivateKey, generateKeyPair, randomBytes, sign, type KeyObject } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';

// forge exports this (x509.js) but its type definitions leave it out.
declare module 'node-forge' {
  namespace pki {
    function getTBSCertificate(cert: Certificate): asn1.Asn1;
  }
}

export const CA_KEY_FILE = 'ca.key';
export const CA_CERT_FILE = 'ca.pem';

export interface LeafCertificate {
  readonly key: string;
  readonly cert: string;
}

const CA_YEARS = 10;
// Leaves live shorter than browsers' 398-day limit; a restart mints fresh ones anyway.
const LEAF_DAYS = 90;

interface KeyPair {
  readonly privatePem: string;
  /** signs certificates natively */
  readonly signer: KeyObject;
  /** what forge puts in the certificate's subjectPublicKeyInfo */
  readonly publicKey: forge.pki.PublicKey;
}

const generateRsa = promisify(generateKeyPair);

// Node's native key generation is several times faster than forge's pure-JS RSA, and runs on the
// thread pool: 2048-bit generation takes 100-200 ms that the event loop would otherwise stall for.
async function rsaKeyPair(): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateRsa('rsa', { modulusLength: 2048 });
  return {
    privatePem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    signer: privateKey,
    publicKey: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
  };
}

/**
 * forge builds the X.509 structure (Node has no API for that); Node's native RSA signs it: forge's
 * pure-JS signature took about 30 ms a leaf, blocking the event loop on a host's first call.
 */
function signCertificate(cert: forge.pki.Certificate, signer: KeyObject): string {
  cert.signatureOid = cert.siginfo.algorithmOid = forge.pki.oids['sha256WithRSAEncryption'] ?? '1.2.840.113549.1.1.11';
  const tbs = forge.pki.getTBSCertificate(cert);
  cert.tbsCertificate = tbs;
  cert.signature = sign('sha256', Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary'), signer).toString('binary');
  return pem(forge.pki.certificateToPem(cert));
}

/** forge writes PEM with CRLF; files and `ca export` output use plain LF like openssl. */
function pem(text: string): string {
  return text.replace(/\r\n/g, '\n');
}

function serial(): string {
  // Positive (top bit clear) 16-byte serial, as RFC 5280 §4.1.2.2 asks.
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

async function createCa(): Promise<{ keyPem: string; certPem: string }> {
  const keys = await rsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + CA_YEARS * 365 * 86_400_000);
  const subject = [
    { name: 'commonName', value: 'Sluice local inference CA' },
    { name: 'organizationName', value: 'Sluice' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  return { keyPem: keys.privatePem, certPem: signCertificate(cert, keys.signer) };
}

async function readIfPresent(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

async function writePrivate(path: string, text: string, mode: number): Promise<void> {
  // Written aside and renamed, so a crash never leaves half a key where the next start reads it.
  const aside = `${path}.${process.pid}.tmp`;
  await writeFile(aside, text, { mode, flag: 'wx' });
  await chmod(aside, mode);
  await rename(aside, path);
}

export class LocalCa {
  private readonly leaves = new Map<string, LeafCertificate>();

  private constructor(
    readonly certificatePem: string,
    private readonly caKey: KeyObject,
    private readonly caCert: forge.pki.Certificate,
    /** one leaf key for every host, made when the CA is opened */
    private readonly leafKeys: KeyPair,
    /** told how long each leaf took to mint (the sluice_tls_leaf_mint_seconds histogram) */
    private readonly onMinted: (seconds: number) => void,
  ) {}

  /** Loads the CA from `stateDir`, creating it first when there is none. `created` says which. */
  static async open(stateDir: string, onMinted: (seconds: number) => void = () => undefined): Promise<{ ca: LocalCa; created: boolean }> {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    const keyPath = join(stateDir, CA_KEY_FILE);
    const certPath = join(stateDir, CA_CERT_FILE);
    let keyPem = await readIfPresent(keyPath);
    let certPem = await readIfPresent(certPath);
    let created = false;
    if (keyPem === null && certPem === null) {
      const made = await createCa();
      await writePrivate(keyPath, made.keyPem, 0o600);
      await writePrivate(certPath, made.certPem, 0o644);
      ({ keyPem, certPem } = made);
      created = true;
    } else if (keyPem === null || certPem === null) {
      // Half a CA cannot be repaired without changing what agents trust: the operator decides.
      throw new Error(`${keyPem === null ? keyPath : certPath} is missing while ${keyPem === null ? certPath : keyPath} exists; restore it or remove both to make a new CA`);
    }
    const caCert = forge.pki.certificateFromPem(certPem);
    const caKey = createPrivateKey(keyPem);
    return { ca: new LocalCa(certPem, caKey, caCert, await rsaKeyPair(), onMinted), created };
  }

  /** The leaf for `host` (a name or an address literal), minted on first use. */
  leafFor(host: string): LeafCertificate {
    const cached = this.leaves.get(host);
    if (cached !== undefined) return cached;
    const started = performance.now();
    const cert = forge.pki.createCertificate();
    cert.publicKey = this.leafKeys.publicKey;
    cert.serialNumber = serial();
    cert.validity.notBefore = new Date(Date.now() - 60_000);
    cert.validity.notAfter = new Date(Date.now() + LEAF_DAYS * 86_400_000);
    cert.setSubject([{ name: 'commonName', value: host.slice(0, 64) }]);
    cert.setIssuer(this.caCert.subject.attributes);
    const isAddress = /^[0-9.]+$/.test(host) || host.includes(':');
    cert.setExtensions([
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [isAddress ? { type: 7, ip: host } : { type: 2, value: host }] },
    ]);
    const leaf = { key: this.leafKeys.privatePem, cert: signCertificate(cert, this.caKey) };
    this.leaves.set(host, leaf);
    this.onMinted((performance.now() - started) / 1000);
    return leaf;
  }
}

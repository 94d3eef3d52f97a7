// Builds the SIEM sink from `audit.stream`: resolves each preset to its endpoint and headers and
// reads secrets and CA files, naming the exact field when one cannot be read.
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { OperatorError } from '../../errors.js';
import type { StreamConfig } from '../../config/schema.js';
import { splitHostPort } from '../../config/host-port.js';
import type { OcsfOptions } from '../export.js';
import { HttpSink, type HttpPreset } from './http-sink.js';
import type { StreamSink } from './sink.js';
import { SyslogSink } from './syslog-sink.js';

export interface StreamSources {
  /** the config file's directory: relative secret and CA files are read from there */
  readonly baseDir: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** RFC 5424 HOSTNAME for syslog messages */
  readonly hostname: string;
  /** the product version and dns.refuse_with OCSF events are mapped with (`format: ocsf`) */
  readonly ocsf: OcsfOptions;
}

const FIELD = 'audit.stream';

export async function createStreamSink(config: StreamConfig, sources: StreamSources): Promise<StreamSink> {
  const ca = config.ca_file === undefined ? undefined : await readConfigFile(config.ca_file, `${FIELD}.ca_file`, sources);
  const tls = { verify: config.tls_verify, ...(ca === undefined ? {} : { ca }) };
  if (config.type === 'syslog') {
    const { host, port } = splitHostPort(config.address);
    return new SyslogSink({ host, port, ...(config.tls ? { tls } : {}), hostname: sources.hostname, appName: config.app_name, timeoutMs: config.timeout_ms });
  }
  const headers: Record<string, string> = {};
  for (const [index, header] of config.headers.entries()) {
    const field = `${FIELD}.headers[${index}]`;
    headers[header.name.toLowerCase()] =
      header.value ?? (header.value_env !== undefined ? fromEnv(header.value_env, `${field}.value_env`, sources) : await readSecretFile(header.value_file ?? '', `${field}.value_file`, sources));
  }
  const base = config.url.replace(/\/+$/, '');
  let url: string;
  let preset: HttpPreset;
  switch (config.type) {
    case 'webhook':
      url = config.url;
      preset = config.format === 'ocsf' ? { kind: 'webhook', format: 'ocsf', ocsf: sources.ocsf } : { kind: 'webhook', format: 'jsonl' };
      break;
    case 'splunk_hec':
      url = `${base}/services/collector/event`;
      preset = { kind: 'splunk_hec', sourcetype: config.sourcetype, ...(config.index === undefined ? {} : { index: config.index }) };
      headers['authorization'] = `Splunk ${await readSecret(config.token, `${FIELD}.token`, sources)}`;
      break;
    case 'elastic':
      url = `${base}/_bulk`;
      preset = { kind: 'elastic', index: config.index };
      if (config.api_key !== undefined) headers['authorization'] = `ApiKey ${await readSecret(config.api_key, `${FIELD}.api_key`, sources)}`;
      break;
  }
  return new HttpSink({ url: new URL(url), preset, headers, verifyTls: tls.verify, ...(ca === undefined ? {} : { ca }), timeoutMs: config.timeout_ms });
}

/** A secret from `file` (one line, relative to the config file) or `env`; `field` names it in errors. */
export function readSecret(source: { readonly file?: string | undefined; readonly env?: string | undefined }, field: string, sources: Pick<StreamSources, 'baseDir' | 'env'>): Promise<string> {
  return source.env !== undefined ? Promise.resolve(fromEnv(source.env, `${field}.env`, sources)) : readSecretFile(source.file ?? '', `${field}.file`, sources);
}

function fromEnv(name: string, field: string, sources: Pick<StreamSources, 'env'>): string {
  const value = sources.env[name]?.trim();
  if (value === undefined || value === '') throw new OperatorError('CONFIG_INVALID', `${field}: the environment variable ${name} is not set`);
  return value;
}

/** A secret file holds one line; surrounding whitespace (the final newline an editor adds) is dropped. */
async function readSecretFile(file: string, field: string, sources: Pick<StreamSources, 'baseDir'>): Promise<string> {
  const value = (await readConfigFile(file, field, sources)).trim();
  if (value === '' || /[\r\n]/.test(value)) throw new OperatorError('CONFIG_INVALID', `${field}: ${file} must hold exactly one non-empty line`);
  return value;
}

async function readConfigFile(file: string, field: string, sources: Pick<StreamSources, 'baseDir'>): Promise<string> {
  const path = isAbsolute(file) ? file : resolve(sources.baseDir, file);
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new OperatorError('CONFIG_INVALID', `${field}: cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

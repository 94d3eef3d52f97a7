// Turns audit records into what other tools ingest: filtered JSON lines, CSV rows, and OCSF 1.8.0
// events mapped as docs/ocsf.md fixes it (HTTP, Network and DNS Activity).
import { isIP } from 'node:net';
import type { JsonValue } from './canonical.js';
import type { AuditRecord } from './record.js';

export type ExportFormat = 'jsonl' | 'csv' | 'ocsf';

export interface ExportFilter {
  /** inclusive, epoch ms */
  readonly since?: number;
  /** exclusive, epoch ms */
  readonly until?: number;
  readonly agent?: string;
  readonly verdict?: string;
}

/** --agent and --verdict keep only records that carry that agent or verdict (decisions, dns, tunnel screens). */
export function passes(record: AuditRecord, filter: ExportFilter): boolean {
  const time = Date.parse(record.ts);
  if (filter.since !== undefined && time < filter.since) return false;
  if (filter.until !== undefined && time >= filter.until) return false;
  if (filter.agent !== undefined && record['agent'] !== filter.agent) return false;
  if (filter.verdict !== undefined && verdictOf(record) !== filter.verdict) return false;
  return true;
}

/** A record's verdict: its own, or for DNS the side its outcome falls on. */
function verdictOf(record: AuditRecord): string | null {
  if (typeof record['verdict'] === 'string') return record['verdict'];
  if (record.kind === 'dns' && typeof record['outcome'] === 'string') return DNS_OUTCOMES[record['outcome']]?.verdict ?? null;
  return null;
}

export const CSV_COLUMNS = ['seq', 'ts', 'kind', 'request_id', 'agent', 'client', 'method', 'host', 'port', 'path', 'verdict', 'reason', 'rule', 'detail', 'hash'] as const;

/** One RFC 4180 row; a cell a spreadsheet would run as a formula (= + - @ tab CR) is prefixed with '. */
export function csvRow(values: readonly (JsonValue | undefined)[]): string {
  return values.map(csvCell).join(',');
}

export function csvRecord(record: AuditRecord): string {
  return csvRow(CSV_COLUMNS.map((column) => (column === 'verdict' ? verdictOf(record) : column === 'reason' && record.kind === 'dns' ? record['outcome'] : record[column])));
}

function csvCell(value: JsonValue | undefined): string {
  if (value === undefined || value === null) return '';
  let text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export type OcsfEvent = { readonly [attribute: string]: JsonValue };

export interface OcsfOptions {
  readonly productVersion: string;
  /** dns.refuse_with in force when the records were written: what a refused query was answered */
  readonly dnsRefuseWith: 'refused' | 'nxdomain';
}

const HTTP_ACTIVITY: Readonly<Record<string, number>> = { CONNECT: 1, DELETE: 2, GET: 3, HEAD: 4, OPTIONS: 5, POST: 6, PUT: 7, TRACE: 8, PATCH: 9 };
const HTTP_ACTIVITY_NAMES = ['Unknown', 'Connect', 'Delete', 'Get', 'Head', 'Options', 'Post', 'Put', 'Trace', 'Patch'];

type Side = 'allowed' | 'denied' | 'error';
const SIDE_OF_VERDICT: Readonly<Record<string, Side>> = { allow: 'allowed', learn: 'allowed', deny: 'denied', error: 'error' };

const DNS_RCODE_NAMES: Readonly<Record<number, string>> = { 0: 'NoError', 1: 'FormError', 2: 'ServError', 3: 'NXDomain', 5: 'Refused' };
/** How each DNS outcome was answered and on which side it falls; `refused` rcodes follow dns.refuse_with. */
const DNS_OUTCOMES: Readonly<Record<string, { readonly rcode: number | 'refused'; readonly side: Side; readonly verdict: string }>> = {
  answered: { rcode: 0, side: 'allowed', verdict: 'allow' },
  learned: { rcode: 0, side: 'allowed', verdict: 'learn' },
  nxdomain: { rcode: 3, side: 'allowed', verdict: 'allow' },
  upstream_failed: { rcode: 2, side: 'error', verdict: 'error' },
  audit_unavailable: { rcode: 2, side: 'error', verdict: 'error' },
  malformed: { rcode: 1, side: 'denied', verdict: 'deny' },
  refused: { rcode: 'refused', side: 'denied', verdict: 'deny' },
  forbidden_address: { rcode: 'refused', side: 'denied', verdict: 'deny' },
  suspicious: { rcode: 'refused', side: 'denied', verdict: 'deny' },
  unidentified: { rcode: 'refused', side: 'denied', verdict: 'deny' },
  rate_limited: { rcode: 5, side: 'denied', verdict: 'deny' },
  type_refused: { rcode: 5, side: 'denied', verdict: 'deny' },
};

const UNMAPPED_DECISION_FIELDS = ['request_kind', 'ingress', 'verdict', 'via', 'mode', 'bundle_version', 'address_class', 'blocklist_source', 'blocklist_entry', 'shadow_version', 'shadow_would_deny', 'shadow_reason', 'shadow_rule', 'parent_proxy'];
const ELEVATED_REASONS = new Set(['destination_forbidden', 'blocklisted']);
const TRANSPARENT_INGRESS: ReadonlySet<string> = new Set(['transparent_http', 'transparent_tls']);

/** The OCSF events for one record: none for kinds that are not traffic decisions, one per row of a dns_summary. */
export function toOcsf(record: AuditRecord, options: OcsfOptions): OcsfEvent[] {
  switch (record.kind) {
    case 'decision':
      return [decisionEvent(record, options)];
    case 'tunnel_screen':
      return [tunnelScreenEvent(record, options)];
    case 'dns':
      return [dnsEvent(record, options, { agent: str(record['agent']), client: str(record['client']), outcome: str(record['outcome']) ?? '', transport: str(record['transport']) })];
    case 'dns_summary':
      return rows(record['counts']).map((row) => dnsEvent(record, options, { agent: str(row['agent']), client: str(row['peer']), outcome: str(row['outcome']) ?? '', transport: null, count: typeof row['count'] === 'number' ? row['count'] : 0 }));
    default:
      return [];
  }
}

function decisionEvent(record: AuditRecord, options: OcsfOptions): OcsfEvent {
  const method = str(record['method']) ?? '';
  const host = str(record['host']);
  const port = typeof record['port'] === 'number' ? record['port'] : null;
  const reason = str(record['reason']) ?? '';
  const verdict = str(record['verdict']) ?? 'error';
  const side = SIDE_OF_VERDICT[verdict] ?? 'error';
  const ingress = str(record['ingress']);
  // Traffic the guard redirected is a connection, not a request the agent addressed to a proxy.
  // Records written before `ingress` existed tell transparent TLS by its method alone.
  const transparent = ingress === null ? method === 'TLS' : TRANSPARENT_INGRESS.has(ingress);
  const connect = method === 'CONNECT';
  const classUid = transparent ? 4001 : 4002;
  const activityId = transparent ? (side === 'allowed' ? 1 : 5) : HTTP_ACTIVITY[method] ?? 99;
  const activityName = transparent ? (side === 'allowed' ? 'Open' : 'Refuse') : HTTP_ACTIVITY_NAMES[activityId] ?? method;
  const path = str(record['path']);
  const addresses = Array.isArray(record['addresses']) ? record['addresses'] : [];
  const ip = str(record['address']) ?? str(addresses[0] ?? null);
  const destination: Record<string, JsonValue> = {
    ...(host === null ? {} : { hostname: host }),
    ...(port === null ? {} : { port }),
    ...(ip === null ? {} : { ip }),
  };
  const url: Record<string, JsonValue> = connect
    ? { ...(host === null ? {} : { hostname: host }), ...(port === null ? {} : { port }), url_string: `${host ?? ''}:${port ?? ''}` }
    : { ...(host === null ? {} : { hostname: host }), ...(port === null ? {} : { port }), ...(path === null ? {} : { path }), scheme: 'http', url_string: `http://${host ?? ''}:${port ?? ''}${path ?? ''}` };
  const unmapped: Record<string, JsonValue> = { seq: record.seq, hash: record.hash };
  // Network Activity has no http_request: a transparent HTTP request keeps its method and path here.
  if (transparent && method !== 'TLS') Object.assign(unmapped, { method, ...(path === null ? {} : { path }) });
  for (const field of UNMAPPED_DECISION_FIELDS) {
    const value = record[field];
    if (value !== undefined) unmapped[field] = value;
  }
  return {
    ...classification(classUid, activityId, activityName),
    ...common(record, side, reason, str(record['agent'])),
    ...(ELEVATED_REASONS.has(reason) ? { severity_id: 3, severity: 'Medium' } : {}),
    ...(str(record['rule']) === null ? {} : { firewall_rule: { uid: str(record['rule']), name: str(record['rule']) } }),
    ...endpoint('src_endpoint', str(record['client'])),
    ...(Object.keys(destination).length === 0 ? {} : { dst_endpoint: destination }),
    connection_info: { direction_id: 2, direction: 'Outbound', protocol_name: 'tcp', protocol_num: 6 },
    ...(transparent ? {} : { http_request: { http_method: method, url } }),
    metadata: metadata(record, options, str(record['agent']) !== null),
    message: `${verdict} ${method} ${host ?? ''}:${port ?? ''}: ${reason}`,
    unmapped,
  };
}

function tunnelScreenEvent(record: AuditRecord, options: OcsfOptions): OcsfEvent {
  const reason = str(record['reason']) ?? '';
  return {
    ...classification(4002, 1, 'Connect'),
    ...common(record, 'denied', reason, null),
    ...(str(record['detail']) === null ? {} : { status_detail: str(record['detail']) }),
    http_request: { http_method: 'CONNECT' },
    metadata: metadata(record, options, false),
    message: `deny CONNECT: ${reason}`,
    unmapped: { seq: record.seq, hash: record.hash, verdict: 'deny' },
  };
}

interface DnsFacts {
  readonly agent: string | null;
  readonly client: string | null;
  readonly outcome: string;
  readonly transport: string | null;
  readonly count?: number;
}

function dnsEvent(record: AuditRecord, options: OcsfOptions, facts: DnsFacts): OcsfEvent {
  const known = DNS_OUTCOMES[facts.outcome] ?? { rcode: 2, side: 'error' as const, verdict: 'error' };
  const rcode = known.rcode === 'refused' ? (options.dnsRefuseWith === 'nxdomain' ? 3 : 5) : known.rcode;
  const name = str(record['name']);
  const udp = facts.transport !== 'tcp';
  return {
    ...classification(4003, 2, 'Response'),
    ...common(record, known.side, facts.outcome, facts.agent),
    ...(str(record['detail']) === null ? {} : { status_detail: str(record['detail']) }),
    rcode_id: rcode,
    rcode: DNS_RCODE_NAMES[rcode] ?? 'Other',
    ...(name === null || name === '' ? {} : { query: { hostname: name, type: str(record['type']) ?? '' } }),
    ...endpoint('src_endpoint', facts.client, facts.count === undefined),
    connection_info: { direction_id: 2, direction: 'Outbound', protocol_name: udp ? 'udp' : 'tcp', protocol_num: udp ? 17 : 6 },
    ...(facts.count === undefined ? {} : { count: facts.count }),
    metadata: metadata(record, options, facts.agent !== null),
    message: `${known.verdict} DNS ${name ?? ''}: ${facts.outcome}`,
    unmapped: { seq: record.seq, hash: record.hash, verdict: known.verdict, ...(record['via'] === undefined ? {} : { via: record['via'] }) },
  };
}

function classification(classUid: number, activityId: number, activityName: string): OcsfEvent {
  const className = classUid === 4001 ? 'Network Activity' : classUid === 4002 ? 'HTTP Activity' : 'DNS Activity';
  return {
    category_uid: 4,
    category_name: 'Network Activity',
    class_uid: classUid,
    class_name: className,
    activity_id: activityId,
    activity_name: activityName,
    type_uid: classUid * 100 + activityId,
    type_name: `${className}: ${activityName}`,
  };
}

function common(record: AuditRecord, side: Side, reason: string, agent: string | null): OcsfEvent {
  const allowed = side === 'allowed';
  return {
    time: Date.parse(record.ts),
    severity_id: allowed ? 1 : 2,
    severity: allowed ? 'Informational' : 'Low',
    action_id: allowed ? 1 : 2,
    action: allowed ? 'Allowed' : 'Denied',
    disposition_id: allowed ? 1 : side === 'denied' ? 2 : 27,
    disposition: allowed ? 'Allowed' : side === 'denied' ? 'Blocked' : 'Error',
    status_id: allowed ? 1 : 2,
    status: allowed ? 'Success' : 'Failure',
    status_code: reason,
    ...(agent === null ? {} : { actor: { user: { name: agent, uid: agent } } }),
  };
}

/** `profiles` must name every profile whose attributes the event uses, or consumers drop them. */
function metadata(record: AuditRecord, options: OcsfOptions, withActor: boolean): OcsfEvent {
  const correlation = str(record['request_id']);
  return {
    version: '1.8.0',
    product: { name: 'Sluice', vendor_name: 'Sluice', version: options.productVersion },
    profiles: withActor ? ['security_control', 'host'] : ['security_control'],
    log_name: 'audit',
    ...(correlation === null ? {} : { correlation_uid: correlation }),
  };
}

/**
 * `client` is `ip:port` (IPv6 unbracketed, as Node reports it): split at the last colon; a
 * summary's peer is the address alone. Anything that is not an IP is left out, not guessed at.
 */
function endpoint(attribute: string, client: string | null, withPort = true): OcsfEvent {
  if (client === null) return {};
  const colon = withPort ? client.lastIndexOf(':') : -1;
  const address = (colon < 0 ? client : client.slice(0, colon)).replace(/^\[(.*)\]$/, '$1');
  const port = colon < 0 ? NaN : Number(client.slice(colon + 1));
  if (isIP(address) === 0) return {};
  return { [attribute]: Number.isInteger(port) ? { ip: address, port } : { ip: address } };
}

function str(value: JsonValue | undefined): string | null {
  return typeof value === 'string' ? value : null;
}

function rows(value: JsonValue | undefined): { readonly [key: string]: JsonValue }[] {
  if (!Array.isArray(value)) return [];
  return value.filter((row): row is { readonly [key: string]: JsonValue } => typeof row === 'object' && row !== null && !Array.isArray(row));
}

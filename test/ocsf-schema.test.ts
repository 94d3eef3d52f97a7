// The OCSF 1.8.0 schemas generated from ocsf-schema are strict enough to catch a wrong export:
// events mapped as docs/ocsf.md says pass, and each kind of mapping mistake is refused for its reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ErrorObject } from 'ajv/dist/2020.js';
import { ocsfValidator, readOcsfSchema, type OcsfValidate } from './support/ocsf-validator.js';

const MAPPING_DOC = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'ocsf.md');

const http = ocsfValidator(await readOcsfSchema('http_activity'));
const network = ocsfValidator(await readOcsfSchema('network_activity'));
const dns = ocsfValidator(await readOcsfSchema('dns_activity'));

type Event = Record<string, unknown>;

const metadata = (): Event => ({
  version: '1.8.0',
  product: { name: 'Sluice', vendor_name: 'Sluice', version: '0.1.0' },
  profiles: ['security_control', 'host'],
  correlation_uid: 'mf3k2x-1a',
  log_name: 'audit',
});

/** An admitted CONNECT tunnel, as docs/ocsf.md maps a `decision` record. */
function connectAllowed(): Event {
  return {
    activity_id: 1, activity_name: 'Connect',
    category_uid: 4, category_name: 'Network Activity',
    class_uid: 4002, class_name: 'HTTP Activity',
    type_uid: 400201, type_name: 'HTTP Activity: Connect',
    time: 1795181568123,
    severity_id: 1, severity: 'Informational',
    status_id: 1, status: 'Success', status_code: 'rule_allow',
    action_id: 1, action: 'Allowed',
    disposition_id: 1, disposition: 'Allowed',
    firewall_rule: { uid: 'github-api', name: 'github-api' },
    actor: { user: { name: 'builder-7', uid: 'builder-7' } },
    src_endpoint: { ip: '192.0.2.7', port: 51234 },
    dst_endpoint: { hostname: 'api.github.com', port: 443, ip: '203.0.113.5' },
    connection_info: { direction_id: 2, direction: 'Outbound', protocol_name: 'tcp', protocol_num: 6 },
    http_request: { http_method: 'CONNECT', url: { hostname: 'api.github.com', port: 443, url_string: 'api.github.com:443' } },
    message: 'allow CONNECT api.github.com:443: rule_allow',
    metadata: metadata(),
    unmapped: { seq: 42, hash: 'c'.repeat(64), request_kind: 'tunnel', verdict: 'allow', via: 'token', mode: 'enforce', bundle_version: null },
  };
}

/** A transparent TLS connection refused on its SNI. */
function transparentRefused(): Event {
  return {
    activity_id: 5, activity_name: 'Refuse',
    category_uid: 4, class_uid: 4001, type_uid: 400105,
    time: 1795181568200,
    severity_id: 2, status_id: 2, status_code: 'no_matching_rule', status_detail: 'no rule allows evil.example:443',
    action_id: 2, disposition_id: 2,
    actor: { user: { name: 'builder-7' } },
    src_endpoint: { ip: '192.0.2.7', port: 40100 },
    dst_endpoint: { hostname: 'evil.example', port: 443 },
    connection_info: { direction_id: 2, protocol_name: 'tcp', protocol_num: 6 },
    metadata: metadata(),
    unmapped: { seq: 43, hash: 'd'.repeat(64) },
  };
}

/** A policy-DNS query refused for an agent. */
function dnsRefused(): Event {
  return {
    activity_id: 2, activity_name: 'Response',
    category_uid: 4, class_uid: 4003, type_uid: 400302,
    time: 1795181568300,
    severity_id: 2, status_id: 2, status_code: 'refused',
    action_id: 2, disposition_id: 2,
    rcode_id: 5, rcode: 'Refused',
    query: { hostname: 'evil.example', type: 'A' },
    actor: { user: { name: 'builder-7' } },
    src_endpoint: { ip: '192.0.2.7', port: 53000 },
    connection_info: { direction_id: 2, protocol_name: 'udp', protocol_num: 17 },
    metadata: metadata(),
    unmapped: { seq: 44, hash: 'e'.repeat(64) },
  };
}

function refusedFor(validate: OcsfValidate, event: Event, path: string, keyword: string): void {
  const errors = validate(event);
  assert.ok(errors.length > 0, 'the event was accepted');
  const hit = errors.some((error: ErrorObject) => error.instancePath === path && error.keyword === keyword);
  assert.ok(hit, `no "${keyword}" error at "${path}": ${JSON.stringify(errors.map((error) => [error.instancePath, error.keyword, error.message]))}`);
}

test('events mapped as docs/ocsf.md describes pass their class schema', () => {
  assert.deepEqual(http(connectAllowed()), []);
  assert.deepEqual(network(transparentRefused()), []);
  assert.deepEqual(dns(dnsRefused()), []);
});

test('the example event in docs/ocsf.md is valid HTTP Activity', async () => {
  const doc = await readFile(MAPPING_DOC, 'utf8');
  const block = /```json\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(block !== undefined, 'docs/ocsf.md has a json example');
  const example = JSON.parse(block) as Event;
  assert.equal(example['class_uid'], 4002);
  assert.deepEqual(http(example), []);
});

test('an event is refused by the schema of another class', () => {
  refusedFor(network, connectAllowed(), '/class_uid', 'const');
  refusedFor(http, transparentRefused(), '/class_uid', 'const');
});

test('a wrong class_uid or category_uid is refused', () => {
  refusedFor(http, { ...connectAllowed(), class_uid: 4001 }, '/class_uid', 'const');
  refusedFor(http, { ...connectAllowed(), category_uid: 1 }, '/category_uid', 'const');
});

test('a missing required attribute is refused, at the top and inside objects', () => {
  for (const name of ['time', 'severity_id', 'metadata', 'type_uid', 'activity_id']) {
    const event = connectAllowed();
    delete event[name];
    refusedFor(http, event, '', 'required');
  }
  const { version: _version, ...noVersion } = metadata();
  refusedFor(http, { ...connectAllowed(), metadata: noVersion }, '/metadata', 'required');
  refusedFor(http, { ...connectAllowed(), connection_info: { protocol_name: 'tcp' } }, '/connection_info', 'required');
});

test('a type_uid that is not class_uid * 100 + activity_id is refused', () => {
  refusedFor(http, { ...connectAllowed(), type_uid: 400203 }, '', 'anyOf');
  refusedFor(http, { ...connectAllowed(), type_uid: 400101 }, '/type_uid', 'enum');
  refusedFor(network, { ...transparentRefused(), activity_id: 1 }, '', 'anyOf');
});

test('every type_uid the schemas accept is class_uid * 100 + one of the activity ids', async () => {
  for (const name of ['http_activity', 'network_activity', 'dns_activity']) {
    const schema = await readOcsfSchema(name);
    const properties = schema['properties'] as Record<string, { const?: number; enum?: number[] }>;
    const classUid = properties['class_uid']?.const ?? NaN;
    const activities = properties['activity_id']?.enum ?? [];
    assert.ok(activities.includes(0) && activities.includes(99), `${name}: Unknown and Other are activities too`);
    assert.deepEqual(properties['type_uid']?.enum, activities.map((activity) => classUid * 100 + activity), name);
  }
});

test('a value outside an _id enum is refused', () => {
  refusedFor(http, { ...connectAllowed(), action_id: 5 }, '/action_id', 'enum');
  refusedFor(http, { ...connectAllowed(), disposition_id: 28 }, '/disposition_id', 'enum');
  refusedFor(http, { ...connectAllowed(), activity_id: 10, type_uid: 400210 }, '/activity_id', 'enum');
  refusedFor(dns, { ...dnsRefused(), rcode_id: 12 }, '/rcode_id', 'enum');
  refusedFor(http, { ...connectAllowed(), connection_info: { direction_id: 7 } }, '/connection_info/direction_id', 'enum');
});

test('an unknown attribute is refused, but anything goes under unmapped', () => {
  refusedFor(http, { ...connectAllowed(), verdict: 'allow' }, '', 'additionalProperties');
  refusedFor(http, { ...connectAllowed(), dst_endpoint: { hostname: 'api.github.com', sni: 'api.github.com' } }, '/dst_endpoint', 'additionalProperties');
  refusedFor(http, { ...connectAllowed(), actor: { user: { name: 'builder-7', via: 'token' } } }, '/actor/user', 'additionalProperties');
  assert.deepEqual(http({ ...connectAllowed(), unmapped: { verdict: 'allow', nested: { seq: 1, list: [1, 'a'] } } }), []);
});

test('profile attributes are refused unless metadata.profiles names the profile', () => {
  refusedFor(http, { ...connectAllowed(), metadata: { ...metadata(), profiles: ['host'] } }, '/metadata/profiles', 'contains');
  refusedFor(http, { ...connectAllowed(), metadata: { ...metadata(), profiles: ['security_control'] } }, '/metadata/profiles', 'contains');
  const { profiles: _dropped, ...noProfiles } = metadata();
  refusedFor(http, { ...connectAllowed(), metadata: noProfiles }, '/metadata', 'required');
  // Without actor, device, or any security_control attribute, an empty profile list is fine.
  const bare = connectAllowed();
  for (const name of ['actor', 'action', 'action_id', 'disposition', 'disposition_id', 'firewall_rule']) delete bare[name];
  assert.deepEqual(http({ ...bare, metadata: { ...metadata(), profiles: [] } }), []);
});

test('attributes of profiles Sluice does not declare are not part of the schema', () => {
  refusedFor(http, { ...connectAllowed(), trace: { uid: 'abc' } }, '', 'additionalProperties');
  refusedFor(http, { ...connectAllowed(), proxy_endpoint: { ip: '192.0.2.1' } }, '', 'additionalProperties');
  refusedFor(http, { ...connectAllowed(), time_dt: '2026-11-23T13:32:48.123Z' }, '', 'additionalProperties');
});

test('OCSF types are enforced: timestamp_t, port_t, ip_t, integer enums', () => {
  refusedFor(http, { ...connectAllowed(), time: '2026-11-23T13:32:48.123Z' }, '/time', 'type');
  refusedFor(http, { ...connectAllowed(), time: 1795181568.5 }, '/time', 'type');
  refusedFor(http, { ...connectAllowed(), dst_endpoint: { hostname: 'a.example', port: 65536 } }, '/dst_endpoint/port', 'maximum');
  refusedFor(http, { ...connectAllowed(), src_endpoint: { ip: '192.0.2.300' } }, '/src_endpoint/ip', 'anyOf');
  refusedFor(http, { ...connectAllowed(), src_endpoint: { ip: '192x0x2x7' } }, '/src_endpoint/ip', 'anyOf');
  refusedFor(http, { ...connectAllowed(), severity_id: '1' }, '/severity_id', 'type');
  assert.deepEqual(http({ ...connectAllowed(), src_endpoint: { ip: '2001:db8::7', port: 1 } }), []);
});

test('OCSF constraints are enforced: at_least_one on the class and on objects', () => {
  const noRequest = connectAllowed();
  delete noRequest['http_request'];
  refusedFor(http, noRequest, '', 'anyOf');
  refusedFor(http, { ...connectAllowed(), dst_endpoint: { port: 443 } }, '/dst_endpoint', 'anyOf');
  refusedFor(http, { ...connectAllowed(), actor: {} }, '/actor', 'anyOf');
  refusedFor(http, { ...connectAllowed(), firewall_rule: { category: 'egress' } }, '/firewall_rule', 'anyOf');
});

// The OCSF schema generator resolves a schema tree the way the OCSF server does (extends, included
// profiles, dictionary types, enums, constraints), proven on a small tree written by the test.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { classSchema } from './support/ocsf-schema-gen.js';
import { OcsfSource } from './support/ocsf-source.js';
import { ocsfValidator } from './support/ocsf-validator.js';

const GENERATOR = join(dirname(fileURLToPath(import.meta.url)), 'support', 'ocsf-schema-gen.js');
const root = await mkdtemp(join(tmpdir(), 'sluice-ocsf-gen-'));
after(() => rm(root, { recursive: true, force: true }));

type Tree = Record<string, unknown>;

/** A miniature ocsf-schema checkout: one class two levels below base_event, three profiles. */
function miniTree(): Tree {
  const attr = (caption: string, type: string, extra: Tree = {}): Tree => ({ caption, description: caption, type, ...extra });
  return {
    'version.json': { version: '9.9.9' },
    'LICENSE': 'licence text',
    'NOTICE': 'notice text',
    'categories.json': { attributes: { network: { uid: 4, caption: 'Network Activity' } } },
    'dictionary.json': {
      types: {
        attributes: {
          string_t: {}, integer_t: {}, long_t: {}, boolean_t: {}, json_t: {},
          timestamp_t: { type: 'long_t' },
          port_t: { type: 'integer_t', range: [0, 65535] },
          ip_t: { type: 'string_t', regex: '.*', max_len: 40 },
          hostname_t: { type: 'string_t', regex: '^[a-z.]+$' },
        },
      },
      attributes: {
        activity_id: attr('Activity ID', 'integer_t', { enum: { 0: { caption: 'Unknown' }, 99: { caption: 'Other' } } }),
        category_uid: attr('Category ID', 'integer_t'),
        class_uid: attr('Class ID', 'integer_t'),
        type_uid: attr('Type ID', 'long_t'),
        time: attr('Event Time', 'timestamp_t'),
        metadata: attr('Metadata', 'metadata'),
        unmapped: attr('Unmapped', 'object'),
        version: attr('Version', 'string_t'),
        profiles: attr('Profiles', 'string_t', { is_array: true }),
        action_id: attr('Action ID', 'integer_t', { enum: { 0: {}, 1: {}, 99: {} } }),
        method: attr('Method', 'string_t', { enum: { GET: {}, PUT: {} } }),
        actor: attr('Actor', 'actor'),
        user: attr('User', 'user'),
        name: attr('Name', 'string_t'),
        uid: attr('UID', 'string_t'),
        dst_endpoint: attr('Destination', 'endpoint'),
        hostname: attr('Hostname', 'hostname_t'),
        ip: attr('IP', 'ip_t'),
        port: attr('Port', 'port_t'),
        zone: attr('Cloud zone', 'string_t'),
        cloud: attr('Cloud', 'json_t'),
      },
    },
    'events/base_event.json': {
      name: 'base_event', caption: 'Base Event', category: 'other',
      attributes: {
        $include: ['profiles/security_control.json', 'profiles/host.json', 'profiles/cloud.json'],
        activity_id: { requirement: 'required' }, category_uid: { requirement: 'required' }, class_uid: { requirement: 'required' },
        type_uid: { requirement: 'required' }, time: { requirement: 'required' }, metadata: { requirement: 'required' }, unmapped: {},
      },
      profiles: ['security_control', 'host', 'cloud'],
    },
    'events/network/network.json': { name: 'network', extends: 'base_event', category: 'network', attributes: { dst_endpoint: { requirement: 'recommended' } } },
    'events/network/probe_activity.json': {
      name: 'probe_activity', caption: 'Probe Activity', uid: 9, extends: 'network',
      attributes: { activity_id: { enum: { 1: { caption: 'Probe' } } }, method: { requirement: 'optional' } },
      constraints: { at_least_one: ['dst_endpoint', 'method'] },
    },
    'objects/object.json': { name: 'object', caption: 'Object', attributes: {} },
    'objects/_entity.json': { name: '_entity', extends: 'object', attributes: { name: {}, uid: {} }, constraints: { at_least_one: ['name', 'uid'] } },
    'objects/user.json': { name: 'user', caption: 'User', extends: '_entity', attributes: { name: { requirement: 'recommended' } } },
    'objects/actor.json': { name: 'actor', caption: 'Actor', extends: 'object', attributes: { user: {} } },
    'objects/metadata.json': { name: 'metadata', caption: 'Metadata', extends: 'object', attributes: { version: { requirement: 'required' }, profiles: {} } },
    'objects/endpoint.json': {
      name: 'endpoint', caption: 'Endpoint', extends: 'object',
      attributes: { hostname: {}, ip: {}, port: {}, zone: { profile: 'cloud' } },
    },
    'profiles/security_control.json': { name: 'security_control', meta: 'profile', attributes: { action_id: { enum: { 2: { caption: 'Denied' } } } } },
    'profiles/host.json': { name: 'host', meta: 'profile', attributes: { actor: {} } },
    'profiles/cloud.json': { name: 'cloud', meta: 'profile', attributes: { cloud: { requirement: 'required' } } },
  };
}

async function writeTree(tree: Tree): Promise<string> {
  const dir = await mkdtemp(join(root, 'tree-'));
  for (const [file, content] of Object.entries(tree)) {
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await writeFile(join(dir, file), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

function run(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [GENERATOR, ...args], (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr }));
  });
}

type Schema = Record<string, unknown>;
const at = (schema: unknown, ...path: string[]): unknown => path.reduce<unknown>((node, key) => (node as Schema | undefined)?.[key], schema);

const source = await OcsfSource.read(await writeTree(miniTree()));
const schema = classSchema(source, 'probe_activity', ['security_control', 'host']);

test('class ids come from the category and the class uid; type_uid pairs cover every activity', () => {
  assert.equal(at(schema, 'properties', 'class_uid', 'const'), 4009);
  assert.equal(at(schema, 'properties', 'category_uid', 'const'), 4);
  // base_event's Unknown/Other and the class's own activity are merged, as the OCSF server does
  assert.deepEqual(at(schema, 'properties', 'activity_id', 'enum'), [0, 1, 99]);
  assert.deepEqual(at(schema, 'properties', 'type_uid', 'enum'), [400900, 400901, 400999]);
  assert.deepEqual(at(schema, 'allOf', '0', 'anyOf', '1'), { properties: { activity_id: { const: 1 }, type_uid: { const: 400901 } } });
  assert.deepEqual(at(schema, 'required'), ['activity_id', 'category_uid', 'class_uid', 'metadata', 'time', 'type_uid']);
});

test('only the chosen profiles contribute attributes, in the class and in its objects', () => {
  const properties = at(schema, 'properties') as Schema;
  assert.ok('action_id' in properties && 'actor' in properties);
  assert.ok(!('cloud' in properties), 'the cloud profile was not chosen, so its required attribute is absent too');
  assert.ok(!('zone' in (at(schema, '$defs', 'endpoint', 'properties') as Schema)));
  // the profile's enum adds to the dictionary's
  assert.deepEqual(at(schema, 'properties', 'action_id', 'enum'), [0, 1, 2, 99]);
  assert.deepEqual(at(schema, 'dependentSchemas', 'actor'), { $ref: '#/$defs/profile.host' });
  assert.deepEqual(at(schema, 'dependentSchemas', 'action_id'), { $ref: '#/$defs/profile.security_control' });
  const withCloud = classSchema(source, 'probe_activity', ['cloud']);
  assert.ok((at(withCloud, 'required') as string[]).includes('cloud'));
  assert.ok('zone' in (at(withCloud, '$defs', 'endpoint', 'properties') as Schema));
});

test('dictionary types reduce to JSON Schema types with their ranges, patterns and formats', () => {
  assert.deepEqual(at(schema, '$defs', 'port_t'), { type: 'integer', minimum: 0, maximum: 65535 });
  assert.deepEqual(at(schema, '$defs', 'timestamp_t'), { type: 'integer' });
  assert.deepEqual(at(schema, '$defs', 'hostname_t'), { type: 'string', pattern: '^[a-z.]+$' });
  assert.deepEqual(at(schema, '$defs', 'ip_t'), { type: 'string', anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }], maxLength: 40 });
  assert.deepEqual(at(schema, 'properties', 'method'), { title: 'Method', $ref: '#/$defs/string_t' }, 'string enums stay open');
  assert.deepEqual(at(schema, '$defs', 'metadata', 'properties', 'profiles'), { title: 'Profiles', type: 'array', items: { $ref: '#/$defs/string_t' } });
  assert.deepEqual(at(schema, '$defs', 'object'), { title: 'Object', type: 'object' }, 'the bare object type is free-form');
});

test('objects inherit attributes and constraints through extends, and refuse unknown members', () => {
  assert.deepEqual(Object.keys(at(schema, '$defs', 'user', 'properties') as Schema), ['name', 'uid']);
  assert.deepEqual(at(schema, '$defs', 'user', 'allOf'), [{ anyOf: [{ required: ['name'] }, { required: ['uid'] }] }]);
  assert.equal(at(schema, '$defs', 'user', 'additionalProperties'), false);
  assert.deepEqual(at(schema, '$defs', 'metadata', 'required'), ['version']);
});

test('the generated schema compiles in strict mode and validates an event', () => {
  const validate = ocsfValidator(schema);
  const event = {
    activity_id: 1, category_uid: 4, class_uid: 4009, type_uid: 400901, time: 1,
    metadata: { version: '9.9.9', profiles: ['security_control', 'host'] },
    action_id: 2, actor: { user: { uid: 'a1' } }, dst_endpoint: { hostname: 'a.example', port: 443 },
  };
  assert.deepEqual(validate(event), []);
  const { dst_endpoint: _endpoint, ...noEndpoint } = event;
  assert.deepEqual(validate({ ...noEndpoint, method: 'PATCH' }), [], 'the class constraint is met by method; its enum is open');
  assert.ok(validate(noEndpoint).some((error) => error.instancePath === '' && error.keyword === 'anyOf'), 'at_least_one of the class');
  assert.ok(validate({ ...event, metadata: { version: '9.9.9', profiles: ['host'] } }).some((error) => error.keyword === 'contains'));
  assert.ok(validate({ ...event, actor: { user: {} } }).some((error) => error.instancePath === '/actor/user' && error.keyword === 'anyOf'));
});

test('a profile the class does not offer, or an attribute missing from the dictionary, is an error naming the file', async () => {
  assert.throws(() => classSchema(source, 'probe_activity', ['trace']), /probe_activity: the class has no profile "trace"/);
  const tree = miniTree();
  tree['objects/user.json'] = { name: 'user', extends: '_entity', attributes: { nickname: {} } };
  const broken = await OcsfSource.read(await writeTree(tree));
  assert.throws(() => classSchema(broken, 'probe_activity', ['host']), /objects\/user\.json: attribute "nickname" is not in dictionary\.json/);
});

test('the command writes one schema per Sluice class with the licence and notice beside them', async () => {
  const tree = miniTree();
  // the command generates Sluice's three classes, so the miniature tree needs them
  for (const name of ['http_activity', 'network_activity', 'dns_activity']) {
    tree[`events/network/${name}.json`] = { name, caption: name, uid: name.length, extends: 'network', attributes: { activity_id: { enum: { 1: {} } } } };
  }
  const out = join(root, 'out');
  const result = await run([await writeTree(tree), out]);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual((await readdir(out)).sort(), ['LICENSE', 'NOTICE', 'dns_activity.schema.json', 'http_activity.schema.json', 'network_activity.schema.json']);
  const written = JSON.parse(await readFile(join(out, 'http_activity.schema.json'), 'utf8')) as Schema;
  assert.equal(written['$schema'], 'https://json-schema.org/draft/2020-12/schema');
  assert.equal(at(written, 'properties', 'class_uid', 'const'), 4000 + 'http_activity'.length);
  assert.equal(await readFile(join(out, 'NOTICE'), 'utf8'), 'notice text');
});

test('the command explains a missing argument and a broken tree', async () => {
  const usage = await run([]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /usage: ocsf-schema-gen <ocsf-schema checkout>/);
  const tree = miniTree();
  tree['dictionary.json'] = '{ not json';
  const broken = await run([await writeTree(tree), join(root, 'never')]);
  assert.equal(broken.code, 1);
  assert.match(broken.stderr, /ocsf-schema-gen: dictionary\.json: /);
});

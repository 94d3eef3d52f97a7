// Reads an ocsf-schema checkout and resolves an event class or object the way the OCSF server
// compiles it: `extends` chains, `$include`d profiles, dictionary defaults, a chosen profile set.
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

export type Requirement = 'required' | 'recommended' | 'optional';

export interface OcsfAttribute {
  readonly caption: string;
  /** a dictionary type (`port_t`, …) or an object name */
  readonly type: string;
  readonly isArray: boolean;
  readonly requirement: Requirement;
  /** enum keys as written in the source ("0", "99", …); null when the attribute has none */
  readonly enumKeys: readonly string[] | null;
  /** the profile that brings the attribute, or null when it is always part of the shape */
  readonly profile: string | null;
}

export interface OcsfShape {
  readonly name: string;
  readonly caption: string;
  readonly attributes: ReadonlyMap<string, OcsfAttribute>;
  /** `at_least_one` / `just_one` attribute sets, restricted to attributes that survived profile selection */
  readonly atLeastOne: readonly string[];
  readonly justOne: readonly string[];
}

export interface OcsfClass extends OcsfShape {
  readonly uid: number;
  readonly categoryUid: number;
}

export interface OcsfTypeDef {
  readonly base: string | null;
  readonly regex: string | null;
  readonly maxLength: number | null;
  readonly range: readonly [number, number] | null;
}

type Doc = Record<string, unknown>;

interface Definition {
  readonly file: string;
  readonly doc: Doc;
}

interface Resolved {
  readonly attributes: Record<string, Doc>;
  readonly constraints: Doc;
  readonly category: string | null;
  readonly profiles: readonly string[];
}

export class OcsfSource {
  private constructor(
    readonly root: string,
    readonly version: string,
    readonly types: ReadonlyMap<string, OcsfTypeDef>,
    private readonly dictionary: Doc,
    private readonly categories: Doc,
    private readonly events: ReadonlyMap<string, Definition>,
    private readonly objects: ReadonlyMap<string, Definition>,
    private readonly profileFiles: ReadonlyMap<string, Definition>,
  ) {}

  static async read(root: string): Promise<OcsfSource> {
    const version = field(await readJson(root, 'version.json'), 'version', 'version.json');
    const dictionaryDoc = await readJson(root, 'dictionary.json');
    const typesDoc = asDoc(asDoc(dictionaryDoc['types'], 'dictionary.json: types')['attributes'], 'dictionary.json: types.attributes');
    const types = new Map(Object.entries(typesDoc).map(([name, raw]) => [name, typeDef(asDoc(raw, `dictionary.json: types.${name}`))]));
    const categories = asDoc((await readJson(root, 'categories.json'))['attributes'], 'categories.json: attributes');
    return new OcsfSource(
      root,
      typeof version === 'string' ? version : String(version),
      types,
      asDoc(dictionaryDoc['attributes'], 'dictionary.json: attributes'),
      categories,
      await readNamed(root, 'events'),
      await readNamed(root, 'objects'),
      new Map((await readAll(root, 'profiles')).map((definition) => [definition.file, definition])),
    );
  }

  /** The class named `name` (e.g. `http_activity`) with only the attributes of `profiles` among the optional ones. */
  eventClass(name: string, profiles: readonly string[]): OcsfClass {
    const resolved = this.resolve(this.events, name);
    const offered = new Set(resolved.profiles);
    for (const profile of profiles) if (!offered.has(profile)) throw new Error(`${name}: the class has no profile "${profile}" (it offers ${[...offered].join(', ')})`);
    const definition = this.definition(this.events, name);
    if (resolved.category === null) throw new Error(`${definition.file}: no category in the extends chain`);
    const category = asDoc(this.categories[resolved.category], `categories.json: ${resolved.category}`);
    return {
      ...this.shape(definition, resolved, profiles),
      uid: integer(category['uid'], `categories.json: ${resolved.category}.uid`) * 1000 + integer(definition.doc['uid'], `${definition.file}: uid`),
      categoryUid: integer(category['uid'], `categories.json: ${resolved.category}.uid`),
    };
  }

  object(name: string, profiles: readonly string[]): OcsfShape {
    return this.shape(this.definition(this.objects, name), this.resolve(this.objects, name), profiles);
  }

  isObject(name: string): boolean {
    return this.objects.has(name);
  }

  private shape(definition: Definition, resolved: Resolved, profiles: readonly string[]): OcsfShape {
    const selected = new Set(profiles);
    const attributes = new Map<string, OcsfAttribute>();
    for (const [key, own] of Object.entries(resolved.attributes)) {
      const where = `${definition.file}: attribute "${key}"`;
      const base = this.dictionary[key];
      if (base === undefined) throw new Error(`${where} is not in dictionary.json`);
      const merged = deepMerge(asDoc(base, `dictionary.json: ${key}`), own);
      const profile = typeof merged['profile'] === 'string' ? merged['profile'] : null;
      if (profile !== null && !selected.has(profile)) continue;
      const type = field(merged, 'type', where);
      if (typeof type !== 'string' || (!this.types.has(type) && !this.objects.has(type))) throw new Error(`${where}: unknown type ${JSON.stringify(type)}`);
      const requirement = merged['requirement'] ?? 'optional';
      if (requirement !== 'required' && requirement !== 'recommended' && requirement !== 'optional') throw new Error(`${where}: bad requirement ${JSON.stringify(requirement)}`);
      attributes.set(key, {
        caption: typeof merged['caption'] === 'string' ? merged['caption'] : key,
        type,
        isArray: merged['is_array'] === true,
        requirement,
        enumKeys: merged['enum'] === undefined ? null : Object.keys(asDoc(merged['enum'], `${where}: enum`)),
        profile,
      });
    }
    const members = (key: string): string[] => {
      const list = resolved.constraints[key];
      return Array.isArray(list) ? list.filter((item): item is string => typeof item === 'string' && attributes.has(item)) : [];
    };
    const caption = definition.doc['caption'];
    return { name: String(definition.doc['name']), caption: typeof caption === 'string' ? caption : '', attributes, atLeastOne: members('at_least_one'), justOne: members('just_one') };
  }

  /** Parent first, then the file's `$include`d profiles, then its own attributes over both. */
  private resolve(table: ReadonlyMap<string, Definition>, name: string, chain: readonly string[] = []): Resolved {
    if (chain.includes(name)) throw new Error(`extends cycle: ${[...chain, name].join(' → ')}`);
    const { file, doc } = this.definition(table, name);
    const parentName = doc['extends'];
    const parent: Resolved = typeof parentName === 'string'
      ? this.resolve(table, parentName, [...chain, name])
      : { attributes: {}, constraints: {}, category: null, profiles: [] };
    const own: Record<string, Doc> = {};
    const declared = asDoc(doc['attributes'] ?? {}, `${file}: attributes`);
    const includes = declared['$include'] ?? [];
    if (!Array.isArray(includes)) throw new Error(`${file}: $include is not a list`);
    for (const include of includes) {
      const profile = this.profileFiles.get(String(include));
      if (profile === undefined) throw new Error(`${file}: $include names a missing file ${JSON.stringify(include)}`);
      const profileName = String(profile.doc['name']);
      for (const [key, value] of Object.entries(asDoc(profile.doc['attributes'], `${profile.file}: attributes`))) {
        own[key] = deepMerge(own[key] ?? {}, { ...asDoc(value, `${profile.file}: ${key}`), profile: profileName });
      }
    }
    for (const [key, value] of Object.entries(declared)) {
      if (key !== '$include') own[key] = deepMerge(own[key] ?? {}, asDoc(value, `${file}: ${key}`));
    }
    const attributes = { ...parent.attributes };
    for (const [key, value] of Object.entries(own)) attributes[key] = deepMerge(attributes[key] ?? {}, value);
    const profiles = Array.isArray(doc['profiles']) ? doc['profiles'].map(String) : [];
    return {
      attributes,
      constraints: { ...parent.constraints, ...asDoc(doc['constraints'] ?? {}, `${file}: constraints`) },
      category: typeof doc['category'] === 'string' ? doc['category'] : parent.category,
      profiles: [...parent.profiles, ...profiles],
    };
  }

  private definition(table: ReadonlyMap<string, Definition>, name: string): Definition {
    const definition = table.get(name);
    if (definition === undefined) throw new Error(`no definition named "${name}" in ${this.root}`);
    return definition;
  }
}

/** Nested maps merge key by key (so enums gain members); anything else is replaced by the override. */
function deepMerge(base: Doc, over: Doc): Doc {
  const out: Doc = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isDoc(current) && isDoc(value) ? deepMerge(current, value) : value;
  }
  return out;
}

function typeDef(doc: Doc): OcsfTypeDef {
  const range = doc['range'];
  return {
    base: typeof doc['type'] === 'string' ? doc['type'] : null,
    regex: typeof doc['regex'] === 'string' ? doc['regex'] : null,
    maxLength: typeof doc['max_len'] === 'number' ? doc['max_len'] : null,
    range: Array.isArray(range) && range.length === 2 ? [Number(range[0]), Number(range[1])] : null,
  };
}

async function readNamed(root: string, folder: string): Promise<Map<string, Definition>> {
  const named = new Map<string, Definition>();
  for (const definition of await readAll(root, folder)) {
    const name = definition.doc['name'];
    if (typeof name !== 'string') throw new Error(`${definition.file}: no "name"`);
    if (named.has(name)) throw new Error(`${definition.file}: "${name}" is also defined in ${named.get(name)?.file ?? '?'}`);
    named.set(name, definition);
  }
  return named;
}

async function readAll(root: string, folder: string): Promise<Definition[]> {
  const entries = await readdir(join(root, folder), { recursive: true });
  const files = entries.filter((entry) => entry.endsWith('.json')).sort();
  return Promise.all(files.map(async (entry) => {
    const file = relative(root, join(root, folder, entry));
    return { file, doc: await readJson(root, file) };
  }));
}

async function readJson(root: string, file: string): Promise<Doc> {
  const text = await readFile(join(root, file), 'utf8');
  try {
    return asDoc(JSON.parse(text), file);
  } catch (error) {
    throw new Error(`${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function isDoc(value: unknown): value is Doc {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asDoc(value: unknown, where: string): Doc {
  if (!isDoc(value)) throw new Error(`${where}: not a JSON object`);
  return value;
}

function field(doc: Doc, key: string, where: string): unknown {
  if (!(key in doc)) throw new Error(`${where}: no "${key}"`);
  return doc[key];
}

function integer(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new Error(`${where}: not an integer`);
  return value;
}

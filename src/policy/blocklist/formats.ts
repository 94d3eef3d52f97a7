// Line readers for the feed formats Sluice understands. Each turns one line into the raw hosts
// it names, a skip (comment, header, blank) or the reason it is malformed.

export const BLOCKLIST_FORMATS = ['domains', 'wildcard', 'hosts', 'adblock', 'urls', 'urlhaus-csv'] as const;
export type BlocklistFormat = (typeof BLOCKLIST_FORMATS)[number];

export type LineResult = { readonly kind: 'hosts'; readonly hosts: readonly string[] } | { readonly kind: 'skip' } | { readonly kind: 'bad'; readonly reason: string };

const SKIP: LineResult = { kind: 'skip' };

function hosts(...names: string[]): LineResult {
  return { kind: 'hosts', hosts: names };
}

function bad(reason: string): LineResult {
  return { kind: 'bad', reason };
}

const WHITESPACE = /\s+/;
// Names a hosts file maps for the machine itself; blocking them would be meaningless.
const HOSTS_FILE_SELF = new Set(['localhost', 'localhost.localdomain', 'local', 'broadcasthost', 'ip6-localhost', 'ip6-loopback', 'ip6-localnet', 'ip6-mcastprefix', 'ip6-allnodes', 'ip6-allrouters', 'ip6-allhosts', '0.0.0.0']);
// The address column only marks the line as a mapping (0.0.0.0, 127.0.0.1, ::1, fe80::1%lo0...).
const ADDRESS_COLUMN = /^[0-9a-f.:]+(%[a-z0-9]+)?$/i;
// uBlock/AdGuard network rule for a whole domain: `||name^`, optionally `$important`.
const ADBLOCK_DOMAIN = /^\|\|([^/^$|*]+)\^(\$important)?$/;

function stripComment(line: string): string {
  const hash = line.indexOf('#');
  return (hash < 0 ? line : line.slice(0, hash)).trim();
}

/** `evil.example`, `*.evil.example`, `.evil.example`: each blocks the name and every name below it. */
function domainLine(line: string): LineResult {
  const text = stripComment(line);
  if (text === '' || text.startsWith('!')) return SKIP;
  const token = text.split(WHITESPACE)[0] ?? '';
  if (text.length !== token.length) return bad('more than one field on a domain line');
  const name = token.startsWith('*.') ? token.slice(2) : token.startsWith('.') ? token.slice(1) : token;
  if (name.includes('*')) return bad('wildcard allowed only as the whole first label');
  return hosts(name);
}

/** `0.0.0.0 evil.example [more names]`, as in /etc/hosts and URLhaus's hostfile. */
function hostsLine(line: string): LineResult {
  const text = stripComment(line);
  if (text === '') return SKIP;
  const [address, ...names] = text.split(WHITESPACE);
  if (address === undefined || !ADDRESS_COLUMN.test(address)) return bad('hosts line must start with an address such as 0.0.0.0 or 127.0.0.1');
  if (names.length === 0) return bad('hosts line names no host');
  const listed = names.filter((name) => !HOSTS_FILE_SELF.has(name.toLowerCase()));
  return listed.length === 0 ? SKIP : hosts(...listed);
}

function adblockLine(line: string): LineResult {
  const text = line.trim();
  if (text === '' || text.startsWith('!') || text.startsWith('#') || text.startsWith('[')) return SKIP;
  // Exception rules are the feed's own allow-list; Sluice's allow-exceptions live in allow.txt.
  if (text.startsWith('@@')) return SKIP;
  const match = ADBLOCK_DOMAIN.exec(text);
  if (match === null) return bad('not a whole-domain rule of the form ||name^');
  return hosts(match[1] ?? '');
}

/** The host of an absolute URL; ports, userinfo, paths dropped. */
function hostOfUrl(url: string): string | null {
  const scheme = url.indexOf('://');
  if (scheme <= 0) return null;
  let authority = url.slice(scheme + 3);
  const end = authority.search(/[/?#]/);
  if (end >= 0) authority = authority.slice(0, end);
  const at = authority.lastIndexOf('@');
  if (at >= 0) authority = authority.slice(at + 1);
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    return close < 0 ? null : authority.slice(1, close);
  }
  const colon = authority.indexOf(':');
  const host = colon < 0 ? authority : authority.slice(0, colon);
  return host === '' ? null : host;
}

function urlLine(line: string): LineResult {
  const text = line.trim();
  if (text === '' || text.startsWith('#')) return SKIP;
  const host = hostOfUrl(text);
  return host === null ? bad('not an absolute URL') : hosts(host);
}

/** RFC 4180 fields of one line (a doubled quote inside quotes is a quote); URLhaus quotes every field. */
function csvFields(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const char = line[i];
    if (quoted) {
      if (char !== '"') field += char;
      else if (line[i + 1] === '"') {
        field += '"';
        i++;
      } else quoted = false;
    } else if (char === '"') quoted = true;
    else if (char === ',') {
      fields.push(field);
      field = '';
    } else field += char;
  }
  fields.push(field);
  return fields;
}

// URLhaus CSV dumps: id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter
const URLHAUS_URL_COLUMN = 2;

function urlhausCsvLine(line: string): LineResult {
  const text = line.trim();
  if (text === '' || text.startsWith('#')) return SKIP;
  const url = csvFields(text)[URLHAUS_URL_COLUMN];
  if (url === undefined) return bad('fewer than 3 CSV fields');
  const host = hostOfUrl(url);
  return host === null ? bad('url column is not an absolute URL') : hosts(host);
}

export const LINE_READERS: Readonly<Record<BlocklistFormat, (line: string) => LineResult>> = {
  domains: domainLine,
  wildcard: domainLine,
  hosts: hostsLine,
  adblock: adblockLine,
  urls: urlLine,
  'urlhaus-csv': urlhausCsvLine,
};

// Reads every module under src/ and the relative imports between them (static, re-exports and
// dynamic), so tests can hold the layout to its dependency rules.
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { REPO_ROOT } from './cli.js';

export const SRC = join(REPO_ROOT, 'src');

export interface ImportEdge {
  /** paths relative to src/, with `/` separators: `policy/decide.ts` */
  readonly from: string;
  readonly to: string;
}

// `import … from '…'`, `export … from '…'` (across lines), `import '…'` and `import('…')`.
const STATIC = /^\s*(?:import|export)\b[^;'"]*?\bfrom\s+'([^']+)'/gm;
const BARE = /^\s*import\s+'([^']+)'/gm;
const DYNAMIC = /\bimport\(\s*'([^']+)'\s*\)/g;

async function modules(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await modules(path)));
    else if (entry.name.endsWith('.ts')) found.push(path);
  }
  return found;
}

function name(path: string): string {
  return relative(SRC, path).split(sep).join('/');
}

/** Every edge from one src module to another; imports of packages and node: are not edges. */
export async function importEdges(): Promise<ImportEdge[]> {
  const edges: ImportEdge[] = [];
  for (const file of await modules(SRC)) {
    const text = await readFile(file, 'utf8');
    for (const pattern of [STATIC, BARE, DYNAMIC]) {
      for (const match of text.matchAll(pattern)) {
        const specifier = match[1] ?? '';
        if (!specifier.startsWith('.')) continue;
        edges.push({ from: name(file), to: name(resolve(dirname(file), specifier.replace(/\.js$/, '.ts'))) });
      }
    }
  }
  return edges;
}

/** The top-level place a module belongs to: its folder under src/ (`policy`), or the file itself (`errors.ts`). */
export function unitOf(module: string): string {
  const slash = module.indexOf('/');
  return slash < 0 ? module : module.slice(0, slash);
}

/** Each set of modules that import one another round a loop (Tarjan's strongly connected components). */
export function importCycles(edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const { from, to } of edges) next.set(from, [...(next.get(from) ?? []), to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (module: string): void => {
    index.set(module, index.size);
    low.set(module, index.get(module) ?? 0);
    stack.push(module);
    for (const target of next.get(module) ?? []) {
      if (!index.has(target)) {
        visit(target);
        low.set(module, Math.min(low.get(module) ?? 0, low.get(target) ?? 0));
      } else if (stack.includes(target)) {
        low.set(module, Math.min(low.get(module) ?? 0, index.get(target) ?? 0));
      }
    }
    if (low.get(module) !== index.get(module)) return;
    const members: string[] = [];
    let member: string | undefined;
    do {
      member = stack.pop();
      if (member !== undefined) members.push(member);
    } while (member !== undefined && member !== module);
    if (members.length > 1) cycles.push(members.sort());
  };
  for (const module of next.keys()) if (!index.has(module)) visit(module);
  return cycles;
}

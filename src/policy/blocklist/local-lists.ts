// Reads the operators' own files (local.txt, allow.txt). A missing file is an empty list; an
// unreadable one keeps the last good copy; malformed lines are reported with file:line.
import { readFile } from 'node:fs/promises';
import { compileText, type CompiledList } from './compile.js';

export interface LocalListResult {
  /** null when the file could not be read for a reason other than not existing */
  readonly list: CompiledList | null;
  readonly problems: readonly string[];
}

export async function readLocalList(file: string): Promise<LocalListResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { list: compileText('', 'domains'), problems: [] };
    return { list: null, problems: [`${file}: cannot read: ${error instanceof Error ? error.message : String(error)}`] };
  }
  const list = compileText(text, 'domains');
  const problems = list.malformedExamples.map((bad) => `${file}:${bad.line}:1: ${bad.reason}: ${JSON.stringify(bad.text)}`);
  if (list.malformed > list.malformedExamples.length) problems.push(`${file}: ${list.malformed - list.malformedExamples.length} more malformed lines`);
  return { list, problems };
}

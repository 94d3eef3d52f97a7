// Worker-thread entry: reads one downloaded feed and compiles it, so parsing a million lines
// never runs on the proxy's event loop. The table's buffers are transferred back, not copied.
import { createReadStream } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { isOperatorError, type OperatorErrorCode } from '../../errors.js';
import { ListCompiler, type CompiledListData } from './compile.js';
import type { BlocklistFormat } from './formats.js';

export interface CompileRequest {
  readonly file: string;
  readonly format: BlocklistFormat;
  readonly maxEntries: number;
}

export type CompileReply = { readonly ok: true; readonly list: CompiledListData } | { readonly ok: false; readonly code: OperatorErrorCode; readonly message: string };

async function compile(request: CompileRequest): Promise<CompiledListData> {
  const compiler = new ListCompiler(request.format, { maxEntries: request.maxEntries, topLevelNames: false });
  const stream = createReadStream(request.file, { encoding: 'utf8', highWaterMark: 1 << 20 });
  for await (const chunk of stream) compiler.push(chunk as string);
  return compiler.finish();
}

const port = parentPort;
if (port !== null) {
  compile(workerData as CompileRequest).then(
    (list) => {
      const reply: CompileReply = { ok: true, list };
      const { names } = list;
      port.postMessage(reply, [names.bytes.buffer, names.offsets.buffer, names.slots.buffer, names.filter.buffer]);
    },
    (error: unknown) => {
      // An unreadable file (ENOENT, EACCES) says so in its message; its code is the compile failure.
      const code = isOperatorError(error) ? error.code : 'BLOCKLIST_COMPILE';
      const reply: CompileReply = { ok: false, code, message: error instanceof Error ? error.message : String(error) };
      port.postMessage(reply);
    },
  );
}

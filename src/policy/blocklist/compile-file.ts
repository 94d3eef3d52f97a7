// Compiles a list file in a worker thread and opens the result on this thread: the event loop
// only pays for receiving a few transferred buffers.
import { Worker } from 'node:worker_threads';
import { OperatorError } from '../../errors.js';
import { openCompiledList, type CompiledList } from './compile.js';
import type { CompileReply, CompileRequest } from './compile-worker.js';
import type { BlocklistFormat } from './formats.js';

const WORKER_URL = new URL('./compile-worker.js', import.meta.url);

/** Rejects with an OperatorError: BLOCKLIST_ENTRY_CAP for a list over `maxEntries`, BLOCKLIST_COMPILE otherwise. */
export function compileFile(file: string, format: BlocklistFormat, maxEntries: number): Promise<CompiledList> {
  const request: CompileRequest = { file, format, maxEntries };
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_URL, { workerData: request });
    let settled = false;
    worker.once('message', (reply: CompileReply) => {
      settled = true;
      if (reply.ok) resolve(openCompiledList(reply.list));
      else reject(new OperatorError(reply.code, `${file}: ${reply.message}`));
      void worker.terminate();
    });
    worker.once('error', (error) => {
      if (settled) return;
      settled = true;
      reject(new OperatorError('BLOCKLIST_COMPILE', `${file}: ${error.message}`));
    });
    worker.once('exit', (code) => {
      if (!settled) {
        settled = true;
        reject(new OperatorError('BLOCKLIST_COMPILE', `${file}: compiler exited with code ${code}`));
      }
    });
  });
}

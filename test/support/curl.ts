// Runs the real curl binary (installed by .ci/run when absent) and returns status, headers and body.
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CurlResult {
  readonly exitCode: number;
  readonly status: number;
  /** every header block curl saw (CONNECT reply, 100 Continue, final response) */
  readonly headers: string;
  readonly body: string;
  readonly stderr: string;
}

/** `args` are curl arguments; `-sS`, a header dump and the status code are added. */
export async function curl(args: readonly string[], options: { uid?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CurlResult> {
  const marker = '\n--sluice-status--';
  const dir = await mkdtemp(join(tmpdir(), 'sluice-curl-'));
  const headerFile = join(dir, 'headers');
  // curl running as another UID must be able to write its header dump.
  if (options.uid !== undefined) await chmod(dir, 0o777);
  try {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
      execFile(
        'curl',
        ['-sS', '-D', headerFile, '-w', `${marker}%{http_code} %{http_connect}`, '--max-time', '20', ...args],
        { timeout: 30_000, env: options.env ?? { PATH: process.env.PATH ?? '/usr/bin:/bin' }, ...(options.uid === undefined ? {} : { uid: options.uid }), maxBuffer: 64 * 1024 * 1024 },
        (error, out, err) => {
          if (error !== null && typeof error.code !== 'number') reject(error);
          else resolve({ code: error === null ? 0 : Number(error.code), stdout: out, stderr: err });
        },
      );
    });
    const at = stdout.lastIndexOf(marker);
    const headers = await readFile(headerFile, 'utf8').catch(() => '');
    // A refused CONNECT leaves http_code at 0; the proxy's answer is then in http_connect.
    const [final = '0', connectReply = '0'] = at < 0 ? [] : stdout.slice(at + marker.length).split(' ');
    const status = Number(final) === 0 ? Number(connectReply) : Number(final);
    return { exitCode: code, status, body: at < 0 ? stdout : stdout.slice(0, at), headers, stderr };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

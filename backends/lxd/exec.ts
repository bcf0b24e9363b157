/**
 * Hooks through LXD's exec API: `sh -eu -c SCRIPT` as root, `record-output: true`,
 * `wait-for-websocket: false`, with `ATELIER_ROOTFS=/` (the script runs inside the instance).
 *
 * The exit status is the operation's `metadata.return`; stdout and stderr are read from the recorded
 * log paths (with `?project=` added: LXD omits it and answers 404 without it) and then deleted.
 * A timeout kills the hook's processes (found by a marker in their environment) and fails with
 * `EXEC_FAILED` and `details.timedOut`.
 */
import { randomBytes } from 'node:crypto';
import type { ExecRequest, ExecResult } from '../types.ts';
import { BackendError } from '../types.ts';
import type { LxdClient, LxdOperation } from './client.ts';

const STDERR_TAIL = 4096;

/** What a hook's stderr says when the disk or a quota is full (the adapter raises `NO_SPACE`). */
export const DISK_FULL = /No space left on device|Disk quota exceeded/i;
const MARKER = 'ATELIER_EXEC_ID';

export async function runHook(client: LxdClient, name: string, project: string, req: ExecRequest): Promise<ExecResult> {
  const id = randomBytes(8).toString('hex');
  const path = `/1.0/instances/${encodeURIComponent(name)}/exec`;
  const body = {
    command: ['sh', '-eu', '-c', req.script],
    environment: { ...(req.env ?? {}), ATELIER_ROOTFS: '/', [MARKER]: id },
    'wait-for-websocket': false,
    interactive: false,
    'record-output': true,
  };
  const env = await client.call('POST', path, body, { project });
  if (!env.operation) throw new BackendError('INTERNAL', `LXD answered exec on ${name} without an operation`);
  const timeoutS = req.timeoutMs === undefined ? undefined : Math.max(1, Math.ceil(req.timeoutMs / 1000));
  let op = await client.wait(env.operation, timeoutS);
  let timedOut = false;
  if (op.status === 'Running' || op.status === 'Pending') {
    timedOut = true;
    await killMarked(client, path, project, id);
    op = await client.wait(env.operation, 10);
  }
  const meta = (op.metadata ?? {}) as { return?: number; output?: Record<string, string> };
  const stdout = await readLog(client, meta.output?.['1'], project);
  const stderr = await readLog(client, meta.output?.['2'], project);
  const exitCode = typeof meta.return === 'number' ? meta.return : op.status === 'Success' ? 0 : -1;
  if (timedOut) {
    throw new BackendError('EXEC_FAILED', `hook in ${name} timed out after ${req.timeoutMs} ms`, { timedOut: true, exitCode: 124, stdout, stderr: tail(stderr) });
  }
  if (exitCode === -1) {
    throw new BackendError('INTERNAL', `LXD exec on ${name} failed: ${op.err || op.status}`, { operation: op.id });
  }
  if (exitCode !== 0) {
    const last = tail(stderr).trim().split('\n').pop() ?? '';
    throw new BackendError('EXEC_FAILED', `hook in ${name} exited with status ${exitCode}${last ? `: ${last}` : ''}`, { exitCode, stdout, stderr: tail(stderr) });
  }
  return { exitCode, stdout, stderr };
}

function tail(s: string): string {
  return s.length > STDERR_TAIL ? s.slice(-STDERR_TAIL) : s;
}

async function readLog(client: LxdClient, logPath: string | undefined, project: string): Promise<string> {
  if (!logPath) return '';
  const url = `${logPath}${logPath.includes('?') ? '&' : '?'}project=${encodeURIComponent(project)}`;
  const res = await client.raw('GET', url);
  const text = res.status === 200 ? res.body.toString('utf8') : '';
  await client.raw('DELETE', url).catch(() => undefined);
  return text;
}

/** Kill every process whose environment carries this exec's marker (the hook and its children). */
async function killMarked(client: LxdClient, path: string, project: string, id: string): Promise<void> {
  const script = `for p in /proc/[0-9]*; do grep -q '${MARKER}=${id}' "$p/environ" 2>/dev/null && kill -9 "\${p#/proc/}" 2>/dev/null; done; true`;
  try {
    const op: LxdOperation = await client.async(
      'POST',
      path,
      { command: ['sh', '-c', script], environment: {}, 'wait-for-websocket': false, interactive: false, 'record-output': false },
      { project },
      { timeoutS: 10, allowFailure: true },
    );
    void op;
  } catch {
    // best effort: the caller reports the timeout either way
  }
}

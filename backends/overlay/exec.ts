/**
 * Running a hook (`setup-base`) in an instance's root filesystem (port rule 6).
 *
 * Three modes, chosen per call:
 * - **runc**: the instance runs as a container (`runtime.ts`) and its root has `/bin/sh`: the
 *   script runs inside it as `runc exec <id> /bin/sh -eu -c SCRIPT` with `ATELIER_ROOTFS=/`, in the
 *   container's namespaces, as root with the container's capabilities. The launch's guard
 *   (`process.ts`) kills the hook if this process dies; a timeout SIGKILLs it.
 * - **chroot**: without a container, when this process is root and the root has `/bin/sh`, the
 *   script runs as `chroot <root> /bin/sh -eu -c SCRIPT` with `ATELIER_ROOTFS=/`: the hook sees
 *   the instance's own tools and paths, but the host's processes, network and hostname.
 * - **host**: otherwise the host's `sh -eu -c SCRIPT` runs with its working directory at the root
 *   and `ATELIER_ROOTFS` set to the root's host path. Hooks that write `"${ATELIER_ROOTFS%/}/etc/x"`
 *   work unchanged in every mode; hooks that assume absolute paths only work in the first two.
 *
 * Output is captured; a non-zero exit is `EXEC_FAILED` carrying the status and stderr's tail; a
 * timeout kills the hook (status 137).
 *
 * @example
 * ```ts
 * const r = await runHook('/root/objects/workshops/w/merged', { script: 'echo hi > "${ATELIER_ROOTFS%/}/etc/motd"' });
 * const inside = await runHook(rootfs, { script: 'hostname' }, { runc, name: 'w', tmp: `${runDir}/exec` });
 * ```
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { BackendError } from '../types.ts';
import type { ExecRequest, ExecResult } from '../types.ts';
import { tail } from './fsutil.ts';
import { resolveInRoot } from './inroot.ts';
import { launch } from './process.ts';
import type { Runc } from './runtime.ts';

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const OUTPUT_LIMIT = 4 * 1024 * 1024;

export type HookMode = 'runc' | 'chroot' | 'host';

/** A running container to run hooks in: its runtime, instance name, and where launches keep their files. */
export interface HookContainer {
  readonly runc: Runc;
  readonly name: string;
  readonly tmp: string;
}

/** Which mode a hook in `rootfs` runs in (`container`: the instance's, when it runs as one). */
export async function hookMode(rootfs: string, container?: HookContainer): Promise<HookMode> {
  if (container && (await resolveInRoot(rootfs, '/bin/sh')).type === 'file') return 'runc';
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) return 'host';
  try {
    await lstat(join(rootfs, 'bin', 'sh'));
    return 'chroot';
  } catch {
    return 'host';
  }
}

/** Run `req.script` with `sh -eu` in `rootfs`, inside `container` when it is given and can. */
export async function runHook(rootfs: string, req: ExecRequest, container?: HookContainer): Promise<ExecResult & { mode: HookMode }> {
  const mode = await hookMode(rootfs, container);
  const result = mode === 'runc' ? await inContainer(container!, req) : await onHost(mode, rootfs, req);
  if (result.code !== 0) {
    const why = result.timedOut ? `timed out after ${req.timeoutMs} ms` : `exited ${result.code}`;
    throw new BackendError('EXEC_FAILED', `hook ${why}: ${tail(result.stderr, 1000)}`, {
      exitCode: result.code,
      stderr: tail(result.stderr),
      stdout: tail(result.stdout),
      mode,
    });
  }
  return { exitCode: 0, stdout: result.stdout, stderr: result.stderr, mode };
}

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

async function inContainer(c: HookContainer, req: ExecRequest): Promise<Outcome> {
  // ATELIER_ROOTFS last: later entries win, and it is the adapter's (port rule 6).
  const env = [...Object.entries(req.env ?? {}).map(([k, v]) => `${k}=${v}`), 'ATELIER_ROOTFS=/'];
  const l = await launch(c.runc, c.name, { argv: ['/bin/sh', '-eu', '-c', req.script], env, cwd: '/', user: { uid: 0, gid: 0, groups: [] } }, c.tmp);
  l.child.stdin!.on('error', () => undefined);
  l.child.stdin!.end();
  // A timeout kills the hook's whole session: a `sleep` under its shell would hold its output open.
  return collect(l.child, l.exited, () => l.killAll(), req.timeoutMs, 'runc exec');
}

async function onHost(mode: HookMode, rootfs: string, req: ExecRequest): Promise<Outcome> {
  const env: NodeJS.ProcessEnv = {
    PATH,
    HOME: '/root',
    LANG: 'C.UTF-8',
    ...req.env,
    ATELIER_ROOTFS: mode === 'chroot' ? '/' : rootfs,
  };
  const [cmd, args, cwd] =
    mode === 'chroot' ? ['chroot', [rootfs, '/bin/sh', '-eu', '-c', req.script], '/'] : ['sh', ['-eu', '-c', req.script], rootfs];
  const child = spawn(cmd, args as string[], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (e) => reject(new BackendError('UNAVAILABLE', `cannot run the hook (${cmd}): ${e.message}`, { mode })));
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + 9 : 1)));
  });
  return collect(child, exited, () => child.kill('SIGKILL'), req.timeoutMs, cmd);
}

/** Capture a hook's output (its last OUTPUT_LIMIT characters) and kill it after `timeoutMs`. */
async function collect(child: ChildProcess, exited: Promise<number>, kill: () => void, timeoutMs: number | undefined, what: string): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  // Keep the last OUTPUT_LIMIT characters: a chatty installer must not exhaust memory.
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout = (stdout + d).slice(-OUTPUT_LIMIT)));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-OUTPUT_LIMIT)));
  const timer = timeoutMs
    ? setTimeout(() => {
        timedOut = true;
        kill();
      }, timeoutMs)
    : undefined;
  try {
    const code = await exited;
    return { code, stdout, stderr, timedOut };
  } catch (e) {
    if (e instanceof BackendError) throw e;
    throw new BackendError('UNAVAILABLE', `cannot run the hook (${what}): ${(e as Error).message}`);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

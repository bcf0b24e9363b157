/**
 * Running a hook (`setup-base`) in an instance's root filesystem (port rule 6).
 *
 * Two modes, chosen per call:
 * - **chroot**: when this process is root and the root has `/bin/sh`, the script runs as
 *   `chroot <root> /bin/sh -eu -c SCRIPT` with `ATELIER_ROOTFS=/`: the hook sees the instance's
 *   own tools and paths, as it would inside an LXD container.
 * - **host**: otherwise the host's `sh -eu -c SCRIPT` runs with its working directory at the root
 *   and `ATELIER_ROOTFS` set to the root's host path. Hooks that write `"${ATELIER_ROOTFS%/}/etc/x"`
 *   work unchanged in both modes; hooks that assume absolute paths only work under chroot.
 *
 * Output is captured; a non-zero exit is `EXEC_FAILED` carrying the status and stderr's tail.
 *
 * @example
 * ```ts
 * const r = await runHook('/root/objects/workshops/w/merged', { script: 'echo hi > "${ATELIER_ROOTFS%/}/etc/motd"' });
 * ```
 */
import { spawn } from 'node:child_process';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { BackendError } from '../types.ts';
import type { ExecRequest, ExecResult } from '../types.ts';
import { tail } from './fsutil.ts';

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const OUTPUT_LIMIT = 4 * 1024 * 1024;

export type HookMode = 'chroot' | 'host';

/** Which mode a hook in `rootfs` runs in. */
export async function hookMode(rootfs: string): Promise<HookMode> {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) return 'host';
  try {
    await lstat(join(rootfs, 'bin', 'sh'));
    return 'chroot';
  } catch {
    return 'host';
  }
}

/** Run `req.script` with `sh -eu` in `rootfs`. */
export async function runHook(rootfs: string, req: ExecRequest): Promise<ExecResult & { mode: HookMode }> {
  const mode = await hookMode(rootfs);
  const env: NodeJS.ProcessEnv = {
    PATH,
    HOME: '/root',
    LANG: 'C.UTF-8',
    ...req.env,
    ATELIER_ROOTFS: mode === 'chroot' ? '/' : rootfs,
  };
  const [cmd, args, cwd] =
    mode === 'chroot' ? ['chroot', [rootfs, '/bin/sh', '-eu', '-c', req.script], '/'] : ['sh', ['-eu', '-c', req.script], rootfs];

  const result = await new Promise<{ code: number; stdout: string; stderr: string; timedOut: boolean }>((resolve, reject) => {
    const child = spawn(cmd, args as string[], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    // Keep the last OUTPUT_LIMIT characters: a chatty installer must not exhaust memory.
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout = (stdout + d).slice(-OUTPUT_LIMIT)));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-OUTPUT_LIMIT)));
    const timer = req.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, req.timeoutMs)
      : undefined;
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new BackendError('UNAVAILABLE', `cannot run the hook (${cmd}): ${e.message}`, { mode }));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 + 9 : 1), stdout, stderr, timedOut });
    });
  });

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

/**
 * Small file-system and process helpers the overlay backend builds on: running a host tool,
 * atomic file writes, temp-then-rename directory creation, and mapping OS errors to port codes.
 *
 * Why host tools (`mount`, `umount`, `cp -a`, `tar`) rather than Node APIs: Node has no mount(2)
 * binding, and `fs.cp` preserves neither ownership, device nodes (overlay whiteouts are 0/0
 * character devices) nor hard links, which `cp -a` does.
 *
 * @example
 * ```ts
 * await run('cp', ['-a', `${src}/.`, dst]);
 * await writeFileAtomic('/root/objects/x/meta.json', JSON.stringify(meta));
 * ```
 */
import { execFile } from 'node:child_process';
import { open, rename, rm, mkdir, readdir, lstat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, basename } from 'node:path';
import { BackendError } from '../types.ts';

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Resolve with the exit code instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
}

/** What a host tool (cp, tar, mount, a hook's shell) prints when the disk or a quota is full. */
export const DISK_FULL = /No space left on device|Disk quota exceeded/i;

/**
 * Run a host program and collect its output. Throws on a non-zero exit unless allowed: `NO_SPACE`
 * when its stderr says the disk is full (`DISK_FULL`), else `INTERNAL`.
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, env: opts.env, timeout: opts.timeoutMs ?? 0, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
          // The program could not be started at all (ENOENT, EACCES): not an exit status.
          reject(new BackendError('UNAVAILABLE', `cannot run ${cmd}: ${err.message}`, { cmd }));
          return;
        }
        const code = err ? (typeof err.code === 'number' ? err.code : err.killed ? 124 : 1) : 0;
        if (code !== 0 && !opts.allowFailure) {
          const code_ = DISK_FULL.test(stderr) ? 'NO_SPACE' : 'INTERNAL';
          reject(new BackendError(code_, `${cmd} ${args.join(' ')} exited ${code}: ${tail(stderr)}`, { cmd, exitCode: code }));
          return;
        }
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The last `max` characters of a process's output, for error messages. */
export function tail(text: string, max = 2000): string {
  const t = text.trimEnd();
  return t.length <= max ? t : `…${t.slice(-max)}`;
}

/** A short random id (hex) for blobs and temp names. */
export function randomId(bytes = 8): string {
  return randomBytes(bytes).toString('hex');
}

/** fsync a directory so a rename inside it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Write a file atomically: temp file in the same directory, fsync, rename, fsync the directory.
 * A crash leaves either the old or the new content, never a torn file.
 */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomId(4)}.tmp`);
  const fh = await open(tmp, 'w', 0o644);
  try {
    try {
      await fh.writeFile(data, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    // A full disk fails the write: leave no half-written temp file beside the target.
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
  await fsyncDir(dirname(path));
}

/** True when `path` exists (without following a final symlink). */
export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Directory entries, or `[]` when the directory is absent. */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** Remove a tree; absent is fine. */
export async function removeTree(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
}

/** Make a directory (and parents) with a given mode. */
export async function ensureDir(path: string, mode = 0o755): Promise<void> {
  await mkdir(path, { recursive: true, mode });
}

/** Map an unexpected error to a `BackendError` so nothing else escapes the adapter (port rule 7). */
export function toBackendError(e: unknown, what: string): BackendError {
  if (e instanceof BackendError) return e;
  const err = e as NodeJS.ErrnoException;
  const code = err?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new BackendError('NO_SPACE', `${what}: ${err.message}`, { errno: code });
  if (code === 'EBUSY') return new BackendError('BUSY', `${what}: ${err.message}`, { errno: code });
  return new BackendError('INTERNAL', `${what}: ${err?.message ?? String(e)}`, { errno: code });
}

/**
 * Files inside an instance through LXD's file API (`/1.0/instances/NAME/files?path=...`): what
 * `readFile` reports, and what `spawn` needs to know before it starts a process (the user's
 * `/etc/passwd` entry, whether the working directory is a directory).
 *
 * The API does not follow a final symlink (it reports the link and its target), so `resolve` follows
 * those itself; LXD resolves the other components inside the instance's root. `HEAD` answers with
 * the same `X-LXD-*` headers as `GET` without the content (LXD 5.0 has no `file_head` extension, but
 * the route answers it), which makes "is this a directory" cheap even for a large one.
 *
 * @example
 * ```ts
 * const f = await getFile(client, 'nav2', 'workshop.alice', '/etc/passwd');
 * f?.type === 'file' && f.body.toString('utf8');
 * (await resolve(client, 'nav2', 'workshop.alice', '/root'))?.type; // 'dir'
 * ```
 */
import { posix } from 'node:path';
import { BackendError } from '../types.ts';
import type { LxdClient } from './client.ts';

/** One path in an instance, as the file API reports it. */
export interface LxdFile {
  readonly type: 'file' | 'dir' | 'symlink' | 'other';
  /** Permission bits with setuid, setgid and sticky. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** The content (files), the target (symlinks), a JSON listing (directories); empty for `HEAD`. */
  readonly body: Buffer;
}

/** Linux's limit on symlinks followed in one lookup. */
const MAX_LINKS = 40;

/** What is at `path` in instance `name` (a final symlink not followed), or null when nothing is. */
export async function getFile(client: LxdClient, name: string, project: string, path: string, method: 'GET' | 'HEAD' = 'GET'): Promise<LxdFile | null> {
  const url = `/1.0/instances/${encodeURIComponent(name)}/files?path=${encodeURIComponent(path)}&project=${encodeURIComponent(project)}`;
  const res = await client.raw(method, url);
  if (res.status === 404) return null;
  if (res.status >= 400) {
    let msg = `HTTP ${res.status}`;
    try {
      msg = (JSON.parse(res.body.toString('utf8')) as { error?: string }).error ?? msg;
    } catch {
      /* not JSON (HEAD has no body) */
    }
    throw new BackendError('INTERNAL', `LXD: reading ${path} in ${name}: ${msg}`, { name, path, status: res.status });
  }
  const h = (k: string) => String(res.headers[k] ?? '');
  const lxdType = h('x-lxd-type');
  return {
    type: lxdType === 'file' ? 'file' : lxdType === 'directory' ? 'dir' : lxdType === 'symlink' ? 'symlink' : 'other',
    mode: parseInt(h('x-lxd-mode') || '0', 8) & 0o7777,
    uid: Number(h('x-lxd-uid') || 0),
    gid: Number(h('x-lxd-gid') || 0),
    body: res.body,
  };
}

/**
 * Follow `path`'s final symlinks inside the instance: what the path leads to (with `path` where it
 * was found), or null when it leads nowhere. `HEAD` unless the content is wanted.
 */
export async function resolve(
  client: LxdClient,
  name: string,
  project: string,
  path: string,
  method: 'GET' | 'HEAD' = 'HEAD',
): Promise<(LxdFile & { path: string }) | null> {
  let at = posix.normalize(path);
  for (let links = 0; links <= MAX_LINKS; links++) {
    let f = await getFile(client, name, project, at, method);
    if (!f) return null;
    if (f.type !== 'symlink') return { ...f, path: at };
    // A symlink's target is only in a GET's body.
    if (method === 'HEAD') f = await getFile(client, name, project, at, 'GET');
    if (!f) return null;
    const target = f.body.toString('utf8');
    at = posix.normalize(target.startsWith('/') ? target : posix.join(posix.dirname(at), target));
  }
  throw new BackendError('INVALID', `too many symbolic links resolving ${path} in ${name}`, { name, path });
}

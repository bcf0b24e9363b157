/**
 * Looking at an instance's root filesystem from the host as a process inside it would: paths
 * resolved with their symlinks followed *within* the root (an absolute link target is relative to
 * the root, `..` stops at it), the way runc's securejoin resolves mount destinations; and users
 * and groups looked up in the root's own `/etc/passwd` and `/etc/group`.
 *
 * Why not `join(root, path)`: a root may hold `/etc/passwd -> /host/file` or
 * `/etc/resolv.conf -> ../run/systemd/resolve/stub-resolv.conf`; following such a link on the
 * host would read the host's file, or wrongly decide that a mount destination is missing.
 *
 * @example
 * ```ts
 * const r = await resolveInRoot('/store/objects/workshops/w/merged', '/etc/resolv.conf');
 * r.exists; r.path; // true '/etc/resolv.conf' (or the link's target inside the root)
 * const u = await lookupUser(root, 'alice'); // { uid: 1000, gid: 1000, home: '/home/alice', groups: [27] }
 * ```
 */
import { lstat, readFile, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { BackendError } from '../types.ts';

/** Where a path leads inside a root. */
export interface InRoot {
  /** The path inside the root after following symlinks (absolute, normalized). */
  readonly path: string;
  /** The same on the host (`root` + `path`). */
  readonly host: string;
  /** What is there, or null when the (final) component is missing. */
  readonly type: 'dir' | 'file' | 'other' | null;
}

/** Linux's own limit on symlinks followed in one lookup. */
const MAX_LINKS = 40;

/**
 * Resolve `path` inside `root`, following every symlink within the root. A missing component
 * ends the walk: `path` is then where it would be created (what runc would create for a mount).
 */
export async function resolveInRoot(root: string, path: string): Promise<InRoot> {
  let todo = path.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let links = 0;
  while (todo.length) {
    const c = todo.shift()!;
    if (c === '..') {
      done.pop(); // clamped at the root, as chroot does
      continue;
    }
    const host = join(root, ...done, c);
    let st;
    try {
      st = await lstat(host);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
      const rest = [...done, c, ...todo];
      return { path: `/${rest.join('/')}`, host: join(root, ...rest), type: null };
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw new BackendError('INVALID', `too many symbolic links resolving ${path} in the instance`, { path });
      const target = await readlink(host);
      if (target.startsWith('/')) done.length = 0;
      todo = [...target.split('/').filter((x) => x !== '' && x !== '.'), ...todo];
      continue;
    }
    done.push(c);
    if (!st.isDirectory() && todo.length) {
      // A file in the middle of a path: nothing can be below it.
      const rest = [...done, ...todo];
      return { path: `/${rest.join('/')}`, host: join(root, ...rest), type: null };
    }
    if (!todo.length) {
      const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
      return { path: `/${done.join('/')}`, host: join(root, ...done), type };
    }
  }
  return { path: '/', host: root, type: 'dir' };
}

/** A user as `runc exec --user` wants it, with the home directory for `HOME`. */
export interface ResolvedUser {
  readonly uid: number;
  readonly gid: number;
  /** Supplementary groups (from the root's `/etc/group`). */
  readonly groups: readonly number[];
  /** From `/etc/passwd`; `/` for a uid it does not list. */
  readonly home: string;
  readonly name?: string;
}

/** The colon-separated records of one of the root's account files ([] when it has none). */
async function records(root: string, file: string): Promise<string[][]> {
  const at = await resolveInRoot(root, file);
  if (at.type !== 'file') return [];
  const text = await readFile(at.host, 'utf8');
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

const NUMERIC = /^\d+$/;

/**
 * `user` as the port's `SpawnRequest.user` allows it: a name from the root's `/etc/passwd`, or
 * `uid[:gid]` (either part may also be a name). Absent: root. A name the root does not know is
 * `NOT_FOUND`; a uid it does not list runs with gid 0 (or the one given) and `HOME=/`, as Podman
 * and Docker do.
 */
export async function lookupUser(root: string, user: string | undefined): Promise<ResolvedUser> {
  const spec = user ?? 'root';
  const [u, g] = spec.split(':', 2) as [string, string | undefined];
  if (!u || g === '') throw new BackendError('INVALID', `bad user ${JSON.stringify(spec)}: use a name or uid[:gid]`, { user: spec });
  const passwd = await records(root, '/etc/passwd');
  const entry = passwd.find((p) => (NUMERIC.test(u) ? p[2] === u : p[0] === u));
  if (!entry && !NUMERIC.test(u)) {
    // A root without /etc/passwd (a bare tree) still has root.
    if (u === 'root') return { uid: 0, gid: g && NUMERIC.test(g) ? Number(g) : 0, groups: [], home: '/root', name: 'root' };
    throw new BackendError('NOT_FOUND', `no user ${u} in the instance's /etc/passwd`, { user: u });
  }
  const uid = entry ? Number(entry[2]) : Number(u);
  let gid = entry ? Number(entry[3]) : 0;
  const groups = await records(root, '/etc/group');
  if (g !== undefined) {
    if (NUMERIC.test(g)) gid = Number(g);
    else {
      const grp = groups.find((x) => x[0] === g);
      if (!grp) throw new BackendError('NOT_FOUND', `no group ${g} in the instance's /etc/group`, { group: g });
      gid = Number(grp[2]);
    }
  }
  const name = entry?.[0];
  // Supplementary groups, as login(1) would set them (only for a named user: a bare uid has none).
  const extra = name ? groups.filter((x) => (x[3] ?? '').split(',').includes(name)).map((x) => Number(x[2])).filter((n) => n !== gid) : [];
  const home = entry?.[5] || (uid === 0 ? '/root' : '/');
  return { uid, gid, groups: [...new Set(extra)], home: posix.normalize(home), ...(name ? { name } : {}) };
}

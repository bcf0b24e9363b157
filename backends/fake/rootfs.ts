/**
 * The fake's model of a root filesystem: a flat map from normalised absolute path to entry. Flat
 * (rather than nested directories) because it deep-copies with one loop, serialises as plain JSON
 * for crash images, and "everything under /x" is a prefix scan.
 *
 * Symlinks are followed the way the kernel follows them when a path is resolved (intermediate
 * components always, the last one when the operation follows links), so hooks that write through
 * a link behave as they do on a real root filesystem.
 *
 * @example
 * ```ts
 * const tree = baseTree('busybox');
 * tree['/etc/motd'] = newFile('hi\n');
 * fileInfo(tree['/etc/os-release']!).content; // 'NAME="busybox"\nID=busybox\n'
 * ```
 */
import { createHash } from 'node:crypto';
import type { FileInfo } from '../types.ts';
import { checkHostKeyType, hostKeyType, KEY_MODE, MACHINE_ID, PUB_ALGORITHM, PUB_MODE, SSH_DIR } from '../identity.ts';

/** One entry. `content` is the file's text, or the target for a symlink. */
export interface FakeFile {
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  uid: number;
  gid: number;
  content?: string;
}

/** A root filesystem: normalised absolute path → entry. `/` is always present. */
export type FileTree = Record<string, FakeFile>;

/** A path-level failure, turned into a shell error message by the interpreter. */
export class FsError extends Error {}

/** `/a/./b//c/../d` → `/a/b/d`. Relative paths are taken from `/` (the fake's only cwd). */
export function normalise(path: string): string {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return '/' + out.join('/');
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * Resolve symlinks along `path`: every intermediate component, and the last one when `followLast`.
 * Returns the normalised path of the entry the operation acts on (which may not exist).
 */
export function resolvePath(tree: FileTree, path: string, followLast: boolean): string {
  let parts = normalise(path).split('/').filter(Boolean);
  let done = '';
  let hops = 0;
  for (let i = 0; i < parts.length; i++) {
    const here = `${done}/${parts[i]}`;
    const entry = tree[here];
    const isLast = i === parts.length - 1;
    if (entry?.type === 'symlink' && (!isLast || followLast)) {
      if (++hops > 40) throw new FsError(`${path}: Too many levels of symbolic links`);
      const target = entry.content ?? '';
      const rest = parts.slice(i + 1);
      const joined = target.startsWith('/') ? target : `${done}/${target}`;
      parts = [...normalise(joined).split('/').filter(Boolean), ...rest];
      done = '';
      i = -1;
      continue;
    }
    done = here;
  }
  return done === '' ? '/' : done;
}

export function newDir(mode = 0o755): FakeFile {
  return { type: 'dir', mode, uid: 0, gid: 0 };
}

export function newFile(content: string, mode = 0o644): FakeFile {
  return { type: 'file', mode, uid: 0, gid: 0, content };
}

export function newSymlink(target: string): FakeFile {
  return { type: 'symlink', mode: 0o777, uid: 0, gid: 0, content: target };
}

/** Every path strictly under `dir`, deepest first (the order a recursive remove needs). */
export function descendants(tree: FileTree, dir: string): string[] {
  const prefix = dir === '/' ? '/' : `${dir}/`;
  return Object.keys(tree)
    .filter((p) => p !== dir && p.startsWith(prefix))
    .sort((a, b) => b.length - a.length || (a < b ? 1 : -1));
}

/**
 * The `/etc/os-release` text for a base: `ubuntu@24.04` → ID=ubuntu, VERSION_ID="24.04"; a base
 * registered again (generation 2 and up) says which generation it is.
 */
function osRelease(base: string, generation: number): string {
  const [id, version] = base.split('@');
  const lines = [`NAME="${base}"`, `ID=${id}`];
  if (version) lines.push(`VERSION_ID="${version}"`);
  if (generation > 1) lines.push(`ATELIER_FAKE_GENERATION=${generation}`);
  return lines.join('\n') + '\n';
}

/**
 * The small tree every base starts with: enough for hooks to write into the usual places and for
 * tests to tell bases apart (`/etc/os-release` names the base, and its generation from 2 on).
 */
export function baseTree(base: string, generation = 1): FileTree {
  return {
    '/': newDir(),
    '/bin': newDir(),
    '/bin/sh': newFile('#!fake-sh\n', 0o755),
    '/etc': newDir(),
    '/etc/os-release': newFile(osRelease(base, generation)),
    '/etc/hostname': newFile('localhost\n'),
    '/etc/passwd': newFile('root:x:0:0:root:/root:/bin/sh\n'),
    '/etc/group': newFile('root:x:0:\n'),
    '/home': newDir(),
    '/root': newDir(0o700),
    '/tmp': newDir(0o1777),
    '/usr': newDir(),
    '/usr/bin': newDir(),
    '/var': newDir(),
    '/var/lib': newDir(),
  };
}

/** A deep copy: copies never share entries, so changing one object's file never changes another's. */
export function cloneTree(tree: FileTree): FileTree {
  const out: FileTree = {};
  for (const [path, f] of Object.entries(tree)) out[path] = { ...f };
  return out;
}

/**
 * What a tree holds for `usage` and `diskSpace`: the UTF-8 length of every regular file's content
 * (directories and symlinks count nothing: the port measures file data).
 */
export function treeBytes(tree: FileTree): number {
  let n = 0;
  for (const path in tree) {
    const f = tree[path]!;
    if (f.type === 'file' && f.content) n += Buffer.byteLength(f.content, 'utf8');
  }
  return n;
}

/** What `readFile` reports for an entry. */
export function fileInfo(f: FakeFile): FileInfo {
  const info: FileInfo = { type: f.type, mode: f.mode, uid: f.uid, gid: f.gid };
  return f.content === undefined || f.type === 'dir' ? info : { ...info, content: f.content };
}

/** Where `path` leads in `tree` (symlinks followed), or null for a symlink loop. */
function lead(tree: FileTree, path: string): string | null {
  try {
    return resolvePath(tree, path, true);
  } catch (e) {
    if (e instanceof FsError) return null;
    throw e;
  }
}

/**
 * `CopyRequest.resetIdentity` on the fake's model (`backends/identity.ts`), in two steps: this
 * finds what to reset and checks every key type (`INVALID` for one that cannot be made), changing
 * nothing; the function it returns resets: `/etc/machine-id` emptied when it is a file; each
 * `/etc/ssh/ssh_host_<type>_key` that is a file replaced by `makeKey(type)`, and its `.pub` when
 * present, root-owned, 0600 and 0644. Nothing is created.
 */
export function planIdentityReset(tree: FileTree): (makeKey: (type: string) => { key: string; pub: string }) => void {
  const keys: Array<{ type: string; key: string; pub: string | null }> = [];
  const ssh = lead(tree, SSH_DIR);
  if (ssh !== null && tree[ssh]?.type === 'dir') {
    const prefix = ssh === '/' ? '/' : `${ssh}/`;
    const names = Object.keys(tree).filter((p) => p.startsWith(prefix) && p.length > prefix.length && !p.slice(prefix.length).includes('/')).sort();
    for (const path of names) {
      const type = hostKeyType(baseName(path));
      const key = type === null ? null : lead(tree, path);
      if (type === null || key === null || tree[key]?.type !== 'file') continue;
      checkHostKeyType(type);
      const pub = lead(tree, `${path}.pub`);
      keys.push({ type, key, pub: pub !== null && tree[pub]?.type === 'file' ? pub : null });
    }
  }
  const mid = lead(tree, MACHINE_ID);
  return (makeKey) => {
    if (mid !== null && tree[mid]?.type === 'file') tree[mid] = { ...tree[mid]!, content: '' };
    for (const k of keys) {
      const made = makeKey(k.type);
      tree[k.key] = { type: 'file', mode: KEY_MODE, uid: 0, gid: 0, content: made.key };
      if (k.pub !== null) tree[k.pub] = { type: 'file', mode: PUB_MODE, uid: 0, gid: 0, content: made.pub };
    }
  };
}

/**
 * A host key pair of `type` for `resetIdentity` on the fake: not a real key (the fake has no
 * ssh-keygen, and stays deterministic), derived from the target's identity and the copy's op, so a
 * repeated refresh-copy gives the same result and another op new keys. Shaped like OpenSSH's.
 */
export function fakeHostKey(type: string, uuid: string, op: string, name: string): { key: string; pub: string } {
  const digest = createHash('sha256').update(`${uuid}\0${op}\0${type}`).digest();
  return {
    key: `-----BEGIN OPENSSH PRIVATE KEY-----\n${digest.toString('base64')}\n-----END OPENSSH PRIVATE KEY-----\n`,
    pub: `${PUB_ALGORITHM[type] ?? `ssh-${type}`} AAAA${digest.toString('base64').replace(/=+$/, '')} root@${name}\n`,
  };
}

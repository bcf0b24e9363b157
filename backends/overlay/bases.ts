/**
 * Bases: the roots workshops are created from. A base is a directory or a tarball, registered by
 * name (`atelier base add NAME PATH`) and imported once into a full-tree blob, so later changes to
 * the source do not leak into workshops and both drivers can use it as a bottom layer.
 *
 * The default base (`minimal` unless configured) is built at first use: from Debian's
 * `busybox-static` (`/bin/busybox` plus a symlink for every applet `busybox --list-full` names:
 * Debian's build does not run applets from `/bin/sh` without them, so `sleep`, `ps`, `grep` need
 * their links) when that package is installed, so hooks and processes really run inside;
 * otherwise a minimal tree, where hooks run on the host.
 *
 * **Mount points.** A started instance is a container that mounts `/proc`, `/dev`, `/sys`, `/tmp`
 * and `/run` and binds the host's `/etc/resolv.conf` and `/etc/hosts` (`bundle.ts`). A mount
 * destination the root lacks would be created by runc in the instance's upper layer, so the
 * default base has them all, and `add` gives an imported base the ones it lacks (empty
 * directories, and empty files for the two binds) in its imported copy; the source is untouched.
 *
 * **Versions of the default.** The registry records which build of the default it holds
 * (`builtin`). When atelier's default changes (`BUILTIN_VERSION`), a store whose record is older
 * builds the new one at the next `create` from it: new workshops get it; existing workshops and
 * layers keep the blob they were made from (their chains hold it). A base registered by the user
 * under the default's name is never rebuilt.
 *
 * @example
 * ```ts
 * const bases = new BaseRegistry(layout, 'minimal');
 * await bases.add('tiny', 'fixtures/bases/tiny');
 * const blob = await bases.blobFor('tiny');
 * ```
 */
import { readFile, stat, lstat, writeFile, mkdir, symlink, copyFile, chmod } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BackendError } from '../types.ts';
import type { Layout } from './layout.ts';
import { copyTree, newBlob } from './drivers.ts';
import { checkName } from './meta.ts';
import { run, writeFileAtomic } from './fsutil.ts';

export interface BaseRecord {
  /** Where it was imported from (`builtin:…` for the generated default). */
  readonly path: string;
  /** The full-tree blob it was imported into. */
  readonly blob: string;
  readonly addedAt: string;
  /** The generated default only: which build (`BUILTIN_VERSION`); absent means 1. */
  readonly builtin?: number;
}

/**
 * The default base's build. 2: every busybox applet linked, `/run`, `/etc/hosts` and an empty
 * `/etc/resolv.conf` (bound over from the host in a container).
 */
export const BUILTIN_VERSION = 2;

/** Directories every container mounts over, and files it binds onto (see the header). */
const MOUNT_DIRS = ['dev', 'proc', 'sys', 'tmp', 'run'];
const BIND_FILES = ['etc/resolv.conf', 'etc/hosts'];

export type BaseTable = Record<string, BaseRecord>;

export const BUSYBOX = '/bin/busybox';

/** Is Debian's busybox-static installed (a static busybox works under any chroot)? */
export async function busyboxStaticInstalled(): Promise<boolean> {
  const r = await run('dpkg-query', ['-W', '-f=${Status}', 'busybox-static'], { allowFailure: true }).catch(() => null);
  return !!r && r.code === 0 && r.stdout.includes('install ok installed');
}

/** Build the default base's tree into `dir`. */
export async function buildDefaultBase(dir: string, withBusybox: boolean): Promise<void> {
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'root', 'tmp', 'var/tmp', 'dev', 'proc', 'sys', 'run', 'home', 'opt']) {
    await mkdir(join(dir, d), { recursive: true });
  }
  await chmod(join(dir, 'tmp'), 0o1777);
  await chmod(join(dir, 'root'), 0o700);
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  await writeFile(join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  await writeFile(join(dir, 'etc/hostname'), 'atelier\n');
  await writeFile(join(dir, 'etc/hosts'), '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n');
  // Empty: a container binds the host's over it; under chroot a resolver then asks 127.0.0.1.
  await writeFile(join(dir, 'etc/resolv.conf'), '');
  await symlink('../run', join(dir, 'var/run'));
  await writeFile(join(dir, 'etc/os-release'), `NAME="atelier minimal"\nID=atelier-minimal\nVERSION_ID=1\nATELIER_BASE=${withBusybox ? 'busybox' : 'tree'}\n`);
  // The few device nodes hooks expect (`> /dev/null`, `dd if=/dev/zero`). Only root may make
  // them; never 0/0, which overlayfs would read as a whiteout.
  if (typeof process.getuid === 'function' && process.getuid() === 0) {
    for (const [name, minor] of [['null', 3], ['zero', 5], ['random', 8], ['urandom', 9]] as const) {
      await run('mknod', ['-m', '666', join(dir, 'dev', name), 'c', '1', String(minor)]);
    }
  }
  if (!withBusybox) return;
  await copyFile(BUSYBOX, join(dir, 'bin/busybox'));
  await chmod(join(dir, 'bin/busybox'), 0o755);
  // Every applet gets its link (relative, so it resolves inside the root): Debian's static busybox
  // does not find applets from its shell without them (`sh -c 'sleep 1'`: not found).
  for (const applet of await appletPaths()) {
    const depth = applet.split('/').length - 1;
    await symlink(`${'../'.repeat(depth)}bin/busybox`, join(dir, applet));
  }
}

/** The paths `busybox --list-full` gives (`usr/bin/[`, `bin/sh`, ...), less busybox itself and `/linuxrc`. */
async function appletPaths(): Promise<string[]> {
  const r = await run(BUSYBOX, ['--list-full']);
  const paths = r.stdout.split('\n').map((l) => l.trim()).filter((l) => l && l.includes('/') && !l.startsWith('/') && !l.includes('..'));
  return [...new Set(paths)].filter((p) => p !== 'bin/busybox');
}

/**
 * Give an imported tree the mount points a container needs (see the header), without replacing
 * anything it has: a destination that is a symlink (Debian's `/var/run`, a systemd-resolved
 * `resolv.conf`) is left as it is; runc resolves it inside the root.
 */
export async function addMountPoints(dir: string): Promise<void> {
  const has = async (p: string) => !!(await lstat(join(dir, p)).catch(() => null));
  for (const d of MOUNT_DIRS) {
    if (await has(d)) continue;
    await mkdir(join(dir, d), { mode: 0o755 });
    if (d === 'tmp') await chmod(join(dir, d), 0o1777); // mkdir's mode passes through the umask
  }
  for (const f of BIND_FILES) {
    if (await has(f)) continue;
    if (!(await has('etc'))) await mkdir(join(dir, 'etc'), { mode: 0o755 });
    await writeFile(join(dir, f), '', { mode: 0o644 });
  }
}

export class BaseRegistry {
  constructor(
    private readonly layout: Layout,
    readonly defaultBase: string,
  ) {}

  async table(): Promise<BaseTable> {
    try {
      return JSON.parse(await readFile(this.layout.basesFile, 'utf8')) as BaseTable;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw e;
    }
  }

  private async save(t: BaseTable): Promise<void> {
    await writeFileAtomic(this.layout.basesFile, JSON.stringify(t, null, 2) + '\n');
  }

  /** Names a workshop can be created from: registered bases and the default. */
  async names(): Promise<string[]> {
    return [...new Set([...Object.keys(await this.table()), this.defaultBase])].sort();
  }

  /** Import a directory or tarball under `name`. The caller holds the store lock. */
  async add(name: string, path: string): Promise<void> {
    checkName(name, 'base name');
    const t = await this.table();
    if (t[name]) throw new BackendError('ALREADY_EXISTS', `base ${name} is already registered (from ${t[name].path})`, { name });
    const abs = resolve(path);
    const st = await stat(abs).catch(() => null);
    if (!st) throw new BackendError('NOT_FOUND', `base source ${abs} does not exist`, { path: abs });
    const blob = await newBlob(this.layout, async (dir) => {
      if (st.isDirectory()) await copyTree(abs, dir);
      else await run('tar', ['-xf', abs, '-C', dir, '--numeric-owner', '--same-permissions']); // tar detects compression
      await addMountPoints(dir);
    });
    await this.save({ ...t, [name]: { path: abs, blob, addedAt: new Date().toISOString() } });
  }

  /** Forget a base. Workshops made from it keep their data (the blob stays while a chain uses it). */
  async remove(name: string): Promise<void> {
    const t = await this.table();
    if (!t[name]) return;
    const { [name]: _gone, ...rest } = t;
    await this.save(rest);
  }

  /**
   * The blob of a base, building the default base at first use (and again when its recorded build
   * is older than `BUILTIN_VERSION`: see the header). Unknown: `NOT_FOUND`.
   */
  async blobFor(name: string): Promise<string> {
    const t = await this.table();
    const rec = t[name];
    const outdated = !!rec && name === this.defaultBase && rec.path.startsWith('builtin:') && (rec.builtin ?? 1) < BUILTIN_VERSION;
    if (rec && !outdated) return rec.blob;
    if (name !== this.defaultBase) {
      throw new BackendError('NOT_FOUND', `unknown base ${name}: register it with \`atelier base add ${name} PATH\``, { base: name });
    }
    const withBusybox = await busyboxStaticInstalled();
    const blob = await newBlob(this.layout, (dir) => buildDefaultBase(dir, withBusybox));
    const path = withBusybox ? `builtin:busybox-static` : 'builtin:minimal-tree';
    await this.save({ ...t, [name]: { path, blob, addedAt: new Date().toISOString(), builtin: BUILTIN_VERSION } });
    return blob;
  }

  /**
   * A base's content, for `baseFingerprint`: the id of its blob (building the default first, as
   * `blobFor` does). A base registered again is imported into a new blob, so its id changes; it
   * stays the same while the registration does. Unknown: `NOT_FOUND`.
   */
  fingerprint(name: string): Promise<string> {
    return this.blobFor(name);
  }

  /** Blobs the registry keeps alive. */
  async liveBlobs(): Promise<string[]> {
    return Object.values(await this.table()).map((r) => r.blob);
  }
}

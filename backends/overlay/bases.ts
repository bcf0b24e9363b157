/**
 * Bases: the roots workshops are created from. A base is a directory or a tarball, registered by
 * name (`atelier base add NAME PATH`) and imported once into a full-tree blob, so later changes to
 * the source do not leak into workshops and both drivers can use it as a bottom layer.
 *
 * The default base (`minimal` unless configured) is built at first use: from Debian's
 * `busybox-static` (`/bin/busybox` plus one symlink per applet) when that package is installed, so
 * hooks really run under chroot; otherwise a minimal tree, where hooks run on the host.
 *
 * @example
 * ```ts
 * const bases = new BaseRegistry(layout, 'minimal');
 * await bases.add('tiny', 'fixtures/bases/tiny');
 * const blob = await bases.blobFor('tiny');
 * ```
 */
import { readFile, stat, writeFile, mkdir, symlink, copyFile, chmod } from 'node:fs/promises';
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
}

export type BaseTable = Record<string, BaseRecord>;

export const BUSYBOX = '/bin/busybox';

/** Is Debian's busybox-static installed (a static busybox works under any chroot)? */
export async function busyboxStaticInstalled(): Promise<boolean> {
  const r = await run('dpkg-query', ['-W', '-f=${Status}', 'busybox-static'], { allowFailure: true }).catch(() => null);
  return !!r && r.code === 0 && r.stdout.includes('install ok installed');
}

/** Build the default base's tree into `dir`. */
export async function buildDefaultBase(dir: string, withBusybox: boolean): Promise<void> {
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'root', 'tmp', 'var/tmp', 'dev', 'proc', 'sys', 'home', 'opt']) {
    await mkdir(join(dir, d), { recursive: true });
  }
  await chmod(join(dir, 'tmp'), 0o1777);
  await chmod(join(dir, 'root'), 0o700);
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  await writeFile(join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  await writeFile(join(dir, 'etc/hostname'), 'atelier\n');
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
  // Debian's static busybox is built as a standalone shell (applets run without links), so only
  // the entry points other programs look up get a link; ~300 applet links would make every copy
  // of this base (copy driver) noticeably slower for nothing.
  for (const applet of LINKED_APPLETS) {
    const depth = applet.split('/').length - 1;
    await symlink(`${'../'.repeat(depth)}bin/busybox`, join(dir, applet));
  }
}

/** Applets given a link in the default base: the shells and what `#!` lines and PATH lookups use. */
const LINKED_APPLETS = ['bin/sh', 'bin/ash', 'bin/ls', 'bin/cat', 'bin/mkdir', 'bin/rm', 'bin/cp', 'bin/mv', 'bin/ln', 'bin/chmod', 'bin/chown', 'bin/echo', 'bin/true', 'bin/false', 'usr/bin/env', 'usr/bin/id', 'usr/bin/printf', 'usr/bin/test'];

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

  /** The blob of a base, building the default base at first use. Unknown: `NOT_FOUND`. */
  async blobFor(name: string): Promise<string> {
    const t = await this.table();
    if (t[name]) return t[name].blob;
    if (name !== this.defaultBase) {
      throw new BackendError('NOT_FOUND', `unknown base ${name}: register it with \`atelier base add ${name} PATH\``, { base: name });
    }
    const withBusybox = await busyboxStaticInstalled();
    const blob = await newBlob(this.layout, (dir) => buildDefaultBase(dir, withBusybox));
    await this.save({ ...t, [name]: { path: withBusybox ? `builtin:busybox-static` : 'builtin:minimal-tree', blob, addedAt: new Date().toISOString() } });
    return blob;
  }

  /** Blobs the registry keeps alive. */
  async liveBlobs(): Promise<string[]> {
    return Object.values(await this.table()).map((r) => r.blob);
  }
}

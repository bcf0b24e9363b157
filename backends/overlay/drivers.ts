/**
 * The two storage drivers behind the overlay backend, chosen once per root (see `selectDriver`).
 *
 * - `overlayfs`: a blob is a diff (0/0 whiteouts, opaque xattrs); an instance is its chain as
 *   lowerdirs plus an upper blob, mounted on `merged/` while started. Committing an upper is O(1):
 *   the upper joins the chain and a new empty upper takes its place.
 * - `copy`: a blob is a full tree, like containers/storage's vfs driver, for processes that may not
 *   mount. A chain is one blob; an instance's root is its upper blob itself; a commit copies it.
 *
 * Both answer the same questions, so the backend above never asks which one it has.
 *
 * @example
 * ```ts
 * const d = await selectDriver(layout, 'auto');        // overlayfs when this process may mount
 * const upper = await d.newUpper([baseBlob]);
 * await d.activate({ chain: [baseBlob], upper, merged });
 * ```
 */
import { readdir, readFile } from 'node:fs/promises';
import { BackendError } from '../types.ts';
import type { Layout } from './layout.ts';
import { EMPTY_BLOB } from './layout.ts';
import { canMountOverlay, mountOverlay, unmount } from './mounts.ts';
import { ensureDir, removeTree, run, randomId, writeFileAtomic } from './fsutil.ts';
import { join } from 'node:path';

export type DriverName = 'overlayfs' | 'copy';

/** A writable root: an immutable chain (bottom first), an upper, and where it is mounted. */
export interface Rw {
  readonly chain: readonly string[];
  readonly upper: string;
  readonly merged: string;
}

/** A read-only view of some blobs; `release` unmounts it (if it was mounted). */
export interface View {
  readonly path: string;
  release(): Promise<void>;
}

export interface Driver {
  readonly name: DriverName;
  /** A new writable upper on top of `chain`. */
  newUpper(chain: readonly string[]): Promise<string>;
  /** True when committing this upper would add nothing (overlayfs: it is empty). */
  unchanged(upper: string): Promise<boolean>;
  /** Freeze an upper: the chain it becomes part of, and the upper that replaces it. */
  commit(rw: Rw): Promise<{ chain: string[]; upper: string }>;
  /** The host path of the started root. */
  rootOf(rw: Rw): string;
  activate(rw: Rw): Promise<void>;
  deactivate(rw: Rw): Promise<void>;
  /** A read-only view of blobs given bottom first (an upper may be the top one). */
  view(blobs: readonly string[]): Promise<View>;
}

/**
 * Create a blob by filling a temp directory and renaming it into `blobs/` (crash-atomic). A fill
 * that fails (a full disk mid-copy) has its temp directory removed at once, giving the room back.
 */
export async function newBlob(layout: Layout, fill: (dir: string) => Promise<void>): Promise<string> {
  const tmp = await layout.tempDir('blob');
  const id = randomId(8);
  try {
    await fill(tmp);
    await layout.commitDir(tmp, layout.blobPath(id));
  } catch (e) {
    await removeTree(tmp).catch(() => undefined);
    throw e;
  }
  return id;
}

/** `cp -a` (ownership, devices, hardlinks, xattrs) of a tree's contents into `dst`. */
export async function copyTree(src: string, dst: string): Promise<void> {
  await run('cp', ['-a', '--reflink=auto', `${src}/.`, dst]);
}

class OverlayfsDriver implements Driver {
  readonly name = 'overlayfs' as const;
  constructor(private readonly layout: Layout) {}

  async newUpper(): Promise<string> {
    const id = await newBlob(this.layout, async () => {});
    await ensureDir(this.layout.workPath(id));
    return id;
  }
  async unchanged(upper: string): Promise<boolean> {
    return (await readdir(this.layout.blobPath(upper))).length === 0;
  }
  async commit(rw: Rw): Promise<{ chain: string[]; upper: string }> {
    return { chain: [...rw.chain, rw.upper], upper: await this.newUpper() };
  }
  rootOf(rw: Rw): string {
    return rw.merged;
  }
  async activate(rw: Rw): Promise<void> {
    await ensureDir(rw.merged);
    // A crash may have left the work directory of a previous mount: the kernel wants it empty-ish
    // and refuses `work/incompat/volatile`; a fresh one is always correct.
    await removeTree(this.layout.workPath(rw.upper));
    await ensureDir(this.layout.workPath(rw.upper));
    await mountOverlay(this.layout, { target: rw.merged, lowers: [...rw.chain].reverse(), upper: rw.upper });
  }
  async deactivate(rw: Rw): Promise<void> {
    await unmount(rw.merged);
  }
  async view(blobs: readonly string[]): Promise<View> {
    const target = join(this.layout.views, randomId(6));
    await ensureDir(target);
    const lowers = blobs.length ? [...blobs].reverse() : [EMPTY_BLOB];
    await mountOverlay(this.layout, { target, lowers });
    return {
      path: target,
      release: async () => {
        await unmount(target);
        await removeTree(target);
      },
    };
  }
}

class CopyDriver implements Driver {
  readonly name = 'copy' as const;
  constructor(private readonly layout: Layout) {}

  private top(chain: readonly string[]): string {
    return chain.length ? chain[chain.length - 1] : EMPTY_BLOB;
  }
  async newUpper(chain: readonly string[]): Promise<string> {
    const src = this.layout.blobPath(this.top(chain));
    return newBlob(this.layout, (dir) => copyTree(src, dir));
  }
  async unchanged(): Promise<boolean> {
    return false; // a full tree cannot tell cheaply what changed: always copy (vfs semantics)
  }
  async commit(rw: Rw): Promise<{ chain: string[]; upper: string }> {
    // The instance keeps writing to its upper; the frozen copy becomes the chain.
    const frozen = await newBlob(this.layout, (dir) => copyTree(this.layout.blobPath(rw.upper), dir));
    return { chain: [frozen], upper: rw.upper };
  }
  rootOf(rw: Rw): string {
    return this.layout.blobPath(rw.upper);
  }
  async activate(): Promise<void> {}
  async deactivate(): Promise<void> {}
  async view(blobs: readonly string[]): Promise<View> {
    // No mount here (the point of this driver): the top full tree is the view. Nothing stops a
    // write into it but the backend's own discipline.
    return { path: this.layout.blobPath(this.top(blobs)), release: async () => {} };
  }
}

/**
 * Pick the driver for a root. The first choice is recorded in `<root>/driver`: blobs written by one
 * driver mean something else to the other, so a root never changes driver.
 */
export async function selectDriver(layout: Layout, wanted: DriverName | 'auto'): Promise<Driver> {
  let recorded: DriverName | null = null;
  try {
    const t = (await readFile(layout.driverFile, 'utf8')).trim();
    if (t === 'overlayfs' || t === 'copy') recorded = t;
  } catch {
    /* a new root */
  }
  let name: DriverName;
  if (wanted !== 'auto') {
    if (recorded && recorded !== wanted) {
      throw new BackendError('INVALID', `${layout.root} holds ${recorded} layers; it cannot be opened with the ${wanted} driver`, { recorded, wanted });
    }
    if (wanted === 'overlayfs' && !(await canMountOverlay(layout))) {
      throw new BackendError('UNAVAILABLE', 'the overlayfs driver needs to mount overlayfs (root with CAP_SYS_ADMIN); use the copy driver');
    }
    name = wanted;
  } else if (recorded) {
    name = recorded;
    if (name === 'overlayfs' && !(await canMountOverlay(layout))) {
      throw new BackendError('UNAVAILABLE', `${layout.root} holds overlayfs layers but this process cannot mount overlayfs`);
    }
  } else {
    name = (await canMountOverlay(layout)) ? 'overlayfs' : 'copy';
  }
  if (recorded !== name) await writeFileAtomic(layout.driverFile, `${name}\n`);
  return name === 'overlayfs' ? new OverlayfsDriver(layout) : new CopyDriver(layout);
}

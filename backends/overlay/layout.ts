/**
 * The overlay backend's on-disk layout, and the temp-then-rename discipline that makes every create
 * atomic.
 *
 * ```
 * <root>/
 *   driver                 'overlayfs' or 'copy', fixed when the root is first used
 *   bases.json             registered bases: name -> { path, blob }
 *   blobs/<id>/            layer data; immutable once it is in some chain (an instance's upper is
 *                          the one blob still written to). overlayfs: diffs with 0/0 whiteouts and
 *                          opaque xattrs; copy: full trees.
 *   blobs/_empty/          an always-empty lower (overlayfs needs two lowers when there is no upper)
 *   work/<id>/             overlayfs work directory of the upper blob <id>
 *   objects/<space>/<name>/meta.json   one object: tags, identity, chain, upper
 *   objects/<space>/<name>/merged/     an instance's mount point (overlayfs)
 *   scratch/<key>/meta.json, merged/   a shared transient scratch (chain + upper), ref-counted by users
 *   tmp/                   half-made things; emptied at start-up
 *   views/<rand>/          short-lived read-only mounts (readFile, flatten, mountView)
 * <runDir>/                volatile (tmpfs): wiped by a reboot
 *   running/<space>/<name> the instance is started
 *   live/<name>            the transient container is alive in this boot
 * ```
 *
 * Blobs are shared between objects and never reference-counted explicitly: the set of live blobs is
 * derived from every meta file, the base registry and the scratches (see `gc.ts`), so a crash can
 * never leave a wrong count behind.
 *
 * @example
 * ```ts
 * const l = new Layout('/var/lib/atelier/overlay', '/run/atelier/overlay-1234');
 * await l.init();
 * const tmp = await l.tempDir('blob');       // build here ...
 * await l.commitDir(tmp, l.blobPath(id));     // ... then rename into place
 * ```
 */
import { mkdtemp, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { ObjectRef } from '../types.ts';
import { ensureDir, fsyncDir, listDir, removeTree, randomId } from './fsutil.ts';

/** The id of the permanently empty blob. Ids starting with `_` are never garbage-collected. */
export const EMPTY_BLOB = '_empty';

export class Layout {
  readonly blobs: string;
  readonly work: string;
  readonly objects: string;
  readonly scratch: string;
  readonly tmp: string;
  readonly views: string;

  constructor(
    readonly root: string,
    readonly runDir: string,
  ) {
    this.blobs = join(root, 'blobs');
    this.work = join(root, 'work');
    this.objects = join(root, 'objects');
    this.scratch = join(root, 'scratch');
    this.tmp = join(root, 'tmp');
    this.views = join(root, 'views');
  }

  async init(): Promise<void> {
    for (const d of [this.blobs, this.work, join(this.objects, 'workshops'), join(this.objects, 'layers'), this.scratch, this.tmp, this.views]) {
      await ensureDir(d);
    }
    await ensureDir(this.blobPath(EMPTY_BLOB));
    await ensureDir(join(this.runDir, 'running', 'workshops'));
    await ensureDir(join(this.runDir, 'live'));
  }

  blobPath(id: string): string {
    return join(this.blobs, id);
  }
  workPath(id: string): string {
    return join(this.work, id);
  }
  objectDir(ref: ObjectRef): string {
    return join(this.objects, ref.space, ref.name);
  }
  metaPath(ref: ObjectRef): string {
    return join(this.objectDir(ref), 'meta.json');
  }
  mergedPath(ref: ObjectRef): string {
    return join(this.objectDir(ref), 'merged');
  }
  scratchDir(key: string): string {
    return join(this.scratch, key);
  }
  runningPath(ref: ObjectRef): string {
    return join(this.runDir, 'running', ref.space, ref.name);
  }
  livePath(name: string): string {
    return join(this.runDir, 'live', name);
  }
  get basesFile(): string {
    return join(this.root, 'bases.json');
  }
  get driverFile(): string {
    return join(this.root, 'driver');
  }

  /** A fresh directory under `tmp/`: build there, then `commitDir` it into place. */
  async tempDir(prefix: string): Promise<string> {
    return mkdtemp(join(this.tmp, `${prefix}-`));
  }

  /** Rename a finished temp directory into place and make the rename durable. */
  async commitDir(tmp: string, dest: string): Promise<void> {
    await rename(tmp, dest);
    await fsyncDir(join(dest, '..'));
  }

  /**
   * Remove a directory without ever exposing a half-removed one: rename it under `tmp/` first
   * (atomic), then delete. A crash in between leaves only `tmp/` litter, swept at start-up.
   */
  async trash(path: string): Promise<void> {
    const dest = join(this.tmp, `trash-${randomId(6)}`);
    try {
      await rename(path, dest);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    await removeTree(dest);
  }

  /** Start-up sweep of half-made and half-removed directories. Mounts must be released first. */
  async sweepTmp(): Promise<string[]> {
    const names = await listDir(this.tmp);
    for (const n of names) await removeTree(join(this.tmp, n));
    for (const n of await listDir(this.views)) await removeTree(join(this.views, n));
    return names;
  }
}

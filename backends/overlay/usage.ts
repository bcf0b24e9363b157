/**
 * Disk accounting for the overlay backend: the room left on the file system holding the store
 * (`Backend.diskSpace`, one `statfs`) and what each object holds there (`Backend.usage`, a walk).
 *
 * What an object "holds" (its own directories, see `ownDirs`): objects share immutable blobs, so
 * each blob is charged to the object that added it, not to every object whose chain reaches it:
 * - an instance: its writable upper blob (with its overlayfs work directory); on the copy driver
 *   that upper is a full tree, which the instance really holds on its own;
 * - a transient container on a shared scratch: the scratch's upper (each user is charged it all);
 * - a layer: the top blob of its chain, the diff it froze (a full tree on the copy driver, or
 *   after a flatten), unless that blob is a base's (a copy of an untouched workshop adds nothing);
 *   two layers ending in the same blob (a stash of a workshop unchanged since its last layer) are
 *   each charged it;
 * - every object: its own `objects/<space>/<name>/` directory (meta file, mount point).
 *
 * Sizes are allocated blocks (`st_blocks * 512`) of every file and directory, found with `lstat`
 * (symlinks are never followed), without crossing into another file system (a started instance's
 * `merged/` mount), each inode counted once per object (hard links, as a flatten makes). Nothing is
 * written and no lock is taken: a blob removed meanwhile (a concurrent `remove`) just counts 0.
 *
 * @example
 * ```ts
 * const space = await spaceOf('/var/lib/atelier/overlay'); // { where, total, free }
 * const bytes = await allocatedBytes(['/var/lib/atelier/overlay/blobs/0123456789abcdef']);
 * ```
 */
import { lstat, readdir, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { DiskSpace } from '../types.ts';
import type { Layout } from './layout.ts';
import { EMPTY_BLOB } from './layout.ts';
import type { ObjectMeta } from './meta.ts';
import type { ScratchMeta } from './store.ts';

/** How many `lstat`s / `readdir`s a walk keeps in flight: enough to hide latency, bounded memory. */
const PARALLEL = 64;

/** The file system holding `root`: `total` is `blocks * bsize`, `free` is `bavail * bsize`. */
export async function spaceOf(root: string): Promise<DiskSpace> {
  // bigint: a large file system's block counts times the block size can pass 2^53 in between.
  const st = await statfs(root, { bigint: true });
  const total = Number(st.blocks * st.bsize);
  const free = Number(st.bavail * st.bsize);
  return { where: root, total, free: Math.max(0, Math.min(free, total)) };
}

/** The directories an object holds on its own (see the header); absent ones are fine. */
export function ownDirs(layout: Layout, meta: ObjectMeta, scratch: ScratchMeta | null, baseBlobs: ReadonlySet<string>): string[] {
  const dirs = [layout.objectDir(meta.ref)];
  const blobs: string[] = [];
  if (meta.scratch) {
    if (scratch) {
      dirs.push(layout.scratchDir(meta.scratch));
      blobs.push(scratch.upper);
    }
  } else if (meta.upper) {
    blobs.push(meta.upper);
  } else {
    const top = meta.chain[meta.chain.length - 1];
    if (top !== undefined && top !== EMPTY_BLOB && !baseBlobs.has(top)) blobs.push(top);
  }
  for (const b of blobs) dirs.push(layout.blobPath(b), layout.workPath(b));
  return dirs;
}

function missing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Allocated bytes of `dirs` and everything under them: each inode once (also across `dirs`),
 * symlinks not followed, no descent into another file system than the top directory's.
 */
export async function allocatedBytes(dirs: readonly string[]): Promise<number> {
  const seen = new Set<string>();
  let total = 0n;
  // Breadth first, one level at a time in bounded batches: a recursive Promise.all would put a
  // whole tree's lstat calls in flight at once.
  let level: Array<{ path: string; dev: bigint | null }> = dirs.map((path) => ({ path, dev: null }));
  while (level.length > 0) {
    const next: Array<{ path: string; dev: bigint | null }> = [];
    for (let i = 0; i < level.length; i += PARALLEL) {
      await Promise.all(
        level.slice(i, i + PARALLEL).map(async ({ path, dev }) => {
          let st;
          try {
            st = await lstat(path, { bigint: true });
          } catch (e) {
            if (missing(e)) return;
            throw e;
          }
          if (dev !== null && st.dev !== dev) return; // a mount point: another file system's data
          const key = `${st.dev}:${st.ino}`;
          if (seen.has(key)) return;
          seen.add(key);
          total += st.blocks * 512n;
          if (!st.isDirectory()) return;
          let names: string[];
          try {
            names = await readdir(path);
          } catch (e) {
            // Gone meanwhile, or (not root) a directory a hook made unreadable: its own blocks count.
            if (missing(e) || (e as NodeJS.ErrnoException).code === 'EACCES') return;
            throw e;
          }
          for (const n of names) next.push({ path: join(path, n), dev: st.dev });
        }),
      );
    }
    level = next;
  }
  return Number(total);
}

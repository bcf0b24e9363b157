/**
 * Flattening a long overlayfs chain into one blob by a hardlink merge of its immutable layers
 * (BuildKit's merge fallback), copying where a link cannot be made (EXDEV, EMLINK).
 *
 * The kernel decides what the merged tree is: the chain is mounted read-only and walked, so
 * whiteouts and opaque directories at any depth are honoured exactly as a mount honours them,
 * without re-implementing overlayfs's rules (or reading its xattrs) here. Each non-directory found
 * in the view is linked from the topmost layer that holds it: that is the file the view shows
 * (redirects and metacopy are off, see `mounts.ts`, so paths in layers equal paths in the view).
 * Directories are made fresh with the view's mode, owner and times.
 *
 * Linking is safe because every source blob is immutable and the flattened blob is only ever a
 * lower: nothing writes through these inodes (overlayfs copies up before a write).
 *
 * @example
 * ```ts
 * const chain = await flattenChain(layout, driver, meta.chain);   // -> [newBlobId]
 * ```
 */
import { chown, copyFile, lchown, link, lstat, lutimes, mkdir, readdir, readlink, symlink, chmod, utimes, constants } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import type { Layout } from './layout.ts';
import type { Driver } from './drivers.ts';
import { newBlob } from './drivers.ts';
import { run } from './fsutil.ts';

export interface FlattenStats {
  linked: number;
  copied: number;
}

/** What a layer holds at a path: the entry, or `null` if absent or a whiteout (0/0 char device). */
async function layerEntry(path: string): Promise<Stats | null> {
  try {
    const st = await lstat(path);
    if (st.isCharacterDevice() && st.rdev === 0) return null;
    return st;
  } catch {
    return null;
  }
}

/** Copy one non-directory preserving what `cp -a` preserves (devices and fifos need `cp`). */
async function copyEntry(src: string, dst: string, st: Stats): Promise<void> {
  if (st.isFile()) {
    await copyFile(src, dst, constants.COPYFILE_FICLONE);
    await chown(dst, st.uid, st.gid);
    await chmod(dst, st.mode & 0o7777);
    await utimes(dst, st.atime, st.mtime);
  } else if (st.isSymbolicLink()) {
    await symlink(await readlink(src), dst);
    await lchown(dst, st.uid, st.gid);
    await lutimes(dst, st.atime, st.mtime);
  } else {
    await run('cp', ['-a', src, dst]);
  }
}

/**
 * Merge `chain` (bottom first) into one new blob and return its id. Only for the overlayfs driver
 * (a copy-driver chain is always one full tree).
 */
export async function flattenChain(layout: Layout, driver: Driver, chain: readonly string[], stats: FlattenStats = { linked: 0, copied: 0 }): Promise<string> {
  const view = await driver.view(chain);
  const layers = [...chain].reverse().map((id) => layout.blobPath(id)); // top first
  try {
    return await newBlob(layout, async (out) => {
      const dirTimes: Array<[string, Stats]> = [];
      const walk = async (rel: string): Promise<void> => {
        for (const name of await readdir(join(view.path, rel))) {
          const r = rel ? `${rel}/${name}` : name;
          const vst = await lstat(join(view.path, r));
          const dst = join(out, r);
          if (vst.isDirectory()) {
            await mkdir(dst);
            await chown(dst, vst.uid, vst.gid);
            await chmod(dst, vst.mode & 0o7777);
            await walk(r);
            dirTimes.push([dst, vst]);
            continue;
          }
          let done = false;
          for (const layer of layers) {
            const src = join(layer, r);
            const st = await layerEntry(src);
            if (!st) continue;
            try {
              await link(src, dst);
              stats.linked++;
            } catch (e) {
              const code = (e as NodeJS.ErrnoException).code;
              if (code !== 'EXDEV' && code !== 'EMLINK') throw e;
              await copyEntry(src, dst, st);
              stats.copied++;
            }
            done = true;
            break;
          }
          if (!done) {
            // Not found in any layer under its view path (should not happen with redirects off):
            // the view itself is the truth, so copy from it.
            await copyEntry(join(view.path, r), dst, vst);
            stats.copied++;
          }
        }
      };
      const rootSt = await lstat(view.path);
      await chown(out, rootSt.uid, rootSt.gid);
      await chmod(out, rootSt.mode & 0o7777);
      await walk('');
      // Directory times last: creating entries inside a directory updates its mtime.
      for (const [dst, st] of dirTimes) await utimes(dst, st.atime, st.mtime);
      await utimes(out, rootSt.atime, rootSt.mtime);
    });
  } finally {
    await view.release();
  }
}

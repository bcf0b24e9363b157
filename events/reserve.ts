/**
 * The journal's reserve: a file of NUL bytes, written and synced ahead of need, that the journal
 * rolls into as its next segment when its disk is full, so that the records `remove`, `gc` and the
 * undo of an interrupted op need can still be appended (Workshop's issue #897: on a full pool even
 * `remove` failed).
 *
 * Why a file and not free space: free space is shared with everything else on the disk; blocks
 * already allocated to a file are the journal's. Writing records over them (at their offset, as in
 * a preallocated segment: `preallocation.ts`) needs no new block, so it cannot fail for space.
 *
 * Lifecycle (driven by the engine's degraded mode, `engine/space.ts`):
 *
 * 1. `ensure` writes `RESERVE_NAME` when the journal opens: `RESERVE_NAME.tmp` filled with NUL
 *    bytes and fsynced, then renamed into place, so a reserve that exists is whole (a crash mid-fill
 *    leaves only the temp file, which the next `ensure` replaces). On a disk too full to hold it,
 *    the journal opens without one (`ready` false).
 * 2. While the engine is degraded, the journal writer may `takeAs` it: on `ENOSPC` it renames the
 *    reserve into place as a new, preallocated segment and writes the batch there.
 * 3. When space comes back, the engine calls `ensure` again before it leaves degraded mode: a
 *    journal that has spent its reserve stays degraded until it has a new one.
 *
 * A reserve is never read: its name is not a segment's, so readers skip it.
 *
 * @example
 * ```ts
 * const reserve = new Reserve(dir, RESERVE_BYTES);
 * await reserve.ensure();                 // true: whole, synced
 * reserve.takeAs(join(dir, segmentName(4242))); // true: now a preallocated segment
 * reserve.ready;                          // false until the next ensure()
 * ```
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { fillWithNul, PREALLOCATED_BATCH_MAX } from './preallocation.ts';
import { fsyncDir } from './segments.ts';

/** The reserve's file, in the journal directory. Not a segment's name: readers skip it. */
export const RESERVE_NAME = 'reserve.prealloc';

/**
 * The reserve's size: 1 MiB, about 3,000 records: a `remove` journals 10-40 (two a step), a `gc`
 * two a removed orphan, an engine start 1-5. Larger than `PREALLOCATED_BATCH_MAX`, the most a
 * preallocated segment takes in one batch.
 */
export const RESERVE_BYTES = 1024 * 1024;

if (RESERVE_BYTES < PREALLOCATED_BATCH_MAX) throw new Error('the reserve is smaller than one batch');

/** ENOSPC or EDQUOT: out of disk or out of quota, the two ways a write can fail for space. */
export function isNoSpace(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** A journal directory's reserve: see the header. */
export class Reserve {
  readonly path: string;
  private whole = false;

  constructor(
    private readonly dir: string,
    readonly bytes: number,
  ) {
    this.path = join(dir, RESERVE_NAME);
  }

  /** The reserve is there, whole, and may be taken. */
  get ready(): boolean {
    return this.whole;
  }

  /**
   * Makes sure the reserve is there and whole: kept if it is (its size is checked; it is only ever
   * renamed into place whole), written otherwise. Resolves false, leaving no file behind, when the
   * disk cannot hold it; rethrows any other error.
   */
  async ensure(): Promise<boolean> {
    if (this.bytes <= 0) return false;
    try {
      if (fs.statSync(this.path).size === this.bytes) return (this.whole = true);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const temp = `${this.path}.tmp`;
    try {
      await fillWithNul(temp, this.bytes);
      fs.renameSync(temp, this.path);
      await fsyncDir(this.dir);
      return (this.whole = true);
    } catch (e) {
      fs.rmSync(temp, { force: true });
      if (isNoSpace(e)) return (this.whole = false);
      throw e;
    }
  }

  /**
   * Renames the reserve to `to` (a new segment's path) and returns true, if it is whole; false
   * otherwise. The caller makes the rename durable with the segment's first batch.
   */
  takeAs(to: string): boolean {
    if (!this.whole) return false;
    this.whole = false;
    try {
      fs.renameSync(this.path, to);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * Real small file systems for the full-disk tests: a tmpfs mounted with `size=`, which fills up
 * for real (ENOSPC from the kernel, not a mock), and a filler file to fill it with.
 *
 * Mounting needs root. Without it a test calls `smallFsUnavailable`: in CI (`process.env.CI`, run
 * as root) that is a failing test naming the fix; elsewhere a skipped test with the reason printed.
 *
 * @example
 * ```ts
 * const fsys = await mountSmallFs('journal', 16 << 20);
 * fsys.fill();       // writes zeros until ENOSPC; returns the bytes written
 * fsys.unfill();     // removes the filler
 * await fsys.unmount();
 * ```
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'uvu';

export interface SmallFs {
  /** The mount point (empty at first). */
  readonly dir: string;
  /** Write zeros to `dir/filler` until the file system is full; returns how many bytes went in. */
  fill(): number;
  /** Remove the filler: the space comes back. */
  unfill(): void;
  /** Free bytes now (`statfs` `bavail * bsize`). */
  free(): number;
  unmount(): Promise<void>;
}

/** Why a tmpfs cannot be mounted here, or null when it can. */
export function smallFsBlocker(): string | null {
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  return null;
}

/** Register the "cannot mount" outcome: fail loudly in CI, skip with the reason elsewhere. */
export function smallFsUnavailable(test: Test, what: string, reason: string): void {
  if (process.env.CI) {
    test(`${what}: a real small file system must be available in CI`, () => {
      throw new Error(`${reason}; CI runs the tests as root (bash .ci/run)`);
    });
  } else {
    console.log(`SKIP ${what}: ${reason}; run the tests as root`);
    test.skip(`${what} (${reason})`, () => undefined);
  }
}

/**
 * Append zeros to `file` until its file system is full, down to single bytes so that not even the
 * last page's slack is left; returns how many bytes went in.
 */
export function fillFile(file: string): number {
  const chunk = Buffer.alloc(64 * 1024);
  const fd = fs.openSync(file, 'a');
  let written = 0;
  try {
    for (let size = chunk.length; size >= 1; size = Math.floor(size / 2)) {
      for (;;) {
        try {
          written += fs.writeSync(fd, chunk, 0, size);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
          break;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return written;
}

/** Mount a tmpfs of `bytes` on a new directory. */
export async function mountSmallFs(label: string, bytes: number): Promise<SmallFs> {
  const dir = fs.mkdtempSync(join(tmpdir(), `atelier-smallfs-${label}-`));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir]);
  const filler = join(dir, 'filler');
  return {
    dir,
    fill() {
      return fillFile(filler);
    },
    unfill() {
      fs.rmSync(filler, { force: true });
    },
    free() {
      const s = fs.statfsSync(dir);
      return s.bavail * s.bsize;
    },
    async unmount() {
      try {
        execFileSync('umount', ['-l', dir]);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

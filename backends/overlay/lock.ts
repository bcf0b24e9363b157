/**
 * The store lock: one mutation of a root at a time, across processes (`proper-lockfile` on
 * `<root>/lock`) and within this one (a promise queue, because proper-lockfile treats a second
 * lock from the same process as contention and would make it spin on retries).
 *
 * Hooks do not hold it: a long `setup-base` must not block other workshops.
 *
 * @example
 * ```ts
 * const lock = new StoreLock('/var/lib/atelier/overlay');
 * await lock.run(async () => { ... });
 * ```
 */
import lockfile from 'proper-lockfile';
import { join } from 'node:path';
import { BackendError } from '../types.ts';

export class StoreLock {
  private tail: Promise<void> = Promise.resolve();
  private readonly file: string;

  constructor(root: string) {
    this.file = join(root, 'lock');
  }

  /** Run `fn` holding the lock. Not re-entrant: code inside must not call `run` again. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let done!: () => void;
    this.tail = new Promise<void>((r) => (done = r));
    await prev;
    let release: (() => Promise<void>) | undefined;
    try {
      try {
        release = await lockfile.lock(this.file, {
          realpath: false,
          stale: 30_000,
          retries: { retries: 600, minTimeout: 10, maxTimeout: 100 },
          lockfilePath: this.file,
        });
      } catch (e) {
        throw new BackendError('BUSY', `the overlay store ${this.file} is locked by another process: ${(e as Error).message}`);
      }
      return await fn();
    } finally {
      await release?.().catch(() => {});
      done();
    }
  }
}

/**
 * The store lock: one mutation of a root at a time, across processes (a lock the kernel releases,
 * `events/kernel-lock.ts`, named after the root's identity) and within this one (a promise queue:
 * the kernel lock is per process, so two mutations of this process would not exclude each other).
 *
 * A process killed in the middle of a mutation releases the lock with its death: the next mutation
 * waits for nobody (the half-made directories it left are cleaned up at start-up, `store.ts`).
 * Hooks do not hold it: a long `setup-base` must not block other workshops.
 *
 * @example
 * ```ts
 * const lock = new StoreLock('/var/lib/atelier/overlay');
 * await lock.run(async () => { ... });
 * ```
 */
import { bindLock, holderOf, lockNameOf } from '../../events/kernel-lock.ts';
import { BackendError } from '../types.ts';

/** How long a mutation waits for another process's to end before giving up with `BUSY`. */
const WAIT_MS = 60_000;

export class StoreLock {
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly root: string) {}

  /** Run `fn` holding the lock. Not re-entrant: code inside must not call `run` again. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let done!: () => void;
    this.tail = new Promise<void>((r) => (done = r));
    await prev;
    try {
      const name = lockNameOf(this.root, 'overlay-store');
      let held = await bindLock(name);
      for (let waited = 0, pause = 5; !held; waited += pause, pause = Math.min(pause * 2, 100)) {
        if (waited >= WAIT_MS) {
          const who = await holderOf(name);
          throw new BackendError('BUSY', `the overlay store ${this.root} is locked by ${who?.pid ? `pid ${who.pid}` : 'another process'} for over ${WAIT_MS / 1000} s: try again when it is done`);
        }
        await new Promise((r) => setTimeout(r, pause));
        held = await bindLock(name);
      }
      try {
        return await fn();
      } finally {
        await new Promise<void>((r) => held!.close(() => r()));
      }
    } finally {
      done();
    }
  }
}

/**
 * Serialisation of commands: one at a time per workshop, different workshops concurrently, and
 * an exclusive section (reconcile, gc) that waits for every command and holds new ones back.
 *
 * A promise chain per key is all this needs; no library does less (p-queue and friends schedule
 * by concurrency, not by key).
 *
 * @example
 * ```ts
 * const s = new Serialiser();
 * await Promise.all([s.run('a', f), s.run('a', g), s.run('b', h)]); // g after f; h alongside
 * ```
 */
export class Serialiser {
  private readonly tails = new Map<string, Promise<unknown>>();
  private barrier: Promise<unknown> = Promise.resolve();

  /** Run `fn` after every earlier task of `key` (and after any exclusive section) has settled. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const barrier = this.barrier;
    const task = Promise.all([prev.catch(() => undefined), barrier.catch(() => undefined)]).then(fn);
    const tail = task.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return task;
  }

  /** Run `fn` alone: after all queued tasks, before any task queued after this call. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const all = [...this.tails.values(), this.barrier].map((p) => p.catch(() => undefined));
    const task = Promise.all(all).then(fn);
    this.barrier = task.catch(() => undefined);
    return task;
  }

  /** Settles once everything queued so far has settled. */
  async drain(): Promise<void> {
    await Promise.all([...this.tails.values(), this.barrier].map((p) => p.catch(() => undefined)));
  }
}

/**
 * One process of `simulateParallel`: started with an IPC channel, it is sent its share of the
 * seeds, warms up, says it is ready, and on "go" runs its seeds concurrently (`simulateConcurrently`)
 * and sends back their reports. Not meant to be run by hand.
 */
import { simulateConcurrently, warmUp, type ParallelOptions } from './parallel.ts';

type Job = { warmup: number; options: Omit<ParallelOptions, 'workers'> };

const send = (m: unknown): Promise<void> => new Promise((resolve) => process.send!(m, undefined, {}, () => resolve()));

if (process.send) {
  process.once('message', (job: Job) => {
    void (async () => {
      try {
        await warmUp(job.warmup, job.options);
        await new Promise<void>((go) => {
          process.once('message', () => go());
          void send({ ready: true });
        });
        const reports = await simulateConcurrently(job.options);
        await send({ ok: reports });
      } catch (e) {
        await send({ error: String((e as Error)?.stack ?? e) });
      }
      process.disconnect();
    })();
  });
}

/**
 * Simulation on every core: independent seeds in worker threads (each runs `simulate` on its own
 * worlds), summed. The runs of one seed are sequential by nature (fast-check shrinks in order), so
 * throughput on a multi-core machine comes from running seeds side by side. Used by the benchmark
 * and the soak; a failure in any worker is reported with that worker's seed.
 *
 * @example
 * ```ts
 * const r = await simulateParallel({ seeds: [1, 2], runs: 20, commands: 40 });
 * console.log(r.commandsPerSecond, r.failures.length);
 * ```
 */
import { Worker } from 'node:worker_threads';
import type { SimulateOptions, SimulateReport } from './index.ts';

export interface ParallelReport {
  readonly reports: readonly SimulateReport[];
  readonly commands: number;
  readonly restarts: number;
  readonly elapsedMs: number;
  readonly commandsPerSecond: number;
  readonly failures: readonly NonNullable<SimulateReport['failure']>[];
}

// Worker threads do not inherit tsx's loader hooks in Node 20: register them before importing.
const BOOT = `
const { parentPort, workerData } = require('node:worker_threads');
import('tsx/esm/api').then(({ register }) => { register(); return import(workerData.entry); })
  .then((m) => m.simulate(workerData.options))
  .then((r) => parentPort.postMessage({ ok: r }), (e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
`;

/** Run one `simulate` per seed, concurrently in worker threads. */
export async function simulateParallel(opts: Omit<SimulateOptions, 'seed' | 'log'> & { seeds: readonly number[] }): Promise<ParallelReport> {
  const started = performance.now();
  const entry = new URL('./index.ts', import.meta.url).href;
  const { seeds, ...rest } = opts;
  const reports = await Promise.all(
    seeds.map(
      (seed) =>
        new Promise<SimulateReport>((resolve, reject) => {
          const w = new Worker(BOOT, { eval: true, workerData: { entry, options: { ...rest, seed } } });
          w.once('message', (m: { ok?: SimulateReport; error?: string }) => {
            void w.terminate();
            if (m.ok) resolve(m.ok);
            else reject(new Error(`simulation worker for seed ${seed} failed: ${m.error}`));
          });
          w.once('error', reject);
        }),
    ),
  );
  const elapsedMs = performance.now() - started;
  const commands = reports.reduce((n, r) => n + r.commands, 0);
  return {
    reports, commands, restarts: reports.reduce((n, r) => n + r.restarts, 0), elapsedMs,
    commandsPerSecond: (commands / elapsedMs) * 1000, failures: reports.flatMap((r) => (r.failure ? [r.failure] : [])),
  };
}

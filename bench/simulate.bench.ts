/**
 * `simulate.commands_per_s`: simulated commands per second, restarts (each crash image reconciled
 * twice) and every invariant check included, on every core (one seed per worker thread), with the
 * single-thread figure as its baseline. Simulation directories are on /dev/shm (see
 * engine/simulate/world.ts for why). `loadavg` is printed because other work on the machine moves
 * the figure.
 */
import os from 'node:os';
import type { BenchEntry } from './run.ts';
import { simulate } from '../engine/simulate/index.ts';
import { simulateParallel } from '../engine/simulate/parallel.ts';

const RUNS = 25;

export const figures: BenchEntry[] = [
  {
    name: 'simulate.commands_per_s',
    run: async () => {
      const single = await simulate({ seed: 1, runs: RUNS, commands: 40 });
      const workers = Math.max(1, os.availableParallelism());
      const par = await simulateParallel({ seeds: Array.from({ length: workers }, (_, i) => i + 1), runs: RUNS, commands: 40 });
      if (single.failure || par.failures.length) throw new Error(`the simulation failed while benchmarking: ${(single.failure ?? par.failures[0])!.message}`);
      return {
        name: 'simulate.commands_per_s', value: par.commandsPerSecond, unit: 'commands/s', baseline: single.commandsPerSecond,
        workers, commands: par.commands, restarts: par.restarts, runs: RUNS * workers, loadavg: Number(os.loadavg()[0]!.toFixed(2)),
        note: 'baseline: one thread',
      };
    },
  },
];

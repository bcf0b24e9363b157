/**
 * `simulate.commands_per_s`: simulated commands per second, restarts and every invariant check
 * included (invariants 1-3 and 5-8 after every step and restart; invariant 4, reconciling the
 * crash image twice, at a deterministic sample of the restarts: see below), with the whole
 * machine: one child process per core (`simulateParallel`), PER_THREAD independent seeds running
 * concurrently in each (their journal waits overlap).
 *
 * Its `baseline`, measured in the same run, is the harness as it used to run: one seed at a time
 * in one thread, invariant 4 at every restart. Both are measured after a warm-up (modules loaded,
 * code JIT-compiled: `warmupRuns`), so the figures are steady-state throughput, not start-up.
 *
 * Invariant 4 sampling: the first restart of every run and every CHECK_TWICE_EVERY-th after it
 * (`checkTwiceEvery`; deterministic, so a run replays with the same checks). The line says how
 * many restarts were checked (`invariant4`). `npm test`'s budget checks it at every restart.
 *
 * SIM_BENCH_RUNS, SIM_BENCH_PER, SIM_BENCH_EVERY and SIM_BENCH_WARMUP override RUNS, PER_THREAD,
 * CHECK_TWICE_EVERY and WARMUP_RUNS for exploring; the recorded figures use the defaults.
 *
 * Simulation directories are on /dev/shm (see engine/simulate/world.ts for why). `loadavg` is
 * printed because other work on the machine moves the figure.
 */
import os from 'node:os';
import type { BenchEntry } from './run.ts';
import { simulate } from '../simulate/index.ts';
import { simulateParallel, warmUp } from '../simulate/parallel.ts';

/** Runs of each seed. */
const RUNS = Number(process.env.SIM_BENCH_RUNS ?? 40);
/** Seeds running concurrently in each thread. */
const PER_THREAD = Number(process.env.SIM_BENCH_PER ?? 4);
/** Invariant 4 at the first restart of each run and every N-th after it. */
const CHECK_TWICE_EVERY = Number(process.env.SIM_BENCH_EVERY ?? 4);
/**
 * Warm-up runs in each process before its clock starts. V8 takes this long to settle: after 10
 * warm-up runs TurboFan still compiled ~870 ms of code during a 3.4 s measured window (its
 * threads used 40% of the main thread's CPU again, and the main thread ran unoptimised code
 * meanwhile); after 80 runs CPU per command was 29% lower, after 160 another 5%, after which it
 * stops moving. A soak's processes run for minutes, so this steady state is what they see.
 */
const WARMUP_RUNS = Number(process.env.SIM_BENCH_WARMUP ?? 160);

export const figures: BenchEntry[] = [
  {
    name: 'simulate.commands_per_s',
    run: async () => {
      await warmUp(WARMUP_RUNS);
      const single = await simulate({ seed: 1, runs: RUNS, commands: 40 });
      const workers = Math.max(1, os.availableParallelism());
      const seeds = Array.from({ length: workers * PER_THREAD }, (_, i) => i + 1);
      const loadavg = Number(os.loadavg()[0]!.toFixed(2));
      const par = await simulateParallel({ seeds, workers, runs: RUNS, commands: 40, checkTwiceEvery: CHECK_TWICE_EVERY, warmupRuns: WARMUP_RUNS });
      if (single.failure || par.failures.length) throw new Error(`the simulation failed while benchmarking: ${(single.failure ?? par.failures[0])!.message}`);
      return {
        name: 'simulate.commands_per_s', value: par.commandsPerSecond, unit: 'commands/s', baseline: single.commandsPerSecond,
        workers, perThread: PER_THREAD, seeds: seeds.length, runs: par.reports.reduce((n, r) => n + r.runs, 0), commands: par.commands, restarts: par.restarts,
        invariant4: { every: CHECK_TWICE_EVERY, checked: par.checkedTwice, of: par.restarts, rate: Number((par.checkedTwice / Math.max(1, par.restarts)).toFixed(3)) },
        baselineRun: { commands: single.commands, restarts: single.restarts, invariant4: { checked: single.checkedTwice, of: single.restarts } },
        elapsedMs: Math.round(par.elapsedMs), bootMs: Math.round(par.bootMs), loadavg,
        note: `${workers} processes x ${PER_THREAD} concurrent seeds, invariant 4 at the first restart of each run and every ${CHECK_TWICE_EVERY}th after; baseline: one seed at a time in one thread, invariant 4 at every restart; both after ${WARMUP_RUNS} warm-up runs`,
      };
    },
  },
];

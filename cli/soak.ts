/**
 * `npm run soak [-- OPTIONS]`: the long simulation, on every core. Each round runs one `simulate`
 * per seed (one child process per core, several seeds concurrently in each: `simulateParallel`),
 * printing the round's seeds before it starts (so a failure, or a hang, can be replayed with
 * `atelier simulate --seed N`), and rounds go on until the budget is spent. Exits 1 at the first
 * round with a failure, naming each failing seed and its reproduction directory.
 *
 * Options:
 * - `--minutes N` / `--hours N`: time budget (default 10 minutes);
 * - `--total N`: stop once N commands have run (whichever of the two comes first);
 * - `--seed N`: seeds N, N+1, ... instead of new random ones (CI uses this: the same commands every
 *   time, so a failure is a regression, not luck);
 * - `--runs N` (runs per seed, default 200), `--commands N` (most steps per run, default 40);
 * - `--workers N` (processes, default one per core; 0 runs in this process), `--per N` (seeds
 *   per process, default 4).
 *
 * Every invariant is checked after every step and restart, invariant 4 at every restart.
 *
 * @example
 * ```sh
 * npm run soak -- --hours 3
 * npm run soak -- --seed 1 --total 100000     # what CI runs
 * ```
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { simulateParallel } from '../simulate/parallel.ts';
import { newSeed } from '../simulate/seed.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string' }, hours: { type: 'string' }, total: { type: 'string' }, seed: { type: 'string' },
    runs: { type: 'string' }, commands: { type: 'string' }, workers: { type: 'string' }, per: { type: 'string' },
  },
});

/** A non-negative integer option, or exit 2 naming it. */
function count(name: keyof typeof values, fallback: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`soak: --${name} must be a non-negative number, not "${raw}"`);
    process.exit(2);
  }
  return n;
}

const budgetMs = (values.hours !== undefined ? count('hours', 0) * 60 : count('minutes', 10)) * 60_000;
const totalWanted = count('total', Number.POSITIVE_INFINITY);
const runs = count('runs', 200);
const commands = count('commands', 40);
const workers = Math.floor(count('workers', Math.max(1, os.availableParallelism())));
const per = Math.max(1, Math.floor(count('per', 4)));
let nextSeed = values.seed !== undefined ? Math.floor(count('seed', 0)) : null;

const end = Date.now() + budgetMs;
let total = 0;
let seedsRun = 0;
const started = performance.now();
while (Date.now() < end && total < totalWanted) {
  const seeds = Array.from({ length: Math.max(1, workers) * per }, () => (nextSeed !== null ? nextSeed++ : newSeed()));
  console.log(`seeds ${seeds.join(' ')}`);
  const r = await simulateParallel({ seeds, workers, runs, commands, timeLimitMs: Math.max(1_000, end - Date.now()) });
  total += r.commands;
  seedsRun += seeds.length;
  console.log(`  ${r.reports.reduce((n, x) => n + x.runs, 0)} runs, ${r.commands} commands, ${r.restarts} restarts, ${r.commandsPerSecond.toFixed(0)} commands/s`);
  if (r.failures.length > 0) {
    for (const f of r.failures) {
      console.log(`FAILED: ${f.message}\nseed ${f.seed}, fast-check path "${f.path}"\nreproduce: atelier simulate --reproduce ${f.dir}`);
    }
    process.exit(1);
  }
}
const secs = (performance.now() - started) / 1000;
console.log(`soak: ${seedsRun} seeds, ${total} commands in ${secs.toFixed(0)} s (${(total / secs).toFixed(0)} commands/s), every invariant held`);

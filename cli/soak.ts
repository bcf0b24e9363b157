/**
 * `npm run soak [-- --minutes N | --hours N] [--runs N]`: the long simulation. Each round draws a
 * new seed and prints it first (so a failure, or a hang, can be replayed with
 * `atelier simulate --seed N`), runs `simulate`, and goes on until the time budget is spent.
 * Default budget: 10 minutes. Exits 1 at the first failure, with its reproduction directory.
 *
 * @example
 * ```sh
 * npm run soak -- --hours 3
 * ```
 */
import { parseArgs } from 'node:util';
import { simulate } from '../engine/simulate/index.ts';
import { newSeed } from '../engine/simulate/seed.ts';

const { values } = parseArgs({ options: { minutes: { type: 'string' }, hours: { type: 'string' }, runs: { type: 'string' }, commands: { type: 'string' } } });
const budgetMs = (values.hours ? Number(values.hours) * 60 : Number(values.minutes ?? 10)) * 60_000;
const runs = Number(values.runs ?? 200);
const commands = Number(values.commands ?? 40);
const end = Date.now() + budgetMs;
let total = 0;
let rounds = 0;
const started = performance.now();
while (Date.now() < end) {
  const seed = newSeed();
  console.log(`seed ${seed}`);
  const r = await simulate({ seed, runs, commands, timeLimitMs: Math.max(1_000, end - Date.now()) });
  total += r.commands;
  rounds++;
  console.log(`  ${r.runs} runs, ${r.commands} commands, ${r.restarts} restarts, ${r.commandsPerSecond.toFixed(0)} commands/s`);
  if (r.failure) {
    console.log(`FAILED: ${r.failure.message}\nseed ${r.failure.seed}, fast-check path "${r.failure.path}"\nreproduce: atelier simulate --reproduce ${r.failure.dir}`);
    process.exit(1);
  }
}
const secs = (performance.now() - started) / 1000;
console.log(`soak: ${rounds} seeds, ${total} commands in ${secs.toFixed(0)} s (${(total / secs).toFixed(0)} commands/s), every invariant held`);

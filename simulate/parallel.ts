/**
 * Simulation on every core, and several simulations per core: independent seeds, each a
 * `simulate` on its own worlds, spread over child processes (`workers`, one per core by default),
 * several at once in each process, summed.
 *
 * The runs of one seed are sequential by nature (fast-check shrinks in order), and one run waited
 * on the journal's fdatasync (libuv's threadpool) at every append: a process running one seed
 * idled about a third of the time. The simulation's engines now fdatasync inline (`syncInline`:
 * see world.ts), which removed most of that wait; running 4 seeds per process still measured
 * 5-12% more commands/s than 1. Seeds share nothing (worlds, directories, fake backends,
 * ids, clocks and interleavings are all per run, and an interleaving never depends on timing:
 * see `interleave.ts`), so a process runs its seeds concurrently to fill what waits remain, and
 * several processes use the other cores. Processes, not worker threads: threads share one libuv
 * threadpool and V8's platform threads, and measured here two threads spent ~1.8x the CPU per
 * command that two processes did. Every seed's report is what `simulate({ seed })` alone would
 * report (`atelier simulate --seed N` replays it), timing aside.
 *
 * The processes are started, their modules loaded and (with `warmupRuns`) the code warmed up
 * before the clock starts (`elapsedMs` and `commandsPerSecond` are the simulations' throughput;
 * `bootMs` is what starting took). A failure in any seed is reported with that seed.
 *
 * @example
 * ```ts
 * const r = await simulateParallel({ seeds: [1, 2, 3, 4, 5, 6, 7, 8], workers: 2, runs: 20, commands: 40 });
 * console.log(r.commandsPerSecond, r.failures.length);
 * ```
 */
import { fork } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { simulate, type SimulateOptions, type SimulateReport } from './index.ts';

export interface ParallelOptions extends Omit<SimulateOptions, 'seed' | 'log'> {
  /** One `simulate` per seed. */
  readonly seeds: readonly number[];
  /**
   * Child processes, seeds dealt round-robin (default: `os.availableParallelism()`, at most one
   * per seed). 0 runs every seed in this process, concurrently.
   */
  readonly workers?: number;
  /**
   * Runs each process makes before the clock starts (default 0), on a seed of its own, so that
   * the figure is the JIT-compiled steady state rather than start-up (a benchmark's choice).
   */
  readonly warmupRuns?: number;
}

export interface ParallelReport {
  readonly reports: readonly SimulateReport[];
  readonly commands: number;
  readonly restarts: number;
  /** Restarts whose crash image was reconciled twice (invariant 4). */
  readonly checkedTwice: number;
  readonly workers: number;
  /** Starting the processes, loading their modules and warming up (not in `elapsedMs`). */
  readonly bootMs: number;
  readonly elapsedMs: number;
  readonly commandsPerSecond: number;
  readonly failures: readonly NonNullable<SimulateReport['failure']>[];
}

/**
 * Run one `simulate` per seed, all at once in this process (their journal waits overlap). With
 * several seeds and a `failureDir`, each failure goes to `<failureDir>-<seed>`.
 */
export function simulateConcurrently(opts: Omit<ParallelOptions, 'workers'>): Promise<SimulateReport[]> {
  const { seeds, ...rest } = opts;
  return Promise.all(seeds.map((seed) => simulate({ ...rest, seed, ...(rest.failureDir && seeds.length > 1 ? { failureDir: `${rest.failureDir}-${seed}` } : {}) })));
}

/** A few runs on a seed of their own (loads and JIT-compiles the engine; its report is dropped). */
export async function warmUp(runs: number, opts: Pick<SimulateOptions, 'root' | 'backend'> = {}): Promise<void> {
  if (runs <= 0) return;
  const r = await simulate({ ...(opts.root ? { root: opts.root } : {}), ...(opts.backend ? { backend: opts.backend } : {}), seed: 0x5eed, runs, commands: 40 });
  if (r.failure) throw new Error(`the warm-up simulation failed (seed ${r.seed}): ${r.failure.message}`);
}

type FromChild = { ready?: true; ok?: SimulateReport[]; error?: string };

/** Run one `simulate` per seed, the seeds dealt round-robin to child processes, concurrently in each. */
export async function simulateParallel(opts: ParallelOptions): Promise<ParallelReport> {
  const { seeds, workers: wanted, warmupRuns, ...rest } = opts;
  const warmup = warmupRuns ?? 0;
  const shared = { ...(rest.root ? { root: rest.root } : {}), ...(rest.backend ? { backend: rest.backend } : {}) };
  const n = Math.min(seeds.length, wanted ?? Math.max(1, os.availableParallelism()));
  const booting = performance.now();
  let reports: SimulateReport[];
  let started: number;
  if (n <= 0) {
    await warmUp(warmup, shared);
    started = performance.now();
    reports = await simulateConcurrently({ ...rest, seeds });
  } else {
    // Run from the sources (under tsx), the child is child.ts and needs tsx too; run from the
    // compiled package, it is child.js and plain Node runs it.
    const fromSource = import.meta.url.endsWith('.ts');
    const child = fileURLToPath(new URL(fromSource ? './child.ts' : './child.js', import.meta.url));
    const execArgv = fromSource ? ['--import', import.meta.resolve('tsx')] : [];
    const shares = Array.from({ length: n }, (_, w) => seeds.filter((_, i) => i % n === w));
    const procs = shares.map((share) => {
      const proc = fork(child, [], { execArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      let onReady!: () => void;
      const ready = new Promise<void>((r) => (onReady = r));
      const done = new Promise<SimulateReport[]>((resolve, reject) => {
        proc.on('message', (m: FromChild) => {
          if (m.ready) return onReady();
          if (m.ok) resolve(m.ok);
          else reject(new Error(`simulation process for seeds ${share.join(', ')} failed: ${m.error}`));
        });
        proc.once('error', reject);
        proc.once('exit', (code, signal) => reject(new Error(`simulation process for seeds ${share.join(', ')} exited (${signal ?? code}) before reporting`)));
      });
      proc.send({ warmup, options: { ...rest, seeds: share } });
      return { proc, ready, done };
    });
    try {
      // A process that fails while starting rejects `done` before it is ready.
      await Promise.race([Promise.all(procs.map((p) => p.ready)), Promise.all(procs.map((p) => p.done))]);
      started = performance.now();
      for (const p of procs) p.proc.send('go');
      reports = (await Promise.all(procs.map((p) => p.done))).flat();
    } catch (e) {
      for (const p of procs) if (p.proc.exitCode === null) p.proc.kill();
      throw e;
    }
  }
  const elapsedMs = performance.now() - started;
  const sum = (k: 'commands' | 'restarts' | 'checkedTwice') => reports.reduce((s, r) => s + r[k], 0);
  const commands = sum('commands');
  return {
    reports, commands, restarts: sum('restarts'), checkedTwice: sum('checkedTwice'), workers: Math.max(0, n),
    bootMs: started - booting, elapsedMs, commandsPerSecond: (commands / elapsedMs) * 1000,
    failures: reports.flatMap((r) => (r.failure ? [r.failure] : [])),
  };
}

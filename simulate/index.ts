/**
 * The simulation harness: property-based runs of the engine against the fake backend (or a real
 * one: `backend: 'overlay'`, faults injected by `withFaults`, see `sim-backend.ts`), with
 * crashes, faults, torn journal writes and reboots drawn from a seed, and ten invariants checked
 * after every step and every restart (see `invariants.ts`; their journal halves, which
 * `atelier replay bisect` checks too, are in `journal-invariants.ts`). Beside the random runs,
 * `enumerateCrashPoints` (in `crash-points.ts`) crashes every op at every journal append and around
 * every backend call.
 *
 * What the model covers:
 * - Four workshops on one base whose SDK chains overlap (`specs.ts`): alpha [ros2, nav, tools],
 *   beta [ros2, nav], gamma [ros2, sim], delta [ros2]. Launches, refreshes, stashes, unstashes,
 *   restores, removes, start/stop, runs and gc, one at a time or two at once (on different
 *   workshops or the same one; `share` pairs are two launches or refreshes of different
 *   workshops), so workshops build, share and take the same SDK layers one after the other and
 *   concurrently (one flight per layer: a command waiting for another's layer is part of the
 *   interleaving). A refresh flips an SDK's version between 1 and 2, so chains part and meet
 *   again and cached layers are taken again.
 * - The SDK cache on, with a small policy (`SIM_CACHE_KEEP`, {count: 2}) so that evictions happen
 *   in most runs; `sdkCache: false` runs per-workshop layers, as before the cache (the regression
 *   fixtures recorded then replay so: a reproduction records which).
 * - Invariants for sharing (9): each shared layer's holders are what the state says, a held one is
 *   present and never evicted or removed (checked at the very record that would), one layer per
 *   chain, and none left half-built by a crash; and a closing phase at the end of every run (10):
 *   remove every workshop, then only what the cache policy keeps may remain, and `gc --cache`
 *   frees everything.
 * - A command that waits for a layer nobody is building fails the run (it would wait forever).
 *
 * Throughput: `simulateParallel` / `simulateConcurrently` (in `parallel.ts`) run several seeds at
 * once, in one process and over child processes; `checkTwiceEvery` samples invariant 4 (for
 * benchmarks; the default checks it at every restart).
 *
 * A failure prints its seed and fast-check path, and writes a reproduction directory (journal,
 * fault plans, fake backend state, steps) that `atelier simulate --reproduce DIR` replays exactly.
 *
 * @example
 * ```ts
 * import { simulate } from 'atelier/simulate';
 * const report = await simulate({ seed: 42, runs: 50, commands: 40, weights: { concurrent: 8, reboot: 0 } });
 * if (report.failure) throw new Error(`${report.failure.message}\nreproduce: atelier simulate --reproduce ${report.failure.dir}`);
 * console.log(`${report.commands} commands, ${report.commandsPerSecond.toFixed(0)}/s`);
 * ```
 */
import fc from 'fast-check';
import os from 'node:os';
import { join } from 'node:path';
import { DEFAULT_FAULTS, DEFAULT_WEIGHTS, stepCommands, type FaultWeights, type Weights } from './commands.ts';
import { schedulerPicker } from './interleave.ts';
import { InvariantViolation } from './invariants.ts';
import { replaySteps, writeRepro } from './reproduce.ts';
import { closeRun, newContext, type Stats } from './runner.ts';
import { newSeed } from './seed.ts';
import type { SimBackendKind } from './sim-backend.ts';
import type { CachePolicy } from '../engine/cache.ts';
import { describeStep, type Step } from './steps.ts';
import { SIM_CACHE_KEEP } from './world.ts';

export { DEFAULT_FAULTS, DEFAULT_WEIGHTS, type FaultWeights, type Weights } from './commands.ts';
export { enumerateCrashPoints, type CrashPointReport } from './crash-points.ts';
export { readRepro, replaySteps, type Repro } from './reproduce.ts';
export { SIM_BACKENDS, type SimBackendKind } from './sim-backend.ts';
export { withFaults, type FaultyBackend } from './faulty-backend.ts';
export { SIM_CACHE_KEEP } from './world.ts';
export type { Step } from './steps.ts';

export interface SimulateOptions {
  /** fast-check's seed (default: a new one, printed). The same seed gives the same runs. */
  seed?: number;
  /** Property runs (default 100). */
  runs?: number;
  /** Most steps per run (default 40). */
  commands?: number;
  /** Replay one counterexample: fast-check's path printed with a failure. */
  path?: string;
  weights?: Partial<Weights>;
  faults?: Partial<FaultWeights>;
  /** Reconcile each crash image twice (invariant 4; default true). */
  checkTwice?: boolean;
  /**
   * With `checkTwice`, reconcile twice at a deterministic sample of the restarts only: the first
   * restart of every run and every N-th after it (default 1: every restart). For throughput runs
   * (the benchmark); the test budget checks every restart. A replayed failure checks every restart.
   */
  checkTwiceEvery?: number;
  /** Where a failure's reproduction directory goes (default `<tmpdir>/atelier-sim-failure-<seed>`). */
  failureDir?: string;
  /** Stop starting new runs after this long (soak budgets). */
  timeLimitMs?: number;
  /** Parent of the simulation's state directories (default /dev/shm when present). */
  root?: string;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /**
   * The backend the worlds run on (default `fake`). `overlay` runs a real overlay store (driver
   * overlayfs: needs root) under each world's directory, with faults injected by `withFaults`.
   */
  backend?: SimBackendKind;
  /** Run the engines with the SDK cache, shared layers (default true); false: per-workshop layers. */
  sdkCache?: boolean;
  /** The cache policy of the runs' engines (default `SIM_CACHE_KEEP`, {count: 2}: runs evict). */
  cacheKeep?: CachePolicy;
}

export interface SimulateReport {
  readonly seed: number;
  readonly runs: number;
  readonly steps: number;
  /** Commands run (each op of a concurrent pair counts), rejected ones included. */
  readonly commands: number;
  readonly restarts: number;
  /** Restarts whose crash image was reconciled twice (invariant 4 checked): all of them unless `checkTwiceEvery` > 1. */
  readonly checkedTwice: number;
  readonly reboots: number;
  readonly crashes: number;
  readonly elapsedMs: number;
  readonly commandsPerSecond: number;
  readonly failure: null | {
    readonly seed: number;
    readonly path: string;
    readonly invariant?: string;
    readonly message: string;
    readonly steps: readonly string[];
    /** The reproduction directory. */
    readonly dir: string;
    /** Whether replaying the written steps failed the same way. */
    readonly reproduced: boolean;
  };
}

/** Run the property-based simulation; resolves with a report (a failure is reported, not thrown). */
export async function simulate(options: SimulateOptions = {}): Promise<SimulateReport> {
  const seed = options.seed ?? newSeed();
  const weights: Weights = { ...DEFAULT_WEIGHTS, ...options.weights };
  const faults: FaultWeights = { ...DEFAULT_FAULTS, ...options.faults };
  const backend = options.backend ?? 'fake';
  const config = { sdkCache: options.sdkCache ?? true, cacheKeep: options.cacheKeep ?? SIM_CACHE_KEEP };
  const total: Stats = { commands: 0, steps: 0, restarts: 0, checkedTwice: 0, reboots: 0, crashes: 0 };
  let runs = 0;
  let last: { steps: Step[]; error: unknown } | null = null;
  const started = performance.now();
  const prop = fc.asyncProperty(fc.scheduler(), stepCommands(weights, faults, options.commands ?? 40), async (s, cmds) => {
    const ctx = await newContext({ seed, backend, picker: (order) => schedulerPicker(s, order), config, checkTwice: options.checkTwice ?? true, ...(options.checkTwiceEvery !== undefined ? { checkTwiceEvery: options.checkTwiceEvery } : {}), ...(options.root ? { root: options.root } : {}) });
    runs++;
    try {
      await fc.asyncModelRun(() => ({ model: ctx.model, real: ctx }), cmds);
      await closeRun(ctx);
    } catch (error) {
      last = { steps: ctx.executed.map((st) => ({ ...st })), error };
      throw error;
    } finally {
      for (const k of Object.keys(total) as (keyof Stats)[]) total[k] += ctx.stats[k];
      await ctx.world.dispose();
    }
  });
  const result = await fc.check(prop, {
    seed, numRuns: options.runs ?? 100, ...(options.path ? { path: options.path } : {}),
    ...(options.timeLimitMs ? { interruptAfterTimeLimit: options.timeLimitMs, markInterruptAsFailure: false } : {}),
  });
  const elapsedMs = performance.now() - started;
  const base = { seed, runs, ...total, elapsedMs, commandsPerSecond: (total.commands / elapsedMs) * 1000 };
  if (!result.failed) return { ...base, failure: null };
  const failed = last as { steps: Step[]; error: unknown } | null;
  const error = result.errorInstance ?? failed?.error;
  const message = error instanceof Error ? error.message : String(error);
  const dir = options.failureDir ?? join(os.tmpdir(), `atelier-sim-failure-${seed}`);
  const steps = failed?.steps ?? [];
  options.log?.(`simulation failed: seed ${seed}, path "${result.counterexamplePath}"\n${message}`);
  // Replay the shrunk steps from scratch: proves they reproduce, and writes the directory.
  const replay = await replaySteps({ seed, steps, backend, ...config }, {
    ...(options.root ? { root: options.root } : {}),
    ...(options.checkTwice !== undefined ? { checkTwice: options.checkTwice } : {}),
    onFailure: (ctx, f) =>
      writeRepro(dir, ctx, { version: 1, seed, ...(backend !== 'fake' ? { backend } : {}), ...config, fc: { seed, path: result.counterexamplePath ?? '' }, steps: ctx.executed, failure: { ...(f.invariant ? { invariant: f.invariant } : {}), message: f.message, atStep: f.atStep } }),
  });
  return {
    ...base,
    failure: {
      seed, path: result.counterexamplePath ?? '', ...(error instanceof InvariantViolation ? { invariant: error.invariant } : {}),
      message, steps: steps.map(describeStep), dir, reproduced: replay.failure !== null,
    },
  };
}

/**
 * Reproduction directories: a failing run written down so it replays exactly.
 *
 * ```
 * DIR/repro.json       seed, fast-check path, the failure, and the steps run (interleavings included)
 * DIR/fault-plans.json the fake's fault plan of each step (null: none)
 * DIR/fake.json        the fake backend's state when the failure was found (overlay.json: the
 *                      overlay's owned objects as seen through the port, and where its root was)
 * DIR/state/, DIR/run/ the journal (state directory) and the volatile journal at that moment
 * DIR/timeline.html    that journal as the replay debugger's timeline (`atelier replay html`):
 *                      open it in a browser to see what the run did up to the failure
 * ```
 * Replaying runs `repro.json`'s steps again from an empty world: ids, clock, the fake's seed,
 * faults and interleavings are all in the steps, so the same failure comes back. A fixed failure
 * is kept under `fixtures/simulate/` (its `repro.json` is enough) and replayed by `npm test`.
 *
 * @example
 * ```ts
 * const r = await replaySteps(readRepro('fixtures/simulate/refresh-drops-stash'));
 * r.failure; // null once fixed
 * ```
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { readJournalImage } from '../replay/image.ts';
import { writeTimeline } from '../replay/timeline/index.ts';
import type { CachePolicy } from '../engine/cache.ts';
import { InvariantViolation } from './invariants.ts';
import { closeRun, newContext, runStep, type Ctx, type Stats } from './runner.ts';
import type { SimBackendKind } from './sim-backend.ts';
import { OWNER, SIM_CACHE_KEEP } from './world.ts';
import { describeStep, faultPlanOf, type Step } from './steps.ts';

export interface Repro {
  readonly version: 1;
  /** The world's seed (the fake's identity PRNG). */
  readonly seed: number;
  /** fast-check's seed and path of the counterexample, when it came from a random run. */
  readonly fc?: { readonly seed: number; readonly path: string };
  readonly steps: readonly Step[];
  /** The backend the steps ran on (default `fake`). */
  readonly backend?: SimBackendKind;
  /**
   * Whether the engine ran with the SDK cache (shared layers). In a file, absent means off: the
   * reproductions recorded before the cache ran with per-workshop layers, and replay so (the engine's
   * `sdkCache: false`). `readRepro` fills it in; a run's own reproduction writes it.
   */
  readonly sdkCache?: boolean;
  /** The cache policy the engine ran with (default `SIM_CACHE_KEEP`). */
  readonly cacheKeep?: CachePolicy;
  /** What failed (for the reader; replay recomputes it). */
  readonly failure?: { readonly invariant?: string; readonly message: string; readonly atStep: number };
  readonly note?: string;
}

export interface ReplayResult {
  readonly failure: { readonly invariant?: string; readonly message: string; readonly atStep: number; readonly error: unknown } | null;
  readonly stats: Stats;
}

export function readRepro(dir: string): Repro {
  const r = JSON.parse(fs.readFileSync(join(dir, 'repro.json'), 'utf8')) as Repro;
  if (r.version !== 1 || !Array.isArray(r.steps)) throw new Error(`${dir}/repro.json is not a simulation reproduction (version 1 with steps)`);
  return { ...r, sdkCache: r.sdkCache ?? false };
}

/** Write a reproduction directory from a context that just failed (before its world is disposed). */
export async function writeRepro(dir: string, ctx: Ctx, repro: Repro): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(join(dir, 'repro.json'), `${JSON.stringify({ ...repro, stepsText: repro.steps.map(describeStep) }, null, 1)}\n`);
  fs.writeFileSync(join(dir, 'fault-plans.json'), `${JSON.stringify(repro.steps.map((s) => (s.type === 'cmd' ? faultPlanOf(s.fault) : null)), null, 1)}\n`);
  const dump = await ctx.world.backend.dump(OWNER).catch((e: unknown) => ({ file: `${ctx.backend}.json`, content: { error: String(e) } }));
  fs.writeFileSync(join(dir, dump.file), `${JSON.stringify(dump.content)}\n`);
  for (const d of ['state', 'run']) {
    fs.rmSync(join(dir, d), { recursive: true, force: true });
    const from = join(ctx.world.dir, d);
    if (fs.existsSync(from)) fs.cpSync(from, join(dir, d), { recursive: true });
  }
  // A damaged journal (the failure may be one) is drawn up to the damage; a timeline that cannot be
  // written must not hide the reproduction itself, so its error is kept beside it instead.
  if (fs.existsSync(join(dir, 'state', 'journal'))) {
    await writeTimeline(join(dir, 'timeline.html'), await readJournalImage(dir)).catch((e: unknown) => fs.writeFileSync(join(dir, 'timeline.error.txt'), `${String(e)}\n`));
  }
}

/**
 * Run steps from an empty world, then the run's closing phase (`closeRun`: remove every workshop,
 * gc); stop at the first failure (a failure in the closing phase is at step `steps.length`).
 * `onFailure` sees the world as it was (e.g. to write a reproduction directory). The SDK cache is on
 * unless `repro.sdkCache` is false (`readRepro` says false for a file that does not say).
 */
export async function replaySteps(
  repro: Pick<Repro, 'seed' | 'steps' | 'backend' | 'sdkCache' | 'cacheKeep'>,
  opts: { root?: string; checkTwice?: boolean; onFailure?: (ctx: Ctx, f: NonNullable<ReplayResult['failure']>) => void | Promise<void> } = {},
): Promise<ReplayResult> {
  const config = { sdkCache: repro.sdkCache ?? true, cacheKeep: repro.cacheKeep ?? SIM_CACHE_KEEP };
  const ctx = await newContext({ seed: repro.seed, backend: repro.backend ?? 'fake', config, ...(opts.checkTwice !== undefined ? { checkTwice: opts.checkTwice } : {}), ...(opts.root ? { root: opts.root } : {}) });
  try {
    for (let i = 0; i <= repro.steps.length; i++) {
      try {
        if (i < repro.steps.length) await runStep(ctx, repro.steps[i]!);
        else await closeRun(ctx);
      } catch (error) {
        const failure = { ...(error instanceof InvariantViolation ? { invariant: error.invariant } : {}), message: error instanceof Error ? error.message : String(error), atStep: i, error };
        await opts.onFailure?.(ctx, failure);
        return { failure, stats: ctx.stats };
      }
    }
    return { failure: null, stats: ctx.stats };
  } finally {
    await ctx.world.dispose();
  }
}

/**
 * Exhaustive crash-point enumeration, beside the random runs: for each op (launch, refresh reusing
 * a prefix, refresh rebuilding from the base, stash, unstash, restore, remove, and the SDK cache's:
 * a launch seeded from another workshop's layers, one that builds a shared layer on top of them,
 * a remove whose layers stay for another workshop and whose end evicts), crash at every journal
 * append (before the write, after it, and with the write torn half-way) and before and after every
 * backend call; restart (reconciling the crash image twice), check every invariant, then run the
 * op again cleanly, remove the workshop and launch it again, checking after each, and close the
 * run (remove every workshop, gc: invariant 10).
 *
 * @example
 * ```ts
 * const r = await enumerateCrashPoints();
 * console.log(`${r.points} crash points checked`); // e.g. 512
 * if (r.failures.length) console.error(r.failures[0]);
 * ```
 */
import { replaySteps } from './reproduce.ts';
import { newContext, runStep } from './runner.ts';
import type { SimBackendKind } from './sim-backend.ts';
import type { SimOp, Step } from './steps.ts';

export interface Scenario {
  readonly name: string;
  /** Steps that bring the world to where the op starts. */
  readonly setup: readonly SimOp[];
  readonly op: SimOp;
}

const W = 'alpha';

export const SCENARIOS: readonly Scenario[] = [
  { name: 'launch', setup: [], op: { do: 'launch', workshop: W } },
  { name: 'refresh (prefix reuse)', setup: [{ do: 'launch', workshop: W }], op: { do: 'refresh', workshop: W, change: 'middle' } },
  { name: 'refresh (full rebuild)', setup: [{ do: 'launch', workshop: W }], op: { do: 'refresh', workshop: W, change: 'first' } },
  { name: 'stash', setup: [{ do: 'launch', workshop: W }], op: { do: 'stash', workshop: W } },
  { name: 'unstash', setup: [{ do: 'launch', workshop: W }, { do: 'stash', workshop: W }], op: { do: 'unstash', workshop: W } },
  { name: 'restore', setup: [{ do: 'launch', workshop: W }], op: { do: 'restore', workshop: W, sdk: 1 } },
  { name: 'remove', setup: [{ do: 'launch', workshop: W }, { do: 'stash', workshop: W }], op: { do: 'remove', workshop: W } },
  // The SDK cache: beta's chain is a prefix of alpha's, gamma's parts from it after ros2.
  { name: 'launch (seeded from the cache)', setup: [{ do: 'launch', workshop: W }], op: { do: 'launch', workshop: 'beta' } },
  { name: 'launch (shared build on cached layers)', setup: [{ do: 'launch', workshop: 'beta' }], op: { do: 'launch', workshop: W } },
  { name: 'refresh (onto another workshop\'s layers)', setup: [{ do: 'launch', workshop: 'gamma' }, { do: 'launch', workshop: W }], op: { do: 'refresh', workshop: 'gamma', change: 'first' } },
  { name: 'remove (layers kept, evictions)', setup: [{ do: 'launch', workshop: 'gamma' }, { do: 'launch', workshop: W }, { do: 'refresh', workshop: 'gamma', change: 'first' }], op: { do: 'remove', workshop: W } },
];

export interface CrashPointReport {
  /** Crash points checked (each one a restart with every invariant checked). */
  readonly points: number;
  readonly byScenario: Readonly<Record<string, { appends: number; calls: number; points: number }>>;
  readonly failures: readonly { readonly scenario: string; readonly point: string; readonly message: string; readonly steps: readonly Step[] }[];
  readonly elapsedMs: number;
}

const clean = (op: SimOp): Step => ({ type: 'cmd', ops: [op], fault: null, recovery: null });

/** Journal appends and backend calls the op makes when nothing goes wrong. */
async function measure(s: Scenario, root?: string, backend: SimBackendKind = 'fake'): Promise<{ appends: number; calls: number }> {
  const ctx = await newContext({ seed: 1, checkTwice: false, backend, ...(root ? { root } : {}) });
  try {
    for (const op of s.setup) await runStep(ctx, clean(op));
    const calls = ctx.world.backend.calls;
    await runStep(ctx, clean(s.op));
    return { appends: ctx.world.appendCount, calls: ctx.world.backend.calls - calls };
  } finally {
    await ctx.world.dispose();
  }
}

/** Enumerate every crash point of every scenario (or those whose name starts with `only`). */
export async function enumerateCrashPoints(opts: { only?: string; root?: string; backend?: SimBackendKind; log?: (line: string) => void } = {}): Promise<CrashPointReport> {
  const started = performance.now();
  const byScenario: Record<string, { appends: number; calls: number; points: number }> = {};
  const failures: { scenario: string; point: string; message: string; steps: Step[] }[] = [];
  let points = 0;
  for (const s of SCENARIOS) {
    if (opts.only && !s.name.startsWith(opts.only)) continue;
    const { appends, calls } = await measure(s, opts.root, opts.backend);
    const faults: Step[] = [];
    for (let n = 1; n <= appends; n++)
      for (const mode of ['before', 'after', 'torn'] as const) faults.push({ type: 'cmd', ops: [s.op], fault: { type: 'append', nth: n, mode, fraction: 0.5 }, recovery: null });
    for (let n = 1; n <= calls; n++)
      for (const when of ['before', 'after'] as const) faults.push({ type: 'cmd', ops: [s.op], fault: { type: 'call', call: '*', nth: n, when, action: 'crash' }, recovery: null });
    for (const crash of faults) {
      // After the crash and restart: the op again, then remove and launch (no ALREADY_EXISTS, no leftovers).
      const w = 'workshop' in s.op ? s.op.workshop : W;
      const steps: Step[] = [...s.setup.map(clean), crash, clean(s.op), clean({ do: 'remove', workshop: w }), clean({ do: 'launch', workshop: w })];
      const r = await replaySteps({ seed: 1, steps, ...(opts.backend ? { backend: opts.backend } : {}) }, opts.root ? { root: opts.root } : {});
      points++;
      if (r.failure) {
        const f = crash.type === 'cmd' ? crash.fault : null;
        const point = f?.type === 'append' ? `${f.mode} append ${f.nth}` : f?.type === 'call' ? `${f.when} call ${f.nth}` : '?';
        failures.push({ scenario: s.name, point, message: r.failure.message, steps });
        opts.log?.(`crash point ${s.name} / ${point}: ${r.failure.message}`);
      }
    }
    byScenario[s.name] = { appends, calls, points: faults.length };
  }
  return { points, byScenario, failures, elapsedMs: performance.now() - started };
}

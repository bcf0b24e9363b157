/**
 * What the property-based runs draw: steps (commands, concurrent pairs, reboots, idle crashes) with
 * their faults, weighted by `Weights`, as fast-check model-based commands (`fc.commands`).
 *
 * Host-daemon authors tune the mix with their own weights, e.g. more concurrency and no reboots:
 * `simulate({ weights: { concurrent: 10, reboot: 0 } })`.
 *
 * @example
 * ```ts
 * const arb = stepCommands({ ...DEFAULT_WEIGHTS, gc: 0 }, DEFAULT_FAULTS, 40);
 * await fc.assert(fc.asyncProperty(arb, async (cmds) => fc.asyncModelRun(setup, cmds)));
 * ```
 */
import fc from 'fast-check';
import type { BackendErrorCode, CallKind } from '../backends/types.ts';
import type { Model } from './model.ts';
import { runStep, type Ctx } from './runner.ts';
import { WORKSHOP_NAMES, type RefreshChange } from './specs.ts';
import { describeStep, type SimOp, type Step, type StepFault } from './steps.ts';

/** Relative weights of what a step does. 0 leaves a kind out. */
export interface Weights {
  launch: number;
  refresh: number;
  stash: number;
  unstash: number;
  restore: number;
  remove: number;
  run: number;
  /** `start` and `stop`: ops of one step that change the wanted status, not the content. */
  start: number;
  stop: number;
  gc: number;
  /** Two commands at once, on different workshops or the same one. */
  concurrent: number;
  /**
   * Two launches or refreshes at once on different workshops (their SDK chains overlap: both may
   * need the same shared layer, which one builds while the other waits for it). Optional: absent
   * counts as the default's.
   */
  share?: number;
  reboot: number;
  /** The engine dies between commands. */
  restart: number;
}

export const DEFAULT_WEIGHTS: Weights = { launch: 5, refresh: 8, stash: 3, unstash: 3, restore: 2, remove: 2, run: 2, start: 1, stop: 1, gc: 1, concurrent: 3, share: 2, reboot: 1, restart: 1 };

/** Relative weights of a step's fault. */
export interface FaultWeights {
  none: number;
  /** One backend call fails or crashes, before or after it takes effect. */
  call: number;
  /** A burst: every mutating call of the step may fail (or crash). */
  random: number;
  /** The engine dies at a journal append (before, after, or with the write torn). */
  append: number;
  /** Chance in [0, 1] that a restart's reconciliation runs under random failures too. */
  recovery: number;
}

export const DEFAULT_FAULTS: FaultWeights = { none: 5, call: 4, random: 1, append: 2, recovery: 0.2 };

/**
 * Which workshop an op is on: mostly alpha and beta (the long chains, and the two the regression
 * fixtures use), so that each still sees runs of its own commands (stash, refresh, unstash,
 * restore on one workshop), and one op in four on gamma and delta (the chain that parts from
 * theirs, and the one that is everyone's first layer), so that launches and refreshes of different
 * workshops build and take the same shared layers, one after the other and at once.
 */
const WORKSHOP_WEIGHTS: Readonly<Record<string, number>> = { alpha: 3, beta: 3, gamma: 1, delta: 1 };
const workshop = fc.oneof(...WORKSHOP_NAMES.map((name) => ({ weight: WORKSHOP_WEIGHTS[name] ?? 1, arbitrary: fc.constant(name) })));
const CALLS: (CallKind | '*')[] = ['create', 'copy', 'copy', 'remove', 'start', 'stop', 'exec', '*'];
const CODES: BackendErrorCode[] = ['NO_SPACE', 'BUSY', 'INTERNAL', 'EXEC_FAILED'];

function opArb(w: Weights): fc.Arbitrary<SimOp> {
  const arbs: fc.WeightedArbitrary<SimOp>[] = [
    // One launch in five uses an SDK whose hook exits non-zero (after writing, so undo has work).
    { weight: w.launch, arbitrary: fc.record({ workshop, bad: fc.nat(4).map((n) => n === 0) }).map(({ workshop: ws, bad }): SimOp => (bad ? { do: 'launch', workshop: ws, bad } : { do: 'launch', workshop: ws })) },
    { weight: w.refresh, arbitrary: fc.record({ do: fc.constant('refresh' as const), workshop, change: fc.constantFrom<RefreshChange>('unchanged', 'middle', 'first', 'middle', 'first', 'bad') }) },
    { weight: w.stash, arbitrary: fc.record({ do: fc.constant('stash' as const), workshop }) },
    { weight: w.unstash, arbitrary: fc.record({ do: fc.constant('unstash' as const), workshop }) },
    { weight: w.restore, arbitrary: fc.record({ do: fc.constant('restore' as const), workshop, sdk: fc.nat(2) }) },
    { weight: w.remove, arbitrary: fc.record({ do: fc.constant('remove' as const), workshop }) },
    { weight: w.run, arbitrary: fc.record({ do: fc.constant('run' as const), workshop }) },
    { weight: w.start, arbitrary: fc.record({ do: fc.constant('start' as const), workshop }) },
    { weight: w.stop, arbitrary: fc.record({ do: fc.constant('stop' as const), workshop }) },
    { weight: w.gc, arbitrary: fc.constant({ do: 'gc' as const }) },
  ];
  return fc.oneof(...arbs.filter((a) => a.weight > 0));
}

/** A launch or a refresh of `ws` (as `opArb` draws them). */
function buildArb(ws: string): fc.Arbitrary<SimOp> {
  return fc.oneof(
    fc.nat(4).map((n): SimOp => (n === 0 ? { do: 'launch', workshop: ws, bad: true } : { do: 'launch', workshop: ws })),
    fc.constantFrom<RefreshChange>('unchanged', 'middle', 'first', 'middle', 'first', 'bad').map((change): SimOp => ({ do: 'refresh', workshop: ws, change })),
  );
}

/** Two launches or refreshes on two different workshops. */
const sharePair: fc.Arbitrary<SimOp[]> = fc
  .tuple(workshop, workshop)
  .filter(([a, b]) => a !== b)
  .chain(([a, b]) => fc.tuple(buildArb(a), buildArb(b)));

function faultArb(f: FaultWeights, concurrent: boolean): fc.Arbitrary<StepFault> {
  const arbs: fc.WeightedArbitrary<StepFault>[] = [
    { weight: f.none, arbitrary: fc.constant(null) },
    {
      weight: f.call,
      arbitrary: fc.record({ type: fc.constant('call' as const), call: fc.constantFrom(...CALLS), nth: fc.integer({ min: 1, max: 8 }), when: fc.constantFrom('before' as const, 'after' as const), action: fc.constantFrom('fail' as const, 'crash' as const), code: fc.constantFrom(...CODES) }),
    },
    { weight: f.random, arbitrary: fc.record({ type: fc.constant('random' as const), seed: fc.nat(), probability: fc.constantFrom(0.15, 0.3, 0.5) }) },
    // Appends of concurrent commands can share one write, so a torn write could cut a record another
    // command already acted on: append crashes are drawn for single commands only.
    { weight: concurrent ? 0 : f.append, arbitrary: fc.record({ type: fc.constant('append' as const), nth: fc.integer({ min: 1, max: 16 }), mode: fc.constantFrom('before' as const, 'after' as const, 'torn' as const), fraction: fc.integer({ min: 0, max: 999 }).map((n) => n / 1000) }) },
  ];
  return fc.oneof(...arbs.filter((a) => a.weight > 0));
}

export function stepArb(w: Weights, f: FaultWeights): fc.Arbitrary<Step> {
  const op = opArb(w);
  // fc.option shrinks towards null: a counterexample keeps recovery faults only if it needs them.
  const recovery: fc.Arbitrary<number | null> = f.recovery > 0 ? fc.option(fc.nat(), { freq: Math.max(1, Math.round(1 / f.recovery) - 1) }) : fc.constant(null);
  const arbs: fc.WeightedArbitrary<Step>[] = [
    { weight: w.launch + w.refresh + w.stash + w.unstash + w.restore + w.remove + w.run + w.gc, arbitrary: fc.record({ type: fc.constant('cmd' as const), ops: op.map((o) => [o]), fault: faultArb(f, false), recovery }) },
    { weight: w.concurrent, arbitrary: fc.record({ type: fc.constant('cmd' as const), ops: fc.tuple(op, op), fault: faultArb(f, true), recovery }) },
    { weight: w.share ?? DEFAULT_WEIGHTS.share ?? 0, arbitrary: fc.record({ type: fc.constant('cmd' as const), ops: sharePair, fault: faultArb(f, true), recovery }) },
    { weight: w.reboot, arbitrary: fc.constant({ type: 'reboot' as const }) },
    { weight: w.restart, arbitrary: fc.constant({ type: 'restart' as const }) },
  ];
  return fc.oneof(...arbs.filter((a) => a.weight > 0));
}

/** One step as a fast-check model-based command. */
export class StepCommand implements fc.AsyncCommand<Model, Ctx> {
  constructor(readonly step: Step) {}
  check(): boolean {
    return true; // commands the model expects refused are run too: the refusal is checked
  }
  async run(_model: Model, ctx: Ctx): Promise<void> {
    await runStep(ctx, this.step);
  }
  toString(): string {
    return describeStep(this.step);
  }
}

export function stepCommands(w: Weights, f: FaultWeights, maxCommands: number): fc.Arbitrary<Iterable<fc.AsyncCommand<Model, Ctx>>> {
  return fc.commands([stepArb(w, f).map((s) => new StepCommand(s))], { maxCommands, size: 'max' });
}

/**
 * The workshop chart: every status a workshop can be in is a state node, and its guarded
 * transitions decide every step of the saga (op) it runs. `decide` (`decide.ts`) rebuilds the
 * chart's snapshot from the folded state, sends one event, and turns the actions that come back
 * into events to journal; nothing else decides what a workshop does next.
 *
 * ```
 *   absent ──launch──► busy.do ──► ready | broken | absent          (see machines/README.md)
 *   ready, broken ──refresh | stash | unstash | restore | remove | start | stop──► busy.do
 *   ready, broken ──found.stopped [wanted running]──► busy.do (a start: reconciliation after a reboot)
 *   busy.do ──step failed, before the pivot──► busy.undo ──► ready | broken | absent (undone)
 *   busy.do ──do steps done──► busy.cleanup ──► ready | broken
 * ```
 *
 * Events: the six commands; `step.ok` / `step.failed` (an effect's outcome); `abort` (the caller's
 * AbortSignal); `resume` and `interrupted` (reconciliation found the op in progress after a crash:
 * a crash is an abort, unless the op is past its pivot); `instance.lost` / `layer.lost`
 * (reconciliation found one of its objects gone).
 *
 * Actions are the decisions, as named actions with params: `startOp`, `request` (run a step),
 * `enterPhase`, `finish` (outcome and code; the state entered is the workshop's status), and
 * `reject` (a command the workshop's state does not allow, with the error code). Guards read
 * facts only; they do no I/O and read no clock.
 *
 * @example
 * ```ts
 * const snap = resolveWorkshop({ name: 'nav2', workshop: null, op: null, beforeHeld: true });
 * const [next, actions] = transition(workshopMachine, snap, { type: 'launch' });
 * next.value;                       // { busy: 'do' }
 * actions.map((a) => a.type);       // ['startOp', 'request']
 * ```
 */
import { and, not, setup, type SnapshotFrom } from 'xstate';
import type { OpKind, Phase, Plan, PlanStep } from './types.ts';
import { undoSteps } from './plan.ts';
import { phaseStepsOf, type WorkshopStatus } from './state.ts';

/** Attempts of a step that rolls forward (retry, undo, cleanup) before the op gives up. */
export const MAX_ATTEMPTS = 3;

/** What the chart needs to know of a workshop (a slice of the folded state). */
export interface WorkshopFacts {
  readonly status: WorkshopStatus;
  readonly hasStash: boolean;
  readonly sdks: readonly string[];
  /** False when reconciliation found the workshop's instance missing. */
  readonly instancePresent: boolean;
  /** Kept transient containers running from the workshop or its layers (they depend on them). */
  readonly dependents: number;
  /** The status the workshop is wanted in (`WorkshopRecord.running`); undefined: not recorded. */
  readonly running?: boolean;
}

/** An op in progress, as the fold keeps it. */
export interface OpFacts {
  readonly kind: OpKind;
  readonly plan: Plan;
  readonly phase: Phase;
  /** The step being run, or once it succeeded the next one to run, within the phase. */
  readonly step: number;
  readonly attempt: number;
  readonly undo: readonly PlanStep[] | null;
  readonly failure: { readonly code: string; readonly message: string } | null;
}

export interface WorkshopContext {
  readonly name: string;
  readonly workshop: WorkshopFacts | null;
  readonly op: OpFacts | null;
  /** The op's `before` shape has every SDK layer accounted for (an undone op returns to it). */
  readonly beforeHeld: boolean;
}

export type CommandType = OpKind;
type Failure = { code: string; message: string };

export type WorkshopEvent =
  | { type: Exclude<CommandType, 'restore'> }
  | { type: 'restore'; sdk: string }
  | { type: 'step.ok' }
  | ({ type: 'step.failed' } & Failure)
  | ({ type: 'abort' } & Failure)
  | { type: 'resume' }
  | { type: 'interrupted'; failure?: Failure }
  | { type: 'instance.lost' }
  | { type: 'layer.lost' }
  /** Reconciliation found the workshop's instance stopped (a host reboot, a container that died). */
  | { type: 'found.stopped' }
  /** A process is to be started in the workshop (`exec`, `shell`); `status` is its instance's, as the backend reports it. */
  | { type: 'exec'; status: 'running' | 'stopped' };

export type RejectionCode = 'NOT_FOUND' | 'ALREADY_EXISTS' | 'BUSY' | 'FAILED_PRECONDITION';

/** The decisions, as the chart's actions come back from `transition()`. */
export type Decision =
  | { type: 'startOp'; params: Record<string, never> }
  | { type: 'request'; params: { phase: Phase; step: number; attempt: number } }
  | { type: 'enterPhase'; params: { phase: Phase; from?: number; reason: string; code?: string; message?: string } }
  | { type: 'finish'; params: { outcome: 'done' | 'undone' | 'broken'; code?: string; message?: string } }
  | { type: 'reject'; params: { code: RejectionCode; reason: string } }
  | { type: 'lose'; params: { instance: boolean } }
  /** A process may be started in the workshop (`exec`). */
  | { type: 'accept'; params: Record<string, never> };

export const DECISIONS: ReadonlySet<string> = new Set(['startOp', 'request', 'enterPhase', 'finish', 'reject', 'lose', 'accept']);

const stepsOf = (op: OpFacts) => phaseStepsOf(op);
const current = (op: OpFacts) => stepsOf(op)[op.step];
const failureOf = (event: WorkshopEvent): Failure =>
  event.type === 'step.failed' || event.type === 'abort' ? { code: event.code, message: event.message } : event.type === 'interrupted' && event.failure ? event.failure : { code: 'INTERRUPTED', message: 'interrupted' };
/** A crash found at start-up: the caller is gone, so it is an abort (of an op still before its pivot). */
const INTERRUPTED: Failure = { code: 'INTERRUPTED', message: 'the engine stopped while this operation ran' };

type Ctx = { context: WorkshopContext; event: WorkshopEvent };
const op = ({ context }: Ctx): OpFacts => context.op!;

const machine = setup({
  types: {} as { context: WorkshopContext; events: WorkshopEvent; input: WorkshopContext },
  guards: {
    // Commands
    hasDependents: ({ context }) => (context.workshop?.dependents ?? 0) > 0,
    instanceGone: ({ context }) => context.workshop?.instancePresent === false,
    hasStash: ({ context }) => context.workshop?.hasStash === true,
    unknownSdk: ({ context, event }) => !(event.type === 'restore' && context.workshop?.sdks.includes(event.sdk)),
    // The saga
    moreSteps: (a) => op(a).step < stepsOf(op(a)).length,
    hasCleanup: (a) => op(a).plan.cleanup.length > 0,
    removesWorkshop: (a) => op(a).plan.after === null,
    restoresNothing: (a) => op(a).plan.before === null,
    /** Undone, the workshop returns to its shape before the op, and to broken if that lacked a layer. */
    undoneBroken: ({ context }) => context.workshop?.instancePresent === false || !context.beforeHeld,
    /** A do step marked `retry` is past the saga's pivot: its failure is retried, never undone. */
    rollsForward: (a) => current(op(a))?.retry === true,
    attemptsLeft: (a) => op(a).attempt < MAX_ATTEMPTS,
    /** Compensations for do steps 0..step exist (the failed step, or on an abort the one running or next). */
    hasUndo: (a) => undoSteps(op(a).plan, op(a).step).length > 0,
    moreCleanupAfter: (a) => op(a).step + 1 < op(a).plan.cleanup.length,
    /** An abort rolls back an op still before its pivot and before its last do step; past it, it changes nothing. */
    pastPivot: (a) => current(op(a))?.retry === true || op(a).step >= op(a).plan.do.length,
    /** Reconciliation's probe of the pending effect failed, or could not confirm it. */
    observedFailure: ({ event }) => event.type === 'interrupted' && event.failure !== undefined,
    // Start and stop
    wantedRunning: ({ context }) => context.workshop?.running === true,
    instanceStopped: ({ event }) => event.type === 'exec' && event.status === 'stopped',
  },
  actions: {
    // The decisions: named, typed, and carried out by `decide`, which journals them.
    startOp: () => {},
    request: (_, _p: Extract<Decision, { type: 'request' }>['params']) => {},
    enterPhase: (_, _p: Extract<Decision, { type: 'enterPhase' }>['params']) => {},
    finish: (_, _p: Extract<Decision, { type: 'finish' }>['params']) => {},
    reject: (_, _p: Extract<Decision, { type: 'reject' }>['params']) => {},
    lose: (_, _p: Extract<Decision, { type: 'lose' }>['params']) => {},
    accept: () => {},
  },
});

// ---- action shapes --------------------------------------------------------------------------
const reject = (code: RejectionCode, reason: string) => ({ type: 'reject' as const, params: { code, reason } });
const rejectWith = (code: RejectionCode, reason: (a: Ctx) => string) => ({ type: 'reject' as const, params: (a: Ctx) => ({ code, reason: reason(a) }) });
const requestNext = { type: 'request' as const, params: (a: Ctx) => ({ phase: op(a).phase, step: op(a).step, attempt: 1 }) };
const requestFirst = (phase: Phase) => ({ type: 'request' as const, params: { phase, step: 0, attempt: 1 } });
const retry = { type: 'request' as const, params: (a: Ctx) => ({ phase: op(a).phase, step: op(a).step, attempt: op(a).attempt + 1 }) };
const skip = { type: 'request' as const, params: (a: Ctx) => ({ phase: 'cleanup' as const, step: op(a).step + 1, attempt: 1 }) };
const enterCleanup = { type: 'enterPhase' as const, params: { phase: 'cleanup' as const, reason: 'done' } };
const enterUndo = (f: (a: Ctx) => Failure) => ({ type: 'enterPhase' as const, params: (a: Ctx) => ({ phase: 'undo' as const, from: op(a).step, reason: 'rollback', ...f(a) }) });
const done = { type: 'finish' as const, params: { outcome: 'done' as const } };
const undone = (f: (a: Ctx) => Failure) => ({ type: 'finish' as const, params: (a: Ctx) => ({ outcome: 'undone' as const, ...f(a) }) });
const broken = { type: 'finish' as const, params: (a: Ctx) => ({ outcome: 'broken' as const, ...failureOf(a.event) }) };
/** The undo phase's outcome: what the op failed with (or plain OP_FAILED). */
const opFailure = (a: Ctx): Failure => ({ code: op(a).failure?.code ?? 'OP_FAILED', message: op(a).failure?.message ?? 'failed' });
const eventFailure = (a: Ctx): Failure => failureOf(a.event);

const ABSENT = '#workshop.absent';
const READY = '#workshop.ready';
const BROKEN = '#workshop.broken';

// ---- transitions, shared by the events that lead to the same decisions ------------------------
/** The next step of the phase, or the end of the phase (a step succeeded, or the op resumes). */
const advanceDo = [
  { guard: 'moreSteps', actions: requestNext },
  { guard: 'hasCleanup', target: '#workshop.busy.cleanup', actions: [enterCleanup, requestFirst('cleanup')] },
  { guard: 'removesWorkshop', target: ABSENT, actions: done },
  { guard: 'instanceGone', target: BROKEN, actions: done },
  { target: READY, actions: done },
] as const;
const advanceCleanup = [
  { guard: 'moreSteps', actions: requestNext },
  { guard: 'removesWorkshop', target: ABSENT, actions: done },
  { guard: 'instanceGone', target: BROKEN, actions: done },
  { target: READY, actions: done },
] as const;
const advanceUndo = [
  { guard: 'moreSteps', actions: requestNext },
  { guard: 'restoresNothing', target: ABSENT, actions: undone(opFailure) },
  { guard: 'undoneBroken', target: BROKEN, actions: undone(opFailure) },
  { target: READY, actions: undone(opFailure) },
] as const;
/** Roll back do steps 0..step: compensate them (undo phase), or finish undone when none has any. */
const rollBack = (f: (a: Ctx) => Failure) =>
  [
    { guard: 'hasUndo', target: '#workshop.busy.undo', actions: [enterUndo(f), requestFirst('undo')] },
    { guard: 'restoresNothing', target: ABSENT, actions: undone(f) },
    { guard: 'undoneBroken', target: BROKEN, actions: undone(f) },
    { target: READY, actions: undone(f) },
  ] as const;
const failedInDo = [
  { guard: and(['rollsForward', 'attemptsLeft']), actions: retry },
  { guard: 'rollsForward', target: BROKEN, actions: broken },
  ...rollBack(eventFailure),
] as const;
const failedInUndo = [{ guard: 'attemptsLeft', actions: retry }, { target: BROKEN, actions: broken }] as const;
/** A clean-up that keeps failing leaves garbage for gc; it never undoes a finished op. */
const failedInCleanup = [{ guard: 'attemptsLeft', actions: retry }, { guard: 'moreCleanupAfter', actions: skip }, ...advanceCleanup.slice(1)] as const;

/** Reconciliation of an op found in progress: a crash is an abort before the pivot; past it, a failed probe is a failure; else it resumes. */
const interruptedInDo = [
  { guard: and([not('pastPivot'), 'hasUndo']), target: '#workshop.busy.undo', actions: [enterUndo(() => INTERRUPTED), requestFirst('undo')] },
  { guard: and([not('pastPivot'), 'restoresNothing']), target: ABSENT, actions: undone(() => INTERRUPTED) },
  { guard: and([not('pastPivot'), 'undoneBroken']), target: BROKEN, actions: undone(() => INTERRUPTED) },
  { guard: not('pastPivot'), target: READY, actions: undone(() => INTERRUPTED) },
  { guard: and(['observedFailure', 'rollsForward', 'attemptsLeft']), actions: retry },
  { guard: 'observedFailure', target: BROKEN, actions: broken },
  ...advanceDo,
] as const;
const interruptedInUndo = [{ guard: and(['observedFailure', 'attemptsLeft']), actions: retry }, { guard: 'observedFailure', target: BROKEN, actions: broken }, ...advanceUndo] as const;
const interruptedInCleanup = [
  { guard: and(['observedFailure', 'attemptsLeft']), actions: retry },
  { guard: 'observedFailure', target: BROKEN, actions: broken },
  ...advanceCleanup,
] as const;

// ---- commands -------------------------------------------------------------------------------
const start = { target: '#workshop.busy', actions: ['startOp', requestFirst('do')] } as const;
const dependents = { guard: 'hasDependents', actions: rejectWith('FAILED_PRECONDITION', (a) => `has ${a.context.workshop!.dependents} transient container(s) running from it (remove them first)`) } as const;
const lostInstance = { guard: 'instanceGone', actions: reject('FAILED_PRECONDITION', 'has lost its instance on the backend; remove it and launch it again') } as const;
const isBroken = { actions: reject('FAILED_PRECONDITION', 'is broken; refresh or remove it') } as const;
const existing = { actions: reject('ALREADY_EXISTS', 'already exists (refresh it, or remove it first)') } as const;
const busy = { actions: reject('BUSY', 'is busy with another operation (wait for it, or run reconcile)') } as const;
const missing = { actions: reject('NOT_FOUND', 'does not exist (launch it first)') } as const;
const restoreChecks = [
  { guard: 'hasStash', actions: reject('FAILED_PRECONDITION', 'has a stash (unstash it first)') },
  { guard: 'unknownSdk', actions: rejectWith('NOT_FOUND', (a) => `has no SDK layer "${a.event.type === 'restore' ? a.event.sdk : ''}"`) },
] as const;
/**
 * Start and stop on a ready workshop; exec on one at rest (ready or broken: a broken workshop can
 * still be entered to see what went wrong). A start of a running workshop, or a stop of a stopped one, is
 * an op like any other: both effects are idempotent, and the op records the wanted status.
 */
const power = { start: [lostInstance, start], stop: [lostInstance, start] } as const;
/** Reconciliation restarts a workshop wanted running that it finds stopped (Docker's `unless-stopped`). */
const restart = { 'found.stopped': [{ guard: and(['wantedRunning', not('instanceGone')]), ...start }] } as const;
const exec = {
  exec: [
    lostInstance,
    { guard: 'instanceStopped', actions: rejectWith('FAILED_PRECONDITION', (a) => `is stopped; start it first: atelier start ${a.context.name}`) },
    // Accepted: no decision to journal (a process in a workshop is not an op).
    { actions: 'accept' },
  ],
} as const;

/** A lost instance or layer breaks the workshop; it is repaired by a refresh, or removed. */
const lost = {
  'instance.lost': { target: BROKEN, actions: { type: 'lose' as const, params: { instance: true } } },
  'layer.lost': { target: BROKEN, actions: { type: 'lose' as const, params: { instance: false } } },
};

const chart = machine.createMachine({
  id: 'workshop',
  context: ({ input }) => input,
  initial: 'absent',
  states: {
    absent: {
      on: { launch: start, refresh: missing, stash: missing, unstash: missing, restore: missing, remove: missing, start: missing, stop: missing, exec: missing },
    },
    ready: {
      on: {
        ...lost,
        launch: existing,
        refresh: [dependents, lostInstance, { guard: 'hasStash', actions: reject('FAILED_PRECONDITION', 'has a stash (unstash it first)') }, start],
        stash: [dependents, lostInstance, { guard: 'hasStash', actions: reject('FAILED_PRECONDITION', 'already has a stash (unstash it first)') }, start],
        unstash: [dependents, lostInstance, { guard: not('hasStash'), actions: reject('FAILED_PRECONDITION', 'has no stash (stash it first)') }, start],
        restore: [dependents, lostInstance, ...restoreChecks, start],
        remove: [dependents, start],
        ...power,
        ...restart,
        ...exec,
      },
    },
    broken: {
      on: {
        ...lost,
        launch: existing,
        refresh: [dependents, lostInstance, { guard: 'hasStash', actions: reject('FAILED_PRECONDITION', 'has a stash (unstash it first)') }, start],
        stash: [dependents, lostInstance, isBroken],
        unstash: [dependents, lostInstance, { guard: not('hasStash'), actions: reject('FAILED_PRECONDITION', 'has no stash (stash it first)') }, start],
        restore: [dependents, lostInstance, isBroken],
        remove: [dependents, start],
        // An op that finishes returns a workshop to ready: start and stop would hide that it is
        // broken. It stays as it is (and is not restarted) until a refresh repairs it.
        start: [lostInstance, isBroken],
        stop: [lostInstance, isBroken],
        ...exec,
      },
    },
    busy: {
      initial: 'do',
      on: { ...lost, launch: { actions: reject('BUSY', 'is busy with another operation') }, refresh: busy, stash: busy, unstash: busy, restore: busy, remove: busy, start: busy, stop: busy, exec: busy },
      states: {
        do: { on: { 'step.ok': advanceDo, resume: advanceDo, 'step.failed': failedInDo, abort: [{ guard: 'pastPivot' }, ...rollBack(eventFailure)], interrupted: interruptedInDo } },
        undo: { on: { 'step.ok': advanceUndo, resume: advanceUndo, 'step.failed': failedInUndo, interrupted: interruptedInUndo } },
        cleanup: { on: { 'step.ok': advanceCleanup, resume: advanceCleanup, 'step.failed': failedInCleanup, interrupted: interruptedInCleanup } },
      },
    },
  },
});

export const workshopMachine = chart;
export type WorkshopSnapshot = SnapshotFrom<typeof chart>;

/** The chart's state value for the facts the fold holds. */
export function stateValueOf(ctx: WorkshopContext): string | Record<string, string> {
  if (ctx.op) return { busy: ctx.op.phase };
  if (!ctx.workshop) return 'absent';
  if (ctx.workshop.status === 'busy') return { busy: 'do' };
  return ctx.workshop.status;
}

/** Rebuild a chart snapshot from folded facts (no clock, no I/O). */
export function resolveWorkshop(ctx: WorkshopContext): WorkshopSnapshot {
  return chart.resolveState({ value: stateValueOf(ctx), context: ctx });
}

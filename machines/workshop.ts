/**
 * The workshop machine: decides every transition of a workshop and of the saga (op) it runs.
 *
 * It is pure. Its context is rebuilt from the folded state for each decision (`resolveWorkshop`),
 * an event goes in (a command, a step's outcome, an abort), and the decision comes out as named
 * actions with params (`startOp`, `request`, `enterPhase`, `finish`) that the engine journals and
 * then carries out. Guards and actions do no I/O and read no clock.
 *
 * @example
 * ```ts
 * const snap = resolveWorkshop({ name: 'nav2', workshop: null, op: null });
 * const d = decide(snap, { type: 'launch', op: 'op-1', plan });
 * d.actions; // [{ type: 'startOp', ... }, { type: 'request', params: { phase: 'do', step: 0, attempt: 1 } }]
 * ```
 */
import { setup, transition, enqueueActions, type SnapshotFrom } from 'xstate';
import type { OpKind, Phase, Plan, PlanStep } from '../events/catalogue.ts';
import { phaseSteps, undoSteps } from './plan.ts';

/** Attempts of a step that rolls forward (retry, undo, cleanup) before the op gives up. */
export const MAX_ATTEMPTS = 3;

export type WorkshopStatus = 'ready' | 'busy' | 'broken';

/** What the machine needs to know of a workshop (a slice of the folded state). */
export interface WorkshopFacts {
  readonly status: WorkshopStatus;
  readonly hasStash: boolean;
  readonly sdks: readonly string[];
  /** False when reconciliation found the workshop's instance missing. */
  readonly instancePresent: boolean;
  /** Transient containers running from the workshop or its layers (they depend on them). */
  readonly dependents?: number;
}

/** An op in progress, as the fold keeps it. */
export interface OpFacts {
  readonly id: string;
  readonly kind: OpKind;
  readonly plan: Plan;
  readonly phase: Phase;
  /** The step being run, or once it succeeded the next one to run, within the phase. */
  readonly step: number;
  readonly attempt: number;
  readonly undoFrom: number;
  readonly failure: { readonly code: string; readonly message: string } | null;
}

export interface WorkshopContext {
  readonly name: string;
  readonly workshop: WorkshopFacts | null;
  readonly op: OpFacts | null;
}

export type CommandEvent =
  | { type: 'launch'; op: string; plan: Plan }
  | { type: 'refresh'; op: string; plan: Plan }
  | { type: 'stash'; op: string; plan: Plan }
  | { type: 'unstash'; op: string; plan: Plan }
  | { type: 'restore'; op: string; plan: Plan; sdk: string }
  | { type: 'remove'; op: string; plan: Plan };

export type WorkshopEvent =
  | CommandEvent
  | { type: 'step.ok' }
  | { type: 'step.failed'; code: string; message: string }
  | { type: 'abort'; code: string; message: string }
  /** Reconciliation: continue an op found in progress at start-up. */
  | { type: 'resume' };

export type Decision =
  | { type: 'startOp'; params: { op: string; kind: OpKind; plan: Plan; sdk?: string } }
  | { type: 'request'; params: { phase: Phase; step: number; attempt: number } }
  | { type: 'enterPhase'; params: { phase: Phase; from?: number; reason: string; code?: string; message?: string } }
  | { type: 'finish'; params: { outcome: 'done' | 'undone' | 'broken'; code?: string; message?: string; leftovers?: boolean } };

export type RejectionCode = 'NOT_FOUND' | 'ALREADY_EXISTS' | 'BUSY' | 'FAILED_PRECONDITION';

/**
 * Why a command is not allowed now, or null when it is. The machine's guards use this same
 * function, so a command the engine lets through is one the machine accepts.
 */
export function rejection(ctx: WorkshopContext, cmd: CommandEvent['type'], sdk?: string): { code: RejectionCode; reason: string } | null {
  const ws = ctx.workshop;
  if (cmd === 'launch') {
    if (!ws) return null;
    return ws.status === 'busy' ? { code: 'BUSY', reason: 'is busy with another operation' } : { code: 'ALREADY_EXISTS', reason: 'already exists (refresh it, or remove it first)' };
  }
  if (!ws) return { code: 'NOT_FOUND', reason: 'does not exist (launch it first)' };
  if (ws.status === 'busy' || ctx.op) return { code: 'BUSY', reason: 'is busy with another operation (wait for it, or run reconcile)' };
  if (ws.dependents) return { code: 'FAILED_PRECONDITION', reason: `has ${ws.dependents} transient container(s) running from it (remove them first)` };
  if (cmd === 'remove') return null;
  if (!ws.instancePresent) return { code: 'FAILED_PRECONDITION', reason: 'has lost its instance on the backend; remove it and launch it again' };
  switch (cmd) {
    case 'refresh':
      // A refresh makes its own stash under the same names: it would overwrite the user's, and its
      // undo would drop it (found by the simulation: fixtures/simulate/refresh-keeps-stash).
      return ws.hasStash ? { code: 'FAILED_PRECONDITION', reason: 'has a stash (unstash it first)' } : null;
    case 'stash':
      if (ws.status === 'broken') return { code: 'FAILED_PRECONDITION', reason: 'is broken; refresh or remove it' };
      return ws.hasStash ? { code: 'FAILED_PRECONDITION', reason: 'already has a stash (unstash it first)' } : null;
    case 'unstash':
      return ws.hasStash ? null : { code: 'FAILED_PRECONDITION', reason: 'has no stash (stash it first)' };
    case 'restore':
      if (ws.status === 'broken') return { code: 'FAILED_PRECONDITION', reason: 'is broken; refresh or remove it' };
      if (ws.hasStash) return { code: 'FAILED_PRECONDITION', reason: 'has a stash (unstash it first)' };
      return sdk !== undefined && ws.sdks.includes(sdk) ? null : { code: 'NOT_FOUND', reason: `has no SDK layer "${sdk}"` };
  }
}

/** The decisions that follow one event in an op, computed purely from the op's facts. */
function next(op: OpFacts, event: WorkshopEvent): Decision[] {
  const steps = phaseSteps(op.plan, op.phase, op.undoFrom);
  const current: PlanStep | undefined = steps[op.step];
  const advance = (phase: Phase, from: number, failure: OpFacts['failure']): Decision[] => {
    const list = phaseSteps(op.plan, phase, op.undoFrom);
    if (from < list.length) return [{ type: 'request', params: { phase, step: from, attempt: 1 } }];
    if (phase === 'do' && op.plan.cleanup.length > 0) return [{ type: 'enterPhase', params: { phase: 'cleanup', reason: 'done' } }, { type: 'request', params: { phase: 'cleanup', step: 0, attempt: 1 } }];
    if (phase === 'undo') return [{ type: 'finish', params: { outcome: 'undone', code: failure?.code ?? 'OP_FAILED', message: failure?.message ?? 'failed' } }];
    return [{ type: 'finish', params: { outcome: 'done' } }];
  };
  // `from` is the last do step that may have taken effect: the failed one, or on an abort the one
  // that was running or next (after a crash nobody knows which). Compensations are idempotent, so
  // compensating a step that never ran costs a call, never correctness.
  const rollBack = (from: number, code: string, message: string): Decision[] => {
    const undo = undoSteps(op.plan, from);
    if (undo.length === 0) return [{ type: 'finish', params: { outcome: 'undone', code, message } }];
    return [{ type: 'enterPhase', params: { phase: 'undo', from, reason: 'rollback', code, message } }, { type: 'request', params: { phase: 'undo', step: 0, attempt: 1 } }];
  };
  switch (event.type) {
    case 'step.ok':
      // The fold has already moved `step` past the step that succeeded.
      return advance(op.phase, op.step, op.failure);
    case 'resume':
      return advance(op.phase, op.step, op.failure);
    case 'abort':
      // Past the pivot (a retried step), after the last do step, in undo or in clean-up, an abort
      // changes nothing: the op rolls on to a consistent end. Before, it is undone like a failure.
      if (op.phase !== 'do' || current?.retry || op.step >= op.plan.do.length) return [];
      return rollBack(op.step, event.code, event.message);
    case 'step.failed': {
      const rollsForward = op.phase !== 'do' || current?.retry === true;
      if (!rollsForward) return rollBack(op.step, event.code, event.message);
      if (op.attempt < MAX_ATTEMPTS) return [{ type: 'request', params: { phase: op.phase, step: op.step, attempt: op.attempt + 1 } }];
      // A clean-up that keeps failing leaves garbage for gc; it never undoes a finished op.
      if (op.phase === 'cleanup') {
        const rest = advance('cleanup', op.step + 1, null);
        return rest.map((d) => (d.type === 'finish' ? { type: 'finish', params: { ...d.params, leftovers: true } } : d));
      }
      return [{ type: 'finish', params: { outcome: 'broken', code: event.code, message: event.message } }];
    }
    default:
      return [];
  }
}

// setup() cannot type an enqueueActions body against its sibling actions (xstate types are
// circular there); the decisions are the named actions declared below, so the cast is sound.
const emit = (enqueue: unknown, d: Decision): void => (enqueue as (a: Decision) => void)(d);

const endsIn = (op: OpFacts | null, event: WorkshopEvent, where: 'absent' | 'ready' | 'broken' | 'undo' | 'cleanup' | 'stay'): boolean => {
  if (!op) return false;
  const ds = next(op, event);
  const fin = ds.find((d): d is Extract<Decision, { type: 'finish' }> => d.type === 'finish');
  const phase = ds.find((d): d is Extract<Decision, { type: 'enterPhase' }> => d.type === 'enterPhase');
  if (where === 'undo' || where === 'cleanup') return !fin && phase?.params.phase === where;
  if (where === 'stay') return !fin && !phase;
  if (!fin) return false;
  if (fin.params.outcome === 'broken') return where === 'broken';
  const shape = fin.params.outcome === 'done' ? op.plan.after : op.plan.before;
  return where === (shape === null ? 'absent' : 'ready');
};

const machine = setup({
  types: {} as { context: WorkshopContext; events: WorkshopEvent; input: WorkshopContext },
  guards: {
    allowed: ({ context, event }) => 'plan' in event && rejection(context, event.type as CommandEvent['type'], event.type === 'restore' ? event.sdk : undefined) === null,
    toAbsent: ({ context, event }) => endsIn(context.op, event, 'absent'),
    toReady: ({ context, event }) => endsIn(context.op, event, 'ready'),
    toBroken: ({ context, event }) => endsIn(context.op, event, 'broken'),
    toUndo: ({ context, event }) => endsIn(context.op, event, 'undo'),
    toCleanup: ({ context, event }) => endsIn(context.op, event, 'cleanup'),
    stays: ({ context, event }) => endsIn(context.op, event, 'stay'),
  },
  actions: {
    // Effect requests: declared here so they are named and typed; the engine executes them.
    startOp: (_, _params: Extract<Decision, { type: 'startOp' }>['params']) => {},
    request: (_, _params: Extract<Decision, { type: 'request' }>['params']) => {},
    enterPhase: (_, _params: Extract<Decision, { type: 'enterPhase' }>['params']) => {},
    finish: (_, _params: Extract<Decision, { type: 'finish' }>['params']) => {},
    start: enqueueActions(({ event, enqueue }) => {
      if (!('plan' in event)) return;
      emit(enqueue, { type: 'startOp', params: { op: event.op, kind: event.type, plan: event.plan, ...(event.type === 'restore' ? { sdk: event.sdk } : {}) } });
      emit(enqueue, { type: 'request', params: { phase: 'do', step: 0, attempt: 1 } });
    }),
    decide: enqueueActions(({ context, event, enqueue }) => {
      if (context.op) for (const d of next(context.op, event)) emit(enqueue, d);
    }),
  },
}).createMachine({
  id: 'workshop',
  context: ({ input }) => input,
  initial: 'absent',
  states: {
    absent: { on: { launch: { guard: 'allowed', target: 'busy.do', actions: 'start' } } },
    ready: {
      on: {
        refresh: { guard: 'allowed', target: 'busy.do', actions: 'start' },
        stash: { guard: 'allowed', target: 'busy.do', actions: 'start' },
        unstash: { guard: 'allowed', target: 'busy.do', actions: 'start' },
        restore: { guard: 'allowed', target: 'busy.do', actions: 'start' },
        remove: { guard: 'allowed', target: 'busy.do', actions: 'start' },
      },
    },
    broken: {
      on: {
        refresh: { guard: 'allowed', target: 'busy.do', actions: 'start' },
        unstash: { guard: 'allowed', target: 'busy.do', actions: 'start' },
        remove: { guard: 'allowed', target: 'busy.do', actions: 'start' },
      },
    },
    busy: {
      initial: 'do',
      states: { do: {}, undo: {}, cleanup: {} },
      on: Object.fromEntries(
        (['step.ok', 'step.failed', 'abort', 'resume'] as const).map((type) => [
          type,
          [
            { guard: 'toAbsent', target: '#workshop.absent', actions: 'decide' },
            { guard: 'toReady', target: '#workshop.ready', actions: 'decide' },
            { guard: 'toBroken', target: '#workshop.broken', actions: 'decide' },
            { guard: 'toUndo', target: '#workshop.busy.undo', actions: 'decide' },
            { guard: 'toCleanup', target: '#workshop.busy.cleanup', actions: 'decide' },
            { guard: 'stays', actions: 'decide' },
          ],
        ]),
      ),
    },
  },
});

export const workshopMachine = machine;
export type WorkshopSnapshot = SnapshotFrom<typeof machine>;

/** The machine's state value for the facts the fold holds. */
export function stateValueOf(ctx: WorkshopContext): string | Record<string, string> {
  if (ctx.op) return { busy: ctx.op.phase };
  if (!ctx.workshop) return 'absent';
  return ctx.workshop.status === 'broken' ? 'broken' : 'ready';
}

/** Rebuild a machine snapshot from folded facts (no clock, no I/O). */
export function resolveWorkshop(ctx: WorkshopContext): WorkshopSnapshot {
  return machine.resolveState({ value: stateValueOf(ctx), context: ctx });
}

/**
 * One pure decision: the snapshot after `event`, and the actions the engine must journal and run.
 * `accepted` is false when the machine had no transition for the event (an illegal command).
 */
export function decide(snapshot: WorkshopSnapshot, event: WorkshopEvent): { snapshot: WorkshopSnapshot; actions: Decision[]; accepted: boolean } {
  const [after, actions] = transition(machine, snapshot, event);
  const decisions = actions.filter((a): a is typeof a & Decision => ['startOp', 'request', 'enterPhase', 'finish'].includes(a.type)) as unknown as Decision[];
  const accepted = decisions.length > 0 || JSON.stringify(after.value) !== JSON.stringify(snapshot.value);
  return { snapshot: after, actions: decisions.map((d) => ({ type: d.type, params: d.params }) as Decision), accepted };
}

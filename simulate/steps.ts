/**
 * Steps: what one simulated command (or a pair run concurrently, or a reboot) is, as plain JSON,
 * so a failing run's steps can be written to a reproduction directory and replayed exactly.
 *
 * @example
 * ```ts
 * const step: Step = { type: 'cmd', ops: [{ do: 'refresh', workshop: 'alpha', change: 'middle' }], fault: { type: 'call', call: 'copy', nth: 2, when: 'after', action: 'crash' }, recovery: null };
 * ```
 */
import type { FaultPlan } from '../backends/fake/index.ts';
import type { BackendErrorCode, CallKind } from '../backends/types.ts';
import type { RefreshChange } from './specs.ts';

export type SimOp =
  | { readonly do: 'launch'; readonly workshop: string; readonly bad?: boolean }
  | { readonly do: 'refresh'; readonly workshop: string; readonly change: RefreshChange }
  | { readonly do: 'stash' | 'unstash' | 'remove' | 'run' | 'start' | 'stop'; readonly workshop: string }
  | { readonly do: 'restore'; readonly workshop: string; readonly sdk: number }
  | { readonly do: 'gc' };

/** A fault for one step, drawn from the run's seed. */
export type StepFault =
  | null
  /** The `nth` call of a kind fails (`fail`) or kills the engine (`crash`), before or after taking effect. */
  | { readonly type: 'call'; readonly call: CallKind | '*'; readonly nth: number; readonly when: 'before' | 'after'; readonly action: 'fail' | 'crash'; readonly code?: BackendErrorCode }
  /** Every mutating call may fail (mostly) or crash, with this probability: bursts that make undos fail three times. */
  | { readonly type: 'random'; readonly seed: number; readonly probability: number }
  /** The engine dies at its `nth` journal append of the step: before writing, after, or half-way through the write. */
  | { readonly type: 'append'; readonly nth: number; readonly mode: 'before' | 'after' | 'torn'; readonly fraction: number };

export type Step =
  | {
      readonly type: 'cmd';
      /** One op, or two run concurrently (on different workshops or the same one). */
      readonly ops: readonly SimOp[];
      readonly fault: StepFault;
      /** When the step crashed: random faults (this seed) during the reconciliation at restart. */
      readonly recovery: number | null;
      /** Concurrent steps: the interleaving choices (recorded when run, replayed when given). */
      readonly order?: readonly number[];
    }
  /** Host reboot: engine dropped, run directory wiped, transient processes gone; restart. */
  | { readonly type: 'reboot' }
  /** The engine dies between commands; restart. */
  | { readonly type: 'restart' };

const RANDOM_CODES: BackendErrorCode[] = ['NO_SPACE', 'BUSY', 'INTERNAL', 'NO_SPACE', 'BUSY'];

/** The fake's fault plan for a step's fault (append faults are not the fake's business). */
export function faultPlanOf(fault: StepFault): FaultPlan | null {
  if (!fault) return null;
  if (fault.type === 'call') return { rules: [{ call: fault.call, nth: fault.nth, when: fault.when, action: fault.action, ...(fault.code ? { code: fault.code } : {}) }] };
  if (fault.type === 'random') return { random: { seed: fault.seed, probability: fault.probability, actions: ['fail-before', 'fail-after', 'fail-before', 'fail-after', 'fail-before', 'fail-after', 'crash-before', 'crash-after'], codes: RANDOM_CODES } };
  return null;
}

/** Faults during reconciliation at a restart: failures only, so an undo can fail three times. */
export function recoveryPlanOf(seed: number | null): FaultPlan | null {
  if (seed === null) return null;
  return { random: { seed, probability: 0.25, actions: ['fail-before', 'fail-after', 'crash-after'], codes: RANDOM_CODES } };
}

export function describeStep(step: Step): string {
  if (step.type !== 'cmd') return step.type;
  const ops = step.ops.map((o) => (o.do === 'gc' ? 'gc' : `${o.do} ${o.workshop}${'change' in o ? `(${o.change})` : ''}${'sdk' in o ? `(#${o.sdk})` : ''}${'bad' in o && o.bad ? '(bad)' : ''}`)).join(' || ');
  const f = step.fault;
  const fault = !f ? '' : f.type === 'call' ? ` [${f.action} ${f.when} ${f.call}#${f.nth}${f.code ? ` ${f.code}` : ''}]` : f.type === 'random' ? ` [random p=${f.probability}]` : ` [crash ${f.mode} append#${f.nth}]`;
  return `${ops}${fault}${step.recovery !== null ? ' [recovery faults]' : ''}`;
}

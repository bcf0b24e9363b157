/**
 * The layer machine: the lifecycle of one backend object (a layer, or a workshop's instance) as the
 * engine accounts for it, and the reconciliation table of DESIGN.md as its guarded transitions.
 *
 * ```
 *   absent ──requested──► pending ──ok──► present ──remove requested──► removing ──ok──► absent
 *                           │                │                              │
 *                     observed (table)    missing ◄── inventory diff     observed (table)
 * ```
 * When an effect was requested but no outcome journaled (a crash), reconciliation probes the target
 * and sends `observed`; the state the machine lands in is the decision:
 *
 * | pending effect     | observed                        | decision     |
 * | ------------------ | ------------------------------- | ------------ |
 * | create / copy      | absent                          | redo         |
 * | create / copy      | present, op tag = this op       | done         |
 * | create / copy      | present, owned, other op        | delete-redo  |
 * | create / copy      | present, not owned              | fail         |
 * | refresh(-copy)     | op and step tags = this step's  | done         |
 * | refresh(-copy)     | otherwise                       | redo         |
 * | remove             | absent / present                | done / redo  |
 * | exec               | anything                        | unknown      |
 * | start / stop       | in the wanted status / not      | done / redo  |
 *
 * @example
 * ```ts
 * judgeProbe({ type: 'remove', target }, { present: false }, 'op-1'); // 'done'
 * ```
 */
import { setup, transition } from 'xstate';
import type { Effect, Observation, ProbeDecision } from '../events/catalogue.ts';

interface ProbeContext {
  readonly effect: Effect;
  readonly op: string;
}
type ProbeEvent = { type: 'observed'; observation: Observation };

const isCreate = (e: Effect) => (e.type === 'create' || e.type === 'copy') && !e.refresh;
const isRefresh = (e: Effect) => (e.type === 'create' || e.type === 'copy') && e.refresh === true;
const stepTag = (e: Effect): string | undefined => (e.type === 'create' || e.type === 'copy' ? e.tags.step : undefined);

const machine = setup({
  types: {} as { context: ProbeContext; events: ProbeEvent; input: ProbeContext },
  guards: {
    execUnknown: ({ context }) => context.effect.type === 'exec',
    notOwned: ({ context, event }) => context.effect.type !== 'remove' && event.observation.present && event.observation.owned === false,
    createDone: ({ context, event }) => isCreate(context.effect) && event.observation.present && event.observation.op === context.op,
    createConflict: ({ context, event }) => isCreate(context.effect) && event.observation.present,
    // The op tag alone cannot tell an op's two refreshes of one target apart (a refresh's rebuild
    // and its undo's unstash): the step tag says which one wrote it. Plans journaled before step
    // tags existed have none, and are judged by the op tag as they were.
    refreshDone: ({ context, event }) =>
      isRefresh(context.effect) && event.observation.present && event.observation.op === context.op &&
      (stepTag(context.effect) === undefined || event.observation.step === stepTag(context.effect)),
    removeDone: ({ context, event }) => context.effect.type === 'remove' && !event.observation.present,
    statusDone: ({ context, event }) =>
      event.observation.present &&
      ((context.effect.type === 'start' && event.observation.status === 'running') || (context.effect.type === 'stop' && event.observation.status === 'stopped')),
    statusAbsent: ({ context, event }) => (context.effect.type === 'start' || context.effect.type === 'stop') && !event.observation.present,
  },
}).createMachine({
  id: 'layer',
  context: ({ input }) => input,
  initial: 'pending',
  states: {
    pending: {
      on: {
        observed: [
          { guard: 'execUnknown', target: 'unknown' },
          { guard: 'notOwned', target: 'fail' },
          { guard: 'createDone', target: 'done' },
          { guard: 'createConflict', target: 'delete-redo' },
          { guard: 'refreshDone', target: 'done' },
          { guard: 'removeDone', target: 'done' },
          { guard: 'statusDone', target: 'done' },
          { guard: 'statusAbsent', target: 'fail' },
          { target: 'redo' },
        ],
      },
    },
    done: { type: 'final' },
    redo: { type: 'final' },
    'delete-redo': { type: 'final' },
    fail: { type: 'final' },
    unknown: { type: 'final' },
  },
});

export const layerMachine = machine;

/** Decide what a pending effect's probe means (pure). */
export function judgeProbe(effect: Effect, observation: Observation, op: string): ProbeDecision {
  const start = machine.resolveState({ value: 'pending', context: { effect, op } });
  const [after] = transition(machine, start, { type: 'observed', observation });
  return after.value as ProbeDecision;
}

/** Object states the fold records (the layer machine's resting states). */
export type ObjectState = 'pending' | 'present' | 'removing' | 'missing';

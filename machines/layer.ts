/**
 * The layer chart: the lifecycle of one backend object as atelier accounts for it (a layer, a
 * stash part, or a workshop's instance), and the reconciliation table as its guarded transitions.
 *
 * Two parallel regions. `life` is where the object is: `absent` (no record), `pending` (a create or
 * copy was requested), `present`, `removing` (a remove was requested), `missing` (reconciliation
 * found it gone behind atelier's back). `claim` is whether anything still holds it: `held`, or
 * `garbage` (a clean-up's leftover, a given-up op's stray stash copy, a part of a forgotten stash),
 * which gc and reconciliation remove. A lost part of a stash is not `missing`: the whole stash is
 * forgotten (`forgotten`), since it can no longer be returned to.
 *
 * Two kinds of events. Facts the fold applies (`requested`, `done`, `lost`, ...) carry no payload:
 * their transitions depend on the state alone, so `evolve` reads them from a table built from this
 * chart once (`lifeAfter`), not by running xstate per record. `observed` is a decision:
 * reconciliation probed a pending effect's target and the guards below (docs/design.md's table, one row
 * a transition) judge it; `decide` runs the chart for it and journals the row and the decision.
 *
 * | pending effect     | observed                        | decision     | row                  |
 * | ------------------ | ------------------------------- | ------------ | -------------------- |
 * | exec               | anything                        | unknown      | `exec`               |
 * | create / copy      | present, not owned              | fail         | `not-owned`          |
 * | create / copy      | present, op tag = this op       | done         | `create-done`        |
 * | create / copy      | present, owned, other op        | delete-redo  | `create-conflict`    |
 * | create / copy      | absent                          | redo         | `create-absent`      |
 * | refresh(-copy)     | op and step tags = this step's  | done         | `refresh-done`       |
 * | refresh(-copy)     | otherwise                       | redo         | `refresh-redo`       |
 * | remove             | absent / present                | done / redo  | `remove-done` / `remove-redo` |
 * | start / stop       | in the wanted status / not      | done / redo  | `status-done` / `status-redo` |
 * | start / stop       | instance absent                 | fail         | `status-absent`      |
 *
 * @example
 * ```ts
 * judgeProbe({ type: 'remove', target }, { present: false }, 'op-1'); // { decision: 'done', row: 'remove-done', life: 'absent' }
 * lifeAfter('pending', false, 'done');                                  // { life: 'present', garbage: false }
 * ```
 */
import { setup, stateIn, transition } from 'xstate';
import type { Effect, Observation, ProbeDecision } from './types.ts';
import type { ObjectState } from './state.ts';

/** What the fold applies to an object. */
export type LayerFact = 'requested' | 'remove' | 'done' | 'removed' | 'gone' | 'abandoned' | 'lost' | 'forgotten' | 'settled.present' | 'settled.absent';
export const LAYER_FACTS: readonly LayerFact[] = ['requested', 'remove', 'done', 'removed', 'gone', 'abandoned', 'lost', 'forgotten', 'settled.present', 'settled.absent'];

export type Life = ObjectState | 'absent';
export const LIVES: readonly Life[] = ['absent', 'pending', 'present', 'removing', 'missing'];

interface ProbeContext {
  readonly effect: Effect | null;
  readonly op: string;
}
type LayerEvent = { type: LayerFact } | { type: 'observed'; observation: Observation };
type Judged = { decision: ProbeDecision; row: string };

const isCreate = (e: Effect | null) => (e?.type === 'create' || e?.type === 'copy') && !e.refresh;
const isRefresh = (e: Effect | null) => (e?.type === 'create' || e?.type === 'copy') && e.refresh === true;
const stepTag = (e: Effect | null): string | undefined => (e?.type === 'create' || e?.type === 'copy' ? e.tags.step : undefined);
const seen = (e: LayerEvent): Observation => (e.type === 'observed' ? e.observation : { present: false });

const judge = (decision: ProbeDecision, row: string) => ({ type: 'judge' as const, params: { decision, row } });

const machine = setup({
  types: {} as { context: ProbeContext; events: LayerEvent; input: ProbeContext },
  guards: {
    exec: ({ context }) => context.effect?.type === 'exec',
    notOwned: ({ context, event }) => context.effect?.type !== 'remove' && seen(event).present && seen(event).owned === false,
    createDone: ({ context, event }) => isCreate(context.effect) && seen(event).present && seen(event).op === context.op,
    createConflict: ({ context, event }) => isCreate(context.effect) && seen(event).present,
    createAbsent: ({ context, event }) => isCreate(context.effect) && !seen(event).present,
    // The op tag alone cannot tell an op's two refreshes of one target apart (a refresh's rebuild
    // and its undo's unstash): the step tag says which one wrote it. Plans journaled before step
    // tags existed have none, and are judged by the op tag as they were.
    refreshDone: ({ context, event }) =>
      isRefresh(context.effect) && seen(event).present && seen(event).op === context.op && (stepTag(context.effect) === undefined || seen(event).step === stepTag(context.effect)),
    refresh: ({ context }) => isRefresh(context.effect),
    removeDone: ({ context, event }) => context.effect?.type === 'remove' && !seen(event).present,
    remove: ({ context }) => context.effect?.type === 'remove',
    statusDone: ({ context, event }) =>
      seen(event).present && ((context.effect?.type === 'start' && seen(event).status === 'running') || (context.effect?.type === 'stop' && seen(event).status === 'stopped')),
    statusAbsent: ({ context, event }) => (context.effect?.type === 'start' || context.effect?.type === 'stop') && !seen(event).present,
    inGarbage: stateIn({ claim: 'garbage' }),
  },
  actions: {
    judge: (_, _params: Judged) => {},
  },
}).createMachine({
  id: 'layer',
  type: 'parallel',
  context: ({ input }) => input,
  states: {
    life: {
      initial: 'absent',
      on: {
        // Facts that move an object wherever it is.
        done: '.present',
        removed: '.absent',
        forgotten: '.absent',
        'settled.present': '.present',
        'settled.absent': '.absent',
        lost: '.missing',
        // The reconciliation table: a pending effect's target, as probed. A decision moves the
        // object only where the row says what the backend holds.
        observed: [
          { guard: 'exec', actions: judge('unknown', 'exec') },
          { guard: 'notOwned', actions: judge('fail', 'not-owned') },
          { guard: 'createDone', target: '.present', actions: judge('done', 'create-done') },
          { guard: 'createConflict', actions: judge('delete-redo', 'create-conflict') },
          { guard: 'createAbsent', actions: judge('redo', 'create-absent') },
          { guard: 'refreshDone', target: '.present', actions: judge('done', 'refresh-done') },
          { guard: 'refresh', actions: judge('redo', 'refresh-redo') },
          { guard: 'removeDone', target: '.absent', actions: judge('done', 'remove-done') },
          { guard: 'remove', actions: judge('redo', 'remove-redo') },
          { guard: 'statusDone', actions: judge('done', 'status-done') },
          { guard: 'statusAbsent', actions: judge('fail', 'status-absent') },
          { actions: judge('redo', 'status-redo') },
        ],
      },
      states: {
        absent: { on: { requested: 'pending', done: 'absent', 'settled.present': 'absent', lost: 'absent' } },
        pending: {
          on: {
            requested: 'pending',
            remove: 'removing',
            gone: 'absent',
            // A create that never happened leaves nothing to account for (only a record still
            // pending: a refresh's target keeps its record).
            observed: { guard: 'createAbsent', target: 'absent', actions: judge('redo', 'create-absent') },
          },
        },
        present: {
          on: {
            // A leftover in the way of a new create is deleted and made again: pending, and no garbage.
            requested: [{ guard: 'inGarbage', target: 'pending' }, { target: 'present' }],
            remove: 'removing',
          },
        },
        removing: { on: { requested: 'pending', remove: 'removing' } },
        missing: { on: { requested: 'pending', remove: 'removing' } },
      },
    },
    claim: {
      initial: 'held',
      states: {
        held: { on: { abandoned: 'garbage' } },
        garbage: { on: { requested: 'held' } },
      },
    },
  },
});

export const layerMachine = machine;

type LayerValue = { life: Life; claim: 'held' | 'garbage' };

/**
 * Judge what a pending effect's probe means (pure), by the table above: the decision and the row
 * that made it.
 */
export function judgeProbe(effect: Effect, observation: Observation, op: string, life: Life = 'pending'): Judged & { life: Life } {
  const start = machine.resolveState({ value: { life, claim: 'held' }, context: { effect, op } });
  const [after, actions] = transition(machine, start, { type: 'observed', observation });
  const j = actions.find((a) => a.type === 'judge');
  const params = j!.params as Judged;
  return { decision: params.decision, row: params.row, life: (after.value as LayerValue).life };
}

type Moves = Readonly<Record<Life, readonly [Readonly<Record<LayerFact, LayerValue>>, Readonly<Record<LayerFact, LayerValue>>]>>;
let table: Moves | null = null;

/** Every state (life x claim) and fact, run through the chart once: the table `lifeAfter` reads. */
function tabulate(): Moves {
  const row = (l: Life, claim: 'held' | 'garbage') => {
    const out = {} as Record<LayerFact, LayerValue>;
    for (const f of LAYER_FACTS) {
      const s = machine.resolveState({ value: { life: l, claim }, context: { effect: null, op: '' } });
      const [after] = transition(machine, s, { type: f });
      out[f] = after.value as LayerValue;
    }
    return out;
  };
  return Object.fromEntries(LIVES.map((l) => [l, [row(l, 'held'), row(l, 'garbage')]])) as unknown as Moves;
}

/**
 * Where a fact takes an object in state `life` (`absent`: no record), garbage or not. Read from a
 * table built once from the chart (every state x every fact), so replaying a million records runs
 * no xstate transition.
 */
export function lifeAfter(life: Life, garbage: boolean, fact: LayerFact): { life: Life; garbage: boolean } {
  const v = moveOf(life, garbage, fact);
  return { life: v.life, garbage: v.claim === 'garbage' };
}

/** `lifeAfter` as the chart's state value, without allocating (what `evolve` reads per record). */
export function moveOf(life: Life, garbage: boolean, fact: LayerFact): { readonly life: Life; readonly claim: 'held' | 'garbage' } {
  table ??= tabulate();
  return table[life][garbage ? 1 : 0][fact];
}

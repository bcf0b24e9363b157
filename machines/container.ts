/**
 * The container chart: a transient container's lifecycle. Containers live only in the volatile
 * journal (the run directory, tmpfs): a reboot wipes it, and start-up reconciliation reclaims what
 * the backend still holds.
 *
 * ```
 *   absent ──create──► created ──start──► running ──remove──► removed
 *                         └──────────────remove───────────────────┘
 *   created, running ──lost──► removed     (reconciliation: the backend no longer has it)
 * ```
 * `remove` of a container that does not exist is refused (`NOT_FOUND`), as `lxc delete` refuses
 * an unknown instance. `evolve` applies the same chart, read from a table built from it once.
 *
 * @example
 * ```ts
 * containerAfter('created', 'start'); // 'running'
 * containerAfter('absent', 'start');  // null: not allowed
 * ```
 */
import { setup, transition } from 'xstate';

export type ContainerState = 'absent' | 'created' | 'running' | 'removed';
export type ContainerFact = 'create' | 'start' | 'remove' | 'lost';
const STATES: readonly ContainerState[] = ['absent', 'created', 'running', 'removed'];
const FACTS: readonly ContainerFact[] = ['create', 'start', 'remove', 'lost'];

const machine = setup({ types: {} as { events: { type: ContainerFact } } }).createMachine({
  id: 'container',
  initial: 'absent',
  states: {
    absent: { on: { create: 'created' } },
    created: { on: { start: 'running', remove: 'removed', lost: 'removed' } },
    running: { on: { remove: 'removed', lost: 'removed' } },
    removed: { type: 'final' },
  },
});

export const containerMachine = machine;

let table: Map<string, ContainerState | null> | null = null;

/** The state after `fact`, or null when the chart does not allow it (read from the chart, once). */
export function containerAfter(state: ContainerState, fact: ContainerFact): ContainerState | null {
  if (table === null) {
    const t = new Map<string, ContainerState | null>();
    for (const s of STATES)
      for (const f of FACTS) {
        const snap = machine.resolveState({ value: s, context: undefined as never });
        if (!snap.can({ type: f })) {
          t.set(`${s}|${f}`, null);
          continue;
        }
        const [after] = transition(machine, snap, { type: f });
        t.set(`${s}|${f}`, after.value as ContainerState);
      }
    table = t;
  }
  return table.get(`${state}|${fact}`) ?? null;
}

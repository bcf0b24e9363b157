/**
 * The container machine: a transient (`--rm`) container's lifecycle. Containers live only in the
 * volatile journal; a reboot wipes that journal, and start-up gc reclaims the backend leftovers.
 *
 * ```
 *   absent ──create──► created ──start──► running ──exec done / remove──► removed
 *                         └───────────────remove────────────────────────────┘
 * ```
 * @example
 * ```ts
 * containerNext('created', 'start'); // 'running'
 * containerNext('absent', 'start');  // null: not allowed
 * ```
 */
import { setup, transition } from 'xstate';

export type ContainerState = 'absent' | 'created' | 'running' | 'removed';
export type ContainerEvent = 'create' | 'start' | 'remove';

const machine = setup({ types: {} as { events: { type: ContainerEvent } } }).createMachine({
  id: 'container',
  initial: 'absent',
  states: {
    absent: { on: { create: 'created' } },
    created: { on: { start: 'running', remove: 'removed' } },
    running: { on: { remove: 'removed' } },
    removed: { type: 'final' },
  },
});

export const containerMachine = machine;

/** The state after `event`, or null when the machine does not allow it. */
export function containerNext(state: ContainerState, event: ContainerEvent): ContainerState | null {
  const snap = machine.resolveState({ value: state, context: undefined as never });
  if (!snap.can({ type: event })) return null;
  const [after] = transition(machine, snap, { type: event });
  return after.value as ContainerState;
}

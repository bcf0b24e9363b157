/**
 * The golden view of a folded journal: what a journal *means*, as canonical JSON, compared byte for
 * byte with `fixtures/journals/<case>/folded.json`.
 *
 * It holds the whole folded state (workshops, objects, ops in progress, transient containers) with
 * one change: an op in progress shows the steps of the phase it is in and the step it is at, not
 * the fold's private bookkeeping of how it finds them (a plan copy and an index into a list the
 * fold computes). Those steps are what reconciliation will run next, so they belong to the
 * meaning; how the fold stores them does not.
 */
import { phaseStepsOf, type FoldState, type VolatileState } from '../../machines/index.ts';

export function goldenView(fold: FoldState, volatile: VolatileState): string {
  const ops = Object.fromEntries(
    Object.entries(fold.ops).map(([id, op]) => {
      const { plan, undo, ...rest } = op;
      const steps = phaseStepsOf(op);
      return [id, { ...rest, steps: steps.map((s) => s.label), current: steps[op.step] ?? null }];
    }),
  );
  const view = { seq: fold.seq, workshops: fold.workshops, objects: fold.objects, ops, volatile: { seq: volatile.seq, containers: volatile.containers } };
  return `${sortedJson(view)}\n`;
}

/** JSON with object keys sorted and two-space indents: equal meanings give identical bytes, and a diff reads. */
export function sortedJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]])) : v), 2);
}

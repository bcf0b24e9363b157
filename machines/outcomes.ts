/**
 * What an ending means for a workshop's shape and its objects: the rules `decide` applies when an
 * op finishes or reconciliation finds an object gone, and journals as the event's payload.
 *
 * The version-1 upcasters (`events/upcast.ts`) apply these same rules to records that did not
 * carry their outcome. The golden journals (`fixtures/journals`) hold them to it: change a rule
 * here and those tests fail; keep the old rule beside the upcaster then, and change it here.
 *
 * @example
 * ```ts
 * const shape = shapeAfter(op, 'broken', state); // the shape a given-up op leaves its workshop with
 * ```
 */
import type { ObjectRef, StashShape, WorkshopShape } from './types.ts';
import { objectKey } from './types.ts';
import { layerRef } from './plan.ts';
import { stashName, stashSdkName } from './names.ts';
import { shapeOf, stashLayerNames, type FoldState, type OpRecord } from './state.ts';

/**
 * The shape a workshop is left with when its op gives up half-way: what lets the user repair it.
 * A launch keeps what it meant to make; a refresh, stash or restore whose stash exists keeps it
 * (so `unstash` can return to it), naming the SDK copies a stash or refresh made.
 */
export function brokenShape(op: Pick<OpRecord, 'id' | 'kind' | 'plan'>, current: WorkshopShape, objects: FoldState['objects']): WorkshopShape {
  const plan = op.plan;
  const base = plan.before ?? plan.after ?? current;
  const stashLayer = stashName(base.instance);
  const hasStash = objects[`layers/${stashLayer}`] !== undefined;
  switch (op.kind) {
    case 'launch':
      return plan.after ?? current;
    case 'refresh':
    case 'stash':
    case 'restore': {
      if (!hasStash) return base;
      const sdkLayers: StashShape['sdkLayers'] = base.sdks.map((l) => {
        const copy = stashSdkName(l.layer);
        return { ...l, copy: op.kind !== 'restore' && objects[`layers/${copy}`] ? copy : null };
      });
      return { ...base, stash: { layer: stashLayer, sdkLayers, op: op.id } };
    }
    default:
      return base;
  }
}

/** The shape an op leaves its workshop with, by outcome (null: the workshop is gone). */
export function shapeAfter(op: OpRecord, outcome: 'done' | 'undone' | 'broken', s: FoldState): WorkshopShape | null {
  if (outcome === 'done') return op.plan.after;
  if (outcome === 'undone') return op.plan.before;
  return brokenShape(op, shapeOf(s.workshops[op.workshop]!), s.objects);
}

/**
 * Objects nobody will return to once an op ends: a finished op's clean-up targets still accounted
 * for (whichever clean-up step gave up: fixtures/simulate/cleanup-leftovers-marked), and the stash
 * copies a given-up op made that the shape it leaves does not name (its undo stopped before
 * dropping them). gc and reconciliation remove them.
 */
export function garbageAfter(op: OpRecord, outcome: 'done' | 'undone' | 'broken', shape: WorkshopShape | null, s: FoldState): ObjectRef[] {
  const out: ObjectRef[] = [];
  if (outcome === 'done') for (const step of op.plan.cleanup) if (s.objects[objectKey(step.effect.target)]) out.push(step.effect.target);
  if (outcome === 'broken' && shape !== null) {
    const named = new Set(shape.stash ? stashLayerNames(shape.stash) : []);
    for (const o of Object.values(s.objects)) if (o.op === op.id && (o.kind === 'stash' || o.kind === 'stash-sdk') && !named.has(o.ref.name)) out.push(o.ref);
  }
  return out;
}

/** The parts of a workshop's stash (all of them become garbage when one is lost). */
export function stashParts(stash: StashShape | null): ObjectRef[] {
  return stash ? stashLayerNames(stash).map(layerRef) : [];
}

/** A workshop's last error once an op ends with `status`. */
export function lastErrorAfter(
  opId: string,
  outcome: 'done' | 'undone' | 'broken',
  status: string,
  failure: { code?: string; message?: string },
  previous: { op: string; code: string; message: string } | null,
): { op: string; code: string; message: string } | null {
  if (outcome !== 'done') return { op: opId, code: failure.code ?? 'OP_FAILED', message: failure.message ?? '' };
  return status === 'ready' ? null : previous;
}

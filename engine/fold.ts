/**
 * The state fold: `evolve(state, record)` applies one journal record. State is the fold of the
 * journal and nothing else; every decision it applies was made by a machine and recorded in the
 * event, so the fold never decides, never reads a clock and never does I/O.
 *
 * `evolve` mutates what it is given: the engine passes an immer draft at run time (one `produce`
 * per appended batch) and a private plain object during replay, which is why replaying a million
 * records costs no proxy or copy per event.
 *
 * @example
 * ```ts
 * const s = initialState();
 * for (const r of records) evolve(s, r);
 * canonicalJson(s) === canonicalJson(replayAgain); // same journal, same bytes
 * ```
 */
import type { ObjectKind, ObjectRef, Identity } from '../backends/types.ts';
import type { JournalRecord, OpKind, Phase, Plan, SdkLayer, StashShape, WorkshopShape } from '../events/catalogue.ts';
import type { ObjectState } from '../machines/layer.ts';
import { isDraft, original } from 'immer';
import type { PlanStep } from '../events/catalogue.ts';
import { phaseSteps } from '../machines/plan.ts';
import { stashName, stashSdkName } from './names.ts';
import type { OpFacts } from '../machines/workshop.ts';
import type { WorkshopStatus } from './api.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export interface ObjectRecord {
  readonly ref: ObjectRef;
  kind: ObjectKind;
  workshop?: string;
  op: string;
  state: ObjectState;
  /** Left behind by a clean-up that kept failing: gc removes it. */
  garbage?: boolean;
}

export interface OpRecord extends Mutable<OpFacts> {
  readonly workshop: string;
  readonly startedAt: string;
  readonly sdk?: string;
  /** An effect was requested and no outcome is journaled yet. */
  pending: boolean;
}

export interface WorkshopRecord extends WorkshopShape {
  readonly name: string;
  status: WorkshopStatus;
  identity: Identity | null;
  op: { id: string; kind: OpKind; phase: Phase } | null;
  lastError: { op: string; code: string; message: string } | null;
  instancePresent: boolean;
  readonly createdAt: string;
  updatedAt: string;
}

export interface FoldState {
  seq: number;
  workshops: Record<string, WorkshopRecord>;
  ops: Record<string, OpRecord>;
  /** Every backend object the state accounts for, by `objectKey`. */
  objects: Record<string, ObjectRecord>;
}

export interface ContainerRecord {
  readonly id: string;
  readonly ref: ObjectRef;
  readonly source: ObjectRef;
  readonly scratch?: string;
  /** Kept after its script (not `--rm`): only a kept container outlives the command that ran it. */
  readonly keep?: boolean;
  readonly op: string;
  status: 'created' | 'running';
}

/** What the volatile journal folds to: transient containers only. */
export interface VolatileState {
  seq: number;
  containers: Record<string, ContainerRecord>;
}

export const initialState = (): FoldState => ({ seq: 0, workshops: {}, ops: {}, objects: {} });
export const initialVolatile = (): VolatileState => ({ seq: 0, containers: {} });
export const objectKey = (ref: ObjectRef): string => `${ref.space}/${ref.name}`;

function shapeOf(ws: WorkshopRecord): WorkshopShape {
  return { instance: ws.instance, projectId: ws.projectId, base: ws.base, defaultBase: ws.defaultBase, sdks: ws.sdks, stash: ws.stash };
}

function setShape(ws: WorkshopRecord, shape: WorkshopShape): void {
  const w = ws as Mutable<WorkshopRecord>;
  w.instance = shape.instance;
  w.projectId = shape.projectId;
  w.base = shape.base;
  w.defaultBase = shape.defaultBase;
  w.sdks = shape.sdks;
  w.stash = shape.stash;
}

/** The shape a workshop is left with when its op gives up half-way: what lets the user repair it. */
function brokenShape(op: OpRecord, current: WorkshopShape, objects: FoldState['objects']): WorkshopShape {
  const plan = planOf(op);
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
      const sdkLayers: StashShape['sdkLayers'] = base.sdks.map((l: SdkLayer) => {
        const copy = stashSdkName(l.layer);
        return { ...l, copy: op.kind !== 'restore' && objects[`layers/${copy}`] ? copy : null };
      });
      return { ...base, stash: { layer: stashLayer, sdkLayers, op: op.id } };
    }
    default:
      return base;
  }
}

/**
 * An op's plan as journaled, never an immer draft. Plans never change once journaled, and the
 * live fold reads ops through a draft: reading the plan through it too would make a proxy of
 * every step and effect it touches (and immer finalize them all), for nothing.
 */
function planOf(op: OpRecord): Plan {
  return isDraft(op) ? (original(op as never) as OpRecord).plan : op.plan;
}

/**
 * The undo phase's steps by plan, for the `undoFrom` they were built for: `undoSteps` builds a new
 * array each call, and a long undo would rebuild it for every record of its phase. Plans are
 * immutable once journaled.
 */
const undoCache = new WeakMap<Plan, { readonly from: number; readonly steps: readonly PlanStep[] }>();

/** `phaseSteps(op.plan, phase, op.undoFrom)`, with the undo phase's steps cached. */
function stepsOf(op: OpRecord, phase: Phase): readonly PlanStep[] {
  const plan = planOf(op);
  if (phase !== 'undo') return phaseSteps(plan, phase, op.undoFrom);
  const hit = undoCache.get(plan);
  if (hit !== undefined && hit.from === op.undoFrom) return hit.steps;
  const steps = phaseSteps(plan, phase, op.undoFrom);
  undoCache.set(plan, { from: op.undoFrom, steps });
  return steps;
}

function applyEffectOutcome(s: FoldState, op: OpRecord, phase: Phase, step: number, identity: Identity | undefined): void {
  const effect = stepsOf(op, phase)[step]?.effect;
  if (!effect) return;
  const key = 'target' in effect ? objectKey(effect.target) : '';
  if (effect.type === 'create' || effect.type === 'copy') {
    const o = s.objects[key];
    if (o) o.state = 'present';
    const ws = s.workshops[op.workshop];
    if (ws && identity && effect.tags.kind === 'workshop') ws.identity = identity;
  } else if (effect.type === 'remove') {
    delete s.objects[key];
  }
}

/** The layers a stash is made of: the workshop's copy and the SDK layers' copies. */
export function stashLayerNames(stash: StashShape): string[] {
  return [stash.layer, ...stash.sdkLayers.flatMap((l) => (l.copy ? [l.copy] : []))];
}

/** A stash with a part lost cannot be returned to: forget it; its other parts are garbage (for gc). */
function forgetStash(s: FoldState, ws: WorkshopRecord): void {
  if (!ws.stash) return;
  for (const name of stashLayerNames(ws.stash)) {
    const other = s.objects[`layers/${name}`];
    if (other) other.garbage = true;
  }
  (ws as Mutable<WorkshopRecord>).stash = null;
}

/**
 * An op that gave up half-way may leave stash copies it made that the shape it leaves does not
 * name (its undo stopped before dropping them): nothing will return to them, so they are garbage
 * (gc and reconciliation remove them).
 */
function markStrayStashes(s: FoldState, op: string, shape: WorkshopShape): void {
  const named = new Set(shape.stash ? stashLayerNames(shape.stash) : []);
  for (const o of Object.values(s.objects)) {
    if (o.op === op && (o.kind === 'stash' || o.kind === 'stash-sdk') && !named.has(o.ref.name)) o.garbage = true;
  }
}

/** Every SDK layer of `shape` is accounted for and not known to be missing. */
export function layersHeld(shape: WorkshopShape, objects: FoldState['objects']): boolean {
  return shape.sdks.every((l) => {
    const o = objects[`layers/${l.layer}`];
    return o !== undefined && o.state !== 'missing';
  });
}

/** Apply one record to the durable state. */
export function evolve(s: FoldState, r: JournalRecord): void {
  s.seq = r.seq;
  switch (r.type) {
    case 'op.started': {
      const d = r.data;
      const op: OpRecord = { id: d.op, kind: d.kind, plan: d.plan, phase: 'do', step: 0, attempt: 1, undoFrom: 0, failure: null, workshop: d.workshop, startedAt: d.at, pending: false };
      // Added last, as the spread it replaces did (same keys, same order).
      if (d.sdk) (op as Mutable<OpRecord>).sdk = d.sdk;
      s.ops[d.op] = op;
      const ws = s.workshops[d.workshop];
      if (!ws) {
        const shape = d.plan.after!;
        s.workshops[d.workshop] = {
          name: d.workshop,
          ...shape,
          sdks: [],
          stash: null,
          status: 'busy',
          identity: null,
          op: { id: d.op, kind: d.kind, phase: 'do' },
          lastError: null,
          instancePresent: true,
          createdAt: d.at,
          updatedAt: d.at,
        };
      } else {
        ws.status = 'busy';
        ws.op = { id: d.op, kind: d.kind, phase: 'do' };
        ws.updatedAt = d.at;
      }
      return;
    }
    case 'effect.requested': {
      const d = r.data;
      const op = s.ops[d.op];
      if (!op) return;
      op.phase = d.phase;
      op.step = d.step;
      op.attempt = d.attempt;
      op.pending = true;
      const effect = stepsOf(op, d.phase)[d.step]?.effect;
      if (!effect) return;
      if (effect.type === 'create' || effect.type === 'copy') {
        const key = objectKey(effect.target);
        const o = s.objects[key];
        if (o) {
          o.op = effect.tags.op;
          if (o.garbage) {
            // A leftover an earlier op gave up on, in the way of this create (which deletes and
            // redoes it): what this op makes is no garbage, or gc would remove it.
            delete o.garbage;
            o.state = 'pending';
          } else if (o.state !== 'present') o.state = 'pending';
        } else {
          s.objects[key] = { ref: effect.target, kind: effect.tags.kind, workshop: op.workshop, op: effect.tags.op, state: 'pending' };
        }
      } else if (effect.type === 'remove') {
        const o = s.objects[objectKey(effect.target)];
        if (o) o.state = 'removing';
      }
      return;
    }
    case 'effect.succeeded': {
      const d = r.data;
      const op = s.ops[d.op];
      if (!op) return;
      op.pending = false;
      op.step = d.step + 1;
      applyEffectOutcome(s, op, d.phase, d.step, d.identity);
      return;
    }
    case 'effect.failed': {
      const op = s.ops[r.data.op];
      if (!op) return;
      op.pending = false;
      op.failure = { code: r.data.code, message: r.data.message };
      return;
    }
    case 'effect.observed': {
      const d = r.data;
      const op = s.ops[d.op];
      if (!op) return;
      op.pending = false;
      const effect = stepsOf(op, d.phase)[d.step]?.effect;
      if (d.decision === 'done') {
        op.step = d.step + 1;
        applyEffectOutcome(s, op, d.phase, d.step, undefined);
      } else if (effect && (effect.type === 'create' || effect.type === 'copy') && !effect.refresh && !d.observation.present) {
        // The create never happened: there is nothing to account for.
        const key = objectKey(effect.target);
        if (s.objects[key]?.state === 'pending') delete s.objects[key];
      } else if (d.decision === 'fail' || d.decision === 'unknown') {
        op.failure = { code: d.decision === 'fail' ? 'NOT_OWNED' : 'INTERRUPTED', message: `outcome of step ${d.step} (${d.phase}) could not be confirmed` };
      }
      return;
    }
    case 'op.phase': {
      const d = r.data;
      const op = s.ops[d.op];
      if (!op) return;
      op.phase = d.phase;
      op.step = 0;
      op.attempt = 1;
      if (d.phase === 'undo') op.undoFrom = d.from ?? 0;
      if (d.code) op.failure = { code: d.code, message: d.message ?? d.reason };
      const ws = s.workshops[op.workshop];
      if (ws?.op) ws.op.phase = d.phase;
      return;
    }
    case 'op.finished': {
      const d = r.data;
      const op = s.ops[d.op];
      if (!op) return;
      delete s.ops[d.op];
      const ws = s.workshops[op.workshop];
      if (!ws) return;
      const plan = planOf(op);
      const shape = d.outcome === 'done' ? plan.after : d.outcome === 'undone' ? plan.before : brokenShape(op, shapeOf(ws), s.objects);
      for (const ref of d.leftovers ?? []) {
        const o = s.objects[objectKey(ref)];
        if (o) o.garbage = true;
      }
      if (shape === null) {
        delete s.workshops[op.workshop];
        return;
      }
      if (d.outcome === 'broken') markStrayStashes(s, d.op, shape);
      setShape(ws, shape);
      ws.op = null;
      ws.updatedAt = d.at;
      // Undone returns the workshop to its shape before the op, and with it to broken if that
      // shape lacked a layer (a failed repair of a broken workshop repairs nothing).
      ws.status = d.outcome === 'broken' || !ws.instancePresent || (d.outcome === 'undone' && !layersHeld(shape, s.objects)) ? 'broken' : 'ready';
      if (d.outcome !== 'done') ws.lastError = { op: d.op, code: d.code ?? 'OP_FAILED', message: d.message ?? '' };
      else if (ws.status === 'ready') ws.lastError = null;
      return;
    }
    case 'object.orphan-removed':
      delete s.objects[objectKey(r.data.object.ref)];
      return;
    case 'object.missing': {
      const { object, at } = r.data;
      const key = objectKey(object.ref);
      const o = s.objects[key];
      if (o) o.state = 'missing';
      const ws = object.workshop ? s.workshops[object.workshop] : undefined;
      if (!ws) return;
      ws.updatedAt = at;
      if (object.kind === 'stash' || object.kind === 'stash-sdk') {
        forgetStash(s, ws);
        delete s.objects[key];
        return;
      }
      if (object.kind === 'workshop') ws.instancePresent = false;
      ws.status = 'broken';
      ws.lastError = { op: object.op ?? '', code: 'MISSING', message: `${object.ref.space}/${object.ref.name} is missing on the backend` };
      return;
    }
    case 'object.settled': {
      const key = objectKey(r.data.object.ref);
      const o = s.objects[key];
      if (!o) return;
      if (r.data.present) {
        o.state = 'present';
        return;
      }
      delete s.objects[key];
      // A given-up op may have left its workshop's stash naming the object (a broken stash op
      // whose undo removed the stash but never heard so): a stash with a part gone is forgotten.
      // (A layer or instance so settled is left to the broken workshop's repair: a refresh
      // rebuilds what is absent.)
      const ws = o.workshop ? s.workshops[o.workshop] : undefined;
      const name = o.ref.name;
      if (ws?.stash && stashLayerNames(ws.stash).includes(name)) {
        forgetStash(s, ws);
        ws.updatedAt = r.data.at;
      }
      return;
    }
    case 'engine.reconciled':
      return;
    default:
      return;
  }
}

/** Apply one record to the volatile state (transient containers). */
export function evolveVolatile(s: VolatileState, r: JournalRecord): void {
  s.seq = r.seq;
  switch (r.type) {
    case 'container.created':
      s.containers[r.data.id] = { id: r.data.id, ref: r.data.ref, source: r.data.source, op: r.data.op, status: 'created', ...(r.data.scratch ? { scratch: r.data.scratch } : {}), ...(r.data.keep ? { keep: true } : {}) };
      return;
    case 'container.started': {
      const c = s.containers[r.data.id];
      if (c) c.status = 'running';
      return;
    }
    case 'container.removed':
      delete s.containers[r.data.id];
      return;
    default:
      return;
  }
}

/** JSON with object keys sorted, so equal states give identical bytes. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]])) : v,
  );
}


/**
 * The folded state: what the journal says, as `evolve` (`evolve.ts`) builds it and `decide`
 * (`decide.ts`) reads it. Two parts: the durable state (workshops, ops in progress, every backend
 * object atelier accounts for) and the volatile state (transient containers, from the journal in
 * the run directory).
 *
 * The shape is versioned (`STATE_SCHEMA`): checkpoints store it, and a checkpoint of an older
 * schema is brought up to date when read (`events/upcast.ts`).
 *
 * @example
 * ```ts
 * const s = initialState();
 * for (const e of events) evolve(s, e);
 * canonicalJson(s); // equal journals, equal bytes
 * ```
 */
import type { Identity, ObjectKind, ObjectRef, OpKind, Phase, Plan, PlanStep, StashShape, WorkshopShape } from './types.ts';

/** The durable state's shape version. 2: ops hold their undo steps (`OpRecord.undo`), not an index. */
export const STATE_SCHEMA = 2;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** An object's place in its lifecycle (the layer chart's `life` region, `layer.ts`). */
export type ObjectState = 'pending' | 'present' | 'removing' | 'missing';

export interface ObjectRecord {
  readonly ref: ObjectRef;
  kind: ObjectKind;
  workshop?: string;
  op: string;
  state: ObjectState;
  /** Nobody holds it any more (the layer chart's `claim` region): gc and reconciliation remove it. */
  garbage?: boolean;
  /** A shared SDK layer (`cache.ts`): held by reference, never one workshop's (no `workshop`). */
  shared?: true;
  /** A shared layer's parent layer (the SDK before it in the chain). */
  parent?: string;
  /** A shared layer: when the last op that named it began (the cache evicts the least recently used). */
  usedAt?: string;
}

export type WorkshopStatus = 'ready' | 'busy' | 'broken';

/** An op in progress. */
export interface OpRecord {
  readonly id: string;
  readonly kind: OpKind;
  readonly plan: Plan;
  readonly workshop: string;
  readonly startedAt: string;
  readonly sdk?: string;
  phase: Phase;
  /** The step being run, or once it succeeded the next one to run, within the phase. */
  step: number;
  attempt: number;
  /** The undo phase's steps, as journaled when the op entered it (null before). */
  undo: readonly PlanStep[] | null;
  failure: { readonly code: string; readonly message: string } | null;
  /** An effect was requested and no outcome is journaled yet. */
  pending: boolean;
}

export interface WorkshopRecord extends Mutable<WorkshopShape> {
  readonly name: string;
  status: WorkshopStatus;
  identity: Identity | null;
  op: { id: string; kind: OpKind; phase: Phase } | null;
  lastError: { op: string; code: string; message: string } | null;
  /** False once reconciliation found the workshop's instance missing. */
  instancePresent: boolean;
  /**
   * Whether the workshop is wanted running (`atelier start` / launch, refresh, stash, unstash and
   * restore, which end with a start) or stopped (`atelier stop`), as the last finished op decided.
   * Absent until an op planned with a wanted status finishes (journals from before start and stop
   * were commands record none): such a workshop is left as it is found. Reconciliation starts a
   * workshop wanted running that it finds stopped (a host reboot), like Docker's `unless-stopped`.
   */
  running?: boolean;
  readonly createdAt: string;
  updatedAt: string;
}

export interface FoldState {
  schema: number;
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

/** Both parts, as `decide` reads them. */
export interface DomainState {
  readonly durable: FoldState;
  readonly volatile: VolatileState;
}

export const initialState = (): FoldState => ({ schema: STATE_SCHEMA, seq: 0, workshops: {}, ops: {}, objects: {} });
export const initialVolatile = (): VolatileState => ({ seq: 0, containers: {} });

/** The steps of the phase an op is in. */
export function phaseStepsOf(op: Pick<OpRecord, 'plan' | 'phase' | 'undo'>): readonly PlanStep[] {
  return op.phase === 'do' ? op.plan.do : op.phase === 'cleanup' ? op.plan.cleanup : (op.undo ?? []);
}

/** The step an op is at (requested, or next), or undefined past the phase's last. */
export function currentStep(op: Pick<OpRecord, 'plan' | 'phase' | 'undo' | 'step'>): PlanStep | undefined {
  return phaseStepsOf(op)[op.step];
}

/** A workshop's shape (its record without status and bookkeeping). */
export function shapeOf(ws: WorkshopShape): WorkshopShape {
  return { instance: ws.instance, projectId: ws.projectId, base: ws.base, defaultBase: ws.defaultBase, sdks: ws.sdks, stash: ws.stash };
}

/** The layers a stash is made of: the workshop's copy and the SDK layers' copies. */
export function stashLayerNames(stash: StashShape): string[] {
  return [stash.layer, ...stash.sdkLayers.flatMap((l) => (l.copy ? [l.copy] : []))];
}

/** Every SDK layer of `shape` is accounted for and not known to be missing. */
export function layersHeld(shape: WorkshopShape, objects: FoldState['objects']): boolean {
  return shape.sdks.every((l) => {
    const o = objects[`layers/${l.layer}`];
    return o !== undefined && o.state !== 'missing';
  });
}

/** JSON with object keys sorted, so equal states give identical bytes. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]])) : v,
  );
}

/**
 * The domain events: what `decide` returns and `evolve` applies, one discriminated union on `type`,
 * in their current shapes. The journal stores them as records (`events/catalogue.ts` adds the
 * sequence number, schema version and key, and the upcasters that read older versions).
 *
 * Events carry every decision made when they were written: op ids, generated names and time, the
 * step the saga chose next, the undo phase's steps, how an op ended and what the workshop became,
 * what reconciliation concluded and which row of its table made it. Folding them never decides.
 *
 * @example
 * ```ts
 * const e: DomainEvent = { type: 'effect.failed', data: { op: 'op-1', phase: 'do', step: 2, at, code: 'EXEC_FAILED', message: 'exit 1' } };
 * ```
 */
import type { Identity, ObjectDescriptor, ObjectRef, Observation, OpKind, Phase, Plan, PlanStep, ProbeDecision, WorkshopShape, WorkshopSpec } from './types.ts';
import type { WorkshopStatus } from './state.ts';

type Ev<T extends string, D> = { readonly type: T; readonly data: D };

/** A workshop's last error, as the state keeps it. */
export interface LastError {
  readonly op: string;
  readonly code: string;
  readonly message: string;
}

/** What became of a workshop when something about it was decided: its status and last error. */
export interface WorkshopOutcome {
  /** `absent`: the workshop no longer exists (a removed workshop, an undone launch). */
  readonly status: Exclude<WorkshopStatus, 'busy'> | 'absent';
  readonly lastError: LastError | null;
}

export type DomainEvent =
  /** `reason`: why reconciliation started the op itself (a workshop wanted running found stopped). */
  | Ev<'op.started', { op: string; kind: OpKind; workshop: string; plan: Plan; at: string; spec?: WorkshopSpec; sdk?: string; reason?: string }>
  | Ev<'effect.requested', { op: string; phase: Phase; step: number; attempt: number; at: string }>
  | Ev<'effect.succeeded', { op: string; phase: Phase; step: number; at: string; identity?: Identity }>
  | Ev<'effect.failed', { op: string; phase: Phase; step: number; at: string; code: string; message: string }>
  /**
   * Reconciliation probed a pending effect's target. `row` names the row of the reconciliation
   * table that decided (`layer.ts`); `failure`, when set, is what the op now failed with.
   */
  | Ev<'effect.observed', { op: string; phase: Phase; step: number; at: string; observation: Observation; decision: ProbeDecision; row: string; failure?: { code: string; message: string } }>
  /** The op enters a phase; entering `undo` journals the undo phase's steps (`steps`). */
  | Ev<'op.phase', { op: string; phase: Phase; at: string; reason: string; from?: number; code?: string; message?: string; steps?: readonly PlanStep[] }>
  /**
   * The op ended. `shape` is the workshop's shape from now on (null with status `absent`);
   * `garbage` the objects nobody will return to (a clean-up's leftovers, a given-up op's stray
   * stash copies): gc removes them. `running`: the status the workshop is wanted in from now on,
   * when the op's plan recorded one (absent: unchanged).
   */
  | Ev<'op.finished', { op: string; outcome: 'done' | 'undone' | 'broken'; at: string; code?: string; message?: string; shape: WorkshopShape | null; garbage: readonly ObjectRef[]; running?: boolean } & WorkshopOutcome>
  | Ev<'object.orphan-removed', { object: ObjectDescriptor; at: string }>
  /**
   * Reconciliation found an object the state holds missing on the backend. A lost part of a stash
   * forgets the stash (`forgetStash`: its other parts become garbage); a lost instance or layer
   * breaks the workshop (`workshop`, with `instanceLost` for the instance).
   */
  | Ev<'object.missing', { object: ObjectDescriptor; at: string; forgetStash?: readonly ObjectRef[]; workshop?: WorkshopOutcome & { instanceLost: boolean } }>
  /**
   * Reconciliation found where an object left `pending` or `removing` by a given-up op really is.
   * A stash that named an object now absent is forgotten (`forgetStash`, its other parts garbage).
   */
  | Ev<'object.settled', { object: ObjectDescriptor; present: boolean; at: string; forgetStash?: readonly ObjectRef[]; unconfirmed?: boolean }>
  /**
   * The SDK cache lets a shared layer nobody holds go (`reason`: its policy, or `atelier gc --cache`):
   * journaled before the backend removes it (the layer is `removing`, never reused from here).
   */
  | Ev<'cache.evicting', { object: ObjectDescriptor; at: string; reason: 'policy' | 'gc' }>
  /** An eviction's removal ended: the layer is gone, or (`kept`) the backend still holds it and it is a cache entry again. */
  | Ev<'cache.evicted', { object: ObjectDescriptor; at: string; kept?: boolean }>
  | Ev<'engine.reconciled', { at: string; pending: number; orphans: number; missing: number; restarted?: number }>
  // Volatile journal only: transient containers.
  | Ev<'container.created', { id: string; ref: ObjectRef; source: ObjectRef; scratch?: string; keep?: boolean; op: string; at: string }>
  | Ev<'container.started', { id: string; at: string }>
  | Ev<'container.removed', { id: string; at: string }>;

export type DomainEventType = DomainEvent['type'];
export type DomainEventOf<T extends DomainEventType> = Extract<DomainEvent, { type: T }>;

/** An event with its entity key (workshop name, container id, `engine`): what `decide` returns. */
export type KeyedEvent = DomainEvent & { readonly key: string };

/** Events recorded in the volatile journal (run directory, no fsync), not the durable one. */
export const isVolatileEvent = (e: { type: string }): boolean => e.type.startsWith('container.');

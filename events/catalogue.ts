/**
 * The event catalogue: every record atelier journals, as one discriminated union on `type`.
 *
 * Each event type has a current schema version (`EVENT_VERSIONS`). Records of older versions are
 * upcast when read (`events/upcast.ts`); a record of a newer version is a `JOURNAL_VERSION` error.
 *
 * Events carry every decision made when they were written (op ids, generated layer names, time,
 * the step the saga chose next), so folding a journal never regenerates anything.
 *
 * @example
 * ```ts
 * const input: EventInput = { type: 'op.finished', key: 'nav2', data: { op: 'op-1', outcome: 'done', at: '2026-11-23T00:00:00.000Z' } };
 * await journal.append([input]);
 * ```
 */
import type { ObjectRef, Tags, ObjectKind, Identity } from '../backends/types.ts';

/** A side effect the machines ask the engine to carry out on the backend. */
export type Effect =
  | { readonly type: 'create'; readonly target: ObjectRef; readonly base: string; readonly tags: Tags; readonly refresh?: boolean }
  | { readonly type: 'copy'; readonly source: ObjectRef; readonly target: ObjectRef; readonly tags: Tags; readonly refresh?: boolean }
  | { readonly type: 'remove'; readonly target: ObjectRef }
  | { readonly type: 'start'; readonly target: ObjectRef }
  | { readonly type: 'stop'; readonly target: ObjectRef }
  | { readonly type: 'exec'; readonly target: ObjectRef; readonly sdk: string; readonly script: string };

export type OpKind = 'launch' | 'refresh' | 'stash' | 'unstash' | 'restore' | 'remove';

/** One SDK as resolved from a workshop file. */
export interface SdkSpec {
  readonly name: string;
  /** Content hash: name + setup-base + parent's hash. */
  readonly hash: string;
  /** The `setup-base` script. */
  readonly script: string;
}

/** A workshop as a command asks for it (validated, SDKs resolved). */
export interface WorkshopSpec {
  readonly name: string;
  readonly base: string;
  /** True when the file named no base and the backend's default was used. */
  readonly defaultBase: boolean;
  readonly projectId: string;
  readonly sdks: readonly SdkSpec[];
}

/** An SDK layer a workshop holds. */
export interface SdkLayer {
  readonly sdk: string;
  readonly hash: string;
  readonly layer: string;
}

/** The workshop as it is once an op has finished successfully. */
export interface WorkshopShape {
  readonly instance: string;
  readonly projectId: string;
  readonly base: string;
  readonly defaultBase: boolean;
  readonly sdks: readonly SdkLayer[];
  readonly stash: StashShape | null;
}

export interface StashShape {
  readonly layer: string;
  /** The SDK layers the workshop had when stashed, each with its stash-sdk copy (null: not copied, kept as is). */
  readonly sdkLayers: readonly (SdkLayer & { readonly copy: string | null })[];
  readonly op: string;
}

/**
 * One step of a saga: what to do, how to compensate for it, and whether a failure rolls forward.
 *
 * `undo` lists the steps that compensate for this one; every compensation is idempotent and safe
 * whether or not this step took effect (a call can fail after acting). `retry` marks a step past
 * the saga's pivot: its failure is retried rather than undone.
 */
export interface PlanStep {
  readonly effect: Effect;
  /** Short label for progress output and traces, e.g. `stash`, `setup-base ros2`. */
  readonly label: string;
  readonly undo?: readonly PlanStep[];
  readonly retry?: boolean;
}

/**
 * The whole saga of one op, decided when the command is accepted: the `do` steps, and the
 * `cleanup` steps run after them (a cleanup failure never undoes the op). The undo phase is not
 * stored: it is the compensations of do steps 0..k in reverse, k being the step that failed,
 * computed by `undoSteps(plan, k)` in `machines/plan.ts`.
 */
export interface Plan {
  readonly do: readonly PlanStep[];
  readonly cleanup: readonly PlanStep[];
  /** The shape the workshop has once `do` completed (null when the op removes it). */
  readonly after: WorkshopShape | null;
  /** The shape the workshop has once `undo` completed (null when it did not exist before). */
  readonly before: WorkshopShape | null;
}

export type Phase = 'do' | 'undo' | 'cleanup';

/** What reconciliation saw of an effect's target. */
export interface Observation {
  readonly present: boolean;
  readonly owned?: boolean;
  readonly op?: string;
  /** The target's `step` tag: which refresh of its op last wrote it (see `machines/plan.ts`). */
  readonly step?: string;
  readonly status?: 'running' | 'stopped';
}

/** How reconciliation judged a pending effect (DESIGN.md's table). */
export type ProbeDecision = 'done' | 'redo' | 'delete-redo' | 'fail' | 'unknown';

export interface ObjectDescriptor {
  readonly ref: ObjectRef;
  readonly kind: ObjectKind;
  readonly workshop?: string;
  readonly op?: string;
}

type Ev<T extends string, D> = { readonly type: T; readonly data: D };

export type AtelierEvent =
  | Ev<'op.started', { op: string; kind: OpKind; workshop: string; plan: Plan; at: string; spec?: WorkshopSpec; sdk?: string }>
  | Ev<'effect.requested', { op: string; phase: Phase; step: number; attempt: number; at: string }>
  | Ev<'effect.succeeded', { op: string; phase: Phase; step: number; at: string; identity?: Identity }>
  | Ev<'effect.failed', { op: string; phase: Phase; step: number; at: string; code: string; message: string }>
  | Ev<'effect.observed', { op: string; phase: Phase; step: number; at: string; observation: Observation; decision: ProbeDecision }>
  | Ev<'op.phase', { op: string; phase: Phase; at: string; reason: string; from?: number; code?: string; message?: string }>
  | Ev<'op.finished', { op: string; outcome: 'done' | 'undone' | 'broken'; at: string; code?: string; message?: string; leftovers?: ObjectRef[] }>
  | Ev<'object.orphan-removed', { object: ObjectDescriptor; at: string }>
  | Ev<'object.missing', { object: ObjectDescriptor; at: string }>
  /** Reconciliation found where an object left `pending` or `removing` by a given-up op really is. */
  | Ev<'object.settled', { object: ObjectDescriptor; present: boolean; at: string }>
  | Ev<'engine.reconciled', { at: string; pending: number; orphans: number; missing: number }>
  // Volatile journal only: transient containers.
  | Ev<'container.created', { id: string; ref: ObjectRef; source: ObjectRef; scratch?: string; keep?: boolean; op: string; at: string }>
  | Ev<'container.started', { id: string; at: string }>
  | Ev<'container.removed', { id: string; at: string }>;

export type EventType = AtelierEvent['type'];
export type EventOf<T extends EventType> = Extract<AtelierEvent, { type: T }>;

/** Current schema version of each event type. Bump it and add an upcaster when a shape changes. */
export const EVENT_VERSIONS: { readonly [T in EventType]: number } = {
  'op.started': 1,
  'effect.requested': 1,
  'effect.succeeded': 1,
  'effect.failed': 1,
  'effect.observed': 1,
  'op.phase': 1,
  'op.finished': 1,
  'object.orphan-removed': 1,
  'object.missing': 1,
  'object.settled': 1,
  'engine.reconciled': 1,
  'container.created': 1,
  'container.started': 1,
  'container.removed': 1,
};

/** What a caller appends: the journal assigns `seq` and `v`. `key` is the entity (workshop name, container id, `engine`). */
export type EventInput = AtelierEvent & { readonly key: string };

/**
 * One journal record, as stored (one JSON object a line):
 * `{"seq":12,"v":1,"type":"op.started","key":"nav2","data":{...},"crc":"1a2b3c4d"}`.
 * `crc` is the CRC-32 (hex) of the line's bytes before `,"crc"`, so `jq` reads records as they are.
 */
export type JournalRecord = AtelierEvent & { readonly seq: number; readonly v: number; readonly key: string };

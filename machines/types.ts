/**
 * The domain's words as types: workshops, SDKs, layers, the objects a backend holds, and the plans
 * (sagas) that commands compile to. The backend port (`backends/types.ts`) and the event catalogue
 * (`events/catalogue.ts`) speak in these terms; this file imports nothing.
 *
 * @example
 * ```ts
 * const ref: ObjectRef = { space: 'layers', name: 'ros2-0123456789abcdef' };
 * const step: PlanStep = { label: 'start', effect: { type: 'start', target: { space: 'workshops', name: 'nav2-1a2b3c4d' } } };
 * ```
 */

/** Where an object lives: instances in `workshops`, layers in `layers`. */
export type Space = 'workshops' | 'layers';

/** What an object is for. `workshop` and `container` are instances; the rest are layers. */
export type ObjectKind = 'workshop' | 'container' | 'sdk' | 'stash' | 'stash-sdk';

/** Names one object. */
export interface ObjectRef {
  readonly space: Space;
  readonly name: string;
}

/**
 * Tags stored with an object. `owner`, `op` and `kind` are always set by atelier; the others when
 * they apply. Adapters store them verbatim (LXD: `user.atelier.<key>`).
 */
export interface Tags {
  owner: string;
  op: string;
  kind: ObjectKind;
  workshop?: string;
  project?: string;
  sdk?: string;
  sdkHash?: string;
  /** For transient containers: the object they were created from. */
  source?: string;
  /** A shared SDK layer's content key (`machines/cache.ts`): set on shared layers only. */
  cache?: string;
  /** A shared SDK layer's parent: the shared layer of the SDK before it (none for the first). */
  parent?: string;
  [key: string]: string | undefined;
}

/** What a copy never carries and a refresh-copy keeps. */
export interface Identity {
  readonly mac: string;
  readonly uuid: string;
}

export type Status = 'running' | 'stopped';

/** A side effect the machines ask the engine to carry out on the backend. */
export type Effect =
  | { readonly type: 'create'; readonly target: ObjectRef; readonly base: string; readonly tags: Tags; readonly refresh?: boolean }
  /** `resetIdentity`: the target instance is seeded from a shared layer and gets its own identity files (`CopyRequest`). */
  | { readonly type: 'copy'; readonly source: ObjectRef; readonly target: ObjectRef; readonly tags: Tags; readonly refresh?: boolean; readonly resetIdentity?: boolean }
  | { readonly type: 'remove'; readonly target: ObjectRef }
  | { readonly type: 'start'; readonly target: ObjectRef }
  | { readonly type: 'stop'; readonly target: ObjectRef }
  | { readonly type: 'exec'; readonly target: ObjectRef; readonly sdk: string; readonly script: string };

export type OpKind = 'launch' | 'refresh' | 'stash' | 'unstash' | 'restore' | 'remove' | 'start' | 'stop';

/** One SDK as resolved from a workshop file. */
export interface SdkSpec {
  readonly name: string;
  /** Content hash: name + setup-base + parent's hash. */
  readonly hash: string;
  /** The `setup-base` script. */
  readonly script: string;
  /**
   * The shared layer this SDK's chain on the workshop's base is cached as (`<sdk>-<key>`,
   * `machines/cache.ts`), named by the engine from the base's fingerprint. Absent in specs journaled
   * before the SDK cache (and for a base the backend does not know): the layer is then the
   * workshop's own, `<sdk>-<random suffix>`.
   */
  readonly layer?: string;
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

/** The workshop as it is once an op has finished: its instance, base, SDK layers and stash. */
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
 * `cleanup` steps run after them (a cleanup failure never undoes the op). The undo phase is decided
 * when a step fails, and journaled with its steps (`op.phase`).
 */
export interface Plan {
  readonly do: readonly PlanStep[];
  readonly cleanup: readonly PlanStep[];
  /** The shape the workshop has once `do` completed (null when the op removes it). */
  readonly after: WorkshopShape | null;
  /** The shape the workshop has once `undo` completed (null when it did not exist before). */
  readonly before: WorkshopShape | null;
  /**
   * Whether the workshop is wanted running once the op is done: false for `stop`, true for every
   * other op that keeps the workshop (their plans end with a start). Absent in plans journaled
   * before start and stop were commands: what those leave is not recorded.
   */
  readonly running?: boolean;
}

export type Phase = 'do' | 'undo' | 'cleanup';

/** What reconciliation saw of an effect's target. */
export interface Observation {
  readonly present: boolean;
  readonly owned?: boolean;
  readonly op?: string;
  /** The target's `step` tag: which refresh of its op last wrote it (see `plan.ts`). */
  readonly step?: string;
  readonly status?: Status;
}

/** How reconciliation judged a pending effect (the reconciliation table, `layer.ts`). */
export type ProbeDecision = 'done' | 'redo' | 'delete-redo' | 'fail' | 'unknown';

/** An object as events describe it. */
export interface ObjectDescriptor {
  readonly ref: ObjectRef;
  readonly kind: ObjectKind;
  readonly workshop?: string;
  readonly op?: string;
}

/** `space/name`: how the state keys objects. */
export const objectKey = (ref: ObjectRef): string => `${ref.space}/${ref.name}`;

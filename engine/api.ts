/**
 * The engine's public surface: what `openEngine` returns and takes.
 *
 * @example
 * ```ts
 * import { openEngine, loadWorkshopFile } from 'atelier';
 * import { createFakeBackend } from 'atelier/backends/fake';
 * const engine = await openEngine({ stateDir: '/tmp/st', runDir: '/tmp/run', backend: createFakeBackend({ seed: 1 }) });
 * const spec = await loadWorkshopFile('fixtures/quickstart/workshop.yaml', { defaultBase: engine.backend.defaultBase });
 * await engine.launch(spec);
 * engine.state$.subscribe((s) => console.log(Object.keys(s.workshops)));
 * await engine.close();
 * ```
 */
import type { Observable } from 'rxjs';
import type { Backend, Identity, ObjectRef } from '../backends/types.ts';
import type { JournalRecord, OpKind, Phase, WorkshopShape, WorkshopSpec } from '../events/catalogue.ts';

/** Where ids come from. Injected so runs are reproducible; every id is recorded in the journal. */
export interface IdSource {
  /** A new op id, unique in this state directory. */
  opId(): string;
  /** 16 characters from [0-9a-f] for an SDK layer's name. */
  layerSuffix(): string;
  /** A new transient container id (lowercase letters and digits). */
  containerId(): string;
}

/** Where time comes from: an ISO-8601 timestamp. */
export type Clock = () => string;

export interface EngineOptions {
  /** Holds the journal, checkpoints and the lock. Created if missing. */
  stateDir: string;
  /** Holds the volatile journal (transient containers). Default `$XDG_RUNTIME_DIR/atelier` or `/run/atelier`. */
  runDir?: string;
  backend: Backend;
  /** Whose workshops these are. Default: the current user name, or the numeric uid if it is not a valid name. */
  owner?: string;
  clock?: Clock;
  ids?: IdSource;
  /** Write a checkpoint after this many journal records (default 10,000). */
  checkpointEvery?: number;
  /** Reconcile with the backend while opening (default true). */
  reconcile?: boolean;
  /**
   * fdatasync the journal on the event loop instead of the thread pool (default false): only for
   * a state directory on tmpfs (a simulation's), where the thread pool's round trip costs more
   * than the fdatasync. See `JournalOptions.syncInline`.
   */
  syncInline?: boolean;
}

export interface Progress {
  readonly op: string;
  readonly kind: OpKind;
  readonly workshop: string;
  readonly phase: Phase;
  /** Index of the step within its phase. */
  readonly step: number;
  readonly total: number;
  readonly label: string;
  readonly status: 'started' | 'done' | 'failed';
  readonly at: string;
}

export interface CommandOptions {
  /** Aborting undoes the command like a failure (`ABORTED`). */
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

export type WorkshopStatus = 'ready' | 'busy' | 'broken';

/** A workshop as the state holds it: its shape (instance, base, SDK layers, stash) and status. */
export interface WorkshopView extends WorkshopShape {
  readonly name: string;
  readonly status: WorkshopStatus;
  readonly identity: Identity | null;
  /** The op in progress (status `busy` or `broken`). */
  readonly op: { readonly id: string; readonly kind: OpKind; readonly phase: Phase } | null;
  readonly lastError: { readonly op: string; readonly code: string; readonly message: string } | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface ContainerView {
  readonly id: string;
  readonly ref: ObjectRef;
  readonly source: ObjectRef;
  readonly scratch?: string;
  readonly status: 'created' | 'running';
}

/** The whole state, immutable (immer-frozen). */
export interface EngineState {
  readonly seq: number;
  readonly owner: string;
  readonly workshops: Readonly<Record<string, WorkshopView>>;
  readonly containers: Readonly<Record<string, ContainerView>>;
}

export interface RunRequest {
  /** A workshop name, or a layer name (`<sdk>-<suffix>`). */
  from: string;
  /** Script run with `sh -eu` in the container; omitted: the container is only created and started. */
  script?: string;
  /** Share this scratch key's writable layer with other containers (reference-counted). */
  scratch?: string;
  /** Keep the container after the script (remove it later with `removeContainer`). Default false (`--rm`). */
  keep?: boolean;
}

export interface RunResult {
  readonly id: string;
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface GcReport {
  /** Owned backend objects no journaled entity accounts for (removed unless dryRun). */
  readonly orphans: readonly ObjectRef[];
  readonly dryRun: boolean;
}

export interface ReconcileReport {
  readonly pending: number;
  readonly orphans: number;
  readonly missing: number;
}

export interface Engine {
  readonly backend: Backend;
  readonly owner: string;
  launch(spec: WorkshopSpec, opts?: CommandOptions): Promise<WorkshopView>;
  refresh(spec: WorkshopSpec, opts?: CommandOptions): Promise<WorkshopView>;
  stash(name: string, opts?: CommandOptions): Promise<WorkshopView>;
  unstash(name: string, opts?: CommandOptions): Promise<WorkshopView>;
  restore(name: string, sdk: string, opts?: CommandOptions): Promise<WorkshopView>;
  remove(name: string, opts?: CommandOptions): Promise<void>;
  run(req: RunRequest, opts?: CommandOptions): Promise<RunResult>;
  removeContainer(id: string): Promise<void>;
  gc(opts?: { dryRun?: boolean }): Promise<GcReport>;
  reconcile(): Promise<ReconcileReport>;
  list(): WorkshopView[];
  /** Throws `NOT_FOUND` when there is no such workshop. */
  show(name: string): WorkshopView;
  readonly state: EngineState;
  readonly state$: Observable<EngineState>;
  readonly events$: Observable<JournalRecord>;
  close(): Promise<void>;
}

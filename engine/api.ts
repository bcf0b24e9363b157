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
import type { Backend, SpawnedProcess } from '../backends/types.ts';
import type { ExecRequest } from './exec.ts';
export type { ExecRequest } from './exec.ts';
import type { JournalRecord } from '../events/catalogue.ts';
import type { Identity, IdSupply, ObjectRef, OpKind, Phase, WorkshopShape, WorkshopSpec, WorkshopStatus } from '../machines/index.ts';

export type { WorkshopStatus };

/** Where ids come from. Injected so runs are reproducible; every id is recorded in the journal. */
export type IdSource = IdSupply;

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
  /**
   * The free-space watermark, in bytes (default 32 MiB): while the journal's disk or the backend's
   * has less free, the engine is degraded (`space.ts`): commands that make things are refused with
   * `NO_SPACE`; remove and gc still work.
   */
  minFreeBytes?: number;
  /**
   * The SDK cache's policy (`--cache-keep`): how many shared SDK layers nobody holds to keep for
   * reuse (`{ count }`), or how many bytes of them (`{ bytes }`), least recently used evicted first.
   * Default `{ count: 10 }`. `engine/cache.ts` `parseCacheKeep` reads the option's text.
   */
  cacheKeep?: { readonly count?: number; readonly bytes?: number };
  /**
   * Share SDK layers across workshops (default true). False: every SDK layer a command makes is the
   * workshop's own (`<sdk>-<random suffix>`), as before the SDK cache, for hooks whose results must
   * not be shared (a secret baked into a layer). Layers already shared stay shared.
   */
  sdkCache?: boolean;
}

/** One disk the engine writes to, as last measured. */
export interface DiskReport {
  /** `journal`: the state directory's (journal, checkpoints); `backend`: where the backend keeps its objects. */
  readonly disk: 'journal' | 'backend';
  /** The state directory; the backend's `DiskSpace.where` (a store directory, `lxd:<pool>`, `memory`). */
  readonly where: string;
  readonly total: number;
  readonly free: number;
  /** Less than `minFree` is free (or, for the journal's, its reserve is spent). */
  readonly full: boolean;
}

/** The disks and whether the engine is degraded (`Engine.space`). */
export interface SpaceReport {
  readonly disks: readonly DiskReport[];
  readonly minFree: number;
  /** null unless a disk is full: then which, and the words the refusals use. */
  readonly degraded: { readonly full: readonly DiskReport['disk'][]; readonly message: string } | null;
}

/** What `atelier df` shows: the disks, and the space held by each object and by the journal. */
export interface UsageReport extends SpaceReport {
  /** Every owned object the backend holds, with what it holds (null: the backend cannot tell). */
  readonly objects: readonly {
    readonly ref: ObjectRef;
    /** `workshop`, `container`, `sdk`, `stash`, `stash-sdk`. */
    readonly kind: string;
    /** The workshop it belongs to (its tag, or the state's record), null for an orphan or a shared layer. */
    readonly workshop: string | null;
    readonly bytes: number | null;
    /** A shared SDK layer (the SDK cache): the workshops holding it, sorted; empty for a cache entry nobody holds. */
    readonly shared?: readonly string[];
  }[];
  /** The journal's own files: segments (with their preallocated filler), checkpoints, reserve. */
  readonly journal: { readonly dir: string; readonly bytes: number; readonly reserve: number };
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
  /**
   * Called once the command is accepted and its op journaled (`op.started`; for `run`,
   * `container.created`), with the op id: what a daemon reports as the change's id before the
   * command ends. A refused command never calls it.
   */
  onOp?: (op: string) => void;
}

/** A journal record as the engine publishes it: from the durable journal, or the volatile one (transient containers). Each journal numbers its records on its own. */
export type JournalEvent = JournalRecord & { readonly journal: 'durable' | 'volatile' };

/** Where to resume a stream of records: the last sequence number seen of each journal (0 or absent: from the start). */
export interface EventCursor {
  readonly after?: number;
  readonly volatileAfter?: number;
}

/** A workshop as the state holds it: its shape (instance, base, SDK layers, stash) and status. */
export interface WorkshopView extends WorkshopShape {
  readonly name: string;
  readonly status: WorkshopStatus;
  readonly identity: Identity | null;
  /** The op in progress (status `busy` or `broken`). */
  readonly op: { readonly id: string; readonly kind: OpKind; readonly phase: Phase } | null;
  readonly lastError: { readonly op: string; readonly code: string; readonly message: string } | null;
  /** Wanted running (true) or stopped (false) as its last op decided; absent when a journal from before `start`/`stop` recorded none. */
  readonly running?: boolean;
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
  /** With `cache`: the shared SDK layers nobody holds, evicted from the cache (unless dryRun). */
  readonly evicted?: readonly ObjectRef[];
  readonly dryRun: boolean;
}

export interface ReconcileReport {
  readonly pending: number;
  readonly orphans: number;
  readonly missing: number;
  /** Workshops wanted running that were found stopped and started again (absent: none). */
  readonly restarted?: number;
}

/**
 * An open engine: one state directory, one backend. Commands on one workshop are serialised;
 * different workshops proceed concurrently; `gc` and `reconcile` run alone. Every command takes an
 * `AbortSignal` (`opts.signal`): an aborted command is undone like a failed one.
 *
 * Errors are `AtelierError`s with a `code` (`machines/errors.ts`). Every command may also throw
 * `CLOSED` (the engine was closed) and `UNAVAILABLE` (the backend stopped answering).
 */
export interface Engine {
  /** The backend the engine was opened on (its `kind`, its `defaultBase`). */
  readonly backend: Backend;
  /** Whose workshops these are: the owner tag of every object the engine makes. */
  readonly owner: string;

  /**
   * Create a workshop from its spec: the instance from the base, each SDK's `setup-base` then a
   * snapshot layer, start. On failure everything it made is removed.
   *
   * @throws `ALREADY_EXISTS`, `BUSY`, `INVALID_NAME`; `OP_FAILED` (undone), `ABORTED`, `BROKEN`.
   * @example
   * ```ts
   * const ws = await engine.launch(await loadWorkshopFile('workshop.yaml', { defaultBase: engine.backend.defaultBase }));
   * ws.status; // 'ready'
   * ```
   */
  launch(spec: WorkshopSpec, opts?: CommandOptions): Promise<WorkshopView>;
  /**
   * Bring a workshop up to date with its spec: keep the longest prefix of unchanged SDK layers,
   * stash, rebuild in place (same identity), run the remaining hooks, drop the stash. A failure is
   * undone from the stash.
   *
   * @throws `NOT_FOUND`, `BUSY`, `FAILED_PRECONDITION` (a stash to unstash first, a lost instance,
   *   kept containers running from it); `OP_FAILED`, `ABORTED`, `BROKEN`.
   * @example
   * ```ts
   * const ws = await engine.refresh(spec); // ws.sdks: the reused layers, then the rebuilt ones
   * ```
   */
  refresh(spec: WorkshopSpec, opts?: CommandOptions): Promise<WorkshopView>;
  /**
   * Copy the workshop and its SDK layers aside (what a refresh does first), for `unstash`.
   *
   * @throws `NOT_FOUND`, `BUSY`, `FAILED_PRECONDITION` (already stashed, broken); `OP_FAILED`, `ABORTED`.
   * @example
   * ```ts
   * (await engine.stash('nav2')).stash?.layer; // 'stash-nav2-1a2b3c4d'
   * ```
   */
  stash(name: string, opts?: CommandOptions): Promise<WorkshopView>;
  /**
   * Put the stashed copy back over the workshop (keeping its identity) and drop the stash. Past
   * its first step it cannot be undone: it rolls forward, and reconciliation finishes it after a crash.
   *
   * @throws `NOT_FOUND`, `BUSY`, `FAILED_PRECONDITION` (no stash); `OP_FAILED`, `BROKEN`.
   * @example
   * ```ts
   * await engine.unstash('nav2');
   * ```
   */
  unstash(name: string, opts?: CommandOptions): Promise<WorkshopView>;
  /**
   * Reset the workshop's root filesystem to an SDK's layer (its state right after that SDK's
   * `setup-base`), keeping its identity and every layer.
   *
   * @throws `NOT_FOUND` (workshop or SDK, with a did-you-mean), `BUSY`, `FAILED_PRECONDITION`
   *   (stashed, broken); `OP_FAILED`, `ABORTED`.
   * @example
   * ```ts
   * await engine.restore('nav2', 'ros2');
   * ```
   */
  restore(name: string, sdk: string, opts?: CommandOptions): Promise<WorkshopView>;
  /**
   * Delete the workshop, its SDK layers, any stash, and whatever of it a given-up op left. Rolls
   * forward: every step is retried.
   *
   * @throws `NOT_FOUND`, `BUSY`, `FAILED_PRECONDITION` (kept containers running from it); `BROKEN`.
   * @example
   * ```ts
   * await engine.remove('nav2');
   * ```
   */
  remove(name: string, opts?: CommandOptions): Promise<void>;
  /**
   * Start the workshop's container (an op of one step, journaled) and record that it is wanted
   * running: reconciliation starts it again if it finds it stopped (after a host reboot).
   * Starting a running workshop is accepted and changes nothing.
   *
   * @throws `NOT_FOUND`, `BUSY`, `FAILED_PRECONDITION` (its instance lost); `OP_FAILED`.
   * @example
   * ```ts
   * (await engine.start('nav2')).running; // true
   * ```
   */
  start(name: string, opts?: CommandOptions): Promise<WorkshopView>;
  /**
   * Stop the workshop's container (processes in it end) and record that it is wanted stopped:
   * reconciliation leaves it stopped. Launch, refresh, stash, unstash and restore start it again.
   *
   * @throws `NOT_FOUND`, `BUSY`, `FAILED_PRECONDITION` (its instance lost); `OP_FAILED`.
   * @example
   * ```ts
   * (await engine.stop('nav2')).running; // false
   * ```
   */
  stop(name: string, opts?: CommandOptions): Promise<WorkshopView>;
  /**
   * Run a command in a started workshop with its streams connected (`atelier exec`, `atelier
   * shell` with `terminal`); resolves once it runs, and `exit` gives its status. Not journaled.
   *
   * @throws `NOT_FOUND` (the workshop, or `user` in it), `BUSY`, `FAILED_PRECONDITION` (stopped:
   *   run `atelier start`; its instance lost), `INVALID_ARGUMENT` (no command; a terminal on the
   *   fake backend), `UNAVAILABLE`.
   * @example
   * ```ts
   * const p = await engine.exec('nav2', { command: ['sh', '-c', 'echo hi'], stdout: process.stdout, stderr: process.stderr });
   * await p.exit; // 0
   * ```
   */
  exec(name: string, req: ExecRequest): Promise<SpawnedProcess>;
  /**
   * Run a transient container from a ready workshop or an SDK layer, recorded only in the volatile
   * journal; removed after its script unless `keep`. A script that exits non-zero is a result
   * (`exitCode`), not an error.
   *
   * @throws `NOT_FOUND` (no ready workshop or SDK layer of that name), `OP_FAILED` (the backend failed).
   * @example
   * ```ts
   * const r = await engine.run({ from: 'nav2', script: 'cat /etc/atelier/sdks' });
   * r.exitCode; // 0
   * ```
   */
  run(req: RunRequest, opts?: CommandOptions): Promise<RunResult>;
  /**
   * Remove a transient container kept by `run({ keep: true })`.
   *
   * @throws `NOT_FOUND` (no such container).
   * @example
   * ```ts
   * await engine.removeContainer(r.id);
   * ```
   */
  removeContainer(id: string): Promise<void>;
  /**
   * Remove owned backend objects that nothing the journal records accounts for (and `--rm`
   * containers whose run died); with `cache`, also evict every shared SDK layer nobody holds
   * (`evicted`). With `dryRun`, only list them.
   *
   * @throws `OP_FAILED` or `UNAVAILABLE` when the backend fails (what was removed before stays removed).
   * @example
   * ```ts
   * (await engine.gc({ dryRun: true })).orphans; // [{ space: 'layers', name: 'nav-...' }]
   * ```
   */
  gc(opts?: { dryRun?: boolean; cache?: boolean }): Promise<GcReport>;
  /**
   * Settle interrupted operations and compare the journal with the backend's objects, as every
   * start does: pending effects probed and judged, orphans removed, lost objects journaled.
   *
   * @example
   * ```ts
   * await engine.reconcile(); // { pending: 0, orphans: 0, missing: 0 }
   * ```
   */
  reconcile(): Promise<ReconcileReport>;
  /**
   * Measure the disks now, and leave degraded mode if space came back (see `space.ts`).
   *
   * @example
   * ```ts
   * (await engine.space()).degraded; // null, or { full: ['journal'], message: "the journal's disk (...) has 0 B free of 16.0 MiB" }
   * ```
   */
  space(): Promise<SpaceReport>;
  /**
   * `space()`, plus what each owned object and the journal hold on disk (`atelier df`). Walks every
   * object's files on some backends: not for each command.
   *
   * @example
   * ```ts
   * (await engine.usage()).objects.map((o) => `${o.workshop} ${o.kind} ${o.bytes}`); // ['nav2 sdk 40960', 'nav2 workshop 12288']
   * ```
   */
  usage(): Promise<UsageReport>;
  /**
   * Every workshop, by name.
   *
   * @example
   * ```ts
   * engine.list().map((w) => `${w.name} ${w.status}`); // ['nav2 ready']
   * ```
   */
  list(): WorkshopView[];
  /**
   * One workshop.
   *
   * @throws `NOT_FOUND` when there is no such workshop (with a did-you-mean).
   * @example
   * ```ts
   * engine.show('nav2').sdks.map((l) => l.layer); // ['ros2-…', 'nav2-…']
   * ```
   */
  show(name: string): WorkshopView;
  /** The whole state now (immutable): workshops and transient containers, and the journal's last sequence number. */
  readonly state: EngineState;
  /**
   * The state after every journaled batch (rxjs; the current state first, on subscription).
   *
   * @example
   * ```ts
   * engine.state$.subscribe((s) => console.log(Object.keys(s.workshops)));
   * ```
   */
  readonly state$: Observable<EngineState>;
  /**
   * Every journal record as it is appended, durable and volatile alike, each marked with its
   * journal (`journal: 'durable' | 'volatile'`): the two number their records on their own.
   *
   * @example
   * ```ts
   * engine.events$.subscribe((r) => console.log(r.journal, r.seq, r.type));
   * ```
   */
  readonly events$: Observable<JournalEvent>;
  /**
   * The records after a cursor, read from the journals, then the live ones: no gap and no
   * duplicate, so a client that reconnects with the last sequence numbers it saw misses nothing.
   * Records are as stored (an older record keeps its version: see `v`).
   *
   * @example
   * ```ts
   * engine.eventsAfter({ after: 120 }).subscribe((r) => console.log(r.seq, r.type)); // 121, 122, ... then live
   * ```
   * `onLive`, when given, is called once the history is read and the stream follows live records.
   */
  eventsAfter(cursor?: EventCursor, onLive?: () => void): Observable<JournalEvent>;
  /**
   * Wait for running commands, write a checkpoint, release the backend and the state directory's
   * lock. Idempotent; every later call throws `CLOSED`.
   */
  close(): Promise<void>;
}

/**
 * Workshops in name order, by code point: the order `list` prints, the same in-process and from
 * atelierd. Not `localeCompare`: names are ASCII, and a collator costs ~15 ms to build at start.
 *
 * @example
 * ```ts
 * sortedByName([{ name: 'b' }, { name: 'a-1' }]).map((w) => w.name); // ['a-1', 'b']
 * ```
 */
export function sortedByName<T extends { readonly name: string }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

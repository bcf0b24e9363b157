/**
 * The backend port: the one interface every adapter (fake, overlay, lxd) implements.
 *
 * ## Terms
 *
 * - **owner**: the user whose objects these are. Every object atelier creates carries the owner tag;
 *   an object without it is *not owned* and is never modified or removed by atelier.
 * - **space**: where an object lives. Instances (workshops and transient containers) live in the
 *   `workshops` space (LXD project `workshop.<owner>`); layers live in the `layers` space (LXD
 *   project `workshop-layers.<owner>`). A name is unique within its space.
 * - **instance**: a runnable object (`kind` `workshop` or `container`). It has an identity
 *   (`mac`, `uuid`) that a copy never carries and a refresh-copy keeps.
 * - **layer**: a frozen, never-started copy of an instance (`kind` `sdk`, `stash`, `stash-sdk`).
 * - **base**: what a workshop is created from (an LXD image alias, an overlay base directory).
 *   Every backend has a default base.
 * - **tags**: string key/values stored with the object (`user.atelier.*` config keys on LXD, a
 *   metadata file on overlay). They survive copies except `op`, which the copier sets.
 *   Reconciliation asks "did op X happen?" by reading the `op` tag.
 *
 * ## Lifecycle
 *
 * ```
 *   create(base) ──► instance (stopped) ──start──► running ──stop──► stopped
 *        │                 │  ▲                       │
 *        │                 │  └── copy(refresh) ◄─────┘ (target must be stopped; identity kept)
 *        │                 └── copy ──► layer (sdk | stash | stash-sdk), never started
 *        │                                 └── copy ──► layer or instance (new identity)
 *   create(source object) ──► transient container (depends on its source until removed)
 *   remove(any) ──► absent (removing an absent object succeeds)
 * ```
 *
 * ## Rules every adapter follows (checked by `test/backends/conformance.ts`)
 *
 * 1. Idempotence: `remove` of an absent object succeeds. `create`/`copy` onto an existing name
 *    fails with `ALREADY_EXISTS` unless `refresh` is set.
 * 2. Tags: the object carries exactly the tags given to `create`/`copy` (a copy does not inherit the
 *    source's tags; the caller passes them). `list(owner)` returns only objects tagged with `owner`.
 *    Operations on an object that exists but is not owned fail with `NOT_OWNED`.
 * 3. Identity: `create` and `copy` give a new `mac` and `uuid`; `copy({refresh:true})` and
 *    `create({refresh:true})` replace the target's root filesystem and tags but keep its identity.
 * 4. Layers are never started (`start` on a layer fails with `INVALID`).
 * 5. A transient container made by `create({source: {object}})` depends on its source: removing the
 *    source while it exists fails with `IN_USE`. Copies never depend on their source.
 * 6. `exec` runs a shell script (`sh -eu`) as root inside the instance's root filesystem with
 *    `ATELIER_ROOTFS` set (`/` when the script runs inside the instance; the merged root's host
 *    path when it runs on the host), so `"${ATELIER_ROOTFS%/}/etc/x"` names the same file either way.
 *    A non-zero exit fails with `EXEC_FAILED` carrying the exit status and the tail of stderr.
 *    The instance must be running (LXD refuses exec on a stopped one): otherwise `INVALID`.
 * 7. Errors are `BackendError`s with a `code`; anything else escaping an adapter is a bug.
 *
 * @example
 * ```ts
 * const b = createFakeBackend({ seed: 1 });
 * await b.ensureProjects('alice');
 * const ws = { space: 'workshops', name: 'nav2-1a2b3c4d' } as const;
 * await b.create({ target: ws, source: { base: b.defaultBase }, tags: { owner: 'alice', op: 'op1', kind: 'workshop' } });
 * await b.start(ws);
 * await b.exec(ws, { script: 'echo hi > "${ATELIER_ROOTFS%/}/etc/motd"' });
 * await b.copy({ source: ws, target: { space: 'layers', name: 'stash-nav2-1a2b3c4d' }, tags: { owner: 'alice', op: 'op2', kind: 'stash' } });
 * ```
 */

/** Where an object lives: instances in `workshops`, layers in `layers`. */
export type Space = 'workshops' | 'layers';

/** What an object is for. `workshop` and `container` are instances; the rest are layers. */
export type ObjectKind = 'workshop' | 'container' | 'sdk' | 'stash' | 'stash-sdk';

export const LAYER_KINDS: readonly ObjectKind[] = ['sdk', 'stash', 'stash-sdk'];

export function spaceOf(kind: ObjectKind): Space {
  return kind === 'workshop' || kind === 'container' ? 'workshops' : 'layers';
}

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
  [key: string]: string | undefined;
}

export interface Identity {
  readonly mac: string;
  readonly uuid: string;
}

export type Status = 'running' | 'stopped';

/** What `inspect` and `list` report about one object. */
export interface ObjectInfo {
  readonly ref: ObjectRef;
  readonly tags: Readonly<Tags>;
  readonly status: Status;
  readonly identity: Identity;
  /** The base the object's root filesystem descends from, when known. */
  readonly base?: string;
}

export type CreateSource = { readonly base: string } | { readonly object: ObjectRef; readonly scratch?: string };

export interface CreateRequest {
  readonly target: ObjectRef;
  /**
   * `{ base }`: a new instance from a base. `{ object }`: a transient container from a workshop or
   * layer; containers naming the same `scratch` key share one writable scratch, reference-counted.
   */
  readonly source: CreateSource;
  readonly tags: Tags;
  /** Rebuild an existing (stopped) instance from the base in place, keeping its identity. */
  readonly refresh?: boolean;
}

export interface CopyRequest {
  readonly source: ObjectRef;
  readonly target: ObjectRef;
  readonly tags: Tags;
  /**
   * Refresh-copy: replace the existing target's root filesystem and tags with the source's, keep the
   * target's identity. The target must be stopped (`BUSY` otherwise). A missing target is created.
   */
  readonly refresh?: boolean;
}

export interface ExecRequest {
  /** Shell script run with `sh -eu`. */
  readonly script: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

export interface ExecResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** One file as seen in an object's root filesystem (the merged view for layered backends). */
export interface FileInfo {
  readonly type: 'file' | 'dir' | 'symlink' | 'other';
  readonly mode: number; // permission bits, e.g. 0o644
  readonly uid: number;
  readonly gid: number;
  /** File content as UTF-8 (files only); symlink target for symlinks. */
  readonly content?: string;
}

export interface Backend {
  /** `fake`, `overlay` or `lxd`. */
  readonly kind: string;
  /** The base used when a workshop file names none. */
  readonly defaultBase: string;

  /** Make sure the owner's spaces exist (LXD projects). Idempotent. */
  ensureProjects(owner: string): Promise<void>;
  /** Bases this backend can create from (LXD: image aliases; overlay: registered bases). */
  listBases(): Promise<string[]>;
  /** Create an instance from a base or a transient container from an object. */
  create(req: CreateRequest): Promise<ObjectInfo>;
  /** Instance-only copy (never carries identity); with `refresh`, a refresh-copy that keeps it. */
  copy(req: CopyRequest): Promise<ObjectInfo>;
  /** Remove an object. Absent: succeeds. Running: stopped first. Source of a live container: `IN_USE`. */
  remove(ref: ObjectRef): Promise<void>;
  /** Start an instance. Already running: succeeds. */
  start(ref: ObjectRef): Promise<void>;
  /** Stop an instance (forced after a timeout). Already stopped: succeeds. */
  stop(ref: ObjectRef): Promise<void>;
  /** Run a hook script as root inside an instance. Non-zero exit: `EXEC_FAILED`. */
  exec(ref: ObjectRef, req: ExecRequest): Promise<ExecResult>;
  /** One object, or `null` when absent (owned or not: check `tags.owner`). */
  inspect(ref: ObjectRef): Promise<ObjectInfo | null>;
  /** Every object tagged with `owner`, in both spaces, sorted by space then name. */
  list(owner: string): Promise<ObjectInfo[]>;
  /** One path in an object's root filesystem, or `null` when absent. For tests and the debugger. */
  readFile(ref: ObjectRef, path: string): Promise<FileInfo | null>;
  /** Release resources (sockets, mounts the adapter holds). Objects stay. */
  close(): Promise<void>;
}

/** Error codes a backend may raise. */
export type BackendErrorCode =
  | 'NOT_FOUND' // the object (or base) does not exist
  | 'ALREADY_EXISTS' // the target name is taken
  | 'BUSY' // the object is running where it must be stopped, or locked by another operation
  | 'IN_USE' // a transient container still depends on the object
  | 'NOT_OWNED' // the object exists but does not carry this owner's tag
  | 'NO_SPACE' // out of disk or quota
  | 'UNAVAILABLE' // the backend cannot be reached (socket absent, daemon down)
  | 'EXEC_FAILED' // a hook exited non-zero
  | 'INVALID' // a request the port forbids (starting a layer, a bad name)
  | 'INTERNAL'; // anything else the backend reported

export class BackendError extends Error {
  readonly code: BackendErrorCode;
  /** Machine-readable facts about the error (named `info`, not `details`: uvu prints an error's `details` as text). */
  readonly info: Readonly<Record<string, unknown>>;
  constructor(code: BackendErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'BackendError';
    this.code = code;
    this.info = details;
  }
}

/**
 * Thrown by the fake backend's fault plan to simulate the process dying around a backend call.
 * The engine never catches it as a step failure: it propagates, and the test drops the engine.
 */
export class SimulatedCrash extends Error {
  readonly code = 'SIMULATED_CRASH';
  constructor(message: string) {
    super(message);
    this.name = 'SimulatedCrash';
  }
}

export function isBackendError(e: unknown, code?: BackendErrorCode): e is BackendError {
  return e instanceof BackendError && (code === undefined || e.code === code);
}

/** The names of port calls, as the fake records them and fault plans select them. */
export type CallKind = 'ensureProjects' | 'listBases' | 'create' | 'copy' | 'remove' | 'start' | 'stop' | 'exec' | 'inspect' | 'list' | 'readFile';

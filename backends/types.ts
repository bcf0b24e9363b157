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
 *   metadata file on overlay). A copy does not inherit them: it carries exactly the tags its caller
 *   passes (rule 2 below).
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

// The domain's words for objects (refs, kinds, tags, identity) are the core's: the port speaks them.
import type { Identity, ObjectKind, ObjectRef, Space, Status, Tags } from '../machines/types.ts';
export type { Identity, ObjectKind, ObjectRef, Space, Status, Tags };

/** The kinds that are layers (they live in the `layers` space and are never started). */
export const LAYER_KINDS: readonly ObjectKind[] = ['sdk', 'stash', 'stash-sdk'];

/** The space an object of `kind` lives in: `workshops` for instances, `layers` for layers. */
export function spaceOf(kind: ObjectKind): Space {
  return kind === 'workshop' || kind === 'container' ? 'workshops' : 'layers';
}

/** What `inspect` and `list` report about one object (both report the same value for it). */
export interface ObjectInfo {
  readonly ref: ObjectRef;
  /** Exactly the tags of the `create`/`copy` that made or last refreshed the object (rule 2). */
  readonly tags: Readonly<Tags>;
  /** `running` only for a started instance; a layer is always `stopped`. */
  readonly status: Status;
  /** The object's own: a copy gets a new one, a refresh keeps it (rule 3). */
  readonly identity: Identity;
  /** The base the object's root filesystem descends from, when known (copies carry it). */
  readonly base?: string;
}

export type CreateSource = { readonly base: string } | { readonly object: ObjectRef; readonly scratch?: string };

/** What `Backend.create` makes. */
export interface CreateRequest {
  /** A name in the `workshops` space: `create` makes instances, layers are made by `copy`. */
  readonly target: ObjectRef;
  /**
   * `{ base }`: a new instance from a base. `{ object }`: a transient container from a workshop or
   * layer; containers naming the same `scratch` key share one writable scratch, reference-counted
   * (made with the first, dropped with the last; fake and overlay share the whole root filesystem,
   * LXD a volume mounted at `/scratch`).
   */
  readonly source: CreateSource;
  /** Stored verbatim; `kind` must belong to the target's space (`spaceOf`). */
  readonly tags: Tags;
  /**
   * Rebuild an existing (stopped) instance from the base in place, keeping its identity; a missing
   * target is created. Only with `{ base }`.
   */
  readonly refresh?: boolean;
}

/** What `Backend.copy` makes. */
export interface CopyRequest {
  /**
   * The object to copy; a running instance is copied as it is at that moment and keeps running.
   * On overlay, when the copy has changes to freeze, the instance's container is stopped and
   * started again around it: it is running afterwards, but the processes that ran in it have ended
   * (`backends/overlay/README.md`).
   */
  readonly source: ObjectRef;
  /** A name in either space, other than `source`. */
  readonly target: ObjectRef;
  /** The target's tags, verbatim: nothing is inherited from the source (rule 2). */
  readonly tags: Tags;
  /**
   * Refresh-copy: replace the existing target's root filesystem and tags with the source's, keep the
   * target's identity. The target must be stopped (`BUSY` otherwise). A missing target is created.
   */
  readonly refresh?: boolean;
  /**
   * The target is an instance seeded from a shared SDK layer (`docs/design.md`, SDK cache): its root
   * gets its own identity files before the copy returns, so no two workshops share them:
   * `/etc/machine-id`, when present, is emptied (as in a cloud image: filled at first boot); the SSH
   * host keys (`/etc/ssh/ssh_host_*_key` and `.pub`), when present, are made anew, one of each type
   * found. Nothing is created that the source lacks. Only for a `workshops` target (`INVALID` else).
   */
  readonly resetIdentity?: boolean;
}

/** A hook for `Backend.exec`. */
export interface ExecRequest {
  /** Shell script run with `sh -eu` as root (rule 6). */
  readonly script: string;
  /** Extra environment variables. `ATELIER_ROOTFS` is always the adapter's: it cannot be overridden. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Kill the hook after this long: the call fails with `EXEC_FAILED` (overlay: `info.exitCode` 137;
   * LXD: 124 and `info.timedOut`, after rounding up to whole seconds). The fake's shell has no
   * long-running commands and ignores it.
   */
  readonly timeoutMs?: number;
}

/**
 * A process for `Backend.spawn`: a command run in a running instance with its standard streams
 * connected to the caller's (`atelier exec`, `atelier shell`), as `runc exec`, `lxc exec` and
 * `podman exec` do. Unlike a hook (`exec`), its exit status is returned, not thrown.
 */
export interface SpawnRequest {
  /** The program and its arguments, looked up in the instance's `PATH`. At least one element. */
  readonly argv: readonly string[];
  /** Extra environment variables (on top of `PATH`, `HOME`, `TERM` for a terminal, `LANG`). */
  readonly env?: Readonly<Record<string, string>>;
  /** The working directory inside the instance (default: the user's home, `/root` for root). */
  readonly cwd?: string;
  /** A user inside the instance: a name from its `/etc/passwd`, or `uid[:gid]` (default root). */
  readonly user?: string;
  /**
   * Run on a terminal of this size (a pseudo-terminal in the instance): the process sees a tty on
   * stdin, stdout and stderr, and both output streams arrive on `stdout`. The fake backend has no
   * terminals and refuses (`INVALID`).
   */
  readonly terminal?: { readonly cols: number; readonly rows: number };
  /** What the process reads; absent or null: it reads end-of-file at once. */
  readonly stdin?: NodeJS.ReadableStream | null;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

/** A process started by `Backend.spawn`. */
export interface SpawnedProcess {
  /**
   * Settles when the process has ended and its output has been written to the request's
   * streams: its exit status (128 + n when killed by signal n). Never rejects for the process's
   * own failure; rejects with a `BackendError` when the backend lost it (`UNAVAILABLE`).
   */
  readonly exit: Promise<number>;
  /** Follow a new terminal size (a no-op without `terminal`). */
  resize(cols: number, rows: number): void;
  /** Signal the process in the instance (default `SIGTERM`); a process that has ended ignores it. */
  kill(signal?: NodeJS.Signals): void;
}

/** What a successful `Backend.exec` returns (a failing one throws `EXEC_FAILED` instead). */
export interface ExecResult {
  /** Always 0: a non-zero exit is `EXEC_FAILED`. */
  readonly exitCode: number;
  /** What the script wrote (overlay keeps the last 4 Mi characters of each stream). */
  readonly stdout: string;
  readonly stderr: string;
}

/** One file as seen in an object's root filesystem (the merged view for layered backends). */
export interface FileInfo {
  /** `other`: a device, FIFO or socket (never on the fake). */
  readonly type: 'file' | 'dir' | 'symlink' | 'other';
  readonly mode: number; // permission bits with setuid, setgid and sticky (mode & 0o7777), e.g. 0o644
  /** Numeric owner ids as seen inside the instance. */
  readonly uid: number;
  readonly gid: number;
  /** File content as UTF-8 (files only); symlink target for symlinks; absent for the rest. */
  readonly content?: string;
}

/** Where a backend keeps its objects, and how much room is left there (`Backend.diskSpace`). */
export interface DiskSpace {
  /**
   * What holds the objects, for messages: the overlay store's directory, `lxd:<pool>` for an LXD
   * storage pool, `memory` for the fake.
   */
  readonly where: string;
  /** Bytes of the file system or pool. */
  readonly total: number;
  /**
   * Bytes that can still be written there (overlay: `statfs` `bavail * bsize`; LXD: the pool's
   * total minus used; the fake: its capacity minus what its objects hold). 0 <= free <= total.
   */
  readonly free: number;
}

/** What one object holds on disk (`Backend.usage`). */
export interface ObjectUsage {
  readonly ref: ObjectRef;
  /** The object's tags, as `list` reports them. */
  readonly tags: Readonly<Tags>;
  /**
   * Bytes of the object's own data: blocks allocated to the files only it holds (overlay: its
   * upper or layer directory, a hard-linked file counted once; the fake: the length of its files'
   * contents; LXD: the root disk usage LXD reports), or null when the backend cannot tell (LXD on
   * a storage driver that does not report usage).
   */
  readonly bytes: number | null;
}

/**
 * The port. Its terms, lifecycle and rules are in this file's header; each member below says what
 * it does, the codes it raises (`@throws`), and what a repeat does.
 *
 * Besides the codes listed per member, any call may fail with `UNAVAILABLE` (LXD daemon down, a
 * host tool missing, the fake after `setAvailable(false)`), `NO_SPACE` or `INTERNAL`; an overlay
 * call with `BUSY` when another process holds the store lock too long; a fake call with whatever its
 * fault plan injects, or a `SimulatedCrash`. A call naming an object may fail for a name the
 * adapter cannot hold (`INVALID`; LXD's daemon answers some with `INTERNAL`): names of 1-63
 * lowercase letters, digits and `-`, starting with a letter and not ending with `-`, are valid on
 * every adapter.
 *
 * **Ownership** (rule 2), as the adapters apply it: `remove`, `start`, `stop` and `exec` refuse an
 * object without an `owner` tag, and a refresh refuses a target whose `owner` is not the request's
 * `tags.owner` (`NOT_OWNED`). LXD is stricter: every call naming an existing object, except
 * `inspect`, refuses one whose `owner` is not the adapter's own owner. The overlay backend also
 * refuses a `copy` or `create` source whose `owner` is not the request's `tags.owner`.
 *
 * The examples assume `b` is a backend (LXD: for owner `alice`) holding no objects yet, on which
 * `ensureProjects('alice')` has run; `test/backends/port-docs.test.ts` runs each on every adapter
 * (LXD when a daemon is there) and checks every `// value` comment.
 */
export interface Backend {
  /** Which adapter this is: `fake`, `overlay` or `lxd`. */
  readonly kind: string;
  /**
   * The base used when a workshop file names none: by default `busybox` (fake; LXD, an image
   * alias) or `minimal` (overlay, built at first use). `listBases()` includes it (on LXD once the
   * image alias exists).
   */
  readonly defaultBase: string;

  /**
   * Make sure `owner`'s two spaces exist (LXD: projects `workshop.<owner>` and
   * `workshop-layers.<owner>`; the fake and overlay backends only check the owner). Call it before
   * making the owner's first object (LXD's `create` and `copy` also ensure the adapter owner's).
   *
   * Idempotent: existing spaces are kept as they are.
   * @throws `INVALID` when `owner` cannot name a space (fake: empty; overlay: not a safe file name;
   *   LXD: not a valid project suffix), or (LXD) when a project exists with its own images or profiles.
   */
  ensureProjects(owner: string): Promise<void>;

  /**
   * The bases `create` accepts in `{ base }`: the fake's configured list, the overlay backend's
   * registered bases plus its default, LXD's image aliases. Read-only.
   */
  listBases(): Promise<string[]>;

  /**
   * What a base's content is, as a short stable string: equal while the base's root filesystem is
   * the same, different once it is replaced (a base registered again from another tree, an LXD alias
   * moved to another image). Shared SDK layers are named by it (`docs/design.md`, SDK cache): a
   * layer built on one content of a base is never reused on another. Fake: the base's name and its
   * generation; overlay: the base blob's id; LXD: the image fingerprint the alias points at.
   *
   * Read-only: a repeat gives the same string while the base is not replaced (overlay builds its
   * default base at the first call, as `create` from it would).
   * @throws `NOT_FOUND` when the base is unknown.
   * @example
   * ```ts
   * const fp = await b.baseFingerprint(b.defaultBase); // e.g. '3f9a0c1d2b4e5f60'
   * fp === (await b.baseFingerprint(b.defaultBase)); // true
   * await b.baseFingerprint('no-such-base').catch((e) => e.code); // 'NOT_FOUND'
   * ```
   */
  baseFingerprint(base: string): Promise<string>;

  /**
   * Create a stopped object in the `workshops` space and return its info: from `{ base }` an
   * instance; from `{ object }` a transient container on a copy of that object's root filesystem,
   * which pins its source until it is removed (rule 5). Either gets a new identity and exactly the
   * tags given (rules 2, 3). With `refresh`, an existing stopped instance is rebuilt from the base in
   * place, keeping its identity (a missing one is created).
   *
   * Not idempotent: a repeat is `ALREADY_EXISTS`. After a crash, `inspect` the target and compare its
   * `op` tag (header, Terms) instead of retrying blindly. A refresh may be repeated: same result.
   * @throws `ALREADY_EXISTS` when the target exists and `refresh` is not set.
   * @throws `NOT_FOUND` when the base is unknown or the source object does not exist.
   * @throws `NOT_OWNED` on a refresh of a target that is not the caller's; (overlay, LXD) for a
   *   source object that is not the caller's. See Ownership.
   * @throws `BUSY` on a refresh of a running instance.
   * @throws `INVALID` for a bad name, a `tags.kind` outside the target's space, a `layers` target
   *   (fake, overlay), or `refresh` with `{ object }` (fake; overlay when the target exists).
   * @example
   * ```ts
   * const ws = { space: 'workshops', name: 'nav2-1a2b3c4d' } as const;
   * const tags = { owner: 'alice', op: 'op1', kind: 'workshop' } as const;
   * const info = await b.create({ target: ws, source: { base: b.defaultBase }, tags });
   * info.status; // 'stopped'
   * await b.create({ target: ws, source: { base: b.defaultBase }, tags }).catch((e) => e.code); // 'ALREADY_EXISTS'
   * const rebuilt = await b.create({ target: ws, source: { base: b.defaultBase }, tags: { ...tags, op: 'op2' }, refresh: true });
   * rebuilt.identity.uuid === info.identity.uuid; // true
   * ```
   */
  create(req: CreateRequest): Promise<ObjectInfo>;

  /**
   * Copy an object's root filesystem (its current state only, no snapshots) to a new stopped object
   * in either space, with a new identity and exactly the tags given (rules 2, 3): workshop to layer,
   * layer to layer, layer to workshop. A running source keeps running (overlay restarts its
   * container, ending the processes in it: see `CopyRequest.source`). The copy never depends on its
   * source (rule 5). With `refresh`, the existing target's root filesystem and tags are replaced
   * and its identity kept (a missing target is created).
   *
   * Not idempotent without `refresh`: a repeat is `ALREADY_EXISTS` (after a crash, compare the
   * target's `op` tag). A refresh-copy may be repeated: same result.
   * @throws `NOT_FOUND` when the source does not exist.
   * @throws `ALREADY_EXISTS` when the target exists (owned or not) and `refresh` is not set.
   * @throws `NOT_OWNED` on a refresh of a target that is not the caller's; (overlay, LXD) for a
   *   source that is not the caller's. See Ownership.
   * @throws `BUSY` on a refresh of a running target.
   * @throws `INVALID` for a bad name, a `tags.kind` outside the target's space, a target equal to
   *   the source (fake, overlay), (overlay) a source running on a shared scratch, `resetIdentity`
   *   onto a layer, or an SSH host key type `resetIdentity` cannot make anew (nothing is copied).
   * @example
   * ```ts
   * const ws = { space: 'workshops', name: 'nav2-1a2b3c4d' } as const;
   * const stash = { space: 'layers', name: 'stash-nav2-1a2b3c4d' } as const;
   * const made = await b.create({ target: ws, source: { base: b.defaultBase }, tags: { owner: 'alice', op: 'op1', kind: 'workshop' } });
   * const layer = await b.copy({ source: ws, target: stash, tags: { owner: 'alice', op: 'op2', kind: 'stash' } });
   * layer.identity.mac === made.identity.mac; // false
   * const back = await b.copy({ source: stash, target: ws, tags: { owner: 'alice', op: 'op3', kind: 'workshop' }, refresh: true });
   * [back.tags.op, back.identity.mac === made.identity.mac]; // ['op3', true]
   * ```
   */
  copy(req: CopyRequest): Promise<ObjectInfo>;

  /**
   * Remove an object. A running instance is stopped first; a transient container's scratch goes
   * with its last user. Copies of the object are not affected.
   *
   * Idempotent: removing an absent object succeeds.
   * @throws `IN_USE` while a transient container made from the object exists: remove it first.
   * @throws `NOT_OWNED` for an object that is not the caller's (see Ownership).
   * @example
   * ```ts
   * const ws = { space: 'workshops', name: 'nav2-1a2b3c4d' } as const;
   * const sdk = { space: 'layers', name: 'ros2-0123456789abcdef' } as const;
   * await b.remove(sdk); // absent: succeeds
   * await b.create({ target: ws, source: { base: b.defaultBase }, tags: { owner: 'alice', op: 'op1', kind: 'workshop' } });
   * await b.copy({ source: ws, target: sdk, tags: { owner: 'alice', op: 'op2', kind: 'sdk' } });
   * const ctr = { space: 'workshops', name: 'c-1' } as const;
   * await b.create({ target: ctr, source: { object: sdk }, tags: { owner: 'alice', op: 'op3', kind: 'container' } });
   * await b.remove(sdk).catch((e) => e.code); // 'IN_USE'
   * await b.remove(ctr);
   * await b.remove(sdk);
   * await b.inspect(sdk); // null
   * ```
   */
  remove(ref: ObjectRef): Promise<void>;

  /**
   * Start an instance, so hooks can run in it.
   *
   * Idempotent: starting a running instance succeeds.
   * @throws `NOT_FOUND` when the object does not exist.
   * @throws `INVALID` when it is a layer (rule 4).
   * @throws `NOT_OWNED` for an object that is not the caller's (see Ownership).
   */
  start(ref: ObjectRef): Promise<void>;

  /**
   * Stop an instance (LXD asks it to shut down and forces it after the adapter's stop timeout).
   *
   * Idempotent: stopping a stopped instance, or a layer, succeeds.
   * @throws `NOT_FOUND` when the object does not exist.
   * @throws `NOT_OWNED` for an object that is not the caller's (see Ownership).
   */
  stop(ref: ObjectRef): Promise<void>;

  /**
   * Run a hook: `req.script` with `sh -eu`, as root, in a running instance (rule 6), and return its
   * output. A failing script keeps what it changed before it failed.
   *
   * Not idempotent: each call runs the script again, so write hooks that can be re-run.
   * @throws `EXEC_FAILED` when the script exits non-zero (`info.exitCode`; `info.stderr` and
   *   `info.stdout`, which may be cut to their end) or runs past `timeoutMs`; on the fake also when
   *   it uses shell features outside the fake's subset (status 127, see `backends/fake/shell.ts`).
   * @throws `INVALID` when the instance is stopped or the object is a layer.
   * @throws `NOT_FOUND` when the object does not exist.
   * @throws `NOT_OWNED` for an object that is not the caller's (see Ownership).
   * @example
   * ```ts
   * const ws = { space: 'workshops', name: 'nav2-1a2b3c4d' } as const;
   * await b.create({ target: ws, source: { base: b.defaultBase }, tags: { owner: 'alice', op: 'op1', kind: 'workshop' } });
   * await b.exec(ws, { script: 'true' }).catch((e) => e.code); // 'INVALID'
   * await b.start(ws);
   * const r = await b.exec(ws, { script: 'echo "$GREETING" > "${ATELIER_ROOTFS%/}/etc/motd"\necho done', env: { GREETING: 'hi' } });
   * r.stdout; // 'done\n'
   * const failed = await b.exec(ws, { script: 'echo oops >&2\nexit 3' }).catch((e) => e);
   * [failed.code, failed.info.exitCode]; // ['EXEC_FAILED', 3]
   * ```
   */
  exec(ref: ObjectRef, req: ExecRequest): Promise<ExecResult>;

  /**
   * Start `req.argv` in a running instance with its streams connected (see `SpawnRequest`), as
   * root unless `req.user` says otherwise, in the instance's namespaces where the backend has them.
   * Resolves once the process has started; `exit` gives its status. The fake backend runs the argv
   * through its shell interpreter (`sh -c SCRIPT` or a single command) and refuses `terminal`.
   *
   * Not idempotent: each call starts another process.
   * @throws `INVALID` when the instance is stopped, the object is a layer, `argv` is empty, or
   *   (fake) a terminal is asked for.
   * @throws `NOT_FOUND` when the object does not exist, or the user is not in the instance.
   * @throws `NOT_OWNED` for an object that is not the caller's (see Ownership).
   */
  spawn(ref: ObjectRef, req: SpawnRequest): Promise<SpawnedProcess>;

  /**
   * One object's info, or `null` when it does not exist. Objects are reported whether owned or not
   * (check `tags.owner`). After a crash, a present `op` tag means that op's call took effect: this is
   * how reconciliation asks "did op X happen?" (header, Terms). Read-only.
   * @example
   * ```ts
   * const ws = { space: 'workshops', name: 'nav2-1a2b3c4d' } as const;
   * await b.inspect(ws); // null
   * await b.create({ target: ws, source: { base: b.defaultBase }, tags: { owner: 'alice', op: 'op1', kind: 'workshop' } });
   * const info = await b.inspect(ws);
   * [info?.status, info?.tags.op === 'op1']; // ['stopped', true]
   * ```
   */
  inspect(ref: ObjectRef): Promise<ObjectInfo | null>;

  /**
   * Every object whose `owner` tag is `owner`, in both spaces, sorted by space then name (plain
   * string order, so layers come first); each entry equals what `inspect` reports. Read-only.
   * @example
   * ```ts
   * const ws = { space: 'workshops', name: 'nav2-1a2b3c4d' } as const;
   * await b.create({ target: ws, source: { base: b.defaultBase }, tags: { owner: 'alice', op: 'op1', kind: 'workshop' } });
   * await b.copy({ source: ws, target: { space: 'layers', name: 'stash-nav2-1a2b3c4d' }, tags: { owner: 'alice', op: 'op2', kind: 'stash' } });
   * (await b.list('alice')).map((o) => `${o.ref.space}/${o.ref.name}`); // ['layers/stash-nav2-1a2b3c4d', 'workshops/nav2-1a2b3c4d']
   * ```
   */
  list(owner: string): Promise<ObjectInfo[]>;

  /**
   * What is at the absolute `path` in an object's root filesystem (the merged view), or `null` when
   * nothing is there. A final symlink is not followed: its target is the `content`. Works on
   * stopped instances and layers. Read-only; meant for tests and the debugger.
   * @throws `NOT_FOUND` when the object does not exist.
   * @throws `NOT_OWNED` (LXD only) for an object that is not the adapter owner's.
   * @example
   * ```ts
   * const ws = { space: 'workshops', name: 'nav2-1a2b3c4d' } as const;
   * await b.create({ target: ws, source: { base: b.defaultBase }, tags: { owner: 'alice', op: 'op1', kind: 'workshop' } });
   * await b.start(ws);
   * await b.exec(ws, { script: 'echo hi > "${ATELIER_ROOTFS%/}/etc/motd"' });
   * const f = await b.readFile(ws, '/etc/motd');
   * [f?.type, f?.content]; // ['file', 'hi\n']
   * await b.readFile(ws, '/etc/no-such-file'); // null
   * ```
   */
  readFile(ref: ObjectRef, path: string): Promise<FileInfo | null>;

  /**
   * How much room is left where the backend keeps its objects. Cheap (one `statfs`, one request):
   * the engine asks before each command that makes something, to refuse it at once on a full
   * disk. Read-only.
   * @example
   * ```ts
   * const d = await b.diskSpace();
   * d.free <= d.total; // true
   * ```
   */
  diskSpace(): Promise<DiskSpace>;

  /**
   * What each of `owner`'s objects holds on disk: one entry for each object `list(owner)` reports,
   * in the same order. May walk every file of every object: for `atelier df`, not for each
   * command. Read-only.
   * @example
   * ```ts
   * const ws = { space: 'workshops', name: 'nav2-1a2b3c4d' } as const;
   * await b.create({ target: ws, source: { base: b.defaultBase }, tags: { owner: 'alice', op: 'op1', kind: 'workshop' } });
   * const [u] = await b.usage('alice');
   * [u?.ref.name, u?.bytes === null || u!.bytes >= 0]; // ['nav2-1a2b3c4d', true]
   * ```
   */
  usage(owner: string): Promise<ObjectUsage[]>;

  /**
   * Release what the adapter holds between calls (LXD: its connections to the daemon). Objects stay
   * as they are: running instances keep running. Idempotent; make it the last call.
   */
  close(): Promise<void>;
}

/** Error codes a backend may raise; each `Backend` member lists when (`@throws`). */
export type BackendErrorCode =
  | 'NOT_FOUND' // the object (or base) does not exist
  | 'ALREADY_EXISTS' // the target name is taken
  | 'BUSY' // the object is running where it must be stopped, or locked by another operation
  | 'IN_USE' // a transient container still depends on the object
  | 'NOT_OWNED' // the object exists but is not the caller's (see `Backend`, Ownership)
  | 'NO_SPACE' // out of disk or quota
  | 'UNAVAILABLE' // the backend cannot be reached (socket absent, daemon down, a host tool missing)
  | 'EXEC_FAILED' // a hook exited non-zero or timed out
  | 'INVALID' // a request the port forbids (starting a layer, exec in a stopped instance, a bad name)
  | 'INTERNAL'; // anything else the backend reported

/** The one error type an adapter lets out (rule 7): test it with `isBackendError`. */
export class BackendError extends Error {
  readonly code: BackendErrorCode;
  /**
   * Machine-readable facts about the error, e.g. `exitCode`, `stderr`, `stdout` for `EXEC_FAILED`
   * (named `info`, not `details`: uvu prints an error's `details` as text).
   */
  readonly info: Readonly<Record<string, unknown>>;
  /** `details` becomes `info`. */
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

/** Whether `e` is a `BackendError` (with `code`, when given). */
export function isBackendError(e: unknown, code?: BackendErrorCode): e is BackendError {
  return e instanceof BackendError && (code === undefined || e.code === code);
}

/** The names of port calls, as the fake records them and fault plans select them. */
export type CallKind = 'ensureProjects' | 'listBases' | 'baseFingerprint' | 'create' | 'copy' | 'remove' | 'start' | 'stop' | 'exec' | 'spawn' | 'inspect' | 'list' | 'readFile';

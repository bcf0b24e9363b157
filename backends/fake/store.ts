/**
 * The fake backend's state and the port's rules applied to it (see `backends/types.ts`). Every
 * method is synchronous and either applies its whole effect or throws a `BackendError` having
 * changed nothing (except `exec`, which, like a real shell, keeps what a failing script did before
 * it failed). Call recording, faults and persistence wrap this in `index.ts`.
 *
 * Rules the fake adds where the port is silent, chosen to match LXD so code tested on the fake
 * works on LXD:
 * - `exec` needs a *running* instance (`INVALID` otherwise, as LXD answers "Instance is not running").
 * - Ownership: `remove`/`start`/`stop`/`exec` on an object without an `owner` tag, and a refresh
 *   (`create`/`copy` with `refresh`) onto an object whose `owner` differs from the request's,
 *   fail with `NOT_OWNED`. Reading (copy source, inspect, readFile) is always allowed.
 * - Names must be valid LXD instance names (1-63 of `[A-Za-z0-9-]`, no leading or trailing `-`,
 *   not all digits), and `tags.kind` must belong to the target's space: `INVALID` otherwise.
 * - `stop` on a layer succeeds (it is never running); a transient container cannot be refreshed.
 * - Transient containers naming one `scratch` share one writable root (see `FakeScratch`).
 *
 * @example
 * ```ts
 * const store = new FakeStore({ seed: 1, bases: ['busybox'] });
 * store.create({ target: ws, source: { base: 'busybox' }, tags });
 * store.start(ws);
 * ```
 */
import type { SpawnRequest } from '../types.ts';
import type { CopyRequest, CreateRequest, DiskSpace, ExecRequest, ExecResult, FileInfo, Identity, ObjectInfo, ObjectRef, ObjectUsage, Space, Status, Tags } from '../types.ts';
import { BackendError, LAYER_KINDS, spaceOf } from '../types.ts';
import { checkResetIdentity } from '../identity.ts';
import { newIdentity, Prng } from './prng.ts';
import type { FileTree } from './rootfs.ts';
import { baseTree, cloneTree, fakeHostKey, fileInfo, FsError, planIdentityReset, resolvePath, treeBytes } from './rootfs.ts';
import { runScript } from './shell.ts';

export const IMAGE_FORMAT = 'atelier-fake/1';

/** The fake's default capacity for `diskSpace`: 1 TiB. */
export const DEFAULT_CAPACITY = 2 ** 40;

/** One object as the fake holds it (and as `objects()` / `dump()` show it). */
export interface FakeObject {
  space: Space;
  name: string;
  /** Verbatim; may lack `owner` for objects planted by tests. */
  tags: Record<string, string>;
  status: Status;
  identity: Identity;
  base?: string;
  /** Transient containers: the object they were created from (they depend on it). */
  from?: ObjectRef;
  /** Transient containers: the shared scratch key; their root is the scratch's (see `FakeScratch`). */
  scratch?: string;
  /** The root filesystem (empty for containers on a scratch: theirs is the scratch's). */
  files: FileTree;
}

/**
 * A scratch shared by transient containers (containerd's shared scratch): one writable root they
 * all see, so a write in one is visible in the others. It starts as a copy of the first user's
 * source and is dropped with its last user.
 */
export interface FakeScratch {
  /** The containers (`space/name`) using it, sorted. */
  users: string[];
  files: FileTree;
}

/** A crash image: everything the fake holds, as plain JSON. */
export interface FakeImage {
  format: typeof IMAGE_FORMAT;
  /** State of the identity PRNG, so a reloaded fake continues the same sequence. */
  rng: number;
  /** Owners whose spaces `ensureProjects` made. */
  projects: string[];
  /** Sorted by space then name. */
  objects: FakeObject[];
  /** Scratch key → the transient containers sharing it and their shared root. */
  scratches: Record<string, FakeScratch>;
  /**
   * Bases `registerBase` registered or replaced: name → generation (2 and up for a configured base
   * registered again). Absent when there are none, so older images load unchanged.
   */
  bases?: Record<string, number>;
}

const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/** Base names `registerBase` takes: the overlay and LXD adapters' rule. */
const BASE_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$/;

function key(ref: ObjectRef): string {
  return `${ref.space}/${ref.name}`;
}

function cloneObject(o: FakeObject): FakeObject {
  return { ...o, tags: { ...o.tags }, identity: { ...o.identity }, ...(o.from ? { from: { ...o.from } } : {}), files: cloneTree(o.files) };
}

/** The last `max` characters of `text`, cut at a line start, for error details. */
function tail(text: string, max = 2000): string {
  if (text.length <= max) return text;
  const cut = text.slice(-max);
  const nl = cut.indexOf('\n');
  return nl >= 0 && nl < cut.length - 1 ? cut.slice(nl + 1) : cut;
}

export class FakeStore {
  private objs = new Map<string, FakeObject>();
  private scratch = new Map<string, { users: Set<string>; files: FileTree }>();
  private projects = new Set<string>();
  private rng: Prng;
  private readonly bases: readonly string[];
  /** Bases registered at run time (`registerBase`): name → generation. Configured ones are at 1 otherwise. */
  private generations = new Map<string, number>();
  private readonly capacity: number;

  /** `capacity`: the bytes `diskSpace` reports as the total (default `DEFAULT_CAPACITY`). */
  constructor(opts: { seed: number; bases: readonly string[]; capacity?: number }) {
    this.rng = new Prng(opts.seed);
    this.bases = [...opts.bases];
    this.capacity = opts.capacity ?? DEFAULT_CAPACITY;
  }

  // ---- port operations -------------------------------------------------------------------

  ensureProjects(owner: string): void {
    if (!owner) throw new BackendError('INVALID', 'ensureProjects needs a non-empty owner');
    this.projects.add(owner);
  }

  /** The configured bases, in their order, then those `registerBase` added, sorted. */
  listBases(): string[] {
    return [...this.bases, ...[...this.generations.keys()].filter((b) => !this.bases.includes(b)).sort()];
  }

  /** `<base>#<generation>`: the name, and how many times it was registered (1 for a configured base). */
  baseFingerprint(base: string): string {
    if (!this.listBases().includes(base)) throw this.unknownBase(base);
    return `${base}#${this.generation(base)}`;
  }

  /**
   * Test control: register `base` as a new base, or, when known, again from new content (its
   * generation goes up: its `/etc/os-release` and `baseFingerprint` change). Objects made from it
   * before keep their content.
   */
  registerBase(base: string): void {
    if (!BASE_NAME.test(base)) throw new BackendError('INVALID', `"${base}" is not a valid base name: use letters, digits, '.', '_', '@' and '-' (at most 63)`, { base });
    const known = this.listBases().includes(base);
    this.generations.set(base, known ? this.generation(base) + 1 : 1);
  }

  private generation(base: string): number {
    return this.generations.get(base) ?? 1;
  }

  private unknownBase(base: string): BackendError {
    return new BackendError('NOT_FOUND', `base "${base}" is not known to the fake backend (known: ${this.listBases().join(', ')}); pass it in createFakeBackend({ bases })`, { base });
  }

  create(req: CreateRequest): ObjectInfo {
    this.checkTarget(req.target, req.tags);
    if (req.target.space !== 'workshops') throw new BackendError('INVALID', `create makes instances, but ${key(req.target)} is in the layers space; copy an instance to make a layer`);
    const existing = this.objs.get(key(req.target));
    if ('base' in req.source) {
      const base = req.source.base;
      if (!this.listBases().includes(base)) throw this.unknownBase(base);
      const identity = this.checkRefreshTarget(req.target, req.tags, existing, req.refresh ?? false);
      return this.put({ space: req.target.space, name: req.target.name, tags: { ...(req.tags as Record<string, string>) }, status: 'stopped', identity, base, files: baseTree(base, this.generation(base)) });
    }
    const src = req.source.object;
    if (req.refresh) throw new BackendError('INVALID', `create with refresh rebuilds from a base; ${key(req.target)} names a source object (${key(src)})`);
    if (existing) throw this.exists(req.target);
    const from = this.get(src, 'create a transient container from');
    const scratchKey = req.source.scratch;
    const obj = this.put({
      space: req.target.space, name: req.target.name, tags: { ...(req.tags as Record<string, string>) }, status: 'stopped',
      identity: newIdentity(this.rng), ...(from.base !== undefined ? { base: from.base } : {}),
      from: { space: src.space, name: src.name }, ...(scratchKey !== undefined ? { scratch: scratchKey } : {}),
      files: scratchKey === undefined ? cloneTree(this.tree(from)) : {},
    });
    if (scratchKey !== undefined) {
      const shared = this.scratch.get(scratchKey) ?? { users: new Set<string>(), files: cloneTree(this.tree(from)) };
      shared.users.add(key(req.target));
      this.scratch.set(scratchKey, shared);
    }
    return obj;
  }

  copy(req: CopyRequest): ObjectInfo {
    this.checkTarget(req.target, req.tags);
    checkResetIdentity(req);
    if (key(req.source) === key(req.target)) throw new BackendError('INVALID', `cannot copy ${key(req.source)} onto itself`);
    const src = this.get(req.source, 'copy');
    const existing = this.objs.get(key(req.target));
    const kept = existing ? this.checkRefreshTarget(req.target, req.tags, existing, req.refresh ?? false) : null;
    const files = cloneTree(this.tree(src));
    // Planned on the copy before a new identity is drawn: an INVALID key type changes nothing.
    const reset = req.resetIdentity ? planIdentityReset(files) : null;
    const identity = kept ?? newIdentity(this.rng);
    reset?.((type) => fakeHostKey(type, identity.uuid, req.tags.op, req.target.name));
    return this.put({
      space: req.target.space, name: req.target.name, tags: { ...(req.tags as Record<string, string>) }, status: 'stopped', identity,
      ...(src.base !== undefined ? { base: src.base } : {}), files,
    });
  }

  remove(ref: ObjectRef): void {
    const obj = this.objs.get(key(ref));
    if (!obj) return;
    this.requireOwned(obj, 'remove');
    const users = [...this.objs.values()].filter((o) => o.from && key(o.from) === key(ref)).map((o) => key(o));
    if (users.length > 0) {
      throw new BackendError('IN_USE', `cannot remove ${key(ref)}: transient container(s) ${users.join(', ')} were created from it; remove them first`, { users });
    }
    // A running instance is stopped first (the port's rule); nothing else to do for a fake process.
    obj.status = 'stopped';
    this.objs.delete(key(ref));
    if (obj.scratch !== undefined) {
      const shared = this.scratch.get(obj.scratch);
      shared?.users.delete(key(ref));
      if (shared?.users.size === 0) this.scratch.delete(obj.scratch);
    }
  }

  start(ref: ObjectRef): void {
    const obj = this.get(ref, 'start');
    this.requireOwned(obj, 'start');
    if (obj.space === 'layers') throw new BackendError('INVALID', `${key(ref)} is a layer; layers are never started (copy it to an instance first)`);
    obj.status = 'running';
  }

  stop(ref: ObjectRef): void {
    const obj = this.get(ref, 'stop');
    this.requireOwned(obj, 'stop');
    obj.status = 'stopped';
  }

  exec(ref: ObjectRef, req: ExecRequest): ExecResult {
    const obj = this.get(ref, 'exec in');
    this.requireOwned(obj, 'exec in');
    if (obj.space === 'layers') throw new BackendError('INVALID', `${key(ref)} is a layer; hooks run in instances`);
    if (obj.status !== 'running') throw new BackendError('INVALID', `instance ${key(ref)} is not running; start it first`);
    const result = runScript(this.tree(obj), req.script, req.env ?? {});
    if (result.exitCode !== 0) {
      const stderr = tail(result.stderr);
      const lastLine = stderr.trimEnd().split('\n').pop() ?? '';
      throw new BackendError('EXEC_FAILED', `hook in ${key(ref)} exited with status ${result.exitCode}${lastLine ? `: ${lastLine}` : ''}`, {
        exitCode: result.exitCode, stderr, stdout: tail(result.stdout),
      });
    }
    return result;
  }

  /**
   * `spawn` on the fake: the argv through the same interpreter as hooks (`sh -c SCRIPT` runs SCRIPT;
   * any other argv runs as one command line), synchronously; stdin is not read. No terminals.
   */
  spawn(ref: ObjectRef, req: SpawnRequest): ExecResult {
    const obj = this.get(ref, 'start a process in');
    this.requireOwned(obj, 'start a process in');
    if (obj.space === 'layers') throw new BackendError('INVALID', `${key(ref)} is a layer; processes run in instances`);
    if (req.argv.length === 0) throw new BackendError('INVALID', 'spawn needs a command: argv is empty');
    if (req.terminal) throw new BackendError('INVALID', `the fake backend has no terminals: use \`atelier exec\` with a command, or the overlay or lxd backend for a shell`);
    if (obj.status !== 'running') throw new BackendError('INVALID', `instance ${key(ref)} is not running; start it first`);
    const [cmd, ...args] = req.argv;
    const script = (cmd === 'sh' || cmd === '/bin/sh') && args[0] === '-c' && args.length >= 2 ? args[1]! : req.argv.map(shellQuote).join(' ');
    // The fake has no processes, users or working directories: `cwd` and `user` are ignored.
    return runScript(this.tree(obj), script, req.env ?? {}, { errexit: false });
  }

  inspect(ref: ObjectRef): ObjectInfo | null {
    const obj = this.objs.get(key(ref));
    return obj ? this.info(obj) : null;
  }

  list(owner: string): ObjectInfo[] {
    return this.sorted().filter((o) => o.tags['owner'] === owner).map((o) => this.info(o));
  }

  readFile(ref: ObjectRef, path: string): FileInfo | null {
    const obj = this.get(ref, 'read a file of');
    const files = this.tree(obj);
    try {
      const entry = files[resolvePath(files, path, false)];
      return entry ? fileInfo(entry) : null;
    } catch (e) {
      if (e instanceof FsError) return null; // a symlink loop: nothing there to read
      throw e;
    }
  }

  /**
   * Room left: the capacity minus what every tree the fake holds (each object's own root, each
   * shared scratch once, owned or not). Nothing is refused when it reaches 0: the fake reports
   * space, it does not enforce it.
   */
  diskSpace(): DiskSpace {
    let held = 0;
    for (const o of this.objs.values()) if (o.scratch === undefined) held += treeBytes(o.files);
    for (const s of this.scratch.values()) held += treeBytes(s.files);
    return { where: 'memory', total: this.capacity, free: Math.max(0, this.capacity - held) };
  }

  /**
   * One entry per object `list(owner)` reports, in its order: the bytes of its root's files. Copies
   * share nothing in the fake (deep copies); containers on one scratch each count the whole scratch.
   */
  usage(owner: string): ObjectUsage[] {
    return this.sorted()
      .filter((o) => o.tags['owner'] === owner)
      .map((o) => ({ ref: { space: o.space, name: o.name }, tags: { ...o.tags } as unknown as Tags, bytes: treeBytes(this.tree(o)) }));
  }

  // ---- test controls ---------------------------------------------------------------------

  /** Every running instance stops (a host reboot); objects stay. */
  reboot(): void {
    for (const o of this.objs.values()) o.status = 'stopped';
  }

  /** Put an object in place directly, e.g. one without an owner tag. Replaces any object there. */
  plant(ref: ObjectRef, opts: { tags?: Record<string, string>; status?: Status; base?: string; files?: FileTree } = {}): void {
    const base = opts.base ?? this.bases[0] ?? 'busybox';
    this.objs.set(key(ref), { space: ref.space, name: ref.name, tags: { ...(opts.tags ?? {}) }, status: opts.status ?? 'stopped', identity: newIdentity(this.rng), base, files: opts.files ? cloneTree(opts.files) : baseTree(base, this.generation(base)) });
  }

  objects(): FakeObject[] {
    return this.sorted().map(cloneObject);
  }

  scratches(): Record<string, FakeScratch> {
    const keys = [...this.scratch.keys()].sort();
    return Object.fromEntries(keys.map((k) => {
      const s = this.scratch.get(k)!;
      return [k, { users: [...s.users].sort(), files: cloneTree(s.files) }];
    }));
  }

  dump(): FakeImage {
    const bases = this.generations.size ? { bases: Object.fromEntries([...this.generations].sort(([a], [b]) => (a < b ? -1 : 1))) } : {};
    return { format: IMAGE_FORMAT, rng: this.rng.state, projects: [...this.projects].sort(), objects: this.objects(), scratches: this.scratches(), ...bases };
  }

  load(image: FakeImage): void {
    this.rng = new Prng(0, image.rng);
    this.projects = new Set(image.projects);
    this.objs = new Map(image.objects.map((o) => [key(o), cloneObject(o)]));
    this.scratch = new Map(Object.entries(image.scratches).map(([k, v]) => [k, { users: new Set(v.users), files: cloneTree(v.files) }]));
    this.generations = new Map(Object.entries(image.bases ?? {}));
  }

  // ---- helpers -----------------------------------------------------------------------------

  /** An object's root filesystem: its own, or its scratch's for containers sharing one. */
  private tree(o: FakeObject): FileTree {
    return o.scratch !== undefined ? this.scratch.get(o.scratch)!.files : o.files;
  }

  private sorted(): FakeObject[] {
    // Plain code-unit order on `space/name`: layers before workshops, then names.
    const k = (o: FakeObject) => [o.space, o.name] as const;
    return [...this.objs.values()].sort((a, b) => {
      const [as, an] = k(a);
      const [bs, bn] = k(b);
      return as !== bs ? (as < bs ? -1 : 1) : an < bn ? -1 : an > bn ? 1 : 0;
    });
  }

  private info(o: FakeObject): ObjectInfo {
    return { ref: { space: o.space, name: o.name }, tags: { ...o.tags } as unknown as Tags, status: o.status, identity: { ...o.identity }, ...(o.base !== undefined ? { base: o.base } : {}) };
  }

  private put(o: FakeObject): ObjectInfo {
    this.objs.set(key(o), o);
    return this.info(o);
  }

  private get(ref: ObjectRef, action: string): FakeObject {
    const obj = this.objs.get(key(ref));
    if (!obj) throw new BackendError('NOT_FOUND', `cannot ${action} ${key(ref)}: no such object in the fake backend`, { ref: key(ref) });
    return obj;
  }

  private exists(ref: ObjectRef): BackendError {
    return new BackendError('ALREADY_EXISTS', `${key(ref)} already exists; remove it first or pass refresh to rebuild it in place`, { ref: key(ref) });
  }

  private requireOwned(obj: FakeObject, action: string): void {
    if (!obj.tags['owner']) {
      throw new BackendError('NOT_OWNED', `will not ${action} ${key(obj)}: it carries no owner tag, so atelier did not create it; remove it by hand if it is yours`, { ref: key(obj) });
    }
  }

  private checkTarget(target: ObjectRef, tags: Tags): void {
    if (!NAME.test(target.name) || /^[0-9]+$/.test(target.name)) {
      throw new BackendError('INVALID', `"${target.name}" is not a valid object name: use 1-63 letters, digits and "-", not starting or ending with "-", not all digits`, { name: target.name });
    }
    if (target.space !== 'workshops' && target.space !== 'layers') throw new BackendError('INVALID', `unknown space "${String(target.space)}"`);
    if (!tags?.owner || !tags.op || !tags.kind) throw new BackendError('INVALID', `tags for ${key(target)} must set owner, op and kind`, { tags });
    const kinds: readonly string[] = ['workshop', 'container', ...LAYER_KINDS];
    if (!kinds.includes(tags.kind)) throw new BackendError('INVALID', `tag kind "${tags.kind}" is not one of ${kinds.join(', ')}`);
    if (spaceOf(tags.kind) !== target.space) throw new BackendError('INVALID', `a ${tags.kind} belongs in the ${spaceOf(tags.kind)} space, not ${target.space} (${key(target)})`);
  }

  /** The identity the target ends with; throws when the target may not be (re)written. */
  private checkRefreshTarget(target: ObjectRef, tags: Tags, existing: FakeObject | undefined, refresh: boolean): Identity {
    if (!existing) return newIdentity(this.rng);
    if (!refresh) throw this.exists(target);
    if (existing.tags['owner'] !== tags.owner) {
      throw new BackendError('NOT_OWNED', `will not refresh ${key(target)}: it belongs to ${existing.tags['owner'] ? `"${existing.tags['owner']}"` : 'no owner'}, not "${tags.owner}"`, { ref: key(target) });
    }
    if (existing.status === 'running') throw new BackendError('BUSY', `cannot refresh ${key(target)} while it is running; stop it first`, { ref: key(target) });
    if (existing.from) throw new BackendError('INVALID', `${key(target)} is a transient container; remove it and create a new one instead of refreshing it`);
    return { ...existing.identity };
  }
}

/** One word for the fake's shell: single-quoted unless it is plainly safe. */
function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

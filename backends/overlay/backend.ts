/**
 * The overlay backend's port adapter: each `Backend` call validated, run under the store lock, and
 * mapped onto the store (`store.ts`). Rules are the port's (`backends/types.ts`); what is specific
 * to this backend is noted where it happens.
 *
 * Adapters are made by `createOverlayBackend` (`index.ts`), which opens the store and recovers it.
 *
 * @example
 * ```ts
 * import { mkdtemp } from 'node:fs/promises';
 * import { tmpdir } from 'node:os';
 * import { join } from 'node:path';
 * import { createOverlayBackend } from 'atelier/backends/overlay';
 * const b = await createOverlayBackend({ root: await mkdtemp(join(tmpdir(), 'atelier-overlay-')) });
 * const ws = { space: 'workshops', name: 'w-1a2b3c4d' } as const;
 * await b.create({ target: ws, source: { base: b.defaultBase }, tags: { owner: 'alice', op: 'op1', kind: 'workshop' } });
 * await b.start(ws);
 * await b.exec(ws, { script: 'echo hi > "${ATELIER_ROOTFS%/}/etc/motd"' });
 * (await b.readFile(ws, '/etc/motd'))?.content; // 'hi\n'
 * await b.remove(ws);
 * ```
 */
import { writeFile, lstat, readFile as readFileFs, readlink } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import { BackendError } from '../types.ts';
import { checkResetIdentity } from '../identity.ts';
import type { SpawnRequest, SpawnedProcess } from '../types.ts';
import type { CopyRequest, CreateRequest, DiskSpace, ExecRequest, ExecResult, FileInfo, ObjectInfo, ObjectRef, ObjectUsage } from '../types.ts';
import type { View } from './drivers.ts';
import type { ScratchMeta, Store } from './store.ts';
import { sameRef } from './store.ts';
import type { ObjectMeta } from './meta.ts';
import { assertOwned, checkName, checkRef, cleanTags, newIdentity, toInfo, META_VERSION } from './meta.ts';
import { runHook } from './exec.ts';
import { resetIdentityInUpper } from './identity.ts';
import { spawnInContainer } from './spawn.ts';
import type { StoreLock } from './lock.ts';
import type { Isolation } from './runtime.ts';
import { DISK_FULL, toBackendError } from './fsutil.ts';
import { allocatedBytes, ownDirs, spaceOf } from './usage.ts';

export class OverlayAdapter {
  readonly kind = 'overlay';

  constructor(
    readonly store: Store,
    private readonly lock: StoreLock,
    readonly defaultBase: string,
    /** What a started instance is isolated by (`Isolation`); `runc` exactly when the store has a runtime. */
    readonly isolation: Isolation = store.runtime ? 'runc' : 'host',
    /** Why it is not `runc` (what is missing), or null. */
    readonly isolationReason: string | null = null,
  ) {}

  /** Run under the lock and let only `BackendError`s out (port rule 7). */
  protected async locked<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await this.lock.run(fn);
    } catch (e) {
      throw this.port(e, what);
    }
  }

  private async unlocked<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw this.port(e, what);
    }
  }

  /**
   * `locked`, for calls that make objects: when `fn` fails (a full disk half-way through), the
   * blobs it made already (a new upper, a frozen copy) are collected before the lock is released,
   * so a failed call leaves no directory behind. Refusals (`ALREADY_EXISTS`, `NOT_OWNED`...) are
   * raised before anything is made and skip the sweep.
   */
  private makeLocked<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return this.locked(what, async () => {
      try {
        return await fn();
      } catch (e) {
        const code = toBackendError(e, what).code;
        if (code === 'NO_SPACE' || code === 'INTERNAL' || code === 'UNAVAILABLE') await this.store.gc().catch(() => undefined);
        throw e;
      }
    });
  }

  /** Any error as a `BackendError`; a full disk's message names the store, which users must clear. */
  private port(e: unknown, what: string): BackendError {
    const err = toBackendError(e, what);
    const root = this.store.layout.root;
    if (err.code !== 'NO_SPACE' || err.message.includes(root)) return err;
    return new BackendError('NO_SPACE', `${err.message} (the disk holding the overlay store ${root} is full)`, { ...err.info, store: root });
  }

  private async info(meta: ObjectMeta): Promise<ObjectInfo> {
    return toInfo(meta, (await this.store.isRunning(meta.ref)) ? 'running' : 'stopped');
  }

  async ensureProjects(owner: string): Promise<void> {
    checkName(owner, 'owner');
  }

  async listBases(): Promise<string[]> {
    return this.locked('listBases', () => this.store.bases.names());
  }

  /** The base's blob id (`bases.ts`); the default base is built first if it is not yet. */
  async baseFingerprint(base: string): Promise<string> {
    return this.makeLocked(`baseFingerprint ${base}`, () => this.store.bases.fingerprint(base));
  }

  async create(req: CreateRequest): Promise<ObjectInfo> {
    checkRef(req.target, req.tags);
    if (req.target.space !== 'workshops') throw new BackendError('INVALID', 'create makes instances; layers are made by copy', { ref: req.target });
    return this.makeLocked(`create ${req.target.name}`, async () => {
      const s = this.store;
      const existing = await s.meta(req.target);
      if (existing && !req.refresh) throw new BackendError('ALREADY_EXISTS', `${req.target.name} already exists`, { ref: req.target });
      if (existing) {
        assertOwned(existing, req.tags.owner);
        await s.settle(existing);
        if (await s.isRunning(existing.ref)) throw new BackendError('BUSY', `${req.target.name} is running; stop it first`, { ref: req.target });
      }
      if ('base' in req.source) {
        const blob = await s.bases.blobFor(req.source.base);
        const chain = [blob];
        const fields = { chain, upper: await s.driver.newUpper(chain), base: req.source.base };
        return this.info(existing ? await this.replace(existing, req.tags, fields) : await this.make(req.target, req.tags, fields));
      }
      // A transient container from a workshop or a layer (port rule 5: it depends on its source).
      if (existing) throw new BackendError('INVALID', 'a transient container cannot be refreshed; remove it and create it again', { ref: req.target });
      const { object, scratch } = req.source;
      checkRef(object);
      let src = await s.mustMeta(object);
      assertOwned(src, req.tags.owner);
      src = await s.freeze(src);
      const base = { volatile: true, dependsOn: { space: object.space, name: object.name }, ...(src.base ? { base: src.base } : {}) };
      let meta: ObjectMeta;
      if (scratch !== undefined) {
        checkName(scratch, 'scratch key');
        await s.ensureScratch(scratch, src.chain);
        meta = await this.make(req.target, req.tags, { ...base, chain: [], scratch });
      } else {
        meta = await this.make(req.target, req.tags, { ...base, chain: src.chain, upper: await s.driver.newUpper(src.chain) });
      }
      // Alive for this boot only: the record lives on the volatile run directory.
      await writeFile(this.store.layout.livePath(req.target.name), '');
      return this.info(meta);
    });
  }

  async copy(req: CopyRequest): Promise<ObjectInfo> {
    checkRef(req.source);
    checkRef(req.target, req.tags);
    checkResetIdentity(req);
    return this.makeLocked(`copy ${req.source.name} -> ${req.target.name}`, async () => {
      const s = this.store;
      if (sameRef(req.source, req.target)) throw new BackendError('INVALID', 'cannot copy an object onto itself');
      let src = await s.mustMeta(req.source);
      assertOwned(src, req.tags.owner);
      src = await s.freeze(src); // O(1) on overlayfs: the source's upper joins its chain
      const existing = await s.meta(req.target);
      if (existing && !req.refresh) throw new BackendError('ALREADY_EXISTS', `${req.target.space}/${req.target.name} already exists`, { ref: req.target });
      if (existing) {
        assertOwned(existing, req.tags.owner);
        await s.settle(existing);
        if (await s.isRunning(existing.ref)) throw new BackendError('BUSY', `${req.target.name} is running; stop it before a refresh-copy`, { ref: req.target });
      }
      const instance = req.target.space === 'workshops';
      const fields = {
        chain: src.chain,
        ...(instance ? { upper: await s.driver.newUpper(src.chain) } : {}),
        ...(src.base ? { base: src.base } : {}),
      };
      // Into the new upper, before the meta file names it (`identity.ts`).
      if (req.resetIdentity && fields.upper) await resetIdentityInUpper(s, src.chain, fields.upper, req.target.name);
      const meta = existing ? await this.replace(existing, req.tags, fields) : await this.make(req.target, req.tags, fields);
      return this.info(meta);
    });
  }

  /** A new object with a new identity (port rule 3). */
  private async make(ref: ObjectRef, tags: CreateRequest['tags'], fields: Partial<ObjectMeta> & Pick<ObjectMeta, 'chain'>): Promise<ObjectMeta> {
    const meta: ObjectMeta = { version: META_VERSION, ref: { space: ref.space, name: ref.name }, tags: cleanTags(tags), identity: newIdentity(), ...fields };
    await this.store.createObject(meta);
    return meta;
  }

  /** Refresh: new root and tags, same identity (port rule 3). The old upper becomes garbage. */
  private async replace(existing: ObjectMeta, tags: CreateRequest['tags'], fields: Partial<ObjectMeta> & Pick<ObjectMeta, 'chain'>): Promise<ObjectMeta> {
    if (await this.store.isRunning(existing.ref)) throw new BackendError('BUSY', `${existing.ref.name} is running; stop it first`, { ref: existing.ref });
    const meta: ObjectMeta = { version: META_VERSION, ref: existing.ref, tags: cleanTags(tags), identity: existing.identity, ...fields };
    await this.store.writeMeta(meta);
    await this.store.gc();
    return meta;
  }

  async remove(ref: ObjectRef): Promise<void> {
    checkRef(ref);
    await this.locked(`remove ${ref.name}`, async () => {
      const s = this.store;
      const meta = await s.meta(ref);
      if (!meta) return;
      assertOwned(meta);
      const dependents = (await s.allMetas()).filter((m) => sameRef(m.dependsOn, ref));
      if (dependents.length) {
        throw new BackendError('IN_USE', `${ref.name} is the source of ${dependents.map((d) => d.ref.name).join(', ')}`, { ref, dependents: dependents.map((d) => d.ref.name) });
      }
      await s.destroy(meta);
      await s.gc(); // the blobs only this object held are reclaimed; shared ones stay
    });
  }

  async start(ref: ObjectRef): Promise<void> {
    checkRef(ref);
    await this.locked(`start ${ref.name}`, async () => {
      const s = this.store;
      const meta = await s.mustMeta(ref);
      assertOwned(meta);
      const rw = await s.rwOf(meta);
      if (!rw) throw new BackendError('INVALID', `${ref.name} is a layer; layers are never started`, { ref });
      // Mounted (a shared scratch once, by its first started user), then its container run.
      await s.start(meta, rw);
    });
  }

  async stop(ref: ObjectRef): Promise<void> {
    checkRef(ref);
    await this.locked(`stop ${ref.name}`, async () => {
      const meta = await this.store.mustMeta(ref);
      assertOwned(meta);
      await this.store.stop(meta);
    });
  }

  /**
   * A running instance's root on the host, for `exec` and `spawn`. Read without the lock, like
   * `inspect`: the lock could not keep the instance running after this returns anyway (the
   * process starts outside it), and a `spawn` must not wait behind a long copy of another workshop.
   */
  private runningRoot(what: string, ref: ObjectRef): Promise<string> {
    return this.unlocked(`${what} ${ref.name}`, async () => {
      const meta = await this.store.mustMeta(ref);
      assertOwned(meta);
      const rw = await this.store.rwOf(meta);
      if (!rw) throw new BackendError('INVALID', `${ref.name} is a layer; ${what === 'exec' ? 'hooks' : 'processes'} run in instances`, { ref });
      if (!(await this.store.isRunning(ref))) throw new BackendError('INVALID', `${ref.name} is stopped; start it before ${what}`, { ref });
      return this.store.driver.rootOf(rw);
    });
  }

  /** Where launches (`process.ts`) keep their pid files: the volatile run directory. */
  private get execTmp(): string {
    return join(this.store.layout.runDir, 'exec');
  }

  async exec(ref: ObjectRef, req: ExecRequest): Promise<ExecResult> {
    checkRef(ref);
    const rootfs = await this.runningRoot('exec', ref);
    const runtime = this.store.runtime;
    // Outside the lock: a long hook must not stall other workshops.
    try {
      const container = runtime ? { runc: runtime, name: ref.name, tmp: this.execTmp } : undefined;
      const { exitCode, stdout, stderr } = await runHook(rootfs, req, container);
      return { exitCode, stdout, stderr };
    } catch (e) {
      const err = this.port(e, `exec ${ref.name}`);
      const stderr = String(err.info['stderr'] ?? '');
      if (err.code !== 'EXEC_FAILED' || !DISK_FULL.test(stderr)) throw err;
      // The hook failed for want of room: what the user must fix is the store's disk, not the hook.
      const line = stderr.split('\n').filter((l) => DISK_FULL.test(l)).pop()?.trim() ?? '';
      throw new BackendError(
        'NO_SPACE',
        `hook in ${ref.name} exited ${String(err.info['exitCode'])}: the disk holding the overlay store ${this.store.layout.root} is full (${line}); free space there and run it again`,
        { ...err.info },
      );
    }
  }

  /**
   * A process in the instance's container (`spawn.ts`). Without containers (`isolation` is not
   * `runc`) there is nowhere to run it apart from the host: `UNAVAILABLE`, naming what is missing.
   */
  async spawn(ref: ObjectRef, req: SpawnRequest): Promise<SpawnedProcess> {
    checkRef(ref);
    if (req.argv.length === 0) throw new BackendError('INVALID', 'spawn needs a command: argv is empty');
    const rootfs = await this.runningRoot('spawn', ref);
    const runtime = this.store.runtime;
    if (!runtime) {
      throw new BackendError('UNAVAILABLE', `cannot start a process in ${ref.name}: this overlay store runs no containers (${this.isolationReason ?? 'no runtime'})`, { isolation: this.isolation });
    }
    return this.unlocked(`spawn ${ref.name}`, () => spawnInContainer(runtime, ref.name, rootfs, req, this.execTmp));
  }

  // inspect and list read without the lock: meta files and run records are replaced atomically
  // (rename), so a reader sees the old or the new state, never a torn one.
  async inspect(ref: ObjectRef): Promise<ObjectInfo | null> {
    checkRef(ref);
    return this.unlocked(`inspect ${ref.name}`, async () => {
      const meta = await this.store.meta(ref);
      return meta ? this.info(meta) : null;
    });
  }

  async list(owner: string): Promise<ObjectInfo[]> {
    return this.unlocked('list', async () => Promise.all((await this.owned(owner)).map((m) => this.info(m))));
  }

  /** `owner`'s metas in `list` order: by space (layers first), then name. */
  private async owned(owner: string): Promise<ObjectMeta[]> {
    const metas = (await this.store.allMetas()).filter((m) => m.tags?.owner === owner);
    metas.sort((a, b) => (a.ref.space === b.ref.space ? (a.ref.name < b.ref.name ? -1 : a.ref.name > b.ref.name ? 1 : 0) : a.ref.space === 'layers' ? -1 : 1));
    return metas;
  }

  // diskSpace and usage only read, without the lock (like list): the engine asks for room before
  // each command, and a walk of a large store must not stall the commands of other workshops.
  async diskSpace(): Promise<DiskSpace> {
    return this.unlocked('diskSpace', () => spaceOf(this.store.layout.root));
  }

  /** Each object's own directories' allocated bytes (which those are: `usage.ts`). */
  async usage(owner: string): Promise<ObjectUsage[]> {
    return this.unlocked('usage', async () => {
      const s = this.store;
      const metas = await this.owned(owner);
      const baseBlobs = new Set(await s.bases.liveBlobs());
      const scratches = new Map<string, ScratchMeta | null>();
      const out: ObjectUsage[] = [];
      for (const m of metas) {
        if (m.scratch && !scratches.has(m.scratch)) scratches.set(m.scratch, await s.scratchMeta(m.scratch));
        const scratch = m.scratch ? (scratches.get(m.scratch) ?? null) : null;
        const bytes = await allocatedBytes(ownDirs(s.layout, m, scratch, baseBlobs));
        out.push({ ref: { space: m.ref.space, name: m.ref.name }, tags: m.tags, bytes });
      }
      return out;
    });
  }

  /**
   * A read-only view of an object's root: the running root itself for a started instance, else a
   * lower-only overlay mount (which the kernel makes read-only: writes fail with `EROFS`). Release
   * it when done. Call under the lock.
   */
  protected async viewOf(meta: ObjectMeta): Promise<View> {
    const s = this.store;
    const rw = await s.rwOf(meta);
    if (rw && (await s.started(meta.ref))) return { path: s.driver.rootOf(rw), release: async () => {} };
    return s.driver.view(rw ? [...rw.chain, rw.upper] : meta.chain);
  }

  async readFile(ref: ObjectRef, path: string): Promise<FileInfo | null> {
    checkRef(ref);
    return this.locked(`readFile ${ref.name}`, async () => {
      const view = await this.viewOf(await this.store.mustMeta(ref));
      try {
        return await statInRoot(view.path, path);
      } finally {
        await view.release();
      }
    });
  }

  async close(): Promise<void> {
    // Nothing is held between calls: views are released per call, instances stay mounted.
  }
}

/** `lstat` + content of `path` inside `root`, never escaping it through `..`. */
async function statInRoot(root: string, path: string): Promise<FileInfo | null> {
  const rel = normalize(`/${path}`).replace(/^\/+/, '');
  const full = join(root, rel);
  let st;
  try {
    st = await lstat(full);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
  const base = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  if (st.isFile()) return { type: 'file', ...base, content: await readFileFs(full, 'utf8') };
  if (st.isDirectory()) return { type: 'dir', ...base };
  if (st.isSymbolicLink()) return { type: 'symlink', ...base, content: await readlink(full) };
  return { type: 'other', ...base };
}

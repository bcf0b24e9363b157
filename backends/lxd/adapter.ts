/**
 * The LXD adapter: the port (`backends/types.ts`) on a real LXD daemon.
 *
 * One adapter instance serves one owner (`opts.owner`): every object operation works in that
 * owner's two projects, and an existing object counts as owned when its `user.atelier.owner` is that
 * owner. `tags.owner` is stored verbatim (a caller may tag an object for someone else: it is then
 * not ours). `ensureProjects(owner)` and `list(owner)` use their argument's projects.
 *
 * - space `workshops` is project `workshop.<owner>`, `layers` is `workshop-layers.<owner>`; both are
 *   created on demand with `features.images=false` and `features.profiles=false` (they use the
 *   default project's images and profiles: a project with its own empty profiles cannot receive
 *   copies on LXD 5.0).
 * - copies are instance-only and always send `profiles`; refresh-copies go through the API
 *   (`source.refresh`), then the non-volatile config is put back (LXD's refresh syncs only the root
 *   filesystem), keeping the target's uuid and MAC.
 * - `create({refresh, source: {base}})` rebuilds in place: a temporary instance from the image,
 *   refresh-copied onto the target, then deleted. The temporary instance is tagged with the owner and
 *   the op, so a crash in between leaves an owned object that garbage collection removes.
 * - hooks run through the exec API with recorded output; `ATELIER_ROOTFS=/`. A hook whose stderr
 *   says the disk is full fails with `NO_SPACE` (naming the instance's pool), not `EXEC_FAILED`.
 * - processes (`spawn`) run through the exec API with its websockets (`spawn.ts`,
 *   `exec-stream.ts`): the user looked up in the instance's `/etc/passwd`, the streams connected.
 * - `addBase` (not in the port: `atelier base add` finds it by duck typing) imports a root
 *   filesystem as an image of the default project (`images.ts`), adding an init when it has none;
 *   `baseFingerprint` is the fingerprint of the image an alias points at.
 * - `resetIdentity` (`identity.ts`): the copy's identity files are written through the file API
 *   before its op tag (a new copy gets it afterwards; a refresh-copy writes its config last anyway).
 * - `diskSpace` reports the pool new instances go to (`pool`, else the first profile's root disk):
 *   `GET /1.0/storage-pools/<pool>/resources`. `usage` reads each instance's `state.disk.root.usage`
 *   (one `recursion=2` listing per space); a driver that reports none (`dir` without quotas,
 *   `btrfs` without qgroups) gives `bytes: null`.
 */
import { randomBytes } from 'node:crypto';
import type {
  Backend,
  CopyRequest,
  CreateRequest,
  DiskSpace,
  ExecRequest,
  ExecResult,
  FileInfo,
  ObjectInfo,
  ObjectRef,
  ObjectUsage,
  Space,
  Tags,
} from '../types.ts';
import { BackendError, spaceOf } from '../types.ts';
import { checkResetIdentity } from '../identity.ts';
import type { SpawnRequest, SpawnedProcess } from '../types.ts';
import type { LxdClient, LxdInstance } from './client.ts';
import {
  BASE_KEY,
  OP_KEY,
  OWNER_KEY,
  SCRATCH_DEVICE,
  SCRATCH_KEY,
  SCRATCH_PATH,
  SOURCE_KEY,
  TEMP_KEY,
  carriedConfig,
  carriedDevices,
  copyRequestConfig,
  identityOf,
  isLayerKind,
  projectName,
  refKey,
  refreshConfig,
  tagsOf,
  tagsToConfig,
} from './config.ts';
import { DISK_FULL, runHook } from './exec.ts';
import { getFile } from './files.ts';
import { finishCopy, resetInstanceIdentity } from './identity.ts';
import { baseFingerprint, importBase } from './images.ts';
import { spawnProcess } from './spawn.ts';
import { ensureOwnerProjects, settle } from './projects.ts';
import { ensureScratch, releaseScratch, rootPool } from './scratch.ts';

export interface LxdAdapterOptions {
  owner: string;
  defaultBase: string;
  stopTimeoutS: number;
  profiles: string[];
  /** Storage pool for new instances (a local root disk device); copies follow their source. */
  pool?: string;
}

const NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** What `GET /1.0/storage-pools/<pool>/resources` answers (bytes). */
interface PoolResources {
  space?: { used?: number; total?: number };
}

/** An instance with its state, as a `recursion=2` listing gives it. */
type InstanceWithState = LxdInstance & { state?: { disk?: Record<string, { usage?: number }> | null } | null };

export class LxdAdapter implements Backend {
  readonly kind = 'lxd';
  readonly defaultBase: string;
  private readonly ensured = new Set<string>();
  /** The pool new instances go to, looked up once (a failed lookup is retried next time). */
  private pool: Promise<string> | null = null;

  constructor(
    private readonly client: LxdClient,
    private readonly opts: LxdAdapterOptions,
  ) {
    this.defaultBase = opts.defaultBase;
  }

  private project(space: Space, owner = this.opts.owner): string {
    return projectName(space, owner);
  }

  // ---- projects and bases -------------------------------------------------------------------

  async ensureProjects(owner: string): Promise<void> {
    if (this.ensured.has(owner)) return;
    await ensureOwnerProjects(this.client, owner);
    this.ensured.add(owner);
  }

  /**
   * Import a root filesystem (a directory or a tarball) as an image aliased `name` in the default
   * project, which the owner's projects use (`images.ts`); a root without a usable `/sbin/init`
   * gets a small one. Reached by `atelier base add` through `backends/select.ts`.
   * @throws `INVALID` for a bad name or something that is not a root; `NOT_FOUND` for a missing
   *   path; `ALREADY_EXISTS` when the alias is taken.
   * @example await lxd.addBase('bookworm', '/var/cache/atelier/debian/bookworm-amd64-minbase-0123.tar');
   */
  addBase(name: string, path: string): Promise<void> {
    return importBase(this.client, name, path);
  }

  async listBases(): Promise<string[]> {
    const aliases = await this.client.get<Array<{ name: string }>>('/1.0/images/aliases', { recursion: 1 });
    return aliases.map((a) => a.name).sort();
  }

  baseFingerprint(base: string): Promise<string> {
    return baseFingerprint(this.client, base);
  }

  // ---- reading ------------------------------------------------------------------------------

  private async fetch(ref: ObjectRef, owner = this.opts.owner): Promise<LxdInstance | null> {
    await settle(this.client, this.project(ref.space, owner), ref.name);
    try {
      return await this.client.get<LxdInstance>(`/1.0/instances/${encodeURIComponent(ref.name)}`, { project: this.project(ref.space, owner) });
    } catch (e) {
      if (e instanceof BackendError && e.code === 'NOT_FOUND') return null;
      throw e;
    }
  }

  private info(ref: ObjectRef, inst: LxdInstance): ObjectInfo {
    const base = inst.config[BASE_KEY];
    return {
      ref: { space: ref.space, name: inst.name },
      tags: tagsOf(inst.config),
      status: inst.status === 'Stopped' ? 'stopped' : 'running',
      identity: identityOf(inst.config),
      ...(base ? { base } : {}),
    };
  }

  /** The object, which must exist and be owned. */
  private async owned(ref: ObjectRef, owner = this.opts.owner): Promise<LxdInstance> {
    const inst = await this.fetch(ref, owner);
    if (!inst) throw new BackendError('NOT_FOUND', `${ref.space}/${ref.name} does not exist`, { ref });
    this.checkOwned(ref, inst, owner);
    return inst;
  }

  /** What a create or copy just made (its owner tag is whatever the caller gave). */
  private async present(ref: ObjectRef, owner: string): Promise<ObjectInfo> {
    const inst = await this.fetch(ref, owner);
    if (!inst) throw new BackendError('INTERNAL', `LXD reported ${ref.space}/${ref.name} made, but it is absent`, { ref });
    return this.info(ref, inst);
  }

  private checkOwned(ref: ObjectRef, inst: LxdInstance, owner: string): void {
    if (inst.config[OWNER_KEY] !== owner) {
      throw new BackendError('NOT_OWNED', `${ref.space}/${ref.name} is not owned by ${owner}; atelier never touches it`, { ref, owner: inst.config[OWNER_KEY] ?? null });
    }
  }

  async inspect(ref: ObjectRef): Promise<ObjectInfo | null> {
    const inst = await this.fetch(ref);
    return inst ? this.info(ref, inst) : null;
  }

  async list(owner: string): Promise<ObjectInfo[]> {
    return (await this.listed(owner, 1)).map(({ space, inst }) => this.info({ space, name: inst.name }, inst));
  }

  /**
   * `owner`'s instances in both spaces, in `list` order (space, then name). `recursion: 2` adds each
   * one's state (disk usage), which costs LXD a look at every instance.
   */
  private async listed(owner: string, recursion: 1 | 2): Promise<Array<{ space: Space; inst: InstanceWithState }>> {
    const out: Array<{ space: Space; inst: InstanceWithState }> = [];
    for (const space of ['layers', 'workshops'] as const) {
      const all = await this.client.get<InstanceWithState[]>('/1.0/instances', {
        project: this.project(space, owner),
        recursion,
        filter: `config.${OWNER_KEY} eq ${owner}`,
      });
      for (const inst of all) if (inst.config[OWNER_KEY] === owner) out.push({ space, inst });
    }
    return out.sort((a, b) => (a.space === b.space ? cmp(a.inst.name, b.inst.name) : cmp(a.space, b.space)));
  }

  // ---- disk space ---------------------------------------------------------------------------

  /** The pool new instances go to (the `pool` option, else the first profile's root disk). */
  private rootPool(): Promise<string> {
    if (!this.pool) {
      const p = rootPool(this.client, this.opts.pool, this.opts.profiles[0] ?? 'default');
      this.pool = p;
      p.catch(() => {
        if (this.pool === p) this.pool = null;
      });
    }
    return this.pool;
  }

  async diskSpace(): Promise<DiskSpace> {
    const pool = await this.rootPool();
    const r = await this.client.get<PoolResources>(`/1.0/storage-pools/${encodeURIComponent(pool)}/resources`);
    const total = bytesOf(r?.space?.total);
    const used = bytesOf(r?.space?.used);
    return { where: `lxd:${pool}`, total, free: Math.max(0, Math.min(total, total - used)) };
  }

  /** One listing with state per space: LXD's root disk usage, or null when its driver reports none. */
  async usage(owner: string): Promise<ObjectUsage[]> {
    return (await this.listed(owner, 2)).map(({ space, inst }) => {
      const usage = inst.state?.disk?.['root']?.usage;
      return { ref: { space, name: inst.name }, tags: tagsOf(inst.config), bytes: typeof usage === 'number' && usage >= 0 ? Math.trunc(usage) : null };
    });
  }

  async readFile(ref: ObjectRef, path: string): Promise<FileInfo | null> {
    await this.owned(ref);
    const f = await getFile(this.client, ref.name, this.project(ref.space), path);
    if (!f) return null;
    const { type, mode, uid, gid } = f;
    return { type, mode, uid, gid, ...(type === 'file' || type === 'symlink' ? { content: f.body.toString('utf8') } : {}) };
  }

  // ---- creating -----------------------------------------------------------------------------

  private checkTarget(req: { target: ObjectRef; tags: Tags }): void {
    if (!NAME_RE.test(req.target.name)) throw new BackendError('INVALID', `"${req.target.name}" is not a valid LXD instance name`, { ref: req.target });
    if (spaceOf(req.tags.kind) !== req.target.space) {
      throw new BackendError('INVALID', `an object of kind ${req.tags.kind} cannot live in the ${req.target.space} space`, { ref: req.target });
    }
  }

  async create(req: CreateRequest): Promise<ObjectInfo> {
    this.checkTarget(req);
    const owner = this.opts.owner;
    await this.ensureProjects(owner);
    const project = this.project(req.target.space, owner);
    const existing = await this.fetch(req.target, owner);

    if ('object' in req.source) {
      if (existing) throw new BackendError('ALREADY_EXISTS', `${req.target.space}/${req.target.name} already exists`, { ref: req.target });
      return this.createTransient(req, req.source.object, req.source.scratch);
    }
    const base = req.source.base;
    if (existing) {
      if (!req.refresh) throw new BackendError('ALREADY_EXISTS', `${req.target.space}/${req.target.name} already exists`, { ref: req.target });
      this.checkOwned(req.target, existing, owner);
      if (existing.status !== 'Stopped') throw new BackendError('BUSY', `${req.target.name} is running; stop it before rebuilding it`, { ref: req.target });
      return this.rebuildFromBase(req, base, existing);
    }
    const config: Record<string, string> = { ...tagsToConfig(req.tags), [BASE_KEY]: base };
    if (isLayerKind(req.tags.kind) || req.tags.kind === 'container') config['boot.autostart'] = 'false';
    await this.client.async(
      'POST',
      '/1.0/instances',
      { name: req.target.name, type: 'container', profiles: this.opts.profiles, source: { type: 'image', alias: base }, config, devices: this.rootDevice() },
      { project },
    ).catch((e: unknown) => {
      if (e instanceof BackendError && e.code === 'NOT_FOUND') throw new BackendError('NOT_FOUND', `base "${base}" is not an image alias of this LXD (see \`atelier base list\`)`, { base });
      throw e;
    });
    return this.present(req.target, owner);
  }

  /** Rebuild a stopped instance from an image in place: temp instance, refresh-copy, delete temp. */
  private async rebuildFromBase(req: CreateRequest, base: string, target: LxdInstance): Promise<ObjectInfo> {
    const owner = this.opts.owner;
    const project = this.project('workshops', owner);
    const tmp = `atelier-tmp-${randomBytes(6).toString('hex')}`;
    const tmpRef: ObjectRef = { space: 'workshops', name: tmp };
    const tmpTags: Tags = { owner, op: req.tags.op, kind: 'container', ...(req.tags.workshop ? { workshop: req.tags.workshop } : {}) };
    await this.client.async(
      'POST',
      '/1.0/instances',
      {
        name: tmp,
        type: 'container',
        profiles: this.opts.profiles,
        source: { type: 'image', alias: base },
        config: { ...tagsToConfig(tmpTags), [BASE_KEY]: base, [TEMP_KEY]: 'true', 'boot.autostart': 'false' },
        // on the target's pool, so the refresh-copy stays within one pool
        devices: target.devices.root ? { root: target.devices.root } : this.rootDevice(),
      },
      { project },
    );
    try {
      const src = await this.owned(tmpRef, owner);
      return await this.refreshOnto(tmpRef, src, req.target, target, req.tags, owner);
    } finally {
      await this.deleteInstance(tmpRef, owner).catch(() => undefined);
    }
  }

  private async createTransient(req: CreateRequest, source: ObjectRef, scratch: string | undefined): Promise<ObjectInfo> {
    const owner = this.opts.owner;
    const src = await this.owned(source, owner);
    const carried = carriedConfig(src.config, req.tags, req.tags.kind);
    carried[SOURCE_KEY] = refKey(source);
    const devices: Record<string, Record<string, string>> = {};
    if (scratch !== undefined) {
      carried[SCRATCH_KEY] = scratch;
      const pool = await rootPool(this.client, this.opts.pool, this.opts.profiles[0] ?? 'default');
      const volume = await ensureScratch(this.client, this.project('workshops', owner), pool, scratch);
      devices[SCRATCH_DEVICE] = { type: 'disk', pool, source: volume, path: SCRATCH_PATH };
    }
    await this.copyInstance(source, src, req.target, owner, copyRequestConfig(src.config, carried), devices);
    return this.present(req.target, owner);
  }

  async copy(req: CopyRequest): Promise<ObjectInfo> {
    this.checkTarget(req);
    checkResetIdentity(req);
    const owner = this.opts.owner;
    await this.ensureProjects(owner);
    const src = await this.owned(req.source, owner);
    const target = await this.fetch(req.target, owner);
    if (target) {
      if (!req.refresh) throw new BackendError('ALREADY_EXISTS', `${req.target.space}/${req.target.name} already exists`, { ref: req.target });
      this.checkOwned(req.target, target, owner);
      if (target.status !== 'Stopped') throw new BackendError('BUSY', `${req.target.name} is running; a refresh-copy needs it stopped`, { ref: req.target });
      return this.refreshOnto(req.source, src, req.target, target, req.tags, owner, req.resetIdentity);
    }
    const carried = carriedConfig(src.config, req.tags, req.tags.kind);
    if (req.resetIdentity) delete carried[OP_KEY]; // written once the identity files are (identity.ts)
    await this.copyInstance(req.source, src, req.target, owner, copyRequestConfig(src.config, carried), {});
    if (req.resetIdentity) await finishCopy(this.client, req.target.name, this.project(req.target.space, owner), req.tags.op, () => this.deleteInstance(req.target, owner));
    return this.present(req.target, owner);
  }

  /**
   * An instance-only copy. LXD 5.0 copies a running container on a `dir` or `btrfs` pool live (rsync
   * or a subvolume snapshot), so a workshop is snapshotted without being stopped.
   */
  private async copyInstance(
    source: ObjectRef,
    src: LxdInstance,
    target: ObjectRef,
    owner: string,
    config: Record<string, string>,
    devices: Record<string, Record<string, string>>,
  ): Promise<void> {
    await this.client.async(
      'POST',
      '/1.0/instances',
      {
        name: target.name,
        type: 'container',
        profiles: src.profiles.length ? src.profiles : this.opts.profiles,
        config,
        devices,
        source: { type: 'copy', source: source.name, project: this.project(source.space, owner), instance_only: true },
      },
      { project: this.project(target.space, owner) },
    );
  }

  /**
   * Refresh-copy `source` onto the existing, stopped `target`: LXD syncs the root filesystem, then the
   * source's config (with the new tags) is put on the target, which keeps its own volatile keys. The
   * op tag is written last, so a crash in between leaves the old op tag and the step is redone.
   */
  private async refreshOnto(source: ObjectRef, src: LxdInstance, target: ObjectRef, tgt: LxdInstance, tags: Tags, owner: string, resetIdentity = false): Promise<ObjectInfo> {
    const project = this.project(target.space, owner);
    await this.client.async(
      'POST',
      '/1.0/instances',
      {
        name: target.name,
        type: 'container',
        profiles: src.profiles.length ? src.profiles : this.opts.profiles,
        source: { type: 'copy', source: source.name, project: this.project(source.space, owner), instance_only: true, refresh: true },
      },
      { project },
    );
    if (resetIdentity) await resetInstanceIdentity(this.client, target.name, project);
    const now = await this.owned(target, owner);
    const carried = carriedConfig(src.config, tags, tags.kind);
    await this.client.sync(
      'PUT',
      `/1.0/instances/${encodeURIComponent(target.name)}`,
      {
        architecture: now.architecture,
        config: refreshConfig(src.config, now.config, carried),
        devices: { ...carriedDevices(src.devices), ...scratchDeviceOf(tgt) },
        ephemeral: now.ephemeral,
        profiles: src.profiles.length ? src.profiles : this.opts.profiles,
        description: src.description ?? '',
      },
      { project },
    );
    return this.present(target, owner);
  }

  // ---- removing -----------------------------------------------------------------------------

  async remove(ref: ObjectRef): Promise<void> {
    const inst = await this.fetch(ref);
    if (!inst) return;
    this.checkOwned(ref, inst, this.opts.owner);
    const dependants = await this.client.get<LxdInstance[]>('/1.0/instances', {
      project: this.project('workshops'),
      recursion: 1,
      filter: `config.${SOURCE_KEY} eq ${refKey(ref)}`,
    });
    const live = dependants.filter((d) => d.config[OWNER_KEY] === this.opts.owner && d.config[SOURCE_KEY] === refKey(ref) && d.name !== ref.name);
    if (live.length) {
      throw new BackendError('IN_USE', `${ref.space}/${ref.name} is the source of running transient container(s) ${live.map((d) => d.name).join(', ')}`, { ref, containers: live.map((d) => d.name) });
    }
    if (inst.status !== 'Stopped') await this.stopInstance(ref, true);
    await this.deleteInstance(ref, this.opts.owner);
    const scratch = inst.config[SCRATCH_KEY];
    if (scratch !== undefined) {
      const pool = await rootPool(this.client, this.opts.pool, this.opts.profiles[0] ?? 'default');
      await releaseScratch(this.client, this.project('workshops'), pool, scratch);
    }
  }

  private async deleteInstance(ref: ObjectRef, owner: string): Promise<void> {
    try {
      await this.client.async('DELETE', `/1.0/instances/${encodeURIComponent(ref.name)}`, undefined, { project: this.project(ref.space, owner) });
    } catch (e) {
      if (e instanceof BackendError && e.code === 'NOT_FOUND') return;
      throw e;
    }
  }

  // ---- running ------------------------------------------------------------------------------

  private checkRunnable(ref: ObjectRef, inst?: LxdInstance): void {
    const kind = inst?.config[`user.atelier.kind`];
    if (ref.space === 'layers' || isLayerKind(kind)) throw new BackendError('INVALID', `${ref.name} is a layer; layers are never started`, { ref });
  }

  async start(ref: ObjectRef): Promise<void> {
    this.checkRunnable(ref);
    const inst = await this.owned(ref);
    this.checkRunnable(ref, inst);
    if (inst.status === 'Running') return;
    await this.client.async('PUT', `/1.0/instances/${encodeURIComponent(ref.name)}/state`, { action: 'start', timeout: 30 }, { project: this.project(ref.space) });
  }

  async stop(ref: ObjectRef): Promise<void> {
    const inst = await this.owned(ref);
    if (inst.status === 'Stopped') return;
    await this.stopInstance(ref, false);
  }

  /** Stop gracefully within `stopTimeoutS`, then force; `force` (or a timeout of 0) forces at once. */
  private async stopInstance(ref: ObjectRef, force: boolean): Promise<void> {
    const path = `/1.0/instances/${encodeURIComponent(ref.name)}/state`;
    const query = { project: this.project(ref.space) };
    const t = this.opts.stopTimeoutS;
    if (!force && t > 0) {
      try {
        await this.client.async('PUT', path, { action: 'stop', timeout: t, force: false }, query);
        return;
      } catch (e) {
        if (!(e instanceof BackendError) || e.code === 'UNAVAILABLE' || e.code === 'NOT_FOUND') throw e;
        // fall through: force it
      }
    }
    try {
      await this.client.async('PUT', path, { action: 'stop', timeout: -1, force: true }, query);
    } catch (e) {
      if (e instanceof BackendError && /already stopped|not running/i.test(e.message)) return;
      throw e;
    }
  }

  async exec(ref: ObjectRef, req: ExecRequest): Promise<ExecResult> {
    const inst = await this.owned(ref);
    if (inst.status !== 'Running') throw new BackendError('INVALID', `${ref.name} is not running; start it before running a hook in it`, { ref });
    try {
      return await runHook(this.client, ref.name, this.project(ref.space), req);
    } catch (e) {
      const stderr = e instanceof BackendError && e.code === 'EXEC_FAILED' ? String(e.info['stderr'] ?? '') : '';
      if (!DISK_FULL.test(stderr)) throw e;
      // The hook failed for want of room: what the user must fix is the pool, not the hook.
      const err = e as BackendError;
      const pool = (inst.expanded_devices?.['root'] ?? inst.devices['root'])?.['pool'] ?? (await this.rootPool().catch(() => '?'));
      const line = stderr.split('\n').filter((l) => DISK_FULL.test(l)).pop()?.trim() ?? '';
      throw new BackendError(
        'NO_SPACE',
        `hook in ${ref.name} exited ${String(err.info['exitCode'])}: the LXD storage pool ${pool} holding it is full (${line}); free space there and run it again`,
        { ...err.info },
      );
    }
  }

  async spawn(ref: ObjectRef, req: SpawnRequest): Promise<SpawnedProcess> {
    const inst = await this.owned(ref);
    this.checkRunnable(ref, inst);
    if (req.argv.length === 0) throw new BackendError('INVALID', 'spawn needs a command: argv is empty', { ref });
    if (inst.status !== 'Running') throw new BackendError('INVALID', `${ref.name} is not running; start it before running a process in it`, { ref });
    return spawnProcess(this.client, ref.name, this.project(ref.space), req);
  }

  private rootDevice(): Record<string, Record<string, string>> {
    return this.opts.pool ? { root: { type: 'disk', path: '/', pool: this.opts.pool } } : {};
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

function scratchDeviceOf(inst: LxdInstance): Record<string, Record<string, string>> {
  const d = inst.devices[SCRATCH_DEVICE];
  return d ? { [SCRATCH_DEVICE]: d } : {};
}

/** A byte count LXD reported, as a non-negative integer (absent: 0). */
function bytesOf(n: unknown): number {
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? Math.trunc(n) : 0;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The object store under the port: meta files, writable roots, freezing an upper into the chain
 * (the O(1) snapshot), shared scratches, starting and stopping instances (a mount, plus a runc
 * container when the store has a runtime: `runtime.ts`), garbage collection and start-up recovery.
 *
 * **Started and running.** An instance is *started* while its `running` record exists on the run
 * directory: its root is mounted (a shared scratch once for all its started users). Without a
 * runtime that is all, and started means running. With one, it is *running* only while its
 * container runs too: an instance whose init died reads as stopped, and the next call that changes
 * it first stops it for good (`settle`: container deleted, root unmounted, record dropped).
 *
 * Every method here expects the caller to hold the store lock (`lock.ts`); the port adapter
 * (`backend.ts`) takes it once per call.
 *
 * @example
 * ```ts
 * const store = new Store(layout, driver, bases, 64, runc);
 * await store.start(meta);                    // mounted, and its container runs
 * const frozen = await store.freeze(meta);   // upper committed, fresh upper given, remounted if running
 * await store.gc();                           // blobs no meta, base or scratch names are removed
 * ```
 */
import { readFile, writeFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BackendError } from '../types.ts';
import type { ObjectRef, Space } from '../types.ts';
import type { Layout } from './layout.ts';
import type { Driver, Rw } from './drivers.ts';
import type { BaseRegistry } from './bases.ts';
import { readMeta, writeMeta } from './meta.ts';
import type { ObjectMeta } from './meta.ts';
import { flattenChain } from './flatten.ts';
import { fitsOneMount, isMounted, mountsUnder, unmount } from './mounts.ts';
import { exists, listDir, removeTree, writeFileAtomic } from './fsutil.ts';
import { containerId, registerTag, sweepAbandoned } from './runtime.ts';
import type { Runc } from './runtime.ts';

/** A shared transient scratch: one writable root several containers run on. */
export interface ScratchMeta {
  readonly key: string;
  readonly chain: readonly string[];
  readonly upper: string;
}

export function sameRef(a: ObjectRef | undefined, b: ObjectRef): boolean {
  return !!a && a.space === b.space && a.name === b.name;
}

export class Store {
  constructor(
    readonly layout: Layout,
    readonly driver: Driver,
    readonly bases: BaseRegistry,
    readonly flattenThreshold: number,
    /** The container runtime, or null: instances are then only mounted (hooks under chroot or on the host). */
    readonly runtime: Runc | null = null,
  ) {}

  meta(ref: ObjectRef): Promise<ObjectMeta | null> {
    return readMeta(this.layout, ref);
  }

  async mustMeta(ref: ObjectRef): Promise<ObjectMeta> {
    const m = await this.meta(ref);
    if (!m) throw new BackendError('NOT_FOUND', `${ref.space}/${ref.name} does not exist`, { ref });
    return m;
  }

  async allMetas(): Promise<ObjectMeta[]> {
    const out: ObjectMeta[] = [];
    for (const space of ['layers', 'workshops'] as Space[]) {
      for (const name of await listDir(join(this.layout.objects, space))) {
        const m = await this.meta({ space, name });
        if (m) out.push(m);
      }
    }
    return out;
  }

  /** Started: mounted (see the header). */
  started(ref: ObjectRef): Promise<boolean> {
    return exists(this.layout.runningPath(ref));
  }

  /** Running: started, and its container runs (when the store runs containers). */
  async isRunning(ref: ObjectRef): Promise<boolean> {
    if (!(await this.started(ref))) return false;
    return !this.runtime || (await this.runtime.status(ref.name)) === 'running';
  }

  /** A started instance whose container is not running is stopped for good, so it is what its status says. */
  async settle(meta: ObjectMeta): Promise<void> {
    if (this.runtime && (await this.started(meta.ref)) && !(await this.isRunning(meta.ref))) await this.stop(meta);
  }

  /** The hostname of an instance's container: its workshop's name when tagged, else its own (at most 63 bytes). */
  hostnameOf(meta: ObjectMeta): string {
    return (meta.tags.workshop || meta.ref.name).slice(0, 63);
  }

  /**
   * Start an instance: mount its root (unless a started user of its scratch has), record it, then
   * run its container. A failed start leaves it stopped. Running already: nothing to do.
   */
  async start(meta: ObjectMeta, rw: Rw): Promise<void> {
    if (await this.isRunning(meta.ref)) return;
    await this.settle(meta);
    const shared = meta.scratch ? (await this.scratchUsers(meta.scratch, true)).length > 0 : false;
    if (!shared) await this.driver.activate(rw);
    // Recorded before the container is made: a crash in between leaves a record that start-up
    // recovery checks against runc, never a container nobody knows of.
    await this.setRunning(meta.ref, true);
    if (!this.runtime) return;
    try {
      await this.runtime.run(meta.ref.name, { rootfs: this.driver.rootOf(rw), hostname: this.hostnameOf(meta) });
    } catch (e) {
      await this.stop(meta).catch(() => undefined);
      throw e;
    }
  }

  async setRunning(ref: ObjectRef, running: boolean): Promise<void> {
    if (running) await writeFile(this.layout.runningPath(ref), '');
    else await unlink(this.layout.runningPath(ref)).catch(() => {});
  }

  /** Create a new object directory atomically (temp, meta, rename). Taken: `ALREADY_EXISTS`. */
  async createObject(meta: ObjectMeta): Promise<void> {
    const tmp = await this.layout.tempDir('object');
    try {
      await writeFileAtomic(join(tmp, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
      await this.layout.commitDir(tmp, this.layout.objectDir(meta.ref));
    } catch (e) {
      await removeTree(tmp);
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') {
        throw new BackendError('ALREADY_EXISTS', `${meta.ref.space}/${meta.ref.name} already exists`, { ref: meta.ref });
      }
      throw e;
    }
  }

  writeMeta(meta: ObjectMeta): Promise<void> {
    return writeMeta(this.layout, meta);
  }

  // ---- writable roots ------------------------------------------------------------------------

  async scratchMeta(key: string): Promise<ScratchMeta | null> {
    try {
      return JSON.parse(await readFile(join(this.layout.scratchDir(key), 'meta.json'), 'utf8')) as ScratchMeta;
    } catch {
      return null;
    }
  }

  /** The writable root of an instance (its own, or the scratch it shares). Layers have none. */
  async rwOf(meta: ObjectMeta): Promise<Rw | null> {
    if (meta.scratch) {
      const s = await this.scratchMeta(meta.scratch);
      if (!s) throw new BackendError('INTERNAL', `scratch ${meta.scratch} of ${meta.ref.name} is missing`);
      return { chain: s.chain, upper: s.upper, merged: join(this.layout.scratchDir(meta.scratch), 'merged') };
    }
    if (!meta.upper) return null;
    return { chain: meta.chain, upper: meta.upper, merged: this.layout.mergedPath(meta.ref) };
  }

  /**
   * Create a shared scratch on `chain` unless it exists: built under `tmp/` and renamed into place,
   * so two creators race safely (the loser's copy is discarded), like containerd's LCOW scratch.
   */
  async ensureScratch(key: string, chain: readonly string[]): Promise<ScratchMeta> {
    const have = await this.scratchMeta(key);
    if (have) return have;
    const tmp = await this.layout.tempDir('scratch');
    let s: ScratchMeta;
    try {
      s = { key, chain: [...chain], upper: await this.driver.newUpper(chain) };
      await writeFileAtomic(join(tmp, 'meta.json'), JSON.stringify(s, null, 2) + '\n');
    } catch (e) {
      await removeTree(tmp); // a full disk: nothing half-made stays (the upper goes with the next gc)
      throw e;
    }
    try {
      await this.layout.commitDir(tmp, this.layout.scratchDir(key));
      return s;
    } catch (e) {
      await removeTree(tmp);
      const again = await this.scratchMeta(key);
      if (again) return again;
      throw e;
    }
  }

  /** Containers on scratch `key`, optionally only the started ones (those the mount is for). */
  async scratchUsers(key: string, startedOnly = false): Promise<ObjectMeta[]> {
    const users = (await this.allMetas()).filter((m) => m.scratch === key);
    if (!startedOnly) return users;
    const out: ObjectMeta[] = [];
    for (const u of users) if (await this.started(u.ref)) out.push(u);
    return out;
  }

  /** Flatten a chain that got too long for the threshold or for one page of mount options. */
  async normalizeChain(chain: readonly string[]): Promise<string[]> {
    if (this.driver.name !== 'overlayfs') return [...chain];
    if (chain.length <= this.flattenThreshold && fitsOneMount([...chain].reverse())) return [...chain];
    return [await flattenChain(this.layout, this.driver, chain)];
  }

  /**
   * The snapshot: commit an instance's upper into its chain and give it a fresh upper, so a copy
   * can share the chain. O(1) on overlayfs (nothing is copied; a started instance is remounted on
   * its new upper). Unchanged uppers are not committed, so chains grow only with real changes.
   *
   * A remount cannot happen under a running container (its processes hold the old mount, and one
   * upper must never serve two mounts): the container is stopped first and started again on the
   * new mount, so **the processes in it end** (the copy driver copies in place: no restart).
   */
  async freeze(meta: ObjectMeta): Promise<ObjectMeta> {
    if (meta.scratch) throw new BackendError('INVALID', `${meta.ref.name} runs on shared scratch ${meta.scratch}; it cannot be copied`);
    await this.settle(meta);
    const rw = await this.rwOf(meta);
    if (!rw || (await this.driver.unchanged(rw.upper))) return meta;
    const started = await this.started(meta.ref);
    const running = started && (await this.isRunning(meta.ref));
    const next = await this.driver.commit(rw);
    const updated: ObjectMeta = { ...meta, chain: await this.normalizeChain(next.chain), upper: next.upper };
    const remount = started && next.upper !== rw.upper;
    if (remount) {
      if (this.runtime) await this.runtime.stop(meta.ref.name);
      await this.driver.deactivate(rw);
    }
    try {
      await this.writeMeta(updated);
    } finally {
      const live = (await this.meta(meta.ref)) ?? meta;
      if (remount) {
        const liveRw = (await this.rwOf(live))!;
        await this.driver.activate(liveRw);
        if (this.runtime && running) await this.runtime.run(live.ref.name, { rootfs: this.driver.rootOf(liveRw), hostname: this.hostnameOf(live) });
      }
    }
    return updated;
  }

  /**
   * Stop an instance: its container (when there is one), then its mount (unless other started
   * users share its scratch), then the record. Stopped already: nothing to do.
   */
  async stop(meta: ObjectMeta): Promise<void> {
    // Asked even when not started: a container whose record a crash lost is not left running.
    if (this.runtime && meta.ref.space === 'workshops') await this.runtime.stop(meta.ref.name);
    if (!(await this.started(meta.ref))) return;
    const rw = await this.rwOf(meta);
    const others = meta.scratch ? (await this.scratchUsers(meta.scratch, true)).filter((u) => !sameRef(u.ref, meta.ref)) : [];
    if (rw && others.length === 0) await this.driver.deactivate(rw);
    await this.setRunning(meta.ref, false);
  }

  /** Remove an object's directory and records; release its scratch when it was the last user. */
  async destroy(meta: ObjectMeta): Promise<void> {
    await this.stop(meta);
    await unmount(this.layout.mergedPath(meta.ref));
    await this.layout.trash(this.layout.objectDir(meta.ref));
    await unlink(this.layout.livePath(meta.ref.name)).catch(() => {});
    if (meta.scratch && (await this.scratchUsers(meta.scratch)).length === 0) {
      await unmount(join(this.layout.scratchDir(meta.scratch), 'merged'));
      await this.layout.trash(this.layout.scratchDir(meta.scratch));
    }
  }

  // ---- garbage collection and recovery ---------------------------------------------------------

  /**
   * Remove blobs and work directories nothing refers to. Liveness is derived from every meta file,
   * the base registry and every scratch, never from a stored count. Returns the blobs removed.
   */
  async gc(): Promise<string[]> {
    const live = new Set<string>(await this.bases.liveBlobs());
    const uppers = new Set<string>();
    const note = (chain: readonly string[], upper?: string) => {
      chain.forEach((b) => live.add(b));
      if (upper) {
        live.add(upper);
        uppers.add(upper);
      }
    };
    for (const m of await this.allMetas()) note(m.chain, m.upper);
    for (const key of await listDir(this.layout.scratch)) {
      const s = await this.scratchMeta(key);
      if (s) note(s.chain, s.upper);
    }
    const removed: string[] = [];
    for (const id of await listDir(this.layout.blobs)) {
      if (id.startsWith('_') || live.has(id)) continue;
      await this.layout.trash(this.layout.blobPath(id));
      removed.push(id);
    }
    for (const id of await listDir(this.layout.work)) {
      if (!uppers.has(id)) await this.layout.trash(this.layout.workPath(id));
    }
    return removed;
  }

  /**
   * Start-up recovery after a crash or a reboot: release stale mounts, drop transient containers
   * whose boot is over (their `live` record was on the wiped run directory), bring instances still
   * recorded as started back (their mount, their container: `recoverContainers`), sweep half-made
   * directories, then collect garbage.
   */
  async recover(): Promise<{ containers: string[]; mounts: string[]; tmp: string[]; restarted: string[]; orphans: string[] }> {
    const report = { containers: [] as string[], mounts: [] as string[], tmp: [] as string[], restarted: [] as string[], orphans: [] as string[] };
    const metas = await this.allMetas();
    // Mounts that should exist: merged roots of running instances (and of their scratches).
    const wanted = new Set<string>();
    for (const m of metas) {
      if (m.volatile && !(await exists(this.layout.livePath(m.ref.name)))) continue;
      if (!(await this.isRunning(m.ref))) continue;
      const rw = await this.rwOf(m).catch(() => null);
      if (rw) wanted.add(rw.merged);
    }
    for (const mp of await mountsUnder(this.layout.root)) {
      if (wanted.has(mp)) continue;
      await unmount(mp);
      report.mounts.push(mp);
    }
    for (const m of metas) {
      if (m.volatile && !(await exists(this.layout.livePath(m.ref.name)))) {
        await this.setRunning(m.ref, false);
        await this.destroy(m);
        report.containers.push(m.ref.name);
      }
    }
    if (this.runtime) Object.assign(report, await this.recoverContainers(this.runtime));
    // Running records: of vanished objects are dropped; a mount lost in a crash is made again.
    for (const name of await listDir(join(this.layout.runDir, 'running', 'workshops'))) {
      const m = await this.meta({ space: 'workshops', name });
      const rw = m ? await this.rwOf(m).catch(() => null) : null;
      if (!m || !rw) {
        await this.setRunning({ space: 'workshops', name }, false);
        continue;
      }
      if (this.driver.name === 'overlayfs' && !(await isMounted(rw.merged))) {
        await this.driver.activate(rw).catch(() => this.setRunning(m.ref, false));
      }
    }
    // Scratches nobody uses any more (their last user died mid-remove).
    for (const key of await listDir(this.layout.scratch)) {
      if ((await this.scratchUsers(key)).length === 0) await this.layout.trash(this.layout.scratchDir(key));
    }
    report.tmp = await this.layout.sweepTmp();
    await this.gc();
    return report;
  }

  /**
   * The containers' part of recovery. After a reboot there is nothing to do (the run directory is
   * empty). After a crash of this process, detached containers still run: kept. A started instance
   * whose container is missing (a run directory copied from elsewhere: its runc state is not this
   * store's), half-created (`created`, a crash inside `start`), dead, or running on a mount that
   * was lost, has it deleted and run again on its root, as a lost mount is made again; one that
   * cannot run is stopped. Then every other container, bundle and cgroup of this store goes
   * (`Runc.sweep`: orphans of a crash mid-stop, processes of a run directory wiped by hand), and
   * the containers of stores whose run directory was deleted (`sweepAbandoned`).
   */
  private async recoverContainers(runtime: Runc): Promise<{ restarted: string[]; orphans: string[] }> {
    await registerTag(runtime); // before any container of this store is made
    const keep = new Set<string>();
    const restarted: string[] = [];
    for (const name of await listDir(join(this.layout.runDir, 'running', 'workshops'))) {
      const m = await this.meta({ space: 'workshops', name });
      const rw = m ? await this.rwOf(m).catch(() => null) : null;
      if (!m || !rw) continue; // the record is dropped below; its container, if any, is swept
      const mounted = this.driver.name !== 'overlayfs' || (await isMounted(rw.merged));
      if (mounted && (await runtime.status(name)) === 'running') {
        keep.add(containerId(name));
        continue;
      }
      try {
        await runtime.stop(name);
        if (!mounted) await this.driver.activate(rw);
        await runtime.run(name, { rootfs: this.driver.rootOf(rw), hostname: this.hostnameOf(m) });
        keep.add(containerId(name));
        restarted.push(name);
      } catch {
        await this.stop(m).catch(() => this.setRunning(m.ref, false));
      }
    }
    const orphans = await runtime.sweep((id) => keep.has(id));
    // Other stores' too, when they are gone: their containers could never be stopped otherwise.
    await sweepAbandoned(runtime);
    return { restarted, orphans };
  }
}

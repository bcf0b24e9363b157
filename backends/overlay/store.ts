/**
 * The object store under the port: meta files, writable roots, freezing an upper into the chain
 * (the O(1) snapshot), shared scratches, garbage collection and start-up recovery.
 *
 * Every method here expects the caller to hold the store lock (`lock.ts`); the port adapter
 * (`backend.ts`) takes it once per call.
 *
 * @example
 * ```ts
 * const store = new Store(layout, driver, bases, 64);
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

  isRunning(ref: ObjectRef): Promise<boolean> {
    return exists(this.layout.runningPath(ref));
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

  /** Containers on scratch `key`, optionally only the running ones. */
  async scratchUsers(key: string, runningOnly = false): Promise<ObjectMeta[]> {
    const users = (await this.allMetas()).filter((m) => m.scratch === key);
    if (!runningOnly) return users;
    const out: ObjectMeta[] = [];
    for (const u of users) if (await this.isRunning(u.ref)) out.push(u);
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
   * can share the chain. O(1) on overlayfs (nothing is copied; a running instance is remounted on
   * its new upper). Unchanged uppers are not committed, so chains grow only with real changes.
   */
  async freeze(meta: ObjectMeta): Promise<ObjectMeta> {
    if (meta.scratch) throw new BackendError('INVALID', `${meta.ref.name} runs on shared scratch ${meta.scratch}; it cannot be copied`);
    const rw = await this.rwOf(meta);
    if (!rw || (await this.driver.unchanged(rw.upper))) return meta;
    const running = await this.isRunning(meta.ref);
    const next = await this.driver.commit(rw);
    const updated: ObjectMeta = { ...meta, chain: await this.normalizeChain(next.chain), upper: next.upper };
    if (running && next.upper !== rw.upper) await this.driver.deactivate(rw);
    try {
      await this.writeMeta(updated);
    } finally {
      const live = (await this.meta(meta.ref)) ?? meta;
      if (running && next.upper !== rw.upper) await this.driver.activate((await this.rwOf(live))!);
    }
    return updated;
  }

  /** Stop an instance: unmount (unless other running users share its scratch), then drop the record. */
  async stop(meta: ObjectMeta): Promise<void> {
    if (!(await this.isRunning(meta.ref))) return;
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
   * whose boot is over (their `live` record was on the wiped run directory), remount instances
   * still recorded as running, sweep half-made directories, then collect garbage.
   */
  async recover(): Promise<{ containers: string[]; mounts: string[]; tmp: string[] }> {
    const report = { containers: [] as string[], mounts: [] as string[], tmp: [] as string[] };
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
}

/**
 * Disk space and degraded mode: what the engine does when a disk it writes to fills up.
 *
 * Two disks matter: the **journal's** (the state directory: journal segments, checkpoints) and the
 * **backend's** (where it keeps objects: the overlay store, an LXD storage pool). A disk is *full*
 * when less than `minFree` bytes are free on it (`statfs`; the backend's `diskSpace`), or, for the
 * journal's, when its reserve (`events/reserve.ts`) is spent. The watermark is Elasticsearch's
 * "flood stage": past it, writes that make things are refused before they start, rather than failing
 * half-way on the last block.
 *
 * While any disk is full the engine is **degraded**:
 *
 * - `launch`, `refresh`, `stash`, `unstash`, `restore` and `run` are refused at once with
 *   `NO_SPACE`, naming each full disk and what is free there (after input errors: a bad name is
 *   still `NOT_FOUND`);
 * - `remove`, `gc`, `reconcile`, `list` and `show` work, and the journal may spend its reserve, so
 *   their records reach disk even when the disk has no free block left;
 * - no checkpoint is written (it is an optimisation; the journal is the truth).
 *
 * Nothing about it is journaled (a full disk is not the domain's business, and a journal that
 * cannot be written could not say so): each check measures again. So the engine leaves degraded
 * mode by itself, at the first check after space comes back: before every command, on `space()`,
 * and when it opens; the journal's reserve is written again first, if it was spent.
 *
 * A write that fails for space anyway (the disk filled between check and write, a quota that
 * `statfs` does not show) is handled where it happens: the journal refuses the batch and hands its
 * seqs back (`events/group-commit.ts`); the engine refuses a command whose first record did not
 * reach disk, and undoes one that was under way, with the reserve (`engine.ts`); a backend's
 * `NO_SPACE` fails the step, and the op is undone like any failed step.
 *
 * @example
 * ```ts
 * const guard = new SpaceGuard({ stateDir, backend, journal, minFree: DEFAULT_MIN_FREE });
 * await guard.admit('launch', 'nav2'); // throws NO_SPACE while a disk is full
 * (await guard.check()).degraded;      // null once space is back
 * ```
 */
import fs from 'node:fs';
import { dirname, join } from 'node:path';
import { SimulatedCrash, type Backend } from '../backends/types.ts';
import type { Journal } from '../events/journal.ts';
import { RESERVE_NAME } from '../events/reserve.ts';
import { AtelierError } from '../machines/errors.ts';
import { objectKey, type FoldState, type IdSupply, type OpKind } from '../machines/index.ts';
import type { DiskReport, SpaceReport, UsageReport } from './api.ts';
import { DEFAULT_MIN_FREE, formatBytes } from './sizes.ts';

export { DEFAULT_MIN_FREE };


/** The commands degraded mode refuses: those that make things (`run` included). */
export const MAKING: ReadonlySet<OpKind | 'run'> = new Set<OpKind | 'run'>(['launch', 'refresh', 'stash', 'unstash', 'restore', 'run']);

/** Ids for a decision that is only checked, never journaled (what the command would be refused with). */
export const PRECHECK_IDS: IdSupply = { opId: () => 'op-check', layerSuffix: () => '0000000000000000', containerId: () => 'check' };

/** Free and total bytes of the file system holding `path` (its nearest existing ancestor: a state directory not made yet). */
export async function statDisk(path: string): Promise<{ total: number; free: number }> {
  for (let p = path; ; p = dirname(p)) {
    try {
      const s = await fs.promises.statfs(p);
      return { total: s.blocks * s.bsize, free: s.bavail * s.bsize };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(p) === p) throw e;
    }
  }
}

export interface MeasureOptions {
  readonly stateDir: string;
  readonly backend: Backend;
  readonly minFree: number;
  /**
   * The journal's reserve: `null` when the journal keeps none; otherwise whether it is whole.
   */
  readonly reserveWhole: boolean | null;
}

/** Measure both disks now and say which are full. The backend's is left out when it cannot tell. */
export async function measureSpace(o: MeasureOptions): Promise<SpaceReport> {
  const floor = Math.max(o.minFree, 1);
  const disks: DiskReport[] = [];
  const j = await statDisk(o.stateDir);
  disks.push({ disk: 'journal', where: o.stateDir, ...j, full: j.free < floor || o.reserveWhole === false });
  try {
    const b = await o.backend.diskSpace();
    disks.push({ disk: 'backend', where: b.where, total: b.total, free: b.free, full: b.free < floor });
  } catch (e) {
    // A backend that cannot say (down, or a fault) is not full: the command finds out for itself.
    if (e instanceof SimulatedCrash) throw e;
  }
  const full = disks.filter((d) => d.full);
  return { disks, minFree: o.minFree, degraded: full.length === 0 ? null : { full: full.map((d) => d.disk), message: describeFull(full, o.minFree, o.reserveWhole) } };
}

function describeFull(full: readonly DiskReport[], minFree: number, reserveWhole: boolean | null): string {
  return full
    .map((d) => {
      const what = d.disk === 'journal' ? `the journal's disk (${d.where})` : `the ${d.where.startsWith('lxd:') ? 'LXD storage pool' : 'backend store'} (${d.where})`;
      const spent = d.disk === 'journal' && reserveWhole === false && d.free >= minFree ? ', and its reserve for remove and gc is spent' : '';
      return `${what} has ${formatBytes(d.free)} free of ${formatBytes(d.total)}${spent}`;
    })
    .join('; ');
}

/** The error a command gets while the engine is degraded. */
export function degradedError(kind: string, name: string, report: SpaceReport): AtelierError {
  const d = report.degraded!;
  return new AtelierError(
    'NO_SPACE',
    `cannot ${kind} "${name}": a disk is full: ${d.message}. atelier refuses launch, refresh, stash, unstash, restore and run ` +
      `until ${formatBytes(report.minFree)} is free there; remove and gc still work: free space with \`atelier remove NAME\` ` +
      'or `atelier gc`, or on that disk (`atelier df` shows what atelier holds)',
    { workshop: name, full: d.full, disks: report.disks.map((x) => ({ disk: x.disk, where: x.where, free: x.free, total: x.total })) },
  );
}

/**
 * The engine's side of degraded mode: measures, keeps the journal's reserve usable exactly while
 * degraded, and refills it once there is room.
 */
export class SpaceGuard {
  /** The last measure (for reports between checks). */
  last: SpaceReport | null = null;

  constructor(
    private readonly o: { readonly stateDir: string; readonly backend: Backend; readonly journal: Journal; readonly minFree: number; readonly keepsReserve: boolean },
  ) {}

  private measure(): Promise<SpaceReport> {
    const { stateDir, backend, minFree, journal, keepsReserve } = this.o;
    return measureSpace({ stateDir, backend, minFree, reserveWhole: keepsReserve ? journal.reserveBytes > 0 : null });
  }

  /** Measure now; refill a spent reserve when the disk has room again; allow the reserve while degraded. */
  async check(): Promise<SpaceReport> {
    let report = await this.measure();
    const jd = report.disks.find((d) => d.disk === 'journal')!;
    if (this.o.keepsReserve && this.o.journal.reserveBytes === 0 && jd.free >= Math.max(this.o.minFree, 1)) {
      await this.o.journal.refillReserve();
      report = await this.measure();
    }
    this.o.journal.allowReserve(report.degraded !== null);
    this.last = report;
    return report;
  }

  /** Check, and refuse a making command while degraded. */
  async admit(kind: string, name: string): Promise<SpaceReport> {
    const report = await this.check();
    if (report.degraded) throw degradedError(kind, name, report);
    return report;
  }
}

/** Bytes allocated to the files of `dir` (not recursive: the journal's and checkpoints' are flat); 0 when it is missing. */
function allocatedIn(dir: string): number {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return 0;
  }
  let bytes = 0;
  for (const n of names) {
    try {
      bytes += fs.lstatSync(join(dir, n)).blocks * 512;
    } catch {
      // gone meanwhile
    }
  }
  return bytes;
}

/**
 * `measureSpace`, plus what each of `owner`'s objects holds (the backend's `usage`, each object
 * given its workshop from its tag or the state's record) and what the journal's files hold.
 */
export async function usageReport(o: MeasureOptions & { readonly owner: string; readonly state: FoldState }): Promise<UsageReport> {
  const space = await measureSpace(o);
  const usage = await o.backend.usage(o.owner);
  const objects = usage.map((u) => {
    const rec = o.state.objects[objectKey(u.ref)];
    // A shared SDK layer is nobody's: it names the workshops that hold it (none: a cache entry).
    const shared = rec?.shared ? { shared: Object.values(o.state.workshops).filter((w) => w.sdks.some((l) => l.layer === u.ref.name) || w.stash?.sdkLayers.some((l) => l.copy === null && l.layer === u.ref.name)).map((w) => w.name).sort() } : {};
    return { ref: u.ref, kind: u.tags.kind ?? rec?.kind ?? 'unknown', workshop: u.tags.workshop ?? rec?.workshop ?? null, bytes: u.bytes, ...shared };
  });
  const dir = join(o.stateDir, 'journal');
  let reserve = 0;
  try {
    reserve = fs.statSync(join(dir, RESERVE_NAME)).size;
  } catch {
    // none (spent, or never written)
  }
  return { ...space, objects, journal: { dir, bytes: allocatedIn(dir) + allocatedIn(join(o.stateDir, 'checkpoints')), reserve } };
}

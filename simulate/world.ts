/**
 * The simulated world one run lives in: a backend (the fake, or a real adapter: see
 * `sim-backend.ts`), a state directory and a run directory,
 * deterministic ids and clock, and the engine currently open on them. It knows how to kill that
 * engine the way a process dies (`crash`), wipe what a reboot wipes (`reboot`), tear the journal's
 * last write (`tear`), reopen (`open`), and start a second world from its crash image to reconcile
 * it again (`fork`; `image` / `World.fromImage` underneath for a real backend).
 *
 * Directories live under `/dev/shm` when it exists (else `os.tmpdir()`): the durable journal
 * fdatasyncs every append, which costs ~2 ms on a disk and ~0.15 ms on tmpfs, and the simulation
 * needs thousands of appends a second. Durability itself is not what the simulation tests (a torn
 * tail is injected explicitly), so RAM-backed directories change nothing it checks. For the same
 * reason the engine runs its fdatasyncs inline (`syncInline`): on tmpfs one returns at once, and
 * handing it to the thread pool cost more CPU than the rest of an append (~10% of a simulated
 * command); the writer's batching, lanes and ordering are the same either way.
 *
 * @example
 * ```ts
 * const w = await World.create({ seed: 1 });
 * await w.open();
 * await w.engine.launch(spec);
 * await w.crash(); await w.open();   // restart: reconciliation runs
 * await w.dispose();
 * ```
 */
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { FaultPlan } from '../backends/fake/index.ts';
import { SimulatedCrash } from '../backends/types.ts';
import type { EventInput, JournalRecord } from '../events/catalogue.ts';
import type { CachePolicy } from '../engine/cache.ts';
import { openEngineImpl as openEngine, type EngineImpl } from '../engine/engine.ts';
import { sequentialIds } from '../engine/ids.ts';
import { Gate } from './gate.ts';
import { firstViolation, PER_RECORD_INVARIANTS, type JournalInvariant } from './journal-invariants.ts';
import { JournalReader } from './journal-reader.ts';
import { createSimBackend, type SimBackend, type SimBackendImage, type SimBackendKind, type SimObject } from './sim-backend.ts';

export const OWNER = 'sim';

/**
 * The cache policy of simulated worlds with the SDK cache on: small, so that runs of a few dozen
 * commands over four workshops evict (and reuse what they did not evict).
 */
export const SIM_CACHE_KEEP: CachePolicy = { count: 2 };

/**
 * How a world's engines are opened: with the SDK cache (shared layers, the default) or without
 * (per-workshop layers, as before the cache: the regression fixtures recorded then), and the
 * cache's policy.
 */
export interface WorldConfig {
  readonly sdkCache: boolean;
  readonly cacheKeep: CachePolicy;
}

export const DEFAULT_WORLD_CONFIG: WorldConfig = { sdkCache: true, cacheKeep: SIM_CACHE_KEEP };

const CLOCK_BASE = Date.parse('2026-01-01T00:00:00.000Z');

/** Where simulation directories go: RAM-backed when possible (see the file comment). */
export function simRoot(): string {
  try {
    if (fs.statSync('/dev/shm').isDirectory()) {
      fs.accessSync('/dev/shm', fs.constants.W_OK);
      return '/dev/shm';
    }
  } catch {
    /* fall through */
  }
  return os.tmpdir();
}

/** Hook around each journal append, for crash points at appends (index counts from 1 per arming). */
export type AppendHook = (n: number, phase: 'before' | 'after') => void;

/** Everything a second world needs to start from the same crash image. */
export interface CrashImage {
  readonly dir: string;
  readonly backend: SimBackendImage;
  readonly nextId: number;
  readonly clock: number;
  readonly lastSeq: number;
}

export class World {
  readonly gate: Gate;
  readonly reader: JournalReader;
  engine: EngineImpl | null = null;
  private ids: ReturnType<typeof sequentialIds>;
  private tick: number;
  /** Op id → its last journaled outcome (across restarts; a torn record is superseded later). */
  readonly outcomes = new Map<string, 'done' | 'undone' | 'broken'>();
  /** Op id → phases it reached, as journaled. */
  readonly phases = new Map<string, Set<string>>();
  /** Workshop → op ids started, in order. */
  readonly opsOf = new Map<string, string[]>();
  appendHook: AppendHook | null = null;
  /**
   * Per-record journal invariants that failed at a record as the reader folded it (the first
   * failure only: `checkAll` throws it).
   */
  readonly recordViolations: { invariant: JournalInvariant; message: string; seq: number; type: string }[] = [];
  private appends = 0;
  /** Journal file size before the most recent append (for a torn tail). */
  private lastAppendStart: { path: string; size: number } | null = null;

  /** The owned objects last observed, and the gate's call count then (-1: stale). */
  private observed: Map<string, SimObject> = new Map();
  private observedAt = -1;
  /** The fake's owned objects as last copied, and the gate's call count then (-1: stale). */
  private ownedCopy: Map<string, SimObject> | null = null;
  private ownedAt = -1;
  /**
   * Note the journal's size before each append, for `tear` (set while a torn-write fault is armed:
   * the size costs an `fstat` per append, and nothing else reads it).
   */
  trackTear = false;

  private constructor(
    readonly dir: string,
    readonly backend: SimBackend,
    readonly config: WorldConfig,
    image?: Pick<CrashImage, 'nextId' | 'clock'>,
    reader?: JournalReader,
  ) {
    this.gate = new Gate(this.backend.port);
    this.reader = reader ?? new JournalReader(join(this.stateDir, 'journal'));
    this.reader.onRecord = (state, record) => {
      if (this.recordViolations.length > 0) return;
      const v = firstViolation(state, record, PER_RECORD_INVARIANTS);
      if (v) this.recordViolations.push({ ...v, seq: record.seq, type: record.type });
    };
    this.ids = sequentialIds(image?.nextId ?? 1);
    this.tick = image?.clock ?? 0;
  }

  get stateDir(): string {
    return join(this.dir, 'state');
  }
  get runDir(): string {
    return join(this.dir, 'run');
  }

  static async create(opts: { seed: number; root?: string; backend?: SimBackendKind; config?: WorldConfig }): Promise<World> {
    const dir = fs.mkdtempSync(join(opts.root ?? simRoot(), 'atelier-sim-'));
    return new World(dir, await createSimBackend(opts.backend ?? 'fake', { seed: opts.seed, dir }), opts.config ?? DEFAULT_WORLD_CONFIG);
  }

  /** A world starting from `image` (its directories copied), for reconciling the same image twice. */
  static async fromImage(image: CrashImage, config: WorldConfig, root?: string): Promise<World> {
    const dir = fs.mkdtempSync(join(root ?? simRoot(), 'atelier-sim-'));
    copyDirs(image.dir, dir);
    return new World(dir, await createSimBackend(image.backend.kind, { seed: 1, dir, image: image.backend }), config, image);
  }

  /**
   * A second world starting from this one's crash image (invariant 4), with `lastSeq` the image's
   * last durable record; `release()` drops the image once the fork is disposed. Call after `crash`.
   *
   * The fake's image is in memory, so the fork copies the directories straight from this world
   * (one copy, not two through an image directory) and starts its journal reader as a copy of
   * this world's (the bytes are the same; see `JournalReader.cloneTo`). A real backend's image is
   * on disk and is copied when the fork first opens: that goes through `image` / `fromImage`.
   */
  async fork(root?: string): Promise<{ world: World; lastSeq: number; release(): void }> {
    if (this.backend.kind !== 'fake') {
      const image = await this.image();
      try {
        return { world: await World.fromImage(image, this.config, root), lastSeq: image.lastSeq, release: () => dropImage(image) };
      } catch (e) {
        dropImage(image);
        throw e;
      }
    }
    const lastSeq = this.reader.read().lastSeq;
    const dir = fs.mkdtempSync(join(root ?? simRoot(), 'atelier-sim-'));
    copyDirs(this.dir, dir);
    const backend = await createSimBackend('fake', { seed: 1, dir, image: await this.backend.image(dir) });
    const world = new World(dir, backend, this.config, { nextId: this.ids.next, clock: this.tick }, this.reader.cloneTo(join(dir, 'state', 'journal')));
    return { world, lastSeq, release: () => undefined };
  }

  /**
   * Owned objects of the backend, by `space/name`, as the invariants read them: the fake's read
   * fresh, a real backend's as of the last `observe()` (which the runner calls before checking).
   */
  owned(): Map<string, SimObject> {
    if (this.backend.observeSync) {
      // The fake changes only through calls that reach it (counted by the gate) and reboots (which
      // reset `ownedAt`): the same count means the same objects, so the copy made then still holds.
      if (this.ownedAt !== this.gate.count || this.ownedCopy === null) {
        this.ownedCopy = this.backend.observeSync(OWNER);
        this.ownedAt = this.gate.count;
      }
      return this.ownedCopy;
    }
    if (this.observedAt !== this.gate.count) throw new Error('simulation: the backend has not been observed since it last changed (call observe() first)');
    return this.observed;
  }

  /** Read the backend's owned objects again if any call reached it since the last observation. */
  async observe(): Promise<void> {
    if (this.backend.observeSync || this.observedAt === this.gate.count) return;
    this.observed = await this.backend.observe(OWNER);
    this.observedAt = this.gate.count;
  }

  /** The engine, asserting one is open. */
  get e(): EngineImpl {
    if (!this.engine) throw new Error('simulation: no engine is open');
    return this.engine;
  }

  private clock = (): string => new Date(CLOCK_BASE + this.tick++).toISOString();

  /**
   * Open an engine on this world (reconciliation runs). A `SimulatedCrash` during opening kills
   * that attempt like any crash; the error is returned so the caller can retry.
   */
  async openOnce(): Promise<EngineImpl | Error> {
    this.gate.onKill = null;
    this.gate.revive();
    await this.backend.open();
    try {
      const engine = await openEngine({ stateDir: this.stateDir, runDir: this.runDir, backend: this.gate.port, owner: OWNER, ids: this.ids, clock: this.clock, syncInline: true, sdkCache: this.config.sdkCache, cacheKeep: this.config.cacheKeep });
      this.attach(engine);
      return engine;
    } catch (e) {
      this.gate.kill();
      if (e instanceof Error) return e;
      throw e;
    }
  }

  /** Open, retrying after crashes or backend errors in reconciliation; faults are lifted after `tries`. */
  async open(tries = 3): Promise<EngineImpl> {
    for (let i = 0; ; i++) {
      if (i === tries) this.backend.setFaultPlan(null);
      const r = await this.openOnce();
      if (!(r instanceof Error)) return r;
      if (i > tries) throw r;
    }
  }

  private attach(engine: EngineImpl): void {
    this.engine = engine;
    engine.waitHook = () => this.gate.waiting?.() ?? (() => undefined);
    // The moment the process "dies", the engine is closed: a command queued behind the one that
    // crashed must not run (it would decide on a state a dead process left mid-op).
    this.gate.onKill = () => {
      this.dying = engine.crash();
    };
    engine.events$.subscribe((r) => this.note(r));
    const append = engine.append.bind(engine);
    // Crash points at journal appends: the hook may throw a SimulatedCrash before the write, or
    // after it (the write is on disk, nothing has acted on it yet).
    engine.append = async (inputs: EventInput[]): Promise<JournalRecord[]> => {
      const n = ++this.appends;
      if (this.gate.dead) throw new SimulatedCrash('simulated crash: the engine is dead');
      if (this.trackTear) this.lastAppendStart = this.reader.tailSize();
      try {
        this.appendHook?.(n, 'before');
      } catch (e) {
        this.gate.kill();
        throw e;
      }
      const records = await append(inputs);
      try {
        this.appendHook?.(n, 'after');
      } catch (e) {
        this.gate.kill();
        throw e;
      }
      return records;
    };
  }

  /** Count appends from zero again (crash points are numbered per command). */
  resetAppendCount(): void {
    this.appends = 0;
  }
  get appendCount(): number {
    return this.appends;
  }

  private note(r: JournalRecord): void {
    if (r.type === 'op.started') {
      const list = this.opsOf.get(r.data.workshop) ?? [];
      if (!list.includes(r.data.op)) list.push(r.data.op);
      this.opsOf.set(r.data.workshop, list);
    } else if (r.type === 'op.phase') {
      const s = this.phases.get(r.data.op) ?? new Set<string>();
      s.add(r.data.phase);
      this.phases.set(r.data.op, s);
    } else if (r.type === 'op.finished') {
      this.outcomes.set(r.data.op, r.data.outcome);
    }
  }

  /** Drop the engine as a dead process: nothing it started may touch the backend any more. */
  async crash(): Promise<void> {
    this.gate.kill();
    const engine = this.engine;
    this.engine = null;
    await this.dying;
    this.dying = null;
    this.gate.onKill = null;
    if (engine) await engine.crash();
    // A real backend: the dead process's last calls finish, then its adapter is dropped.
    await this.gate.settled();
    await this.backend.kill();
    this.observedAt = -1;
    this.ownedAt = -1;
  }
  private dying: Promise<void> | null = null;

  /** Tear the last journal write at `fraction` of its bytes (0 drops it whole). Call after `crash`. */
  tear(fraction: number): { cut: number } | null {
    const at = this.lastAppendStart;
    if (!at) return null;
    const size = fs.statSync(at.path).size;
    if (size <= at.size) return null;
    const cut = at.size + Math.floor(fraction * (size - at.size));
    fs.truncateSync(at.path, cut);
    return { cut };
  }

  /** A host reboot: transient processes gone, tmpfs (the run directory) wiped. Call after `crash`. */
  async reboot(): Promise<void> {
    await this.backend.reboot();
    fs.rmSync(this.runDir, { recursive: true, force: true });
    this.observedAt = -1;
    this.ownedAt = -1;
  }

  /** Copy the crash image (directories, backend, id and clock positions). Call after `crash`. */
  async image(): Promise<CrashImage> {
    const dir = fs.mkdtempSync(join(this.dir, '..', 'atelier-img-'));
    copyDirs(this.dir, dir);
    return { dir, backend: await this.backend.image(dir), nextId: this.ids.next, clock: this.tick, lastSeq: this.reader.read().lastSeq };
  }

  setFaultPlan(plan: FaultPlan | null): void {
    this.backend.setFaultPlan(plan);
  }

  async dispose(): Promise<void> {
    await this.crash();
    this.reader.close();
    await this.backend.dispose();
    // The fake's worlds hold a few journal files: removed directly (fs.rmSync costs ~4x as much).
    if (this.backend.kind === 'fake') removeTree(this.dir);
    else fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export function dropImage(image: CrashImage): void {
  fs.rmSync(image.dir, { recursive: true, force: true });
}

/** Copy a world's `state` and `run` directories (when present) from `from` into `to`. */
function copyDirs(from: string, to: string): void {
  for (const d of ['state', 'run']) {
    const src = join(from, d);
    if (fs.existsSync(src)) copyTree(src, join(to, d));
  }
}

/**
 * Copy a directory tree of plain files and directories (a state or run directory: journal
 * segments, checkpoints, lock files). `fs.cpSync` does the same at ~6x the cost, which the
 * simulation pays at every restart; anything else (a symlink, a socket) still goes through it.
 */
function copyTree(src: string, dst: string): void {
  fs.mkdirSync(dst, { recursive: true });
  for (const e of fs.readdirSync(src, { withFileTypes: true })) {
    const [s, d] = [join(src, e.name), join(dst, e.name)];
    if (e.isDirectory()) copyTree(s, d);
    else if (e.isFile()) fs.copyFileSync(s, d);
    else fs.cpSync(s, d, { recursive: true, verbatimSymlinks: true });
  }
}

/** Remove a directory tree that may be gone already (`rm -rf`, for the fake's small worlds). */
function removeTree(dir: string): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) removeTree(p);
    else fs.unlinkSync(p);
  }
  fs.rmdirSync(dir);
}

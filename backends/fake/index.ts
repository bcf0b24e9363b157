/**
 * The fake backend: the whole port in memory, deterministic from a seed, with the controls tests
 * and the simulation harness need (call log, fault plans, availability, reboot, crash images).
 * With `file`, it persists to a JSON image after every mutating call so separate CLI processes
 * (`--backend fake`) share one backend.
 *
 * The rules it applies, including where it is stricter than the port's text (exec needs a running
 * instance, names must be valid LXD names), are documented in `store.ts`; its shell subset in
 * `shell.ts`; fault plans in `faults.ts`; the `trace()` line format in `calls.ts`.
 *
 * @example
 * ```ts
 * import { createFakeBackend } from 'atelier/backends/fake';
 * const b = createFakeBackend({ seed: 1 });
 * const ws = { space: 'workshops', name: 'nav2-1a2b3c4d' } as const;
 * await b.create({ target: ws, source: { base: b.defaultBase }, tags: { owner: 'alice', op: 'op1', kind: 'workshop' } });
 * b.setFaultPlan({ rules: [{ call: 'start', when: 'before', action: 'fail', code: 'BUSY' }] });
 * await b.start(ws).catch((e) => e.code); // 'BUSY'
 * b.trace(); // ['create workshops/nav2-1a2b3c4d', 'start workshops/nav2-1a2b3c4d !BUSY']
 * ```
 */
import type { Backend, CallKind, CopyRequest, CreateRequest, DiskSpace, ExecRequest, ExecResult, SpawnRequest, SpawnedProcess, FileInfo, ObjectInfo, ObjectRef, ObjectUsage, Status } from '../types.ts';
import { BackendError, isBackendError, SimulatedCrash } from '../types.ts';
import { writeAll } from '../streams.ts';
import type { CallRecord, TraceOptions } from './calls.ts';
import { callText, refText, traceLines } from './calls.ts';
import type { Fault, FaultPlan } from './faults.ts';
import { FaultInjector, READ_ONLY_CALLS, validateFaultPlan } from './faults.ts';
import { loadImage, saveImage } from './persistence.ts';
import type { FileTree } from './rootfs.ts';
import type { FakeImage, FakeObject } from './store.ts';
import { DEFAULT_CAPACITY, FakeStore } from './store.ts';

export type { CallRecord, TraceOptions } from './calls.ts';
export type { FaultPlan, FaultRule, RandomAction, RandomFaults } from './faults.ts';
export type { FakeFile, FileTree } from './rootfs.ts';
export type { FakeImage, FakeObject, FakeScratch } from './store.ts';

export interface FakeBackendOptions {
  /** Seeds identities (MACs, uuids). Default 1. Ignored when `file` already holds an image. */
  readonly seed?: number;
  /** Persist here: loaded at creation if present, saved atomically after every mutating call. */
  readonly file?: string;
  /** Default `busybox`. */
  readonly defaultBase?: string;
  /** Default `['busybox', 'ubuntu@24.04']` (plus `defaultBase` if missing). */
  readonly bases?: readonly string[];
  /**
   * Milliseconds each mutating call takes before it acts (default 0): a slow backend, for demos and
   * for tests that need an operation still running (to abort it, to stop a daemon under it).
   */
  readonly latencyMs?: number;
  /**
   * The bytes `diskSpace()` reports as `total` (default 1 TiB, `2 ** 40`); `free` is this minus
   * the bytes of the files the fake holds. A positive safe integer. Not saved in `file`: each
   * process passes its own.
   */
  readonly capacityBytes?: number;
}

/** What `plant` puts in place. Tags are verbatim, so leaving out `owner` makes an unowned object. */
export interface PlantOptions {
  readonly tags?: Readonly<Record<string, string>>;
  readonly status?: Status;
  readonly base?: string;
  readonly files?: FileTree;
}

/** The port plus the fake's test controls. */
export interface FakeBackend extends Backend {
  readonly kind: 'fake';
  /** Every port call since creation or `clearCalls()`, in order (copies). */
  readonly calls: readonly CallRecord[];
  /** The compact lines of `calls` (see `calls.ts`); read-only calls are left out unless asked for. */
  trace(opts?: TraceOptions): string[];
  clearCalls(): void;
  /** Replace the fault plan (null: none); counters start from zero. Throws `INVALID` on a bad plan. */
  setFaultPlan(plan: FaultPlan | null): void;
  readonly faultPlan: FaultPlan | null;
  /** Down: every call fails with `UNAVAILABLE` and changes nothing. */
  setAvailable(up: boolean): void;
  /** Every running instance becomes stopped (processes gone); objects stay. */
  reboot(): void;
  /** A deep copy of everything the fake holds: a crash image, plain JSON. */
  dump(): FakeImage;
  /** Replace everything with a (deep copy of an) image. Calls and the fault plan are kept. */
  load(image: FakeImage): void;
  /** The objects (deep copies), sorted by space then name. */
  objects(): FakeObject[];
  /** Scratch key → transient containers (`space/name`) sharing it, sorted. */
  scratches(): Record<string, string[]>;
  /** Put an object in place without a port call, e.g. one not owned (no `owner` tag). */
  plant(ref: ObjectRef, opts?: PlantOptions): void;
  /**
   * Register base `name`, or register a known one again from new content, as `atelier base add`
   * does on overlay and LXD: its generation goes up, so its `/etc/os-release` (from generation 2)
   * and its `baseFingerprint` change; objects made from it keep their content. Not a port call.
   * Deliberately not named `addBase`: `atelier base add` finds that by duck typing, and the fake's
   * bases have no root filesystem to import. Throws `INVALID` for a bad name.
   */
  registerBase(name: string): void;
}

type CallFields = Omit<CallRecord, 'n' | 'ok' | 'code' | 'fault' | 'text' | 'kind'>;

class Fake implements FakeBackend {
  readonly kind = 'fake' as const;
  readonly defaultBase: string;
  private readonly store: FakeStore;
  private readonly file: string | undefined;
  private log: CallRecord[] = [];
  private injector: FaultInjector | null = null;
  private up = true;
  private readonly latencyMs: number;

  constructor(opts: FakeBackendOptions) {
    this.defaultBase = opts.defaultBase ?? 'busybox';
    const bases = [...(opts.bases ?? ['busybox', 'ubuntu@24.04'])];
    if (!bases.includes(this.defaultBase)) bases.unshift(this.defaultBase);
    const capacity = opts.capacityBytes ?? DEFAULT_CAPACITY;
    if (!Number.isSafeInteger(capacity) || capacity <= 0) {
      throw new BackendError('INVALID', `capacityBytes must be a positive integer number of bytes, not ${String(opts.capacityBytes)}`);
    }
    this.store = new FakeStore({ seed: opts.seed ?? 1, bases, capacity });
    this.file = opts.file;
    this.latencyMs = opts.latencyMs ?? 0;
    const image = this.file ? loadImage(this.file) : null;
    if (image) this.store.load(image);
  }

  // ---- the port ----------------------------------------------------------------------------

  ensureProjects(owner: string): Promise<void> {
    return this.call('ensureProjects', { owner }, owner, () => this.store.ensureProjects(owner));
  }

  listBases(): Promise<string[]> {
    return this.call('listBases', {}, '', () => this.store.listBases());
  }

  baseFingerprint(base: string): Promise<string> {
    return this.call('baseFingerprint', { base }, base, () => this.store.baseFingerprint(base));
  }

  create(req: CreateRequest): Promise<ObjectInfo> {
    const source = 'base' in req.source ? `base:${req.source.base}` : refText(req.source.object);
    return this.call('create', { target: refText(req.target), source, ...(req.refresh ? { refresh: true } : {}) }, refText(req.target), () => this.store.create(req));
  }

  copy(req: CopyRequest): Promise<ObjectInfo> {
    const flags = { ...(req.refresh ? { refresh: true } : {}), ...(req.resetIdentity ? { resetIdentity: true } : {}) };
    return this.call('copy', { source: refText(req.source), target: refText(req.target), ...flags }, refText(req.target), () => this.store.copy(req));
  }

  remove(ref: ObjectRef): Promise<void> {
    return this.call('remove', { ref: refText(ref) }, refText(ref), () => this.store.remove(ref));
  }

  start(ref: ObjectRef): Promise<void> {
    return this.call('start', { ref: refText(ref) }, refText(ref), () => this.store.start(ref));
  }

  stop(ref: ObjectRef): Promise<void> {
    return this.call('stop', { ref: refText(ref) }, refText(ref), () => this.store.stop(ref));
  }

  exec(ref: ObjectRef, req: ExecRequest): Promise<ExecResult> {
    return this.call('exec', { ref: refText(ref) }, refText(ref), () => this.store.exec(ref, req));
  }

  /** Runs at once through the interpreter; the returned process has already ended. */
  spawn(ref: ObjectRef, req: SpawnRequest): Promise<SpawnedProcess> {
    return this.call('spawn', { ref: refText(ref) }, refText(ref), () => {
      const r = this.store.spawn(ref, req);
      req.stdin?.resume?.(); // nothing reads it: let a piped producer finish
      const exit = (async () => {
        if (r.stdout) await writeAll(req.stdout, r.stdout);
        if (r.stderr) await writeAll(req.stderr, r.stderr);
        return r.exitCode;
      })();
      return { exit, resize: () => {}, kill: () => {} };
    });
  }

  inspect(ref: ObjectRef): Promise<ObjectInfo | null> {
    return this.call('inspect', { ref: refText(ref) }, refText(ref), () => this.store.inspect(ref));
  }

  list(owner: string): Promise<ObjectInfo[]> {
    return this.call('list', { owner }, owner, () => this.store.list(owner));
  }

  readFile(ref: ObjectRef, path: string): Promise<FileInfo | null> {
    return this.call('readFile', { ref: refText(ref), path }, refText(ref), () => this.store.readFile(ref, path));
  }

  // diskSpace and usage read the environment, they are not calls on objects: they are not
  // recorded and the fault plan never sees them, so the engine measuring the disk before each
  // command moves no seed's faults or crash points (recorded simulations replay the same). Only
  // availability applies.
  diskSpace(): Promise<DiskSpace> {
    return this.environment(() => this.store.diskSpace());
  }

  usage(owner: string): Promise<ObjectUsage[]> {
    return this.environment(() => this.store.usage(owner));
  }

  private async environment<T>(read: () => T): Promise<T> {
    if (!this.up) throw new BackendError('UNAVAILABLE', 'the fake backend is down (setAvailable(false)): retry when it is back');
    return read();
  }

  async close(): Promise<void> {
    // Nothing to release: the image is saved after every mutating call already.
  }

  // ---- controls ----------------------------------------------------------------------------

  get calls(): readonly CallRecord[] {
    return this.log.map((c) => ({ ...c }));
  }

  trace(opts?: TraceOptions): string[] {
    return traceLines(this.log, opts);
  }

  clearCalls(): void {
    this.log = [];
  }

  get faultPlan(): FaultPlan | null {
    return this.injector ? (JSON.parse(JSON.stringify(this.injector.plan)) as FaultPlan) : null;
  }

  setFaultPlan(plan: FaultPlan | null): void {
    if (plan === null) {
      this.injector = null;
      return;
    }
    const problem = validateFaultPlan(plan);
    if (problem) throw new BackendError('INVALID', `bad fault plan: ${problem}`, { plan });
    // Keep a private copy: a caller mutating its plan afterwards must not change the run.
    this.injector = new FaultInjector(JSON.parse(JSON.stringify(plan)) as FaultPlan);
  }

  setAvailable(up: boolean): void {
    this.up = up;
  }

  reboot(): void {
    this.store.reboot();
    this.persist();
  }

  dump(): FakeImage {
    return this.store.dump();
  }

  load(image: FakeImage): void {
    this.store.load(image);
    this.persist();
  }

  objects(): FakeObject[] {
    return this.store.objects();
  }

  scratches(): Record<string, string[]> {
    return Object.fromEntries(Object.entries(this.store.scratches()).map(([k, v]) => [k, v.users]));
  }

  plant(ref: ObjectRef, opts: PlantOptions = {}): void {
    this.store.plant(ref, { ...opts, tags: { ...(opts.tags ?? {}) } });
    this.persist();
  }

  registerBase(name: string): void {
    this.store.registerBase(name);
    this.persist();
  }

  // ---- machinery ---------------------------------------------------------------------------

  private persist(): void {
    if (this.file) saveImage(this.file, this.store.dump());
  }

  /**
   * Record the call, apply availability and the fault plan around the effect, and persist. The
   * effect is synchronous, so concurrent callers see calls applied in the order they were made.
   */
  private async call<T>(kind: CallKind, fields: CallFields, faultTarget: string, effect: () => T): Promise<T> {
    const record: CallRecord = { n: this.log.length + 1, kind, ...fields, ok: false, text: callText({ kind, ...fields }) };
    this.log.push(record);
    if (!this.up) {
      record.code = 'UNAVAILABLE';
      throw new BackendError('UNAVAILABLE', `the fake backend is down (setAvailable(false)): ${record.text} was not performed; retry when it is back`);
    }
    if (this.latencyMs > 0 && !READ_ONLY_CALLS.has(kind)) await new Promise((r) => setTimeout(r, this.latencyMs));
    const fault = this.injector?.decide(kind, faultTarget) ?? null;
    if (fault) record.fault = `${fault.action}-${fault.when}`;
    if (fault?.when === 'before') this.raise(fault, record);
    let result: T;
    try {
      result = effect();
    } catch (e) {
      record.code = isBackendError(e) ? e.code : 'INTERNAL';
      if (!READ_ONLY_CALLS.has(kind)) this.persist(); // a failing exec keeps what it did
      throw e;
    }
    if (!READ_ONLY_CALLS.has(kind)) this.persist();
    if (fault?.when === 'after') this.raise(fault, record);
    record.ok = true;
    return result;
  }

  private raise(fault: Fault, record: CallRecord): never {
    const what = `${record.text} (${fault.by} of the fault plan, ${fault.when} the effect)`;
    if (fault.action === 'crash') {
      record.code = 'SIMULATED_CRASH';
      throw new SimulatedCrash(`simulated crash: ${what}`);
    }
    record.code = fault.code;
    throw new BackendError(fault.code, `injected ${fault.code}: ${what}`, { injected: true, when: fault.when });
  }
}

/**
 * Make a fake backend.
 *
 * @example
 * ```ts
 * const b = createFakeBackend({ seed: 42, file: '/tmp/atelier-fake.json' });
 * await b.ensureProjects('alice');
 * ```
 */
export function createFakeBackend(opts: FakeBackendOptions = {}): FakeBackend {
  return new Fake(opts);
}

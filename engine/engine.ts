/**
 * The engine: the loop around the domain core. For each command: validate at the edge, ask
 * `decide` (pure) what follows, journal its events, carry out the effect they request through the
 * backend port, and feed the outcome back to `decide`, until the op finishes. State is only ever
 * changed by folding what was journaled (`evolve`), and nothing acts on a decision before it is
 * on disk.
 *
 * `openEngine` (`index.ts`) returns the `Engine` interface; `EngineImpl` and `openEngineImpl` are
 * for this package's own tests and simulation (they reach the folded state and can "crash").
 *
 * @example
 * ```ts
 * const engine = await openEngineImpl({ stateDir, runDir, backend: createFakeBackend({ seed: 1 }) });
 * const ws = await engine.launch(spec, { onProgress: (p) => console.log(p.label, p.status) });
 * engine.folded.objects; // every object the state accounts for
 * await engine.close();
 * ```
 */
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { BehaviorSubject, Subject, type Observable } from 'rxjs';
import { freeze, produce } from 'immer';
import { isBackendError, SimulatedCrash, type Backend, type SpawnedProcess } from '../backends/types.ts';
import { execIn, type ExecRequest } from './exec.ts';
import { AtelierError, isAtelierError } from '../machines/errors.ts';
import type { EventInput, JournalRecord } from '../events/catalogue.ts';
import { openJournal, type Journal } from '../events/journal.ts';
import { acquireLock, type StateLock } from '../events/lock.ts';
import { isNoSpace } from '../events/reserve.ts';
import {
  decide,
  evolve,
  evolveVolatile,
  initialVolatile,
  isVolatileEvent,
  phaseStepsOf,
  type DomainState,
  type FoldState,
  type Input,
  type KeyedEvent,
  type OpKind,
  type VolatileState,
  type WorkshopSpec,
} from '../machines/index.ts';
import { validateWorkshopName, ownerName } from '../machines/names.ts';
import { sortedByName, type CommandOptions, type Engine, type EngineOptions, type EngineState, type EventCursor, type GcReport, type JournalEvent, type ReconcileReport, type RunRequest, type RunResult, type SpaceReport, type UsageReport, type WorkshopView } from './api.ts';
import { eventsAfter } from './event-stream.ts';
import { opError } from './op-errors.ts';
import { failureOf, runEffect } from './effects.ts';
import { didYouMeanHint } from './hints.ts';
import { defaultClock, defaultIds } from './ids.ts';
import { defaultRunDir } from './paths.ts';
import { Reconciler, type ReconcileHost } from './reconcile.ts';
import { openFolded } from './replay.ts';
import { Serialiser } from './serialise.ts';
import { DEFAULT_CACHE_POLICY, SdkCache, withSharedLayers } from './cache.ts';
import { DEFAULT_MIN_FREE, degradedError, MAKING, PRECHECK_IDS, SpaceGuard, usageReport } from './space.ts';

type Outcome = 'done' | 'undone' | 'broken';

export class EngineImpl implements Engine, ReconcileHost {
  state$: BehaviorSubject<EngineState>;
  readonly events$ = new Subject<JournalEvent>();
  private closed = false;
  private lastCheckpoint: number;
  private readonly serial = new Serialiser();
  private readonly reconciler: Reconciler;
  /** How each op that removed its workshop ended (an undone launch), for the error its caller gets. */
  private readonly failures = new Map<string, { code: string; message: string }>();
  /** Ops undone because their records could not be written (a full disk): their caller gets `NO_SPACE`. */
  private readonly spaceFailures = new Map<string, string>();
  /** Ops being undone after a full disk: a second failure there is not undone again. */
  private readonly recovering = new Set<string>();
  private runs = 0;
  /** The SDK cache: one flight per shared layer, and its policy applied after each command. */
  readonly cache: SdkCache;
  /** For simulation's interleavings: told when a command waits on another's SDK layer (`CacheHost.waitHook`). */
  waitHook: (() => () => void) | undefined = undefined;
  /** `EngineOptions.sdkCache`. */
  sdkCache = true;

  constructor(
    readonly backend: Backend,
    readonly owner: string,
    private readonly journal: Journal,
    private readonly volatile: Journal,
    private fold: FoldState,
    private vfold: VolatileState,
    private readonly lock: StateLock,
    readonly clock: () => string,
    readonly ids: NonNullable<EngineOptions['ids']>,
    private readonly checkpointEvery: number,
    private readonly stateDir: string,
    readonly guard: SpaceGuard,
  ) {
    this.lastCheckpoint = fold.seq;
    this.state$ = new BehaviorSubject(this.view());
    this.reconciler = new Reconciler(this);
    const self = this;
    this.cache = new SdkCache(
      {
        get world() {
          return self.world;
        },
        backend,
        owner,
        clock,
        changes$: this.state$,
        get waitHook() {
          return self.waitHook;
        },
        record: (e) => this.record(e),
        decide: (i) => this.decide(i),
      },
      DEFAULT_CACHE_POLICY,
    );
  }

  get state(): EngineState {
    return this.state$.value;
  }
  /** The folded durable state (ops and objects included), for reconciliation and tests. */
  get folded(): FoldState {
    return this.fold;
  }
  get volatileState(): VolatileState {
    return this.vfold;
  }
  /** Both parts of the folded state, as `decide` reads them. */
  get world(): DomainState {
    return { durable: this.fold, volatile: this.vfold };
  }

  private view(): EngineState {
    return { seq: this.fold.seq, owner: this.owner, workshops: this.fold.workshops as EngineState['workshops'], containers: this.vfold.containers };
  }

  /** Journal durably, then fold, then publish. Nothing acts on an input before this resolves. */
  async append(inputs: EventInput[]): Promise<JournalRecord[]> {
    this.assertOpen();
    const records = await this.journal.append(inputs);
    this.fold = produce(this.fold, (d) => {
      for (const r of records) evolve(d, r);
    });
    this.publish(records, 'durable');
    // Not while degraded: a checkpoint only saves replay time, and the disk has none to spare.
    if (this.fold.seq - this.lastCheckpoint >= this.checkpointEvery && !this.guard.last?.degraded) {
      this.lastCheckpoint = this.fold.seq;
      await this.checkpoint();
    }
    return records;
  }

  /** Write a checkpoint; one that does not fit on the disk is skipped (the journal is the truth), and tried again later. */
  private async checkpoint(): Promise<void> {
    try {
      await this.journal.writeCheckpoint(this.fold.seq, this.fold);
    } catch (e) {
      if (!isNoSpace(e)) throw e;
    }
  }

  /** Journal to the volatile journal (no fsync), then fold, then publish. */
  async appendVolatile(inputs: EventInput[]): Promise<void> {
    this.assertOpen();
    const records = await this.volatile.append(inputs);
    this.vfold = produce(this.vfold, (d) => {
      for (const r of records) evolveVolatile(d, r);
    });
    this.publish(records, 'volatile');
  }

  /** Journal `decide`'s events, each to its journal (transient containers' to the volatile one). */
  async record(events: readonly KeyedEvent[]): Promise<void> {
    if (events.length === 0) return;
    if (isVolatileEvent(events[0]!)) await this.appendVolatile([...events]);
    else await this.append([...events]);
  }

  private publish(records: JournalRecord[], journal: JournalEvent['journal']): void {
    this.state$.next(this.view());
    for (const r of records) this.events$.next({ ...r, journal });
  }

  eventsAfter(cursor: EventCursor = {}, onLive?: () => void): Observable<JournalEvent> {
    this.assertOpen();
    return eventsAfter({ live$: this.events$, durable: this.journal, volatile: this.volatile }, cursor, onLive);
  }

  private assertOpen(): void {
    if (this.closed) throw new AtelierError('CLOSED', 'the engine is closed; open a new one');
  }

  private decide(input: Input): KeyedEvent[] {
    return decide(this.world, input);
  }

  /**
   * Drive an op from its first events to its end: journal them, run the effect they request,
   * decide on its outcome (journaled with what follows it, in one durable append: still
   * write-ahead, since nothing acts on either before both are on disk), and so on.
   */
  async drive(name: string, opId: string, first: KeyedEvent[], opts: CommandOptions = {}): Promise<Outcome> {
    let events = first;
    let aborted = false;
    for (;;) {
      try {
        await this.append(events);
      } catch (e) {
        // A full disk: nothing of `events` is on disk. Before the op's first record nothing
        // happened (the caller refuses the command); past it, the op is undone with the reserve.
        if (!isAtelierError(e, 'NO_SPACE') || (events === first && first[0]?.type === 'op.started') || this.recovering.has(opId)) throw e;
        return this.undoForSpace(name, opId, e);
      }
      if (events === first && first[0]?.type === 'op.started') opts.onOp?.(opId);
      const fin = events.find((e) => e.type === 'op.finished');
      if (fin?.type === 'op.finished') {
        if (fin.data.code) this.failures.set(opId, { code: fin.data.code, message: fin.data.message ?? '' });
        return fin.data.outcome;
      }
      const op = this.fold.ops[opId];
      if (!op?.pending) throw new AtelierError('BROKEN', `internal: the machine made no decision for op ${opId} of "${name}"`);
      const steps = phaseStepsOf(op);
      const step = steps[op.step]!;
      const progress = (status: 'started' | 'done' | 'failed') =>
        opts.onProgress?.({ op: opId, kind: op.kind, workshop: name, phase: op.phase, step: op.step, total: steps.length, label: step.label, status, at: this.clock() });
      progress('started');
      let result: Extract<Input, { type: 'outcome' }>['result'];
      try {
        const r = await runEffect(this.backend, this.owner, opId, step.effect);
        result = { ok: true, ...(r.identity ? { identity: r.identity } : {}) };
        progress('done');
      } catch (e) {
        result = { ok: false, ...failureOf(e) };
        progress('failed');
      }
      let abort: { code: string; message: string } | undefined;
      if (!aborted && opts.signal?.aborted) {
        aborted = true;
        abort = { code: 'ABORTED', message: opts.signal.reason instanceof Error ? opts.signal.reason.message : 'the command was aborted' };
      }
      events = this.decide({ type: 'outcome', op: opId, at: this.clock(), result, ...(abort ? { abort } : {}) });
    }
  }

  /**
   * An op whose next records did not fit on the disk: undo it as a start after a crash would
   * (probe the pending effect, let the charts decide; before its pivot it is undone, past it it
   * rolls on), spending the journal's reserve. Its caller gets `NO_SPACE` unless it rolled on to done.
   */
  private async undoForSpace(name: string, opId: string, cause: AtelierError): Promise<Outcome> {
    const { dir, cause: errno } = cause.info as { dir?: string; cause?: string };
    this.spaceFailures.set(opId, `the journal's disk filled up half-way through (${errno ?? 'ENOSPC'} writing ${dir ?? 'the journal'}: free space there; \`atelier df\` shows what atelier holds)`);
    this.recovering.add(opId);
    // Whatever statfs says (a quota it does not show): the undo's records must reach disk.
    this.journal.allowReserve(true);
    try {
      const outcome = (await this.reconciler.recover(opId)) as Outcome | undefined;
      return outcome ?? (this.fold.ops[opId] ? 'broken' : 'undone');
    } catch (e) {
      if (!isAtelierError(e, 'NO_SPACE')) throw e;
      throw new AtelierError(
        'NO_SPACE',
        `cannot finish "${name}": ${cause.message}; undoing it did not fit on the disk either, so the operation stays in progress: ` +
          'once space is freed, `atelier reconcile` (or the next start) finishes or undoes it',
        { workshop: name, op: opId },
      );
    } finally {
      this.recovering.delete(opId);
      await this.guard.check().catch(() => undefined);
    }
  }

  /** Accept a command (or refuse it before anything is journaled or any id is spent) and run its op. */
  private async command(kind: OpKind, name: string, opts: CommandOptions, more: { spec?: WorkshopSpec; sdk?: string } = {}): Promise<WorkshopView | null> {
    this.assertOpen();
    validateWorkshopName(name);
    return this.serial.run(name, async () => {
      try {
        return await this.commandNow(kind, name, opts, more);
      } finally {
        // The cache policy, in the command's own turn (reconcile and gc wait for it): a failure to
        // evict leaves the layer to the next trim.
        if (!this.closed) await this.cache.trim().catch(() => undefined);
      }
    });
  }

  private async commandNow(kind: OpKind, name: string, opts: CommandOptions, more: { spec?: WorkshopSpec; sdk?: string }): Promise<WorkshopView | null> {
    this.assertOpen();
    if (opts.signal?.aborted) throw new AtelierError('ABORTED', `cannot ${kind} "${name}": the command was aborted before it started; nothing changed`);
    const space = await this.guard.check();
    if (space.degraded && MAKING.has(kind)) {
      // Bad input keeps its own error (checked with throwaway ids: nothing is spent).
      this.decide({ type: 'command', kind, workshop: name, ...more, owner: this.owner, at: this.clock(), ids: PRECHECK_IDS });
      throw degradedError(kind, name, space);
    }
    if (more.spec && (kind === 'launch' || kind === 'refresh') && this.sdkCache) more = { ...more, spec: await withSharedLayers(this.backend, more.spec) };
    // One flight per shared layer: wait while one this spec names is built or evicted, and decide
    // and journal the op's start under the cache's lock (released once `op.started` is on disk).
    const release = await this.cache.claim(more.spec);
    let first: KeyedEvent[];
    try {
      first = this.decide({ type: 'command', kind, workshop: name, ...more, owner: this.owner, at: this.clock(), ids: this.ids });
    } catch (e) {
      release();
      const ws = this.fold.workshops[name];
      if (isAtelierError(e) && kind === 'restore' && ws && more.sdk !== undefined) throw new AtelierError(e.code, `${e.message}${didYouMeanHint(more.sdk, ws.sdks.map((l) => l.sdk))}`, { workshop: name });
      throw e;
    }
    const opId = (first[0] as Extract<KeyedEvent, { type: 'op.started' }>).data.op;
    let outcome: Outcome;
    try {
      outcome = await this.drive(name, opId, first, { ...opts, onOp: (id) => (release(), opts.onOp?.(id)) });
    } catch (e) {
      if (isAtelierError(e, 'NO_SPACE') && !this.fold.ops[opId]) {
        await this.guard.check().catch(() => undefined);
        throw new AtelierError('NO_SPACE', `cannot ${kind} "${name}": ${e.message}`, { workshop: name, ...e.info });
      }
      throw e;
    } finally {
      release();
    }
    const after = this.fold.workshops[name];
    if (outcome === 'done') return after ?? null;
    const spaceFailure = this.spaceFailures.get(opId);
    const err = spaceFailure !== undefined ? { code: 'NO_SPACE', message: spaceFailure } : (after?.lastError ?? this.failures.get(opId) ?? { code: 'OP_FAILED', message: 'the operation failed' });
    throw opError(kind, name, outcome, err, after !== undefined, opId);
  }

  async launch(spec: WorkshopSpec, opts: CommandOptions = {}): Promise<WorkshopView> {
    return (await this.command('launch', spec.name, opts, { spec }))!;
  }

  async refresh(spec: WorkshopSpec, opts: CommandOptions = {}): Promise<WorkshopView> {
    return (await this.command('refresh', spec.name, opts, { spec }))!;
  }

  async stash(name: string, opts: CommandOptions = {}): Promise<WorkshopView> {
    return (await this.command('stash', name, opts))!;
  }

  async unstash(name: string, opts: CommandOptions = {}): Promise<WorkshopView> {
    return (await this.command('unstash', name, opts))!;
  }

  async restore(name: string, sdk: string, opts: CommandOptions = {}): Promise<WorkshopView> {
    return (await this.command('restore', name, opts, { sdk }))!;
  }

  async remove(name: string, opts: CommandOptions = {}): Promise<void> {
    await this.command('remove', name, opts);
  }

  async start(name: string, opts: CommandOptions = {}): Promise<WorkshopView> {
    return (await this.command('start', name, opts))!;
  }

  async stop(name: string, opts: CommandOptions = {}): Promise<WorkshopView> {
    return (await this.command('stop', name, opts))!;
  }

  exec(name: string, req: ExecRequest): Promise<SpawnedProcess> {
    this.assertOpen();
    return execIn(this, name, req);
  }

  run(req: RunRequest, opts: CommandOptions = {}): Promise<RunResult> {
    this.assertOpen();
    // Under the serialiser so reconcile and gc (exclusive) never see a run half-way.
    return this.serial.run(`run:${req.from}:${this.runs++}`, () => this.runNow(req, opts));
  }

  private async runNow(req: RunRequest, opts: CommandOptions): Promise<RunResult> {
    this.assertOpen();
    const space = await this.guard.check();
    if (space.degraded) {
      this.decide({ type: 'run', from: req.from, at: this.clock(), ids: PRECHECK_IDS });
      throw degradedError('run', req.from, space);
    }
    let created: KeyedEvent[];
    try {
      created = this.decide({ type: 'run', from: req.from, ...(req.scratch ? { scratch: req.scratch } : {}), ...(req.keep ? { keep: true } : {}), at: this.clock(), ids: this.ids });
    } catch (e) {
      if (isAtelierError(e, 'NOT_FOUND')) throw new AtelierError('NOT_FOUND', `${e.message}${didYouMeanHint(req.from, Object.keys(this.fold.workshops))}`, { from: req.from });
      throw e;
    }
    const c = (created[0] as Extract<KeyedEvent, { type: 'container.created' }>).data;
    const id = c.id;
    await this.record(created);
    opts.onOp?.(c.op);
    try {
      const fromWorkshop = this.fold.workshops[req.from] !== undefined;
      await this.backend.create({ target: c.ref, source: { object: c.source, ...(c.scratch ? { scratch: c.scratch } : {}) }, tags: { owner: this.owner, op: c.op, kind: 'container', source: c.source.name, ...(fromWorkshop ? { workshop: req.from } : {}) } });
      await this.backend.start(c.ref);
      await this.record(this.decide({ type: 'container.start', id, at: this.clock() }));
      let result: RunResult = { id, exitCode: 0, stdout: '', stderr: '' };
      if (req.script !== undefined) {
        try {
          const r = await this.backend.exec(c.ref, { script: req.script });
          result = { id, ...r };
        } catch (e) {
          if (!isBackendError(e, 'EXEC_FAILED')) throw e;
          result = { id, exitCode: Number(e.info.exitCode ?? 1), stdout: String(e.info.stdout ?? ''), stderr: String(e.info.stderr ?? e.message) };
        }
      }
      if (!req.keep) await this.removeContainer(id);
      opts.onProgress?.({ op: c.op, kind: 'launch', workshop: req.from, phase: 'do', step: 0, total: 1, label: `run ${id}`, status: 'done', at: this.clock() });
      return result;
    } catch (e) {
      if (e instanceof SimulatedCrash) throw e; // a dead process cleans nothing up
      if (!isAtelierError(e)) await this.removeContainer(id).catch(() => undefined);
      throw isBackendError(e) ? new AtelierError(e.code === 'UNAVAILABLE' ? 'UNAVAILABLE' : 'OP_FAILED', `cannot run from "${req.from}": ${e.message}`, { cause: e.code }) : e;
    }
  }

  async removeContainer(id: string): Promise<void> {
    const removed = this.decide({ type: 'container.remove', id, at: this.clock() });
    await this.backend.remove(this.vfold.containers[id]!.ref);
    await this.record(removed);
  }

  gc(opts: { dryRun?: boolean; cache?: boolean } = {}): Promise<GcReport> {
    return this.serial.exclusive(async () => {
      try {
        await this.guard.check();
        const evicted = opts.cache ? { evicted: await this.cache.trim({ all: true, dryRun: opts.dryRun ?? false }) } : {};
        return { ...(await this.reconciler.gc(opts.dryRun ?? false)), ...evicted };
      } catch (e) {
        // A backend failure is gc failing, not gc refused: BUSY from the backend is not the
        // engine's BUSY (a workshop's command in progress). What it removed before is journaled.
        if (!isBackendError(e)) throw e;
        throw new AtelierError(e.code === 'UNAVAILABLE' ? 'UNAVAILABLE' : 'OP_FAILED', `cannot gc: ${e.message}; orphans removed before this stay removed: run gc again`, { cause: e.code }, { cause: e });
      }
    });
  }

  reconcile(): Promise<ReconcileReport> {
    return this.serial.exclusive(async () => {
      await this.guard.check();
      const report = await this.reconciler.reconcile();
      // The cache policy as this engine was opened with (it may be lower than the last one's).
      await this.cache.trim().catch(() => undefined);
      return report;
    });
  }

  space(): Promise<SpaceReport> {
    this.assertOpen();
    return this.guard.check();
  }

  async usage(): Promise<UsageReport> {
    this.assertOpen();
    const report = await this.guard.check();
    const u = await usageReport({ stateDir: this.stateDir, backend: this.backend, minFree: report.minFree, reserveWhole: null, owner: this.owner, state: this.fold });
    // The disks as the guard sees them (the reserve counted), what each object holds as just measured.
    return { ...u, ...report };
  }

  list(): WorkshopView[] {
    return sortedByName(Object.values(this.state.workshops));
  }

  show(name: string): WorkshopView {
    const ws = this.state.workshops[name];
    if (!ws) throw new AtelierError('NOT_FOUND', `no workshop "${name}"${didYouMeanHint(name, Object.keys(this.state.workshops))} (list them with \`atelier list\`)`, { workshop: name });
    return ws;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.serial.drain();
    this.closed = true;
    if (this.fold.seq > this.lastCheckpoint && !this.guard.last?.degraded) await this.journal.writeCheckpoint(this.fold.seq, this.fold).catch(() => undefined);
    await this.journal.close();
    await this.volatile.close();
    await this.backend.close();
    await this.lock.release();
    this.state$.complete();
    this.events$.complete();
  }

  /**
   * Drop the engine as a dead process would: no checkpoint, no drain, no backend close; the lock
   * and file handles are released so the same test process can reopen. For crash tests only.
   */
  async crash(): Promise<void> {
    this.closed = true;
    await this.journal.close().catch(() => undefined);
    await this.volatile.close().catch(() => undefined);
    await this.lock.release().catch(() => undefined);
  }
}

/**
 * Open an engine on a state directory (the implementation, with its test hooks): take the lock,
 * replay the journal from its latest checkpoint, check the backend answers, and reconcile journal
 * and backend. Use `openEngine` (`index.ts`) outside this package.
 */
export async function openEngineImpl(opts: EngineOptions): Promise<EngineImpl> {
  const owner = opts.owner ?? ownerName(userInfo());
  const runDir = opts.runDir ?? defaultRunDir(process.env);
  // acquireLock creates the state directory when needed.
  const lock = await acquireLock(opts.stateDir);
  let journal: Journal | undefined;
  let volatile: Journal | undefined;
  try {
    const opened = await openFolded(join(opts.stateDir, 'journal'), opts.syncInline ? { syncInline: true } : {});
    journal = opened.journal;
    const fold = opened.fold;
    const vopened = await openJournal<VolatileState>({ dir: join(runDir, 'volatile'), durable: false });
    volatile = vopened.journal;
    const vs = initialVolatile();
    for (const r of vopened.tail) evolveVolatile(vs, r);
    try {
      await opts.backend.ensureProjects(owner);
    } catch (e) {
      if (isBackendError(e, 'UNAVAILABLE')) throw new AtelierError('UNAVAILABLE', `the ${opts.backend.kind} backend is unavailable: ${e.message}`, { backend: opts.backend.kind }, { cause: e });
      throw e;
    }
    const guard = new SpaceGuard({ stateDir: opts.stateDir, backend: opts.backend, journal, minFree: opts.minFreeBytes ?? DEFAULT_MIN_FREE, keepsReserve: opts.syncInline !== true });
    const engine = new EngineImpl(opts.backend, owner, journal, volatile, fold, freeze(vs, true), lock, opts.clock ?? defaultClock, opts.ids ?? defaultIds(), opts.checkpointEvery ?? 10_000, opts.stateDir, guard);
    if (opts.cacheKeep) engine.cache.policy = opts.cacheKeep;
    if (opts.sdkCache === false) engine.sdkCache = false;
    // Measured before anything is written: on a full disk, reconciliation's records take the reserve.
    await guard.check();
    if (opts.reconcile !== false) await engine.reconcile();
    return engine;
  } catch (e) {
    await journal?.close().catch(() => undefined);
    await volatile?.close().catch(() => undefined);
    await lock.release();
    throw e;
  }
}

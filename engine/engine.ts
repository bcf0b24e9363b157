/**
 * `openEngine`: the write-ahead loop that ties journal, machines and backend together.
 *
 * For each command: validate at the edge, ask the workshop machine (pure) what to do, journal its
 * decision, carry out the requested effect, journal the outcome, ask the machine again, until it
 * finishes the op. State is only ever changed by folding what was journaled.
 *
 * @example
 * ```ts
 * const engine = await openEngine({ stateDir, runDir, backend: createFakeBackend({ seed: 1 }) });
 * const ws = await engine.launch(spec, { onProgress: (p) => console.log(p.label, p.status) });
 * await engine.close();
 * ```
 */
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { BehaviorSubject, Subject } from 'rxjs';
import { freeze, produce } from 'immer';
import { isBackendError, SimulatedCrash, type Backend, type ObjectRef } from '../backends/types.ts';
import { AtelierError, isAtelierError } from '../errors.ts';
import { EVENT_VERSIONS, type EventInput, type JournalRecord, type OpKind, type WorkshopShape, type WorkshopSpec } from '../events/catalogue.ts';
import { openJournal, type Journal } from '../events/journal.ts';
import { acquireLock, type StateLock } from '../events/lock.ts';
import { containerNext } from '../machines/container.ts';
import { planLaunch, planRefresh, planRemove, planRestore, planStash, planUnstash, reusablePrefix, instanceRef, layerRef, type PlanContext } from '../machines/plan.ts';
import { decide, rejection, resolveWorkshop, type CommandEvent, type Decision, type WorkshopContext, type WorkshopEvent } from '../machines/workshop.ts';
import type { CommandOptions, Engine, EngineOptions, EngineState, GcReport, ReconcileReport, RunRequest, RunResult, WorkshopView } from './api.ts';
import { failureOf, runEffect, describeEffect } from './effects.ts';
import { evolve, evolveVolatile, initialState, initialVolatile, objectKey, stashLayerNames, type FoldState, type VolatileState } from './fold.ts';
import { defaultClock, defaultIds } from './ids.ts';
import { ownerName, didYouMeanHint, validateWorkshopName } from './names.ts';
import { Reconciler } from './reconcile.ts';
import { Serialiser } from './serialise.ts';
import { phaseSteps } from '../machines/plan.ts';

/** Replay a checkpoint and a tail into a frozen state, without a proxy or copy per record. */
export function replay(checkpoint: { state: FoldState } | null, tail: readonly JournalRecord[]): FoldState {
  const s: FoldState = checkpoint ? structuredClone(checkpoint.state) : initialState();
  for (const r of tail) evolve(s, r);
  return freeze(s, true);
}

/**
 * Open a durable journal and fold it while it is read: each record is folded as it is decoded, so
 * start-up never holds the whole tail in memory (what `replay.full.1m` measures).
 */
export async function openFolded(dir: string, opts: { checkpointDir?: string; syncInline?: boolean } = {}): Promise<{ journal: Journal; fold: FoldState }> {
  let fold: FoldState = initialState();
  const opened = await openJournal<FoldState>({
    dir,
    durable: true,
    ...opts,
    replay: (checkpoint) => {
      fold = checkpoint ? structuredClone(checkpoint.state as FoldState) : initialState();
      const s = fold;
      return (r) => evolve(s, r);
    },
  });
  return { journal: opened.journal, fold: freeze(fold, true) };
}

export class EngineImpl implements Engine {
  state$: BehaviorSubject<EngineState>;
  readonly events$ = new Subject<JournalRecord>();
  private closed = false;
  private lastCheckpoint: number;
  private readonly serial = new Serialiser();
  readonly reconciler: Reconciler;

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
  ) {
    this.lastCheckpoint = fold.seq;
    this.state$ = new BehaviorSubject(this.view());
    this.reconciler = new Reconciler(this);
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
    this.publish(records);
    if (this.fold.seq - this.lastCheckpoint >= this.checkpointEvery) {
      this.lastCheckpoint = this.fold.seq;
      await this.journal.writeCheckpoint(this.fold.seq, this.fold);
    }
    return records;
  }

  async appendVolatile(inputs: EventInput[]): Promise<void> {
    this.assertOpen();
    const records = await this.volatile.append(inputs);
    this.vfold = produce(this.vfold, (d) => {
      for (const r of records) evolveVolatile(d, r);
    });
    this.publish(records);
  }

  private publish(records: JournalRecord[]): void {
    this.state$.next(this.view());
    for (const r of records) this.events$.next(r);
  }

  private assertOpen(): void {
    if (this.closed) throw new AtelierError('CLOSED', 'the engine is closed; open a new one');
  }

  /** The machine's view of one workshop, rebuilt from the fold. */
  contextFor(name: string, fold: FoldState = this.fold): WorkshopContext {
    const ws = fold.workshops[name];
    const op = ws?.op ? fold.ops[ws.op.id] ?? null : Object.values(fold.ops).find((o) => o.workshop === name) ?? null;
    return {
      name,
      workshop: ws ? { status: ws.status, hasStash: ws.stash !== null, sdks: ws.sdks.map((l) => l.sdk), instancePresent: ws.instancePresent, dependents: this.dependentsOf(ws) } : null,
      op,
    };
  }

  /**
   * Containers kept on purpose (`keep`) running from a workshop or one of its layers. A `--rm`
   * container left by a run that failed to remove it blocks nothing: gc and reconcile reclaim it.
   */
  private dependentsOf(ws: { instance: string; sdks: readonly { layer: string }[] }): number {
    const names = new Set([ws.instance, ...ws.sdks.map((l) => l.layer)]);
    return Object.values(this.vfold.containers).filter((c) => c.keep && names.has(c.source.name)).length;
  }

  private toInputs(name: string, opId: string, decisions: Decision[], extra: { spec?: WorkshopSpec } = {}, fold: FoldState = this.fold): EventInput[] {
    const at = this.clock();
    return decisions.map((d): EventInput => {
      switch (d.type) {
        case 'startOp':
          return { type: 'op.started', key: name, data: { op: opId, kind: d.params.kind, workshop: name, plan: d.params.plan, at, ...(extra.spec ? { spec: extra.spec } : {}), ...(d.params.sdk ? { sdk: d.params.sdk } : {}) } };
        case 'request':
          return { type: 'effect.requested', key: name, data: { op: opId, ...d.params, at } };
        case 'enterPhase':
          return { type: 'op.phase', key: name, data: { op: opId, ...d.params, at } };
        case 'finish': {
          const leftovers: ObjectRef[] = [];
          // Any clean-up target still accounted for when an op finishes done is a leftover for gc,
          // whichever clean-up step gave up (fixtures/simulate/cleanup-leftovers-marked).
          if (d.params.leftovers || d.params.outcome === 'done') {
            const op = fold.ops[opId];
            for (const s of op?.plan.cleanup ?? []) if (fold.objects[objectKey(s.effect.target)]) leftovers.push(s.effect.target);
          }
          const { leftovers: _l, ...rest } = d.params;
          return { type: 'op.finished', key: name, data: { op: opId, ...rest, at, ...(leftovers.length ? { leftovers } : {}) } };
        }
      }
    });
  }

  /**
   * Drive an op from a decision to its end: journal each decision, run each requested effect,
   * journal its outcome, and ask the machine again.
   */
  async drive(name: string, opId: string, first: Decision[], opts: CommandOptions = {}, extra: { spec?: WorkshopSpec } = {}): Promise<'done' | 'undone' | 'broken'> {
    let decisions = first;
    let aborted = false;
    // An effect's outcome is journaled together with the decision that follows it: one durable
    // append per step instead of two, and still write-ahead, since nothing acts on either before
    // both are on disk. A crash before that append leaves the effect pending, as it always could.
    let outcome: EventInput | null = null;
    let ahead: FoldState = this.fold;
    for (;;) {
      await this.append([...(outcome ? [outcome] : []), ...this.toInputs(name, opId, decisions, extra, ahead)]);
      outcome = null;
      const fin = decisions.find((d) => d.type === 'finish');
      if (fin && fin.type === 'finish') {
        if (fin.params.code) this.failures.set(opId, { code: fin.params.code, message: fin.params.message ?? '' });
        return fin.params.outcome;
      }
      const req = decisions.find((d) => d.type === 'request');
      if (!req || req.type !== 'request') throw new AtelierError('BROKEN', `internal: the machine made no decision for op ${opId} of "${name}"`);
      const op = this.fold.ops[opId]!;
      const steps = phaseSteps(op.plan, req.params.phase, op.undoFrom);
      const step = steps[req.params.step]!;
      const progress = (status: 'started' | 'done' | 'failed') =>
        opts.onProgress?.({ op: opId, kind: op.kind, workshop: name, phase: req.params.phase, step: req.params.step, total: steps.length, label: step.label, status, at: this.clock() });
      progress('started');
      let event: WorkshopEvent;
      try {
        const result = await runEffect(this.backend, this.owner, opId, step.effect);
        outcome = { type: 'effect.succeeded', key: name, data: { op: opId, phase: req.params.phase, step: req.params.step, at: this.clock(), ...(result.identity ? { identity: result.identity } : {}) } };
        progress('done');
        event = { type: 'step.ok' };
      } catch (e) {
        const f = failureOf(e);
        outcome = { type: 'effect.failed', key: name, data: { op: opId, phase: req.params.phase, step: req.params.step, at: this.clock(), ...f } };
        progress('failed');
        event = { type: 'step.failed', ...f, message: `${step.label} (${describeEffect(step.effect)}): ${f.message}` };
      }
      // The machine decides on the state as it will be once the outcome is journaled.
      ahead = this.foldAhead(outcome);
      const snap = resolveWorkshop(this.contextFor(name, ahead));
      if (!aborted && opts.signal?.aborted) {
        aborted = true;
        const reason = opts.signal.reason instanceof Error ? opts.signal.reason.message : 'the command was aborted';
        const d = decide(snap, { type: 'abort', code: 'ABORTED', message: reason });
        if (d.actions.length > 0) {
          decisions = d.actions;
          continue;
        }
      }
      decisions = decide(snap, event).actions;
    }
  }

  /** The fold as it will be once `input` is journaled as the next record (nothing is written). */
  private foldAhead(input: EventInput): FoldState {
    const record = { ...input, seq: this.fold.seq + 1, v: EVENT_VERSIONS[input.type] } as JournalRecord;
    return produce(this.fold, (d) => evolve(d, record));
  }


  /** Accept a command (or reject it before anything is journaled) and run its op. */
  private async command(kind: OpKind, name: string, opts: CommandOptions, build: (ctx: PlanContext, shape: WorkshopShape) => { event: CommandEvent; spec?: WorkshopSpec }, sdk?: string): Promise<WorkshopView | null> {
    this.assertOpen();
    validateWorkshopName(name);
    return this.serial.run(name, async () => {
      this.assertOpen();
      if (opts.signal?.aborted) throw new AtelierError('ABORTED', `cannot ${kind} "${name}": the command was aborted before it started; nothing changed`);
      const ctx = this.contextFor(name);
      const ws = this.fold.workshops[name];
      // Rejected before anything is journaled or any id is spent.
      const rej = rejection(ctx, kind, sdk);
      if (rej) {
        const hint = kind === 'restore' && ws && sdk !== undefined ? didYouMeanHint(sdk, ws.sdks.map((l) => l.sdk)) : '';
        throw new AtelierError(rej.code, `cannot ${kind} "${name}": workshop ${rej.reason}${hint}`, { workshop: name });
      }
      const opId = this.ids.opId();
      const { event, spec } = build({ owner: this.owner, op: opId }, ws ?? LAUNCH_SHAPE);
      const d = decide(resolveWorkshop(ctx), event);
      if (!d.accepted) throw new AtelierError('FAILED_PRECONDITION', `cannot ${kind} "${name}" in its current state`, { workshop: name });
      const outcome = await this.drive(name, opId, d.actions, opts, spec ? { spec } : {});
      const after = this.fold.workshops[name];
      if (outcome === 'done') return after ?? null;
      const err = after?.lastError ?? this.lastFailure(opId);
      if (outcome === 'broken')
        throw new AtelierError('BROKEN', `cannot ${kind} "${name}": ${err.message}; it could not be undone either, so the workshop is marked broken (run \`atelier reconcile\` once the backend is healthy, or remove it)`, { workshop: name, op: opId, cause: err.code });
      throw new AtelierError(err.code === 'ABORTED' ? 'ABORTED' : 'OP_FAILED', `cannot ${kind} "${name}": ${err.message}; ${after ? 'the workshop was returned to how it was' : 'everything it created was removed'}`, { workshop: name, op: opId, cause: err.code });
    });
  }

  /** The failure an op finished with, when its workshop is gone (an undone launch). */
  private lastFailure(opId: string): { code: string; message: string } {
    return this.failures.get(opId) ?? { code: 'OP_FAILED', message: 'the operation failed' };
  }
  private readonly failures = new Map<string, { code: string; message: string }>();

  private spendSuffixes(n: number): string[] {
    return Array.from({ length: n }, () => this.ids.layerSuffix());
  }

  private isPresent = (layer: string): boolean => this.fold.objects[`layers/${layer}`]?.state === 'present';

  async launch(spec: WorkshopSpec, opts: CommandOptions = {}): Promise<WorkshopView> {
    const ws = await this.command('launch', spec.name, opts, (ctx) => ({ event: { type: 'launch', op: ctx.op, plan: planLaunch({ ctx, spec, suffixes: this.spendSuffixes(spec.sdks.length) }) }, spec }));
    return ws!;
  }

  async refresh(spec: WorkshopSpec, opts: CommandOptions = {}): Promise<WorkshopView> {
    const ws = await this.command('refresh', spec.name, opts, (ctx, shape) => {
      const reuse = reusablePrefix(shape, spec, this.isPresent);
      return { event: { type: 'refresh', op: ctx.op, plan: planRefresh({ ctx, name: spec.name, shape, spec, reuse, suffixes: this.spendSuffixes(spec.sdks.length - reuse), isPresent: this.isPresent }) }, spec };
    });
    return ws!;
  }

  async stash(name: string, opts: CommandOptions = {}): Promise<WorkshopView> {
    return (await this.command('stash', name, opts, (ctx, shape) => ({ event: { type: 'stash', op: ctx.op, plan: planStash({ ctx, name, shape, isPresent: this.isPresent }) } })))!;
  }

  async unstash(name: string, opts: CommandOptions = {}): Promise<WorkshopView> {
    return (await this.command('unstash', name, opts, (ctx, shape) => ({ event: { type: 'unstash', op: ctx.op, plan: planUnstash({ ctx, name, shape }) } })))!;
  }

  async restore(name: string, sdk: string, opts: CommandOptions = {}): Promise<WorkshopView> {
    return (await this.command('restore', name, opts, (ctx, shape) => ({ event: { type: 'restore', op: ctx.op, sdk, plan: planRestore({ ctx, name, shape, sdk }) } }), sdk))!;
  }

  async remove(name: string, opts: CommandOptions = {}): Promise<void> {
    await this.command('remove', name, opts, (ctx, shape) => ({ event: { type: 'remove', op: ctx.op, plan: planRemove({ ctx, shape, leftovers: this.leftoversOf(name, shape) }) } }));
  }

  /** Objects the state holds for workshop `name` that its shape does not name, in key order. */
  private leftoversOf(name: string, shape: WorkshopShape): ObjectRef[] {
    const named = new Set([instanceRef(shape.instance), ...shape.sdks.map((l) => layerRef(l.layer))].map(objectKey));
    if (shape.stash) for (const n of stashLayerNames(shape.stash)) named.add(objectKey(layerRef(n)));
    return Object.entries(this.fold.objects)
      .filter(([k, o]) => o.workshop === name && !named.has(k))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([, o]) => o.ref);
  }

  run(req: RunRequest, opts: CommandOptions = {}): Promise<RunResult> {
    this.assertOpen();
    // Under the serialiser so reconcile and gc (exclusive) never see a run half-way.
    return this.serial.run(`run:${req.from}:${this.runs++}`, () => this.runNow(req, opts));
  }
  private runs = 0;

  private async runNow(req: RunRequest, opts: CommandOptions): Promise<RunResult> {
    this.assertOpen();
    const ws = this.fold.workshops[req.from];
    const layer = this.fold.objects[`layers/${req.from}`];
    let source: ObjectRef;
    if (ws && ws.status === 'ready') source = instanceRef(ws.instance);
    else if (layer && layer.state === 'present' && layer.kind === 'sdk') source = layerRef(req.from);
    else
      throw new AtelierError('NOT_FOUND', `cannot run from "${req.from}": no ready workshop or SDK layer has that name${didYouMeanHint(req.from, [...Object.keys(this.fold.workshops)])}`, { from: req.from });
    const id = this.ids.containerId();
    const op = this.ids.opId();
    const ref: ObjectRef = { space: 'workshops', name: `run-${id}` };
    await this.appendVolatile([{ type: 'container.created', key: id, data: { id, ref, source, op, at: this.clock(), ...(req.scratch ? { scratch: req.scratch } : {}), ...(req.keep ? { keep: true } : {}) } }]);
    try {
      await this.backend.create({ target: ref, source: { object: source, ...(req.scratch ? { scratch: req.scratch } : {}) }, tags: { owner: this.owner, op, kind: 'container', source: source.name, ...(ws ? { workshop: req.from } : {}) } });
      await this.backend.start(ref);
      if (containerNext('created', 'start')) await this.appendVolatile([{ type: 'container.started', key: id, data: { id, at: this.clock() } }]);
      let result: RunResult = { id, exitCode: 0, stdout: '', stderr: '' };
      if (req.script !== undefined) {
        try {
          const r = await this.backend.exec(ref, { script: req.script });
          result = { id, ...r };
        } catch (e) {
          if (!isBackendError(e, 'EXEC_FAILED')) throw e;
          result = { id, exitCode: Number(e.info.exitCode ?? 1), stdout: String(e.info.stdout ?? ''), stderr: String(e.info.stderr ?? e.message) };
        }
      }
      if (!req.keep) await this.removeContainer(id);
      opts.onProgress?.({ op, kind: 'launch', workshop: req.from, phase: 'do', step: 0, total: 1, label: `run ${id}`, status: 'done', at: this.clock() });
      return result;
    } catch (e) {
      if (e instanceof SimulatedCrash) throw e; // a dead process cleans nothing up
      if (!isAtelierError(e)) await this.removeContainer(id).catch(() => undefined);
      throw isBackendError(e) ? new AtelierError(e.code === 'UNAVAILABLE' ? 'UNAVAILABLE' : 'OP_FAILED', `cannot run from "${req.from}": ${e.message}`, { cause: e.code }) : e;
    }
  }

  async removeContainer(id: string): Promise<void> {
    const c = this.vfold.containers[id];
    if (!c) throw new AtelierError('NOT_FOUND', `no transient container "${id}" (list them with \`atelier list --json\`)`, { id });
    await this.backend.remove(c.ref);
    await this.appendVolatile([{ type: 'container.removed', key: id, data: { id, at: this.clock() } }]);
  }

  gc(opts: { dryRun?: boolean } = {}): Promise<GcReport> {
    return this.serial.exclusive(async () => {
      try {
        return await this.reconciler.gc(opts.dryRun ?? false);
      } catch (e) {
        // A backend failure is gc failing, not gc refused: BUSY from the backend is not the
        // engine's BUSY (a workshop's command in progress). What it removed before is journaled.
        if (!isBackendError(e)) throw e;
        throw new AtelierError(e.code === 'UNAVAILABLE' ? 'UNAVAILABLE' : 'OP_FAILED', `cannot gc: ${e.message}; orphans removed before this stay removed: run gc again`, { cause: e.code }, { cause: e });
      }
    });
  }

  reconcile(): Promise<ReconcileReport> {
    return this.serial.exclusive(() => this.reconciler.reconcile());
  }

  list(): WorkshopView[] {
    return Object.values(this.state.workshops).sort((a, b) => a.name.localeCompare(b.name));
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
    if (this.fold.seq > this.lastCheckpoint) await this.journal.writeCheckpoint(this.fold.seq, this.fold).catch(() => undefined);
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

/** A launch has no current shape; its builder ignores this. */
const LAUNCH_SHAPE: WorkshopShape = { instance: '', projectId: '', base: '', defaultBase: false, sdks: [], stash: null };

function defaultRunDir(): string {
  const xdg = process.env.XDG_RUNTIME_DIR;
  return xdg ? join(xdg, 'atelier') : '/run/atelier';
}

/**
 * Open an engine on a state directory: take the lock, replay the journal from its latest
 * checkpoint, check the backend answers, and reconcile journal and backend.
 *
 * Errors: `LOCKED` (another engine holds the directory), `JOURNAL_CORRUPT`, `JOURNAL_VERSION`,
 * `UNAVAILABLE` (the backend does not answer). Nothing is changed when opening fails.
 */
export async function openEngine(opts: EngineOptions): Promise<EngineImpl> {
  const owner = opts.owner ?? ownerName(userInfo());
  const runDir = opts.runDir ?? defaultRunDir();
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
    const engine = new EngineImpl(opts.backend, owner, journal, volatile, fold, freeze(vs, true), lock, opts.clock ?? defaultClock, opts.ids ?? defaultIds(), opts.checkpointEvery ?? 10_000);
    if (opts.reconcile !== false) await engine.reconcile();
    return engine;
  } catch (e) {
    await journal?.close().catch(() => undefined);
    await volatile?.close().catch(() => undefined);
    await lock.release();
    throw e;
  }
}

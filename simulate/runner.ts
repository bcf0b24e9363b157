/**
 * Runs one step against a world and its model: arms the step's fault, runs its op(s), restarts
 * the engine if it died (tearing the journal or rebooting when asked, reconciling the crash image
 * twice), settles each op's outcome against the model, and checks the invariants.
 *
 * @example
 * ```ts
 * const ctx = await newContext({ seed: 1 });
 * await runStep(ctx, { type: 'cmd', ops: [{ do: 'launch', workshop: 'alpha' }], fault: null, recovery: null });
 * await ctx.world.dispose();
 * ```
 */
import { isBackendError, SimulatedCrash, type Identity } from '../backends/types.ts';
import type { JournalRecord, OpKind } from '../events/catalogue.ts';
import { isAtelierError } from '../machines/errors.ts';
import { canonicalJson, layersHeld } from '../machines/index.ts';
import { interleave, scriptedPicker, type Picker } from './interleave.ts';
import {
  cacheKeptAfterRemovingAll, digestOf, gcFreesEverything, inventoryAccounted, InvariantViolation, noLeftoverConflict, noStrayStash, noTransientAfterReboot, ownedObjects,
  reconcileIsDeterministic, refreshPreservesWorkshop, sdkChainsArePrefixes, sharedLayersHeld, statesAgree,
} from './invariants.ts';
import { firstViolation } from './journal-invariants.ts';
import { Model, type Cmd, type Ending, type Outcome } from './model.ts';
import { changed, DEFAULT_VERSION, specOf, WORKSHOPS } from './specs.ts';
import { identityRenamer, type SimBackendKind } from './sim-backend.ts';
import { describeStep, faultPlanOf, recoveryPlanOf, type SimOp, type Step } from './steps.ts';
import { DEFAULT_WORLD_CONFIG, OWNER, World, type WorldConfig } from './world.ts';

export interface Stats {
  commands: number;
  steps: number;
  restarts: number;
  /** Restarts whose crash image was reconciled twice (invariant 4 checked). */
  checkedTwice: number;
  reboots: number;
  crashes: number;
}

export interface Ctx {
  readonly world: World;
  readonly model: Model;
  readonly stats: Stats;
  /** Picks interleavings for a concurrent step (recording into `order`). */
  picker(order: number[]): Picker;
  /** Reconcile crash images a second time in a copy (invariant 4). */
  readonly checkTwice: boolean;
  /** With `checkTwice`: every restart (1, the default) or a deterministic sample of 1 in N (see `checksTwice`). */
  readonly checkTwiceEvery?: number;
  /** The steps run so far, with their recorded interleavings: what a reproduction replays. */
  readonly executed: Step[];
  readonly root?: string;
  /** The backend the world runs on (default fake). */
  readonly backend: SimBackendKind;
}

export async function newContext(opts: { seed: number; checkTwice?: boolean; checkTwiceEvery?: number; picker?: (order: number[]) => Picker; root?: string; backend?: SimBackendKind; config?: Partial<WorldConfig> }): Promise<Ctx> {
  const backend = opts.backend ?? 'fake';
  const config: WorldConfig = { ...DEFAULT_WORLD_CONFIG, ...opts.config };
  const world = await World.create({ seed: opts.seed, backend, config, ...(opts.root ? { root: opts.root } : {}) });
  try {
    await world.open();
  } catch (e) {
    await world.dispose();
    throw e;
  }
  return {
    world, model: new Model(), executed: [], checkTwice: opts.checkTwice ?? true, backend,
    ...(opts.checkTwiceEvery !== undefined ? { checkTwiceEvery: opts.checkTwiceEvery } : {}),
    stats: { commands: 0, steps: 0, restarts: 0, checkedTwice: 0, reboots: 0, crashes: 0 },
    picker: opts.picker ?? (() => scriptedPicker([])), ...(opts.root ? { root: opts.root } : {}),
  };
}

type Before = { identity: Identity | null; digest: string | null };

const REJECTIONS = new Set(['NOT_FOUND', 'ALREADY_EXISTS', 'BUSY', 'FAILED_PRECONDITION']);

/** The model's command for a step op (specs resolved from the model's current versions). */
function cmdOf(model: Model, op: SimOp): Cmd {
  switch (op.do) {
    case 'gc':
      return { kind: 'gc' };
    case 'launch':
      return { kind: 'launch', workshop: op.workshop, version: op.bad ? changed(DEFAULT_VERSION, 'bad') : DEFAULT_VERSION };
    case 'refresh':
      return { kind: 'refresh', workshop: op.workshop, version: changed(model.versionOf(op.workshop), op.change) };
    case 'restore':
      return { kind: 'restore', workshop: op.workshop, sdk: WORKSHOPS[op.workshop]!.sdks[op.sdk % WORKSHOPS[op.workshop]!.sdks.length]! };
    default:
      return { kind: op.do, workshop: op.workshop };
  }
}

async function invoke(world: World, cmd: Cmd): Promise<unknown> {
  const e = world.e;
  switch (cmd.kind) {
    case 'launch':
    case 'refresh':
      return e[cmd.kind](specOf(cmd.workshop, cmd.version));
    case 'stash':
    case 'unstash':
    case 'remove':
    case 'start':
    case 'stop':
      return e[cmd.kind](cmd.workshop);
    case 'restore':
      return e.restore(cmd.workshop, cmd.sdk);
    case 'run':
      return e.run({ from: cmd.workshop, script: 'echo hi' });
    case 'gc':
      return e.gc();
  }
}

function endingOf(r: PromiseSettledResult<unknown>): Ending {
  if (r.status === 'fulfilled') return { how: 'ok' };
  const e = r.reason;
  if (e instanceof SimulatedCrash) return { how: 'crash' };
  // The base's fingerprint could not be read: a backend failure before anything was decided.
  if (isAtelierError(e) && e.info.fingerprint === true) return { how: 'error', code: typeof e.info.cause === 'string' ? e.info.cause : e.code, backend: true };
  if (isAtelierError(e)) return { how: 'error', code: e.code, ...(typeof e.info.cause === 'string' ? { cause: e.info.cause } : {}), ...(typeof e.info.op === 'string' ? { op: e.info.op } : {}) };
  if (isBackendError(e)) return { how: 'error', code: e.code, backend: true };
  throw e; // anything else is a bug in the engine (or the harness): let it fail the run
}

/** What the durable journal says of one op (up to seq `upTo` for what was durable before a crash). */
function history(records: readonly JournalRecord[], op: string, upTo: number) {
  let started = false;
  let finishedBefore: Outcome | undefined;
  let last: Outcome | undefined;
  const reached = new Set<string>();
  let doSteps = Infinity;
  for (const r of records) {
    if (r.type === 'op.started' && r.data.op === op) {
      started = true;
      doSteps = r.data.plan.do.length;
    } else if ((r.type === 'effect.succeeded' || (r.type === 'effect.observed' && r.data.decision === 'done')) && r.data.op === op && r.data.phase === 'do' && r.data.step === doSteps - 1) reached.add('end');
    else if (r.type === 'op.phase' && r.data.op === op && r.seq <= upTo) reached.add(r.data.phase);
    else if (r.type === 'op.finished' && r.data.op === op) {
      last = r.data.outcome;
      if (r.seq <= upTo && !finishedBefore) finishedBefore = r.data.outcome;
    }
  }
  return { started, finishedBefore, last, reached };
}

/**
 * Whether this restart reconciles its crash image twice (invariant 4): every restart when
 * `checkTwice` is on and `checkTwiceEvery` is 1, else the first restart of the run and every
 * `checkTwiceEvery`-th after it (restarts 1, 1+N, 1+2N, ...). The sample depends only on the run's
 * steps, so a run replayed or shrunk checks the same restarts.
 */
function checksTwice(ctx: Ctx): boolean {
  if (!ctx.checkTwice) return false;
  const every = ctx.checkTwiceEvery ?? 1;
  return every <= 1 || (ctx.stats.restarts - 1) % every === 0;
}

/** Drop the engine, optionally tear/reboot, reconcile (twice from the same image), reopen. */
async function restart(ctx: Ctx, how: { reboot: boolean; tear?: number; recovery: number | null }): Promise<number> {
  const w = ctx.world;
  await w.crash();
  if (how.tear !== undefined) w.tear(how.tear);
  if (how.reboot) await w.reboot();
  const durable = w.reader.read().lastSeq;
  const plan = recoveryPlanOf(how.recovery);
  ctx.stats.restarts++;
  if (checksTwice(ctx)) {
    ctx.stats.checkedTwice++;
    const fork = await w.fork(ctx.root);
    const side = fork.world;
    try {
      side.setFaultPlan(plan);
      w.setFaultPlan(plan);
      const [a, b] = [await w.openOnce(), await side.openOnce()];
      const view = async (x: World, r: unknown) => {
        await x.gate.settled();
        return { tail: x.reader.tail(fork.lastSeq), state: x.reader.read().state, backend: await x.backend.canonical(OWNER), ok: !(r instanceof Error) };
      };
      const va = await view(w, a);
      const vb = await view(side, b);
      if (va.ok !== vb.ok) throw new InvariantViolation('4 (reconciliation is deterministic)', `one reconciliation of the image opened, the other failed (${String(a instanceof Error ? a.message : b instanceof Error ? b.message : '')})`);
      // A real backend draws identities at random: the two reconciliations may differ in those only.
      reconcileIsDeterministic(va, vb, w.backend.randomIdentities ? { a: identityRenamer(), b: identityRenamer() } : undefined);
      if (a instanceof Error) await reopenAfter(w, a);
    } finally {
      await side.dispose();
      fork.release();
    }
  } else {
    w.setFaultPlan(plan);
    const a = await w.openOnce();
    if (a instanceof Error) await reopenAfter(w, a);
  }
  w.setFaultPlan(null);
  if (how.reboot) {
    await w.observe();
    noTransientAfterReboot(w);
  }
  return durable;
}

/** An open failed: a crash or a backend error in reconciliation may be retried; anything else is a bug. */
async function reopenAfter(w: World, err: Error): Promise<void> {
  if (!(err instanceof SimulatedCrash) && !isBackendError(err)) throw err;
  await w.crash();
  await w.open();
}

/** Check the invariants that hold after every step. */
export function checkAll(ctx: Ctx, reconciled: boolean): void {
  // Reconciliation forgets a broken workshop's stash when a part of it turned out gone: which
  // layers a broken workshop keeps is the fold's business, and the model follows it (as at the
  // op's end in `settle`). Only once the step's commands have been held against the model.
  for (const [name, m] of ctx.model.workshops) if (m.status === 'broken' && m.stash && !ctx.world.e.folded.workshops[name]?.stash) m.stash = null;
  // The journal invariants that judge records, checked at each record as the reader folded them
  // (read now): the earliest evidence, so they go first.
  ctx.world.reader.read();
  const r = ctx.world.recordViolations[0];
  if (r) throw new InvariantViolation(`${r.invariant.simulation}, journal half "${r.invariant.name}"`, `at record ${r.seq} (${r.type}): ${r.message}`);
  statesAgree(ctx.world, ctx.model);
  inventoryAccounted(ctx.world, reconciled);
  noStrayStash(ctx.world, ctx.model);
  sdkChainsArePrefixes(ctx.world, ctx.model);
  sharedLayersHeld(ctx.world);
  // The journal's halves of these, as `atelier replay bisect` checks them on a journal alone.
  const v = firstViolation(ctx.world.e.folded, null);
  if (v) throw new InvariantViolation(`${v.invariant.simulation}, journal half "${v.invariant.name}"`, v.message);
}

/**
 * Run one step. `closing`: a step of the run's closing phase (`closeRun`), which a reproduction
 * does not record (replaying runs the closing phase again) and the stats do not count.
 */
export async function runStep(ctx: Ctx, step: Step, opts: { closing?: boolean } = {}): Promise<void> {
  const w = ctx.world;
  if (!opts.closing) ctx.stats.steps++;
  if (step.type !== 'cmd') {
    if (!opts.closing) ctx.executed.push(step);
    if (step.type === 'reboot') ctx.stats.reboots++;
    await restart(ctx, { reboot: step.type === 'reboot', recovery: null });
    await w.observe();
    checkAll(ctx, true);
    return;
  }
  const order: number[] = [];
  if (!opts.closing) ctx.executed.push({ ...step, order });
  const cmds = step.ops.map((op) => cmdOf(ctx.model, op));
  // What each workshop was before the step: for invariant 3.
  await w.observe();
  const owned = ownedObjects(w);
  const before = new Map<string, Before>();
  for (const c of cmds) {
    if (c.kind === 'gc') continue;
    const ws = w.e.folded.workshops[c.workshop];
    if (ws && !before.has(c.workshop)) before.set(c.workshop, { identity: ws.identity, digest: digestOf(owned.get(`workshops/${ws.instance}`)) });
  }
  const opsBefore = new Map(Object.keys(WORKSHOPS).map((n) => [n, (w.opsOf.get(n) ?? []).length]));
  w.setFaultPlan(faultPlanOf(step.fault));
  const f = step.fault;
  w.resetAppendCount();
  w.trackTear = f?.type === 'append' && f.mode === 'torn';
  if (f?.type === 'append') {
    w.appendHook = (n, phase) => {
      if (n === f.nth && (phase === 'before') === (f.mode === 'before')) throw new SimulatedCrash(`simulated crash ${phase} journal append ${n}`);
    };
  }
  let results: PromiseSettledResult<unknown>[];
  try {
    if (cmds.length === 1) results = [await alone(w, () => invoke(w, cmds[0]!), describeStep(step))];
    else {
      const picker = step.order ? scriptedPicker(step.order) : ctx.picker(order);
      if (step.order) order.push(...step.order);
      results = await interleave(w.gate, cmds.map((c, i) => ({ key: c.kind === 'gc' ? '#gc' : c.kind === 'run' ? `#run${i}` : c.workshop, exclusive: c.kind === 'gc', run: () => invoke(w, c) })), picker);
    }
  } finally {
    w.appendHook = null;
    w.trackTear = false;
    w.setFaultPlan(null);
  }
  if (!opts.closing) ctx.stats.commands += cmds.length;
  const crashed = w.gate.dead;
  let durable = Infinity;
  if (crashed) {
    ctx.stats.crashes++;
    durable = await restart(ctx, { reboot: false, ...(f?.type === 'append' && f.mode === 'torn' ? { tear: f.fraction } : {}), recovery: step.recovery });
  }
  await w.observe();
  settle(ctx, step, cmds, results, before, opsBefore, durable);
  checkAll(ctx, crashed);
}

/**
 * Run a command with nothing beside it. One that waits for an SDK layer (the engine's one flight
 * per layer) then waits for nothing: no other command is building it, and it would wait forever.
 */
async function alone(w: World, run: () => Promise<unknown>, what: string): Promise<PromiseSettledResult<unknown>> {
  let stuck!: (e: Error) => void;
  const deadlock = new Promise<never>((_, reject) => (stuck = reject));
  w.gate.waiting = () => {
    stuck(new InvariantViolation('9 (shared layers: built once, never half)', `${what}: the command waits for an SDK layer that no command is building (busy: ${busyNow(w)}); it would wait forever`));
    return () => undefined;
  };
  try {
    return await Promise.race([run().then((value): PromiseSettledResult<unknown> => ({ status: 'fulfilled', value }), (reason: unknown): PromiseSettledResult<unknown> => ({ status: 'rejected', reason })), deadlock]);
  } finally {
    w.gate.waiting = null;
  }
}

/** The shared layers the state holds half-way (pending or being removed), for a deadlock's message. */
function busyNow(w: World): string {
  const s = w.e.folded;
  const busy = Object.values(s.objects).filter((o) => o.shared && (o.state === 'pending' || o.state === 'removing'));
  return busy.map((o) => `${o.ref.name} ${o.state}, op ${o.op}${s.ops[o.op] ? ' in progress' : ' not in progress'}`).join('; ') || 'none';
}

/**
 * The run's closing phase (invariant 10), after its last step: with no faults, gc (it reaps what
 * failed runs left), then remove every workshop (each a step, checked like any other) and apply
 * the cache policy once more; then no owned object may remain on the backend but the shared
 * layers the cache policy keeps; then `gc --cache` must free everything.
 */
export async function closeRun(ctx: Ctx): Promise<void> {
  const w = ctx.world;
  // A run that failed and whose container's removal failed too leaves the container until gc or a
  // reconciliation reaps it, and it keeps its workshop from being removed (IN_USE): gc first.
  await runStep(ctx, { type: 'cmd', ops: [{ do: 'gc' }], fault: null, recovery: null }, { closing: true });
  for (let round = 0; round < 2; round++) {
    const names = Object.keys(w.e.folded.workshops).sort();
    if (names.length === 0) break;
    for (const workshop of names) await runStep(ctx, { type: 'cmd', ops: [{ do: 'remove', workshop }], fault: null, recovery: null }, { closing: true });
  }
  // The policy once more, with no fault: what the next command's end would do. (A trim that a
  // fault cut short, or whose backend said BUSY, may have left more than the policy keeps when no
  // workshop was left to remove after it.)
  await w.e.cache.trim();
  await w.observe();
  cacheKeptAfterRemovingAll(w);
  try {
    await w.e.gc({ cache: true });
  } catch (e) {
    throw new InvariantViolation('10 (once every workshop is removed, gc frees everything)', `gc --cache failed with nothing left to hold anything: ${e instanceof Error ? e.message : String(e)}`);
  }
  await w.observe();
  gcFreesEverything(w);
  checkAll(ctx, false);
}

/** Hold each op's ending and journaled outcome against the model, in the order they were issued. */
function settle(ctx: Ctx, step: Step, cmds: Cmd[], results: PromiseSettledResult<unknown>[], before: Map<string, Before>, opsBefore: Map<string, number>, durable: number): void {
  const w = ctx.world;
  const records = w.reader.read().records;
  const next = new Map(opsBefore);
  cmds.forEach((cmd, i) => {
    const ending = endingOf(results[i]!);
    const where = `step ${ctx.stats.steps} (${describeStep(step)}), ${cmd.kind}`;
    const predicted = ctx.model.rejection(cmd);
    const racingRun = cmd.kind === 'run' && cmds.some((c) => c !== cmd && c.kind !== 'gc' && c.workshop === cmd.workshop);
    if (ending.how === 'error' && !ending.op && !ending.backend && (REJECTIONS.has(ending.code) || ending.code === 'CLOSED')) {
      if (racingRun) return;
      noLeftoverConflict(where, cmd.kind !== 'gc' && cmd.kind !== 'launch' ? true : cmd.kind === 'launch' && ctx.model.workshops.has(cmd.workshop), { code: ending.code, message: (results[i] as PromiseRejectedResult).reason?.message ?? '' });
      if (ending.code === 'CLOSED') return; // the engine died before this one started
      if (predicted?.code !== ending.code) throw new InvariantViolation('1 (live state = model)', `${where}: the engine refused with ${ending.code}, the model expected ${predicted ? predicted.code : 'it to be accepted'}`);
      return;
    }
    if (ending.how === 'error') noLeftoverConflict(where, true, { code: ending.code, ...(ending.cause ? { cause: ending.cause } : {}), message: (results[i] as PromiseRejectedResult).reason?.message ?? '' });
    if (cmd.kind === 'gc' || cmd.kind === 'run') {
      // `run` is not serialised with the ops of its workshop: beside one, either answer is right.
      const racing = cmd.kind === 'run' && cmds.some((c) => c !== cmd && c.kind !== 'gc' && c.workshop === cmd.workshop);
      if (racing) return;
      if (predicted && ending.how === 'ok') throw new InvariantViolation('1 (live state = model)', `${where}: the engine accepted it, the model expected ${predicted.code}`);
      return;
    }
    // A backend call the command makes before deciding anything failed (the base's fingerprint,
    // for the SDK cache's layer names): the backend's own error, nothing journaled, nothing changed.
    // (Were an op started and left so, invariant 1 finds it in progress.) Not matched to an op: one
    // started beside it on the same workshop is the other command's.
    if (ending.how === 'error' && ending.backend) return;
    // An accepted op: find its id (the next op started on this workshop in this step).
    const started = w.opsOf.get(cmd.workshop) ?? [];
    const k = next.get(cmd.workshop) ?? 0;
    const op = ending.how === 'error' && ending.op ? ending.op : started[k];
    if (op === undefined || !history(records, op, durable).started) {
      if (ending.how === 'crash') return; // died before its op.started was durable: it never happened
      throw new InvariantViolation('1 (live state = model)', `${where} ended ${JSON.stringify(ending)} but no op of it is in the journal`);
    }
    next.set(cmd.workshop, k + 1);
    if (predicted) throw new InvariantViolation('1 (live state = model)', `${where}: the engine accepted it (op ${op}), the model expected ${predicted.code}`);
    const h = history(records, op, durable);
    if (!h.last) throw new InvariantViolation('1 (live state = model)', `${where}: op ${op} never finished (nothing after reconciliation either)`);
    const allowed = ctx.model.allowed(cmd.kind as OpKind, ending, h.reached, ending.how === 'crash' ? h.finishedBefore : undefined);
    if (!allowed.includes(h.last)) throw new InvariantViolation('1 (live state = model)', `${where}: op ${op} ended ${JSON.stringify(ending)} with outcome ${h.last}; allowed: ${allowed.join(', ') || 'none'}`);
    const b = before.get(cmd.workshop);
    // Invariant 3 compares with the workshop before the step: only meaningful for its only op.
    const alone = cmds.filter((c) => c.kind !== 'gc' && c.kind !== 'run' && c.workshop === cmd.workshop).length === 1;
    if (h.last === 'undone' && cmd.kind !== 'launch' && b && alone) refreshPreservesWorkshop(w, cmd.workshop, b);
    const priorStatus = ctx.model.workshops.get(cmd.workshop)?.status ?? null;
    const priorStash = ctx.model.workshops.get(cmd.workshop)?.stash ?? null;
    const priorContent = ctx.model.workshops.get(cmd.workshop)?.content ?? null;
    ctx.model.apply(cmd, h.last);
    const m = ctx.model.workshops.get(cmd.workshop);
    const ws = w.e.folded.workshops[cmd.workshop];
    if (m && ws) {
      if (!m.identity) m.identity = ws.identity;
      if (h.last === 'undone' && priorStatus === 'broken') {
        // Undone returns a broken workshop as it was: its root filesystem from the stash, but a
        // layer it had lost is still lost. The model does not track a broken workshop's layers
        // (the fold's records do, and invariant 2 holds them against the backend), so it reads them.
        m.status = layersHeld(ws, w.e.folded.objects) ? 'ready' : 'broken';
      }
      if (h.last === 'broken') {
        // Which layers a broken workshop keeps is the fold's business; the model follows it.
        const stash = priorStash ?? (priorContent ? { ...priorContent } : null);
        m.stash = ws.stash ? stash : null;
      }
    }
  });
}

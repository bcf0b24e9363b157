/**
 * `decide(state, input) -> events`: the one place atelier decides. An input is a command, an
 * effect's outcome (with an abort, when the caller's signal fired meanwhile), what reconciliation
 * observed (a pending effect's target, an op found in progress, the backend's inventory), or a
 * transient container's step. The charts (`workshop.ts`, `layer.ts`, `container.ts`) decide; this
 * file asks them, on a snapshot rebuilt from the state, and writes their decisions into events,
 * with everything that follows from them (the plan, the undo phase's steps, the shape and status a
 * workshop is left with, the objects that become garbage), so that `evolve` only applies.
 *
 * Pure: no clock, no I/O. Time and ids come in with the input (`at`, `ids`); ids are drawn only
 * once a command is accepted, so a refused command spends none.
 *
 * @example
 * ```ts
 * const events = decide({ durable, volatile }, { type: 'command', kind: 'launch', workshop: 'nav2', spec, owner: 'alice', at, ids });
 * events.map((e) => e.type); // ['op.started', 'effect.requested']
 * ```
 */
import { produce } from 'immer';
import { transition } from 'xstate';
import { AtelierError } from './errors.ts';
import type { KeyedEvent } from './events.ts';
import { evolve } from './evolve.ts';
import { judgeProbe } from './layer.ts';
import { containerAfter } from './container.ts';
import { garbageAfter, lastErrorAfter, shapeAfter, stashParts } from './outcomes.ts';
import { cachedPrefix, describeEffect, instanceRef, layerRef, planLaunch, planPower, planRefresh, planRemove, planRestore, planStash, planUnstash, reusablePrefix, suffixesNeeded, undoSteps, type CacheView, type PlanContext } from './plan.ts';
import { evictable, isUsable, sharedRecord, type CachePolicy } from './cache.ts';
import { currentStep, layersHeld, stashLayerNames, type DomainState, type FoldState, type OpRecord } from './state.ts';
import { objectKey, type Identity, type ObjectDescriptor, type ObjectKind, type ObjectRef, type Observation, type OpKind, type Plan, type PlanStep, type WorkshopShape, type WorkshopSpec } from './types.ts';
import { DECISIONS, resolveWorkshop, workshopMachine, type Decision, type WorkshopContext, type WorkshopEvent } from './workshop.ts';

/** Where ids come from. Injected so runs are reproducible; every id is recorded in the journal. */
export interface IdSupply {
  /** A new op id, unique in this state directory. */
  opId(): string;
  /** 16 characters from [0-9a-f] for an SDK layer's name. */
  layerSuffix(): string;
  /** A new transient container id (lowercase letters and digits). */
  containerId(): string;
}

type Failure = { code: string; message: string };

export type Input =
  /** A command on a workshop: refused (an `AtelierError` with the code), or the op's first events. */
  | { type: 'command'; kind: OpKind; workshop: string; spec?: WorkshopSpec; sdk?: string; owner: string; at: string; ids: IdSupply }
  /** The requested effect of op `op` took place (`ok`) or failed; `abort` when the caller aborted meanwhile. */
  | { type: 'outcome'; op: string; at: string; result: { ok: true; identity?: Identity } | ({ ok: false } & Failure); abort?: Failure }
  /** Reconciliation probed the target of op `op`'s pending effect. */
  | { type: 'observed'; op: string; at: string; observation: Observation }
  /** Reconciliation found op `op` in progress with no effect pending. */
  | { type: 'interrupted'; op: string; at: string }
  /** Reconciliation: objects a given-up op left `pending` or `removing`, settled by what the backend holds (`present`: its keys). */
  | { type: 'settle'; at: string; present: ReadonlySet<string> }
  /** Reconciliation: objects the state holds `present` that the backend lacks are lost. */
  | { type: 'inventory'; at: string; present: ReadonlySet<string> }
  /** Reconciliation or gc removed an owned object nobody accounts for. */
  | { type: 'orphan.removed'; at: string; object: ObjectDescriptor }
  | { type: 'reconciled'; at: string; pending: number; orphans: number; missing: number; restarted?: number }
  /** A transient container from a workshop or an SDK layer. */
  | { type: 'run'; from: string; scratch?: string; keep?: boolean; at: string; ids: IdSupply }
  | { type: 'container.start'; id: string; at: string }
  | { type: 'container.remove'; id: string; at: string }
  /** Reconciliation: the backend no longer holds these transient containers. */
  | { type: 'containers.lost'; ids: readonly string[]; at: string }
  /** Reconciliation found workshop `workshop`'s instance stopped: a start op when it is wanted running, else nothing. */
  | { type: 'found.stopped'; workshop: string; owner: string; at: string; ids: IdSupply }
  /** May a process be started in the workshop (`exec`, `shell`)? `status`: its instance's, from the backend. Nothing to journal; refused with a code. */
  | { type: 'exec'; workshop: string; status: 'running' | 'stopped' }
  /**
   * The SDK cache's policy applied (`all`: `atelier gc --cache`, every unheld shared layer): the
   * evictions to journal before removing anything. `sizes`: bytes by layer name, for a size policy.
   */
  | { type: 'cache.trim'; at: string; policy: CachePolicy; all?: boolean; sizes?: Readonly<Record<string, number>> }
  /** An eviction's removal on the backend ended: the layer is gone, or (`kept`) still there and in use. */
  | { type: 'cache.evicted'; at: string; object: ObjectDescriptor; kept?: boolean };

/** The chart's view of one workshop, rebuilt from the state. */
export function contextFor(st: DomainState, name: string): WorkshopContext {
  const s = st.durable;
  const ws = s.workshops[name];
  const op = ws?.op ? (s.ops[ws.op.id] ?? null) : (Object.values(s.ops).find((o) => o.workshop === name) ?? null);
  const before = op?.plan.before;
  return {
    name,
    workshop: ws
      ? { status: ws.status, hasStash: ws.stash !== null, sdks: ws.sdks.map((l) => l.sdk), instancePresent: ws.instancePresent, dependents: dependentsOf(st, ws), ...(ws.running !== undefined ? { running: ws.running } : {}) }
      : null,
    op,
    beforeHeld: before ? layersHeld(before, s.objects) : true,
  };
}

/**
 * Containers kept on purpose (`keep`) running from a workshop or one of its layers. A `--rm`
 * container left by a run that failed to remove it blocks nothing: gc and reconcile reclaim it.
 */
function dependentsOf(st: DomainState, ws: { instance: string; sdks: readonly { layer: string }[] }): number {
  const names = new Set([ws.instance, ...ws.sdks.map((l) => l.layer)]);
  return Object.values(st.volatile.containers).filter((c) => c.keep && names.has(c.source.name)).length;
}

/** Run the workshop chart: the state it lands in and its decisions. */
function ask(ctx: WorkshopContext, event: WorkshopEvent): { value: unknown; decisions: Decision[] } {
  const [after, actions] = transition(workshopMachine, resolveWorkshop(ctx), event);
  const decisions = actions.filter((a) => DECISIONS.has(a.type)).map((a) => ({ type: a.type, params: a.params }) as Decision);
  return { value: after.value, decisions };
}

/** The status a chart state value stands for. */
const statusOf = (value: unknown): 'ready' | 'broken' | 'absent' => (value === 'ready' || value === 'broken' || value === 'absent' ? value : 'ready');

/** `state` with `events` applied (a look-ahead: decisions are made on the state they will follow). */
function ahead(s: FoldState, events: readonly KeyedEvent[]): FoldState {
  return produce(s, (d) => {
    for (const e of events) evolve(d, e);
  });
}

/** The events for an op's decisions, made on state `s` (the state they follow). */
function opEvents(s: FoldState, opId: string, decisions: readonly Decision[], value: unknown, at: string): KeyedEvent[] {
  const op = s.ops[opId]!;
  const key = op.workshop;
  const out: KeyedEvent[] = [];
  for (const d of decisions) {
    switch (d.type) {
      case 'request':
        out.push({ type: 'effect.requested', key, data: { op: opId, ...d.params, at } });
        break;
      case 'enterPhase': {
        const steps = d.params.phase === 'undo' ? { steps: undoSteps(op.plan, d.params.from ?? 0).filter((u) => !finishedShared(s, u.effect)) } : {};
        out.push({ type: 'op.phase', key, data: { op: opId, ...d.params, at, ...steps } });
        break;
      }
      case 'finish':
        out.push(finished(s, op, d.params, statusOf(value), at));
        break;
      default:
        break;
    }
  }
  return out;
}

/**
 * A compensation that would remove a shared layer whose completion is journaled: dropped from an
 * undo phase. The layer is good (its hook and snapshot succeeded) and may already be another
 * workshop's: it stays, held or as a cache entry. Only an unfinished snapshot is undone.
 */
function finishedShared(s: FoldState, effect: PlanStep['effect']): boolean {
  return effect.type === 'remove' && effect.target.space === 'layers' && isUsable(s, effect.target.name);
}

/** How an op ended, with everything that follows for its workshop. */
function finished(s: FoldState, op: OpRecord, p: Extract<Decision, { type: 'finish' }>['params'], status: 'ready' | 'broken' | 'absent', at: string): KeyedEvent {
  const shape = shapeAfter(op, p.outcome, s);
  const ws = s.workshops[op.workshop]!;
  return {
    type: 'op.finished',
    key: op.workshop,
    data: {
      op: op.id,
      outcome: p.outcome,
      at,
      ...(p.code !== undefined ? { code: p.code } : {}),
      ...(p.message !== undefined ? { message: p.message } : {}),
      status: shape === null ? 'absent' : status,
      shape,
      lastError: lastErrorAfter(op.id, p.outcome, status, p, ws.lastError),
      garbage: garbageAfter(op, p.outcome, shape, s),
      ...runningAfter(op, p.outcome, shape),
    },
  };
}

/**
 * The status the workshop is wanted in once its op ends, when the op's plan recorded one: a done
 * op's; an undone refresh, stash, unstash or restore restarts the workshop (the compensation of
 * its first step, the stop), so it is wanted running as before. A failed start or stop, or a
 * given-up op, leaves the wanted status as it was.
 */
function runningAfter(op: OpRecord, outcome: 'done' | 'undone' | 'broken', shape: WorkshopShape | null): { running?: boolean } {
  if (op.plan.running === undefined || shape === null) return {};
  if (outcome === 'done') return { running: op.plan.running };
  if (outcome === 'undone' && op.kind !== 'start' && op.kind !== 'stop') return { running: true };
  return {};
}

function refuse(code: string, message: string, info: Record<string, unknown>): never {
  throw new AtelierError(code as never, message, info);
}

/** A command accepted by the chart: its plan (ids drawn now) and its first events. */
function command(st: DomainState, input: Extract<Input, { type: 'command' }>): KeyedEvent[] {
  const s = st.durable;
  const { kind, workshop: name } = input;
  const event = (kind === 'restore' ? { type: 'restore', sdk: input.sdk ?? '' } : { type: kind }) as WorkshopEvent;
  return startOp(st, input, event);
}

/** The chart's answer to `event`: refused, nothing to do (`[]`), or an op's first events. */
function startOp(st: DomainState, input: Extract<Input, { type: 'command' }>, event: WorkshopEvent, why?: string): KeyedEvent[] {
  const s = st.durable;
  const { kind, workshop: name } = input;
  const { decisions } = ask(contextFor(st, name), event);
  if (why && decisions.length === 0) return [];
  const rejected = decisions.find((d) => d.type === 'reject');
  if (rejected?.type === 'reject') refuse(rejected.params.code, `cannot ${kind} "${name}": workshop ${rejected.params.reason}`, { workshop: name, ...(kind === 'restore' ? { sdk: input.sdk } : {}) });
  if (!decisions.some((d) => d.type === 'startOp')) refuse('FAILED_PRECONDITION', `cannot ${kind} "${name}" in its current state`, { workshop: name });
  const opId = input.ids.opId();
  const ctx: PlanContext = { owner: input.owner, op: opId };
  const plan = planFor(s, kind, name, ctx, input);
  const started: KeyedEvent = {
    type: 'op.started',
    key: name,
    data: {
      op: opId,
      kind,
      workshop: name,
      plan,
      at: input.at,
      ...(input.spec && (kind === 'launch' || kind === 'refresh') ? { spec: input.spec } : {}),
      ...(kind === 'restore' && input.sdk ? { sdk: input.sdk } : {}),
      ...(why ? { reason: why } : {}),
    },
  };
  const next = ahead(s, [started]);
  return [started, ...opEvents(next, opId, decisions.filter((d) => d.type !== 'startOp'), null, input.at)];
}

function planFor(s: FoldState, kind: OpKind, name: string, ctx: PlanContext, input: Extract<Input, { type: 'command' }>): Plan {
  const isPresent = (layer: string): boolean => s.objects[`layers/${layer}`]?.state === 'present';
  const suffixes = (n: number) => Array.from({ length: n }, () => input.ids.layerSuffix());
  const cache: CacheView = { shared: (layer) => sharedRecord(s, layer) !== undefined, usable: (layer) => isUsable(s, layer) };
  const ws = s.workshops[name];
  const shape: WorkshopShape = ws ?? { instance: '', projectId: '', base: '', defaultBase: false, sdks: [], stash: null };
  switch (kind) {
    case 'launch': {
      const spec = input.spec!;
      return planLaunch({ ctx, spec, suffixes: suffixes(suffixesNeeded(spec, cachedPrefix(spec, cache))), cache });
    }
    case 'refresh': {
      const spec = input.spec!;
      // A spec naming shared layers moves the workshop onto them (its own layers, from before the
      // cache, are dropped and their hooks run once more); one without keeps its own prefix.
      const reuse = spec.sdks.some((l) => l.layer !== undefined) ? cachedPrefix(spec, cache) : reusablePrefix(shape, spec, isPresent);
      return planRefresh({ ctx, name, shape, spec, reuse, suffixes: suffixes(suffixesNeeded(spec, reuse)), isPresent, cache });
    }
    case 'stash':
      return planStash({ ctx, name, shape, isPresent, cache });
    case 'unstash':
      return planUnstash({ ctx, name, shape, cache });
    case 'restore':
      return planRestore({ ctx, name, shape, sdk: input.sdk!, cache });
    case 'remove':
      return planRemove({ ctx, shape, leftovers: leftoversOf(s, name, shape), cache });
    case 'start':
    case 'stop':
      return planPower({ shape, running: kind === 'start' });
  }
}

/** Objects the state holds for workshop `name` that its shape does not name, in key order. */
function leftoversOf(s: FoldState, name: string, shape: WorkshopShape): ObjectRef[] {
  const named = new Set([instanceRef(shape.instance), ...shape.sdks.map((l) => layerRef(l.layer))].map(objectKey));
  if (shape.stash) for (const n of stashLayerNames(shape.stash)) named.add(objectKey(layerRef(n)));
  return Object.entries(s.objects)
    .filter(([k, o]) => o.workshop === name && !named.has(k))
    .sort(([a], [b]) => byCodePoint(a, b))
    .map(([, o]) => o.ref);
}

/** An effect's outcome, and what the op does next (decided on the state the outcome leads to). */
function outcome(st: DomainState, input: Extract<Input, { type: 'outcome' }>): KeyedEvent[] {
  const s = st.durable;
  const op = s.ops[input.op]!;
  const step = currentStep(op)!;
  const { result, at } = input;
  const where = { op: input.op, phase: op.phase, step: op.step, at };
  const first: KeyedEvent = result.ok
    ? { type: 'effect.succeeded', key: op.workshop, data: { ...where, ...(result.identity ? { identity: result.identity } : {}) } }
    : { type: 'effect.failed', key: op.workshop, data: { ...where, code: result.code, message: result.message } };
  const next = ahead(s, [first]);
  const ctx = contextFor({ durable: next, volatile: st.volatile }, op.workshop);
  if (input.abort) {
    const a = ask(ctx, { type: 'abort', ...input.abort });
    if (a.decisions.length > 0) return [first, ...opEvents(next, input.op, a.decisions, a.value, at)];
  }
  const event: WorkshopEvent = result.ok ? { type: 'step.ok' } : { type: 'step.failed', code: result.code, message: `${step.label} (${describeEffect(step.effect)}): ${result.message}` };
  const d = ask(ctx, event);
  return [first, ...opEvents(next, input.op, d.decisions, d.value, at)];
}

/** Reconciliation of an op found in progress: the probe judged by the table, then the chart. */
function recovered(st: DomainState, input: Extract<Input, { type: 'observed' | 'interrupted' }>): KeyedEvent[] {
  const s = st.durable;
  const op = s.ops[input.op]!;
  const first: KeyedEvent[] = [];
  let failure: Failure | undefined;
  if (input.type === 'observed') {
    const effect = currentStep(op)!.effect;
    const life = 'target' in effect ? (s.objects[objectKey(effect.target)]?.state ?? 'absent') : 'absent';
    const { decision, row } = judgeProbe(effect, input.observation, input.op, life);
    if (decision === 'fail' || decision === 'unknown') failure = { code: decision === 'fail' ? 'NOT_OWNED' : 'INTERRUPTED', message: `outcome of step ${op.step} (${op.phase}) could not be confirmed` };
    first.push({ type: 'effect.observed', key: op.workshop, data: { op: input.op, phase: op.phase, step: op.step, at: input.at, observation: input.observation, decision, row, ...(failure ? { failure } : {}) } });
  }
  const next = first.length ? ahead(s, first) : s;
  const d = ask(contextFor({ durable: next, volatile: st.volatile }, op.workshop), { type: 'interrupted', ...(failure ? { failure } : {}) });
  return [...first, ...opEvents(next, input.op, d.decisions, d.value, input.at)];
}

const describe = (o: { ref: ObjectRef; kind: ObjectKind; workshop?: string; op: string }): ObjectDescriptor => ({ ref: o.ref, kind: o.kind, ...(o.workshop ? { workshop: o.workshop } : {}), op: o.op });
/**
 * Code-point order, never `localeCompare`: a collator's order depends on the process's locale (in
 * Lithuanian "y" sorts before "j"), and the order of what is decided must not depend on the machine.
 * For the ASCII object keys atelier makes it is the order the default (English) collator gave, so
 * journals written before are decided the same.
 */
const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const byKey = (a: { ref: ObjectRef }, b: { ref: ObjectRef }) => byCodePoint(objectKey(a.ref), objectKey(b.ref));
const isStashPart = (kind: ObjectKind) => kind === 'stash' || kind === 'stash-sdk';

/** Objects left `pending` or `removing` by ops no longer in progress, settled by the inventory. */
function settle(st: DomainState, input: Extract<Input, { type: 'settle' }>): KeyedEvent[] {
  let s = st.durable;
  const out: KeyedEvent[] = [];
  const unsettled = Object.values(s.objects).filter((o) => (o.state === 'pending' || o.state === 'removing') && !s.ops[o.op]).sort(byKey);
  for (const o of unsettled) {
    // A shared layer left pending by a given-up op never journaled its completion: whatever the
    // backend holds under its name is not known complete, so it is forgotten (reconciliation then
    // removes it as an orphan) and never reused.
    const unconfirmed = o.shared === true && o.state === 'pending' && input.present.has(objectKey(o.ref));
    const present = input.present.has(objectKey(o.ref)) && !unconfirmed;
    const ws = o.workshop ? s.workshops[o.workshop] : undefined;
    // A given-up op may have left its workshop's stash naming the object (a broken stash op whose
    // undo removed the stash but never heard so): a stash with a part gone is forgotten. A layer
    // or instance so settled is left to the broken workshop's repair (a refresh rebuilds it).
    const forget = !present && ws?.stash && stashLayerNames(ws.stash).includes(o.ref.name) ? { forgetStash: stashParts(ws.stash) } : {};
    const e: KeyedEvent = { type: 'object.settled', key: o.workshop ?? 'engine', data: { object: describe(o), present, at: input.at, ...forget, ...(unconfirmed ? { unconfirmed: true } : {}) } };
    out.push(e);
    s = ahead(s, [e]);
  }
  return out;
}

/** Objects the state holds `present` that the backend lacks: a stash part forgets its stash; anything else breaks its workshop. */
function inventory(st: DomainState, input: Extract<Input, { type: 'inventory' }>): KeyedEvent[] {
  let s = st.durable;
  const out: KeyedEvent[] = [];
  const missing = Object.values(s.objects).filter((o) => o.state === 'present' && !input.present.has(objectKey(o.ref))).sort(byKey);
  // A shared layer breaks each workshop that holds it (one record per holder, in name order).
  const lost = missing.flatMap((o) => {
    if (!o.shared) return [o];
    const holders = Object.values(s.workshops).filter((w) => w.sdks.some((l) => l.layer === o.ref.name)).map((w) => w.name).sort(byCodePoint);
    return holders.length === 0 ? [o] : holders.map((workshop) => ({ ...o, workshop }));
  });
  for (const o of lost) {
    const ws = o.workshop ? s.workshops[o.workshop] : undefined;
    let more: Partial<Extract<KeyedEvent, { type: 'object.missing' }>['data']> = {};
    if (ws && isStashPart(o.kind)) more = { forgetStash: stashParts(ws.stash) };
    else if (ws) {
      const { value } = ask(contextFor({ durable: s, volatile: st.volatile }, ws.name), { type: o.kind === 'workshop' ? 'instance.lost' : 'layer.lost' });
      const status = statusOf(value);
      more = { workshop: { status, instanceLost: o.kind === 'workshop', lastError: { op: o.op ?? '', code: 'MISSING', message: `${o.ref.space}/${o.ref.name} is missing on the backend` } } };
    }
    const e: KeyedEvent = { type: 'object.missing', key: o.workshop ?? 'engine', data: { object: describe(o), at: input.at, ...more } };
    out.push(e);
    s = ahead(s, [e]);
  }
  return out;
}

/** Where a transient container runs from: a ready workshop's instance, or a present SDK layer. */
function run(st: DomainState, input: Extract<Input, { type: 'run' }>): KeyedEvent[] {
  const s = st.durable;
  const ws = s.workshops[input.from];
  const layer = s.objects[`layers/${input.from}`];
  let source: ObjectRef;
  if (ws && ws.status === 'ready') source = instanceRef(ws.instance);
  else if (layer && layer.state === 'present' && layer.kind === 'sdk') source = layerRef(input.from);
  else refuse('NOT_FOUND', `cannot run from "${input.from}": no ready workshop or SDK layer has that name`, { from: input.from, candidates: Object.keys(s.workshops) });
  if (containerAfter('absent', 'create') === null) refuse('FAILED_PRECONDITION', `cannot run from "${input.from}"`, { from: input.from });
  const id = input.ids.containerId();
  const op = input.ids.opId();
  const ref: ObjectRef = { space: 'workshops', name: `run-${id}` };
  return [{ type: 'container.created', key: id, data: { id, ref, source, op, at: input.at, ...(input.scratch ? { scratch: input.scratch } : {}), ...(input.keep ? { keep: true } : {}) } }];
}

function container(st: DomainState, id: string, fact: 'start' | 'remove', at: string): KeyedEvent[] {
  const c = st.volatile.containers[id];
  const next = containerAfter(c?.status ?? 'absent', fact);
  if (next === null) refuse('NOT_FOUND', `no transient container "${id}" (list them with \`atelier list --json\`)`, { id });
  return [fact === 'start' ? { type: 'container.started', key: id, data: { id, at } } : { type: 'container.removed', key: id, data: { id, at } }];
}

/**
 * Decide what follows `input` on `state`: the events to journal, in order. Throws `AtelierError`
 * for a command the state does not allow (`NOT_FOUND`, `ALREADY_EXISTS`, `BUSY`,
 * `FAILED_PRECONDITION`), before any id is drawn.
 */
export function decide(state: DomainState, input: Input): KeyedEvent[] {
  switch (input.type) {
    case 'command':
      return command(state, input);
    case 'outcome':
      return outcome(state, input);
    case 'observed':
    case 'interrupted':
      return recovered(state, input);
    case 'settle':
      return settle(state, input);
    case 'inventory':
      return inventory(state, input);
    case 'orphan.removed':
      // A transient container's removal concerns the volatile journal only, unless the durable state held it.
      if (input.object.kind === 'container' && !state.durable.objects[objectKey(input.object.ref)]) return [];
      return [{ type: 'object.orphan-removed', key: input.object.workshop ?? 'engine', data: { object: input.object, at: input.at } }];
    case 'reconciled':
      return [{ type: 'engine.reconciled', key: 'engine', data: { at: input.at, pending: input.pending, orphans: input.orphans, missing: input.missing, ...(input.restarted ? { restarted: input.restarted } : {}) } }];
    case 'run':
      return run(state, input);
    case 'container.start':
      return container(state, input.id, 'start', input.at);
    case 'container.remove':
      return container(state, input.id, 'remove', input.at);
    case 'found.stopped': {
      const { workshop, owner, at, ids } = input;
      return startOp(state, { type: 'command', kind: 'start', workshop, owner, at, ids }, { type: 'found.stopped' }, 'found stopped while wanted running (a host reboot?)');
    }
    case 'exec': {
      const { decisions } = ask(contextFor(state, input.workshop), { type: 'exec', status: input.status });
      const rejected = decisions.find((d) => d.type === 'reject');
      if (rejected?.type === 'reject') refuse(rejected.params.code, `cannot exec in "${input.workshop}": workshop ${rejected.params.reason}`, { workshop: input.workshop });
      return [];
    }
    case 'cache.trim': {
      const victims = input.all ? evictable(state, { count: 0 }) : evictable(state, input.policy, input.sizes);
      return victims.map((ref) => ({ type: 'cache.evicting', key: 'engine', data: { object: describe(state.durable.objects[objectKey(ref)]!), at: input.at, reason: input.all ? 'gc' : 'policy' } }) as KeyedEvent);
    }
    case 'cache.evicted':
      return [{ type: 'cache.evicted', key: 'engine', data: { object: input.object, at: input.at, ...(input.kept ? { kept: true } : {}) } }];
    case 'containers.lost':
      return input.ids.filter((id) => containerAfter(state.volatile.containers[id]?.status ?? 'absent', 'lost') !== null).map((id) => ({ type: 'container.removed', key: id, data: { id, at: input.at } }));
  }
}

/**
 * `evolve(state, event)`: applies one event to the state, and never decides. Every judgement
 * (what an op's ending made of its workshop, the undo phase's steps, what reconciliation concluded)
 * was made by `decide` and is in the event; what an event does to an object's lifecycle is read
 * from the layer chart (`lifeAfter`), to a container's from the container chart (`containerAfter`).
 * No clock, no I/O, no id: the same events give the same state, byte for byte.
 *
 * `evolve` mutates what it is given: the engine passes an immer draft at run time (one `produce`
 * per appended batch) and a private plain object during replay, which is why replaying a million
 * records costs no proxy or copy per event. Records of an older schema version are brought to
 * these shapes first (`events/upcast.ts`).
 *
 * @example
 * ```ts
 * const s = initialState();
 * for (const e of events) evolve(s, e);
 * ```
 */
import { isDraft, original } from 'immer';
import type { DomainEvent } from './events.ts';
import { moveOf, type LayerFact } from './layer.ts';
import { containerAfter } from './container.ts';
import { objectKey, type Effect, type Identity, type ObjectRef, type Phase, type Plan, type WorkshopShape } from './types.ts';
import { type FoldState, type ObjectRecord, type OpRecord, type VolatileState, type WorkshopRecord } from './state.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * An op's plan as journaled, never an immer draft. Plans never change once journaled, and the
 * live fold reads ops through a draft: reading the plan through it too would make a proxy of
 * every step and effect it touches (and immer finalize them all), for nothing.
 */
function planOf(op: OpRecord): Plan {
  return isDraft(op) ? (original(op as never) as OpRecord).plan : op.plan;
}

function effectAt(op: OpRecord, phase: Phase, step: number): Effect | undefined {
  if (phase === 'undo') {
    // The undo steps are set once per op (an op enters its undo phase once). Set before this
    // draft, read them from the original (no proxy); set in this draft, the draft holds the plain
    // array it was given (immer drafts only what it found in the base).
    const undo = isDraft(op) ? ((original(op as never) as OpRecord).undo ?? op.undo) : op.undo;
    return undo?.[step]?.effect;
  }
  const plan = planOf(op);
  return (phase === 'do' ? plan.do : plan.cleanup)[step]?.effect;
}

/** Move the object at `ref` by a layer-chart fact (creating or deleting its record as the chart says); its record after. */
function applyFact(s: FoldState, ref: ObjectRef, fact: LayerFact, made?: () => ObjectRecord): ObjectRecord | undefined {
  const key = objectKey(ref);
  const o = s.objects[key];
  const next = moveOf(o ? o.state : 'absent', o?.garbage === true, fact);
  if (next.life === 'absent') {
    if (o) delete s.objects[key];
    return undefined;
  }
  if (!o) {
    if (!made) return undefined;
    const created = made();
    s.objects[key] = created;
    return created;
  }
  if (o.state !== next.life) o.state = next.life;
  const garbage = next.claim === 'garbage';
  if (garbage && !o.garbage) o.garbage = true;
  else if (!garbage && o.garbage) delete o.garbage;
  return o;
}

/** What an effect that took place does to its target's record. */
function tookPlace(s: FoldState, op: OpRecord, effect: Effect, identity: Identity | undefined): void {
  if (effect.type === 'create' || effect.type === 'copy') {
    applyFact(s, effect.target, 'done');
    const ws = s.workshops[op.workshop];
    if (ws && identity && effect.tags.kind === 'workshop') ws.identity = identity;
  } else if (effect.type === 'remove') applyFact(s, effect.target, 'removed');
}

function setShape(ws: WorkshopRecord, shape: WorkshopShape): void {
  ws.instance = shape.instance;
  ws.projectId = shape.projectId;
  ws.base = shape.base;
  ws.defaultBase = shape.defaultBase;
  ws.sdks = shape.sdks;
  ws.stash = shape.stash;
}

/** The shared layers an op's resulting shape names were used now (the cache evicts the least recently used). */
function touchShared(s: FoldState, plan: Plan, at: string): void {
  for (const l of plan.after?.sdks ?? []) {
    const o = s.objects[`layers/${l.layer}`];
    if (o?.shared && o.usedAt !== at) o.usedAt = at;
  }
}

function markGarbage(s: FoldState, refs: readonly ObjectRef[]): void {
  for (const ref of refs) applyFact(s, ref, 'abandoned');
}

/** Apply one event to the durable state. */
export function evolve(s: FoldState, e: DomainEvent & { seq?: number }): void {
  if (e.seq !== undefined) s.seq = e.seq;
  switch (e.type) {
    case 'op.started': {
      const d = e.data;
      const op: OpRecord = { id: d.op, kind: d.kind, plan: d.plan, phase: 'do', step: 0, attempt: 1, undo: null, failure: null, workshop: d.workshop, startedAt: d.at, pending: false };
      if (d.sdk) (op as Mutable<OpRecord>).sdk = d.sdk;
      s.ops[d.op] = op;
      touchShared(s, d.plan, d.at);
      const ws = s.workshops[d.workshop];
      if (!ws) {
        const shape = d.plan.after!;
        s.workshops[d.workshop] = { name: d.workshop, ...shape, sdks: [], stash: null, status: 'busy', identity: null, op: { id: d.op, kind: d.kind, phase: 'do' }, lastError: null, instancePresent: true, createdAt: d.at, updatedAt: d.at };
      } else {
        ws.status = 'busy';
        ws.op = { id: d.op, kind: d.kind, phase: 'do' };
        ws.updatedAt = d.at;
      }
      return;
    }
    case 'effect.requested': {
      const d = e.data;
      const op = s.ops[d.op];
      if (!op) return;
      op.phase = d.phase;
      op.step = d.step;
      op.attempt = d.attempt;
      op.pending = true;
      const effect = effectAt(op, d.phase, d.step);
      if (effect?.type === 'create' || effect?.type === 'copy') {
        const tags = effect.tags;
        const o = applyFact(s, effect.target, 'requested', () =>
          tags.cache !== undefined
            ? { ref: effect.target, kind: tags.kind, op: tags.op, state: 'pending', shared: true, ...(tags.parent ? { parent: tags.parent } : {}), usedAt: op.startedAt }
            : { ref: effect.target, kind: tags.kind, workshop: op.workshop, op: tags.op, state: 'pending' },
        );
        if (o && o.op !== tags.op) o.op = tags.op;
      } else if (effect?.type === 'remove') applyFact(s, effect.target, 'remove');
      return;
    }
    case 'effect.succeeded': {
      const d = e.data;
      const op = s.ops[d.op];
      if (!op) return;
      op.pending = false;
      op.step = d.step + 1;
      const effect = effectAt(op, d.phase, d.step);
      if (effect) tookPlace(s, op, effect, d.identity);
      return;
    }
    case 'effect.failed': {
      const op = s.ops[e.data.op];
      if (!op) return;
      op.pending = false;
      op.failure = { code: e.data.code, message: e.data.message };
      return;
    }
    case 'effect.observed': {
      const d = e.data;
      const op = s.ops[d.op];
      if (!op) return;
      op.pending = false;
      const effect = effectAt(op, d.phase, d.step);
      if (d.decision === 'done') {
        op.step = d.step + 1;
        if (effect) tookPlace(s, op, effect, undefined);
      } else if (d.row === 'create-absent' && effect && 'target' in effect) {
        // The create never happened: the layer chart forgets a record still pending.
        applyFact(s, effect.target, 'gone');
      }
      if (d.failure) op.failure = { code: d.failure.code, message: d.failure.message };
      return;
    }
    case 'op.phase': {
      const d = e.data;
      const op = s.ops[d.op];
      if (!op) return;
      op.phase = d.phase;
      op.step = 0;
      op.attempt = 1;
      if (d.phase === 'undo') op.undo = d.steps ?? [];
      if (d.code) op.failure = { code: d.code, message: d.message ?? d.reason };
      const ws = s.workshops[op.workshop];
      if (ws?.op) ws.op.phase = d.phase;
      return;
    }
    case 'op.finished': {
      const d = e.data;
      const op = s.ops[d.op];
      if (!op) return;
      delete s.ops[d.op];
      const ws = s.workshops[op.workshop];
      if (!ws) return;
      markGarbage(s, d.garbage);
      if (d.status === 'absent' || d.shape === null) {
        delete s.workshops[op.workshop];
        return;
      }
      setShape(ws, d.shape);
      ws.op = null;
      ws.updatedAt = d.at;
      ws.status = d.status;
      ws.lastError = d.lastError;
      if (d.running !== undefined) ws.running = d.running;
      return;
    }
    case 'object.orphan-removed':
      applyFact(s, e.data.object.ref, 'removed');
      return;
    case 'object.missing': {
      const d = e.data;
      applyFact(s, d.object.ref, 'lost');
      const ws = d.object.workshop ? s.workshops[d.object.workshop] : undefined;
      if (!ws) return;
      ws.updatedAt = d.at;
      if (d.forgetStash) {
        markGarbage(s, d.forgetStash);
        ws.stash = null;
        applyFact(s, d.object.ref, 'forgotten');
        return;
      }
      if (d.workshop) {
        if (d.workshop.instanceLost) ws.instancePresent = false;
        if (d.workshop.status !== 'absent') ws.status = d.workshop.status;
        ws.lastError = d.workshop.lastError;
      }
      return;
    }
    case 'cache.evicting':
      applyFact(s, e.data.object.ref, 'remove');
      return;
    case 'cache.evicted': {
      const o = s.objects[objectKey(e.data.object.ref)];
      if (o?.state === 'removing') applyFact(s, e.data.object.ref, e.data.kept ? 'settled.present' : 'removed');
      return;
    }
    case 'object.settled': {
      const d = e.data;
      if (!s.objects[objectKey(d.object.ref)]) return;
      applyFact(s, d.object.ref, d.present ? 'settled.present' : 'settled.absent');
      const ws = d.object.workshop ? s.workshops[d.object.workshop] : undefined;
      if (d.forgetStash && ws) {
        markGarbage(s, d.forgetStash);
        ws.stash = null;
        ws.updatedAt = d.at;
      }
      return;
    }
    default:
      return;
  }
}

/** Apply one event to the volatile state (transient containers), by the container chart. */
export function evolveVolatile(s: VolatileState, e: DomainEvent & { seq?: number }): void {
  if (e.seq !== undefined) s.seq = e.seq;
  switch (e.type) {
    case 'container.created': {
      const status = containerAfter('absent', 'create') as 'created';
      s.containers[e.data.id] = { id: e.data.id, ref: e.data.ref, source: e.data.source, op: e.data.op, status, ...(e.data.scratch ? { scratch: e.data.scratch } : {}), ...(e.data.keep ? { keep: true } : {}) };
      return;
    }
    case 'container.started': {
      const c = s.containers[e.data.id];
      const next = c && containerAfter(c.status, 'start');
      if (next === 'running') c!.status = next;
      return;
    }
    case 'container.removed':
      delete s.containers[e.data.id];
      return;
    default:
      return;
  }
}


/**
 * The simulation's invariants that the journal alone can check: the parts of `invariants.ts` that
 * read only the folded state, no backend and no model. The simulation checks them after every step
 * (`checkAll`), those that judge a record (`perRecord`: the SDK cache's `evict` and `shared`) at
 * every record as its journal reader folds it, and `atelier replay bisect` checks them all after
 * every record of a journal copied from anywhere, to find the first record after which one fails.
 *
 * Each takes the state right after a record (and that record) and returns what is wrong, or null.
 * They hold at every record, not only between commands: mid-op states are allowed for by looking
 * only at workshops no op is working on.
 *
 * @example
 * ```ts
 * for (const inv of JOURNAL_INVARIANTS) {
 *   const wrong = inv.check(state, record);
 *   if (wrong) console.log(`${inv.name} fails at ${record.seq}: ${wrong}`);
 * }
 * ```
 */
import type { JournalRecord } from '../events/catalogue.ts';
import { holdersOf } from '../machines/cache.ts';
import { initialVolatile, objectKey, stashLayerNames, type FoldState, type VolatileState } from '../machines/index.ts';

export interface JournalInvariant {
  /** What `--invariant` takes. */
  readonly name: string;
  /** The simulation invariant it is the journal's half of (invariants.ts numbering). */
  readonly simulation: string;
  readonly description: string;
  /**
   * It judges a record, not only a state (it returns null when `record` is null): the simulation
   * checks it at every record as its journal reader folds them (`JournalReader.onRecord`), not
   * only after each step.
   */
  readonly perRecord?: true;
  check(state: FoldState, record: JournalRecord | null): string | null;
}

/** A ready workshop's objects: its instance, its SDK layers, its stash's parts. */
function needs(ws: FoldState['workshops'][string]): string[] {
  const refs = [objectKey({ space: 'workshops', name: ws.instance }), ...ws.sdks.map((l) => objectKey({ space: 'layers', name: l.layer }))];
  if (ws.stash) refs.push(...stashLayerNames(ws.stash).map((n) => objectKey({ space: 'layers', name: n })));
  return refs;
}

/** 2, the state's half: a ready workshop's objects are accounted for, present, and not garbage. */
export const heldObjects: JournalInvariant = {
  name: 'held',
  simulation: '2 (inventory = state)',
  description: "every ready workshop's instance, SDK layers and stash are accounted for as present and not garbage",
  check(s) {
    for (const ws of Object.values(s.workshops)) {
      if (ws.status !== 'ready') continue;
      for (const k of needs(ws)) {
        const rec = s.objects[k];
        if (!rec || rec.state === 'missing' || rec.garbage) return `workshop ${ws.name} is ready and needs ${k}, which the state holds as ${rec ? `${rec.state}${rec.garbage ? ' garbage' : ''}` : 'absent'}`;
      }
    }
    return null;
  },
};

/** The workshop chart's own consistency: busy exactly while one op works on it, and that op is known. */
export const oneOpPerWorkshop: JournalInvariant = {
  name: 'one-op',
  simulation: '1 (live state = replayed journal = model)',
  description: 'a workshop is busy exactly while one op in progress works on it, and every op in progress belongs to a workshop that names it',
  check(s) {
    for (const ws of Object.values(s.workshops)) {
      if ((ws.status === 'busy') !== (ws.op !== null)) return `workshop ${ws.name} is ${ws.status} with ${ws.op ? `op ${ws.op.id}` : 'no op'}`;
      if (ws.op && !s.ops[ws.op.id]) return `workshop ${ws.name} names op ${ws.op.id}, which is not in progress`;
    }
    for (const op of Object.values(s.ops)) {
      const ws = s.workshops[op.workshop];
      if (ws?.op?.id !== op.id) return `op ${op.id} (${op.kind}) is in progress on ${op.workshop}, which ${ws ? `names ${ws.op ? `op ${ws.op.id}` : 'no op'}` : 'does not exist'}`;
    }
    return null;
  },
};

/** 6, the state's half: a stash copy nobody is making belongs to its workshop's stash or is garbage. */
export const noStrayStashCopy: JournalInvariant = {
  name: 'stash',
  simulation: '6 (no stray stash)',
  description: "every stash copy the state holds as present is part of its workshop's stash, or garbage, or being made or undone by an op in progress",
  check(s) {
    for (const [k, o] of Object.entries(s.objects)) {
      if ((o.kind !== 'stash' && o.kind !== 'stash-sdk') || o.garbage || o.state !== 'present') continue;
      if (s.ops[o.op]) continue;
      const ws = o.workshop === undefined ? undefined : s.workshops[o.workshop];
      if (ws?.status === 'busy' || ws?.status === 'broken') continue;
      if (!ws?.stash || !stashLayerNames(ws.stash).includes(o.ref.name)) return `${o.kind} ${k} (op ${o.op}) of workshop ${o.workshop ?? '?'} is present, and no stash holds it`;
    }
    return null;
  },
};

/** 4's precondition: once reconciliation has run, nothing is left in progress or unsettled. */
export const reconciledSettles: JournalInvariant = {
  name: 'settled',
  simulation: '4 (reconciliation is deterministic)',
  description: 'right after a reconciliation, no op is in progress and no object is left pending or removing',
  check(s, r) {
    if (r?.type !== 'engine.reconciled') return null;
    const ops = Object.keys(s.ops);
    if (ops.length) return `ops ${ops.join(', ')} are still in progress after reconciliation`;
    const unsettled = Object.entries(s.objects).filter(([, o]) => o.state === 'pending' || o.state === 'removing');
    if (unsettled.length) return `${unsettled.map(([k, o]) => `${k} (${o.state})`).join(', ')} left unsettled after reconciliation`;
    return null;
  },
};

/** A journal carries no transient containers: holders read from it alone are workshops, stashes and ops. */
const NO_CONTAINERS: VolatileState = initialVolatile();

/**
 * 9, the journal's half: a held shared layer is never removed. At the record that starts removing
 * a shared layer by policy (`cache.evicting`), nobody holds it; no op plans (in `op.started`, or
 * in the undo steps its `op.phase` journals) to remove a complete shared layer (`present`) that
 * anyone but itself holds (an op's undo removes only the layers it had not finished: those are
 * pending, nobody can have used them); and no shared layer is ever garbage (gc removes garbage
 * unjournaled by the cache).
 */
export const evictsOnlyUnheld: JournalInvariant = {
  name: 'evict',
  simulation: '9 (shared layers: a held layer is never removed)',
  description: 'no cache.evicting names a shared layer that a workshop, a stash or an op holds at that point of the journal; no op plans to remove a complete shared layer another holds; no shared layer is garbage',
  perRecord: true,
  check(s, r) {
    if (r?.type === 'cache.evicting') {
      const layer = r.data.object.ref;
      if (layer.space !== 'layers' || !s.objects[objectKey(layer)]?.shared) return null;
      const who = holdersOf({ durable: s, volatile: NO_CONTAINERS }).get(layer.name);
      return who?.length ? `cache.evicting ${layer.name} (${r.data.reason}) while ${who.join(', ')} hold${who.length === 1 ? 's' : ''} it` : null;
    }
    if (r?.type === 'op.started' || (r?.type === 'op.phase' && r.data.phase === 'undo')) {
      const op = s.ops[r.data.op];
      if (!op) return null;
      const steps = r.type === 'op.started' ? [...op.plan.do, ...op.plan.cleanup] : (op.undo ?? []);
      let holders: Map<string, string[]> | null = null;
      for (const step of steps) {
        const e = step.effect;
        if (e.type !== 'remove' || e.target.space !== 'layers') continue;
        const o = s.objects[objectKey(e.target)];
        if (!o?.shared || o.state !== 'present') continue;
        holders ??= holdersOf({ durable: s, volatile: NO_CONTAINERS });
        const who = (holders.get(e.target.name) ?? []).filter((h) => h !== `op:${op.id}`);
        if (who.length) return `op ${op.id} (${op.kind} of ${op.workshop}) plans to remove shared layer ${e.target.name} (${step.label}, ${op.phase === 'undo' ? 'undo' : 'do or clean-up'}) while ${who.join(', ')} hold${who.length === 1 ? 's' : ''} it`;
      }
      return null;
    }
    if (r?.type === 'op.finished' || r?.type === 'object.settled' || r?.type === 'object.missing') {
      for (const o of Object.values(s.objects)) if (o.shared && o.garbage) return `shared layer ${o.ref.name} is garbage (gc would remove it unjournaled by the cache)`;
    }
    return null;
  },
};

/**
 * 9's crash half: a shared layer is never left looking half-built. Right after a reconciliation
 * every shared layer the state holds is `present` (its snapshot's success journaled, or
 * reconciliation's `done`), or known gone (`missing`), or has no record at all: none is `pending`
 * without an op (none is in progress then), none is being removed. (Between reconciliations a
 * given-up op may leave one pending: nobody waits for it, and a new snapshot takes its place. On
 * the backend's side, a shared layer with no record is an orphan, invariant 2; and invariant 9
 * checks that each present one holds its whole chain.)
 */
export const sharedLayersWhole: JournalInvariant = {
  name: 'shared',
  simulation: '9 (shared layers: built once, never half)',
  description: 'right after a reconciliation every shared layer is present or gone: none pending without an op, none being removed',
  perRecord: true,
  check(s, r) {
    if (r?.type !== 'engine.reconciled') return null;
    for (const o of Object.values(s.objects)) {
      if (!o.shared || (o.state !== 'pending' && o.state !== 'removing')) continue;
      return `shared layer ${o.ref.name} is ${o.state} right after reconciliation (op ${o.op}${s.ops[o.op] ? ', in progress' : ', not in progress'})`;
    }
    return null;
  },
};

/** Every journal invariant, in the order `bisect` checks them. */
export const JOURNAL_INVARIANTS: readonly JournalInvariant[] = [oneOpPerWorkshop, heldObjects, noStrayStashCopy, reconciledSettles, evictsOnlyUnheld, sharedLayersWhole];

/** The invariants the simulation checks at every record it folds (`perRecord`). */
export const PER_RECORD_INVARIANTS: readonly JournalInvariant[] = JOURNAL_INVARIANTS.filter((i) => i.perRecord);

/** The first journal invariant that fails on `state` (after `record`), or null. */
export function firstViolation(state: FoldState, record: JournalRecord | null, invariants: readonly JournalInvariant[] = JOURNAL_INVARIANTS): { invariant: JournalInvariant; message: string } | null {
  for (const invariant of invariants) {
    const message = invariant.check(state, record);
    if (message !== null) return { invariant, message };
  }
  return null;
}

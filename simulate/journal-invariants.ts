/**
 * The simulation's invariants that the journal alone can check: the parts of `invariants.ts` that
 * read only the folded state, no backend and no model. The simulation checks them after every step
 * (`checkAll`), and `atelier replay bisect` checks them after every record of a journal copied from
 * anywhere, to find the first record after which one fails.
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
import { objectKey, stashLayerNames, type FoldState } from '../machines/index.ts';

export interface JournalInvariant {
  /** What `--invariant` takes. */
  readonly name: string;
  /** The simulation invariant it is the journal's half of (invariants.ts numbering). */
  readonly simulation: string;
  readonly description: string;
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

/** Every journal invariant, in the order `bisect` checks them. */
export const JOURNAL_INVARIANTS: readonly JournalInvariant[] = [oneOpPerWorkshop, heldObjects, noStrayStashCopy, reconciledSettles];

/** The first journal invariant that fails on `state` (after `record`), or null. */
export function firstViolation(state: FoldState, record: JournalRecord | null, invariants: readonly JournalInvariant[] = JOURNAL_INVARIANTS): { invariant: JournalInvariant; message: string } | null {
  for (const invariant of invariants) {
    const message = invariant.check(state, record);
    if (message !== null) return { invariant, message };
  }
  return null;
}

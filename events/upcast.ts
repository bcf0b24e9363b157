/**
 * Upcasting: records written by an older atelier are brought to the current schema as they are
 * folded, one version step at a time, so `evolve` only ever sees current shapes.
 *
 * An upcaster is registered for `(type, fromVersion)` and maps the `data` of version `fromVersion`
 * to version `fromVersion + 1`. It may read the state the record is folded into (the fold of every
 * record before it): version 1 left some decisions for the fold to re-derive from that state (the
 * undo steps, what an op's end made of its workshop, what reconciliation concluded), and version 2
 * carries them, so upcasting a version-1 record means making that derivation once, here, with the
 * rules version 1 was folded by. `fixtures/journals` (the golden journals) proves it: every one of
 * them folds, through these upcasters, to the bytes an earlier atelier folded it to.
 *
 * When a type's shape changes: bump `EVENT_VERSIONS[type]` in `catalogue.ts` and add an upcaster
 * here to `UPCASTERS`. A record whose version is newer than the current one was written by a newer
 * atelier: it is a `JOURNAL_VERSION` error telling the user to upgrade, never a guess. Checkpoints
 * hold the fold itself, in the shape of `STATE_SCHEMA`; an older one is upcast by `upcastState`.
 *
 * @example
 * ```ts
 * const s = initialState();
 * for (const record of records) foldRecord(s, record); // upcast (with s) if old, then evolve
 * ```
 */
import { AtelierError } from '../machines/errors.ts';
import { evolve } from '../machines/evolve.ts';
import { judgeProbe } from '../machines/layer.ts';
import { garbageAfter, lastErrorAfter, shapeAfter, stashParts } from '../machines/outcomes.ts';
import { undoSteps } from '../machines/plan.ts';
import { layersHeld, phaseStepsOf, stashLayerNames, STATE_SCHEMA, type FoldState, type OpRecord } from '../machines/state.ts';
import { objectKey, type Effect, type Observation, type ObjectRef, type Plan, type PlanStep } from '../machines/types.ts';
import { checkVersion, EVENT_VERSIONS, type RecordOrigin } from './catalogue.ts';
import type { JournalRecord } from './catalogue.ts';

export { checkVersion, type RecordOrigin };

/** Maps the data of one version to the data of the next, given the state the record folds into. Pure (replay calls it again). */
export type Upcaster = (data: Record<string, any>, state: FoldState) => Record<string, any>;

export interface UpcasterEntry {
  readonly type: string;
  /** The version `up` reads; it returns version `from + 1`. */
  readonly from: number;
  readonly up: Upcaster;
}

/** Upcasters keyed by `type@from`. Build one with `createUpcasters`. */
export type UpcasterTable = ReadonlyMap<string, Upcaster>;

/**
 * Builds an upcaster table; a duplicate `(type, from)` is a programming error.
 *
 * @example
 * ```ts
 * const table = createUpcasters([{ type: 'op.phase', from: 1, up: (d) => ({ ...d, reason: d.why }) }]);
 * ```
 */
export function createUpcasters(entries: readonly UpcasterEntry[]): UpcasterTable {
  const table = new Map<string, Upcaster>();
  for (const e of entries) {
    const k = `${e.type}@${e.from}`;
    if (table.has(k)) throw new Error(`two upcasters registered for ${e.type} v${e.from}`);
    table.set(k, e.up);
  }
  return table;
}

const STASH_KINDS = new Set(['stash', 'stash-sdk']);

/** The effect a v1 record's `(phase, step)` named, in the op it belongs to. */
function effectOf(op: OpRecord, phase: string, step: number): Effect | undefined {
  return phaseStepsOf({ plan: op.plan, undo: op.undo, phase: phase as OpRecord['phase'] })[step]?.effect;
}

/** Version 1 to 2 of the five event types whose decisions version 1 left to the fold. */
const V1: readonly UpcasterEntry[] = [
  {
    // v1 named the undo phase by the do step it rolls back from; v2 carries its steps.
    type: 'op.phase',
    from: 1,
    up: (d, s) => {
      const op = s.ops[d.op];
      if (d.phase !== 'undo' || !op) return d;
      return { ...d, steps: undoSteps(op.plan, d.from ?? 0) as PlanStep[] };
    },
  },
  {
    // v1 left the shape, status, last error and stray stash copies to the fold; `leftovers` was explicit.
    type: 'op.finished',
    from: 1,
    up: (d, s) => {
      const { leftovers, ...rest } = d as { leftovers?: ObjectRef[] } & Record<string, any>;
      const op = s.ops[d.op];
      const ws = op ? s.workshops[op.workshop] : undefined;
      if (!op || !ws) return { ...rest, status: 'absent', shape: null, lastError: null, garbage: leftovers ?? [] };
      const shape = shapeAfter(op, d.outcome, s);
      const strays = d.outcome === 'broken' ? garbageAfter(op, 'broken', shape, s) : [];
      const status = shape === null ? 'absent' : d.outcome === 'broken' || !ws.instancePresent || (d.outcome === 'undone' && !layersHeld(shape, s.objects)) ? 'broken' : 'ready';
      return { ...rest, status, shape, lastError: lastErrorAfter(op.id, d.outcome, status, d, ws.lastError), garbage: [...(leftovers ?? []), ...strays] };
    },
  },
  {
    // v1 recorded the decision; the table's row and the failure it implies were re-derived by the fold.
    type: 'effect.observed',
    from: 1,
    up: (d, s) => {
      const op = s.ops[d.op];
      const effect = op ? effectOf(op, d.phase, d.step) : undefined;
      const seen = d.observation as Observation;
      let row = 'v1';
      if (effect && (effect.type === 'create' || effect.type === 'copy') && !effect.refresh && !seen.present) row = 'create-absent';
      else if (effect && op) {
        const j = judgeProbe(effect, seen, op.id);
        if (j.decision === d.decision) row = j.row;
      }
      const failed = d.decision === 'fail' || d.decision === 'unknown';
      const failure = failed ? { failure: { code: d.decision === 'fail' ? 'NOT_OWNED' : 'INTERRUPTED', message: `outcome of step ${d.step} (${d.phase}) could not be confirmed` } } : {};
      return { ...d, row, ...failure };
    },
  },
  {
    // v1 left what a lost object does to its workshop to the fold.
    type: 'object.missing',
    from: 1,
    up: (d, s) => {
      const ws = d.object.workshop ? s.workshops[d.object.workshop] : undefined;
      if (!ws) return d;
      if (STASH_KINDS.has(d.object.kind)) return { ...d, forgetStash: stashParts(ws.stash) };
      const { ref } = d.object as { ref: ObjectRef };
      return { ...d, workshop: { status: 'broken', instanceLost: d.object.kind === 'workshop', lastError: { op: d.object.op ?? '', code: 'MISSING', message: `${ref.space}/${ref.name} is missing on the backend` } } };
    },
  },
  {
    // v1 left whether a settled-away object forgets its workshop's stash to the fold.
    type: 'object.settled',
    from: 1,
    up: (d, s) => {
      const o = s.objects[objectKey(d.object.ref)];
      if (!o || d.present) return d;
      const ws = o.workshop ? s.workshops[o.workshop] : undefined;
      return ws?.stash && stashLayerNames(ws.stash).includes(o.ref.name) ? { ...d, forgetStash: stashParts(ws.stash) } : d;
    },
  },
];

/** The upcasters of this atelier release. */
export const UPCASTERS: UpcasterTable = createUpcasters(V1);

/**
 * Brings a stored record to its type's current version, given the state it folds into. Returns
 * the same object when it is already current.
 *
 * @throws AtelierError `JOURNAL_VERSION` when the record (or its type) is newer than this atelier,
 *   or when an older version has no upcaster.
 * @example
 * ```ts
 * const current = upcastRecord(stored, state);
 * ```
 */
export function upcastRecord(
  record: JournalRecord,
  state: FoldState,
  table: UpcasterTable = UPCASTERS,
  origin?: RecordOrigin,
  versions: Readonly<Record<string, number>> = EVENT_VERSIONS,
): JournalRecord {
  checkVersion(record, origin, versions);
  const current = versions[record.type]!;
  if (record.v === current) return record;
  let data = record.data as Record<string, any>;
  for (let v = record.v; v < current; v++) {
    const up = table.get(`${record.type}@${v}`);
    if (!up) {
      const where = origin ? ` in ${origin.segment} at byte ${origin.offset}` : '';
      throw new AtelierError(
        'JOURNAL_VERSION',
        `journal record ${record.seq}${where} is "${record.type}" version ${record.v} and this atelier has no ` + `upcaster from version ${v}: report this as an atelier bug, and use the atelier release that wrote it`,
        { seq: record.seq, type: record.type, v: record.v, current, ...origin },
      );
    }
    data = up(data, state);
  }
  return { ...record, v: current, data } as JournalRecord;
}

/** Fold one stored record into `state` (mutated): upcast with the state it folds into, then evolve. */
export function foldRecord(state: FoldState, record: JournalRecord): void {
  evolve(state, record.v === EVENT_VERSIONS[record.type] ? record : upcastRecord(record, state));
}

/**
 * Brings a checkpoint's state to `STATE_SCHEMA`. Schema 1 (no `schema` field) kept, for an op in
 * its undo phase, the do step it rolled back from (`undoFrom`) instead of the undo steps.
 */
export function upcastState(state: Record<string, any>): FoldState {
  const schema = typeof state.schema === 'number' ? state.schema : 1;
  if (schema === STATE_SCHEMA) return state as FoldState;
  if (schema > STATE_SCHEMA) {
    throw new AtelierError('JOURNAL_VERSION', `a checkpoint holds state schema ${schema}, but this atelier reads up to ${STATE_SCHEMA}: it was written by a newer atelier; upgrade atelier to read this state directory`, { schema, current: STATE_SCHEMA });
  }
  const ops: Record<string, OpRecord> = {};
  for (const [id, op] of Object.entries(state.ops as Record<string, Record<string, any>>)) {
    const { undoFrom, ...rest } = op;
    ops[id] = { ...rest, undo: op.phase === 'undo' ? undoSteps(op.plan as Plan, (undoFrom as number) ?? 0) : null } as OpRecord;
  }
  return { schema: STATE_SCHEMA, seq: state.seq, workshops: state.workshops, ops, objects: state.objects };
}

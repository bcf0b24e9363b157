/**
 * The timeline of a journal image, computed in Node from the walk (`walkChanges`): lanes, spans
 * and marks, and each record with its text, JSON and the state diff it made. The page
 * (`page.ts`) only draws this; it decides nothing.
 *
 * - An **op** is a span on its workshop's lane from its intent (`op.started`) to its outcome
 *   (`op.finished`), classed by outcome: `done`, `undone`, `broken`, `reconciled` (settled by
 *   reconciliation: reconciliation probed one of its effects, found it interrupted, or ended it),
 *   or `open` (no outcome in the journal: a crash image). Its undo phase is an `undo` span.
 * - A **step** is a span on the lane of the object it acts on, from `effect.requested` to its
 *   outcome: `ok`, `failed`, `probed` (reconciliation observed it) or `open`. An undo step links
 *   (`link`) to the do step it undoes; an undo phase to the step whose failure started it.
 * - An object's **life** (from when the state holds it to when it no longer does), points for
 *   what reconciliation and gc found (`orphan`, `missing`, `settled`), a `band` on the engine lane
 *   for each reconciliation's work, and **marks**: reconciliations, gc, and the journal's damage.
 * - **Containers** (the volatile journal, whose seqs are its own) are placed on the durable axis
 *   by time.
 *
 * Positions (`x`) are durable sequence numbers. Everything is deterministic: the same journal
 * gives the same model.
 *
 * @example
 * ```ts
 * const model = buildTimeline(await readJournalImage(dir), { version: ATELIER_VERSION, journal: dir });
 * model.spans.filter((s) => s.kind === 'op' && s.cls === 'undone');
 * ```
 */
import type { JournalRecord, PlanStep } from '../../events/catalogue.ts';
import { objectKey, type ObjectRecord, type Tags } from '../../machines/index.ts';
import { describeRecord, isFailure, opOf, type Plans } from '../describe.ts';
import type { JournalImage } from '../image.ts';
import { formatChanges, walkChanges } from '../walk.ts';
import { addContainers } from './containers.ts';
import { LaneBook } from './lanes.ts';
import { MAX_CHANGES, type Mark, type RecordEntry, type Span, type SpanClass, type SpanDraft, type TimelineModel } from './types.ts';

export { MAX_CHANGES, type Mark, type RecordEntry, type Span, type SpanClass, type SpanKind, type TimelineHeader, type TimelineModel } from './types.ts';

interface OpInfo {
  readonly id: string;
  readonly kind: string;
  readonly lane: string;
  readonly x0: number;
  readonly recs: number[];
  readonly plan: { do: readonly PlanStep[]; cleanup: readonly PlanStep[] };
  undo: readonly PlanStep[];
  /** For each undo step, the do step it undoes (empty when unknown). */
  undoOf: number[];
  undoX: number;
  readonly doSpan: Map<number, number>;
  /** The last failed or probed step's span: what an undo phase was started by. */
  cause: number;
  failed: boolean;
  /** The first record of its settling by reconciliation (-1: none). */
  settle: number;
  fin: number;
  outcome: string;
  code?: string | undefined;
  message?: string | undefined;
}

interface Pending {
  readonly lane: string;
  readonly x0: number;
  readonly rec: number;
  readonly label: string;
  readonly phase: 'do' | 'undo' | 'cleanup';
  readonly step: number;
  readonly attempt: number;
  readonly link: number;
  readonly op: string;
}


/** The do step each undo step undoes: `undoSteps` walks the do steps from `from` down to 0. */
function undoMap(plan: OpInfo['plan'], from: number, count: number): number[] {
  const out: number[] = [];
  for (let i = Math.min(from, plan.do.length - 1); i >= 0; i--) for (const _ of plan.do[i]!.undo ?? []) out.push(i);
  return out.length === count ? out : [];
}

const observedWords = (o: { present: boolean; owned?: boolean; op?: string; status?: string }) =>
  `${o.present ? 'present' : 'absent'}${o.owned === false ? ', not owned' : ''}${o.op ? `, tagged ${o.op}` : ''}${o.status ? `, ${o.status}` : ''}`;

/** Build the timeline of a journal image. */
export function buildTimeline(image: JournalImage, opts: { version: string; journal: string }): TimelineModel {
  const book = new LaneBook();
  const plans: Plans = new Map();
  const records: (RecordEntry & { op?: string | undefined })[] = [];
  const drafts: SpanDraft[] = [];
  const ops = new Map<string, OpInfo>();
  const pending = new Map<string, Pending>();
  const life = new Map<string, { x0: number; rec: number; lane: string }>();
  const reconciled: number[] = [];
  const orphans: { rec: number; span: number; name: string }[] = [];
  const ats: string[] = [];
  const push = (d: SpanDraft): number => drafts.push(d) - 1;
  const point = (laneId: string, x: number, rec: number, cls: SpanClass, label: string, note: string, fail: boolean) =>
    push({ laneId, kind: 'point', cls, x0: x, x1: x, label, note, recs: [rec], link: -1, fail });

  const opFor = (id: string, r: JournalRecord, x: number): OpInfo => {
    let op = ops.get(id);
    if (!op) {
      // An op started before the journal's first record (a journal that starts after older segments).
      op = { id, kind: 'op', lane: book.workshop(r.key), x0: x, recs: [], plan: { do: [], cleanup: [] }, undo: [], undoOf: [], undoX: -1, doSpan: new Map(), cause: -1, failed: false, settle: -1, fin: -1, outcome: '' };
      ops.set(id, op);
    }
    return op;
  };

  walkChanges(image, (r, changes) => {
    const i = records.length;
    const x = r.seq;
    const stored = image.records[i]!;
    const text = describeRecord(r, plans);
    const failure = isFailure(r);
    const diff = formatChanges(changes.slice(0, MAX_CHANGES));
    const line = JSON.stringify({ t: text, r: stored, ...(r.v !== stored.v ? { u: r } : {}), d: diff, m: Math.max(0, changes.length - MAX_CHANGES) });
    const op = opOf(r);
    records.push({ seq: r.seq, x, type: r.type, key: r.key, failure, volatile: false, span: -1, line, op });
    ats.push((r.data as { at?: string }).at ?? '');
    const o = op !== undefined && r.type !== 'object.orphan-removed' && r.type !== 'object.missing' && r.type !== 'object.settled' ? opFor(op, r, x) : null;
    if (o) {
      o.recs.push(i);
      if (failure) o.failed = true;
    }
    switch (r.type) {
      case 'op.started': {
        const d = r.data;
        ops.set(d.op, { ...o!, kind: d.sdk ? `${d.kind} ${d.sdk}` : d.kind, lane: book.workshop(d.workshop), x0: x, plan: d.plan });
        break;
      }
      case 'effect.requested': {
        const d = r.data;
        const steps = d.phase === 'do' ? o!.plan.do : d.phase === 'cleanup' ? o!.plan.cleanup : o!.undo;
        const step = steps[d.step];
        const target = step?.effect.target;
        const tags = (step?.effect as { tags?: Tags } | undefined)?.tags;
        const lane = target ? book.object(target, { kind: tags?.kind, workshop: tags?.workshop ?? book.groupOf(o!.lane) ?? undefined }) : o!.lane;
        const link = d.phase === 'undo' && o!.undoOf[d.step] !== undefined ? (o!.doSpan.get(o!.undoOf[d.step]!) ?? -1) : -1;
        pending.set(`${d.op}|${d.phase}|${d.step}`, { lane, x0: x, rec: i, label: step?.label ?? `${d.phase} step ${d.step}`, phase: d.phase, step: d.step, attempt: d.attempt, link, op: d.op });
        break;
      }
      case 'effect.succeeded':
      case 'effect.failed':
      case 'effect.observed': {
        const d = r.data;
        const p = pending.get(`${d.op}|${d.phase}|${d.step}`);
        pending.delete(`${d.op}|${d.phase}|${d.step}`);
        const where = `${d.op} ${d.phase} step ${d.step}`;
        let cls: SpanClass = 'ok';
        let note = `${where}: done`;
        if (r.type === 'effect.failed') {
          cls = 'failed';
          note = `${where} failed: ${r.data.code}: ${r.data.message}`;
        } else if (r.type === 'effect.observed') {
          const od = r.data;
          cls = 'probed';
          note = `${where}: interrupted by a crash; reconciliation found the target ${observedWords(od.observation)} and decided ${od.decision} (row ${od.row})${od.failure ? `, failing the op: ${od.failure.code}: ${od.failure.message}` : ''}`;
          if (o!.settle < 0) o!.settle = i;
        }
        if (p && p.attempt > 1) note += ` (attempt ${p.attempt})`;
        const span = p
          ? push({ laneId: p.lane, kind: 'step', cls, x0: p.x0, x1: x, label: p.label, note, recs: [p.rec, i], phase: p.phase, link: p.link, fail: cls === 'failed' || failure })
          : push({ laneId: o!.lane, kind: 'point', cls, x0: x, x1: x, label: `${d.phase} step ${d.step}`, note, recs: [i], link: -1, fail: failure });
        if (p) records[p.rec]!.span = span;
        records[i]!.span = span;
        if (d.phase === 'do') o!.doSpan.set(d.step, span);
        if (cls !== 'ok') o!.cause = span;
        break;
      }
      case 'op.phase': {
        const d = r.data;
        if (d.phase === 'undo') {
          o!.undoX = x;
          o!.undo = d.steps ?? [];
          const ran = [...o!.doSpan.keys()];
          o!.undoOf = undoMap(o!.plan, d.from ?? (ran.length ? Math.max(...ran) : 0), o!.undo.length);
        }
        if (d.code === 'INTERRUPTED' && o!.settle < 0) o!.settle = i;
        break;
      }
      case 'op.finished': {
        const d = r.data;
        o!.fin = i;
        o!.outcome = d.outcome;
        o!.code = d.code;
        o!.message = d.message;
        if (d.code === 'INTERRUPTED' && o!.settle < 0) o!.settle = i;
        for (const [k, p] of pending) {
          if (p.op !== d.op) continue;
          pending.delete(k);
          records[p.rec]!.span = push({ laneId: p.lane, kind: 'step', cls: 'open', x0: p.x0, x1: x, label: p.label, note: `${d.op} ${p.phase} step ${p.step}: no outcome journaled before the op ended`, recs: [p.rec], phase: p.phase, link: p.link, fail: true });
        }
        break;
      }
      case 'object.orphan-removed':
      case 'object.missing':
      case 'object.settled': {
        const ob = r.data.object;
        const lane = book.object(ob.ref, { kind: ob.kind, workshop: ob.workshop });
        const name = `${ob.ref.space}/${ob.ref.name}`;
        if (r.type === 'object.orphan-removed') orphans.push({ rec: i, span: (records[i]!.span = point(lane, x, i, 'orphan', 'removed', `${name}: owned by atelier, but nothing in the journal accounts for it: removed`, false)), name });
        else if (r.type === 'object.missing') records[i]!.span = point(lane, x, i, 'missing', 'missing', `${name}: the state holds it, the backend does not (found by reconciliation)`, true);
        else records[i]!.span = point(lane, x, i, 'settled', r.data.present ? 'present' : 'absent', `${name}: left half-made by an op given up; reconciliation found it ${r.data.present ? 'present' : 'absent'}`, false);
        break;
      }
      case 'cache.evicting':
      case 'cache.evicted': {
        const ob = r.data.object;
        const lane = book.object(ob.ref, { kind: ob.kind, workshop: ob.workshop });
        const name = `${ob.ref.space}/${ob.ref.name}`;
        records[i]!.span =
          r.type === 'cache.evicting'
            ? point(lane, x, i, 'settled', 'evicting', `${name}: a shared SDK layer nobody holds, let go by the SDK cache (${r.data.reason})`, false)
            : point(lane, x, i, 'settled', r.data.kept ? 'kept' : 'evicted', `${name}: ${r.data.kept ? 'still on the backend, kept in the cache' : 'removed from the backend'}`, false);
        break;
      }
      case 'engine.reconciled':
        reconciled.push(i);
        break;
      default:
        break;
    }
    // The life of each object: from when the state holds it to when it no longer does.
    for (const c of changes) {
      if ((c.op !== 'add' && c.op !== 'remove') || !c.path.startsWith('objects.')) continue;
      const ob = (c.op === 'add' ? c.to : c.from) as ObjectRecord | undefined;
      if (!ob?.ref || c.path !== `objects.${objectKey(ob.ref)}`) continue;
      const key = objectKey(ob.ref);
      if (c.op === 'add') life.set(key, { x0: x, rec: i, lane: book.object(ob.ref, { kind: ob.kind, workshop: ob.workshop }) });
      else {
        const s = life.get(key);
        life.delete(key);
        if (s) push({ laneId: s.lane, kind: 'life', cls: 'gone', x0: s.x0, x1: x, label: ob.ref.name, note: `${ob.kind} ${ob.ref.name}: held by the state from record ${records[s.rec]!.seq} to record ${r.seq}`, recs: [s.rec, i], link: -1, fail: false });
      }
    }
  });

  const durable = records.length;
  const first = durable ? records[0]!.seq : null;
  const last = durable ? records[durable - 1]!.seq : null;
  const lastX = last ?? 0;
  for (const p of pending.values()) {
    records[p.rec]!.span = push({ laneId: p.lane, kind: 'step', cls: 'open', x0: p.x0, x1: lastX, label: p.label, note: `${p.op} ${p.phase} step ${p.step}: requested, and no outcome in the journal (the engine stopped here: the next start reconciles it)`, recs: [p.rec], phase: p.phase, link: p.link, fail: true });
  }
  for (const [key, s] of life) push({ laneId: s.lane, kind: 'life', cls: 'exists', x0: s.x0, x1: lastX, label: key, note: `${key}: held by the state from record ${records[s.rec]!.seq} to the end of the journal`, recs: [s.rec], link: -1, fail: false });

  // Reconciliation: the records before each `engine.reconciled` that are its work (probes, what it
  // found of objects, the ops it settled from their first probe or interruption on).
  const marks: Mark[] = [];
  const inBand = new Uint8Array(durable);
  const work = (j: number): boolean => {
    const e = records[j]!;
    if (e.type.startsWith('object.') || e.type === 'effect.observed') return true;
    const o = e.op !== undefined ? ops.get(e.op) : undefined;
    return o !== undefined && o.settle >= 0 && o.settle <= j;
  };
  for (const ri of reconciled) {
    let j = ri - 1;
    while (j >= 0 && !inBand[j] && work(j)) inBand[j--] = 1;
    const data = JSON.parse(records[ri]!.line).r.data as { pending: number; orphans: number; missing: number };
    const busy = data.pending + data.orphans + data.missing > 0;
    const label = busy ? `reconciled: ${data.pending} interrupted, ${data.orphans} orphans, ${data.missing} missing` : 'engine start: nothing to reconcile';
    marks.push({ x: records[ri]!.x, kind: 'reconcile', rec: ri, label, fail: busy });
    const span = j + 1 < ri ? push({ laneId: 'engine', kind: 'band', cls: 'reconcile', x0: records[j + 1]!.x, x1: records[ri]!.x, label: 'reconciliation', note: `${label} (records ${records[j + 1]!.seq}-${records[ri]!.seq})`, recs: [ri], link: -1, fail: busy }) : -1;
    records[ri]!.span = span;
  }
  for (const o of orphans) {
    if (inBand[o.rec]) continue;
    marks.push({ x: records[o.rec]!.x, kind: 'gc', rec: o.rec, label: `gc removed ${o.name}`, fail: false });
  }

  // The ops, now that it is known which ones reconciliation settled.
  let failures = 0;
  for (const o of ops.values()) {
    const settled = o.settle >= 0 || (o.fin >= 0 && inBand[o.fin] === 1);
    const cls: SpanClass = o.fin < 0 ? 'open' : settled ? 'reconciled' : (o.outcome as SpanClass);
    const fail = cls !== 'done' || o.failed;
    if (fail) failures++;
    const x1 = o.fin >= 0 ? records[o.fin]!.x : lastX;
    const outcome = o.fin < 0 ? 'in flight: no outcome in the journal' : `${o.outcome}${settled ? ', settled by reconciliation after a crash' : ''}`;
    const note = `${o.kind} ${o.id}: ${outcome}${o.code ? ` (${o.code}: ${o.message ?? ''})` : ''}`;
    const short = o.fin < 0 ? 'in flight' : settled ? `${o.outcome} after a crash (reconciled)` : o.outcome;
    const span = push({ laneId: o.lane, kind: 'op', cls, x0: o.x0, x1, label: `${o.kind} ${o.id}: ${short}`, note, recs: o.recs, link: -1, fail });
    for (const ri of o.recs) if (records[ri]!.span < 0) records[ri]!.span = span;
    for (const ri of o.recs) {
      const s = drafts[records[ri]!.span]!;
      if (fail && s.kind === 'step') s.fail = true;
    }
    if (o.undoX >= 0) push({ laneId: o.lane, kind: 'undo', cls, x0: o.undoX, x1, label: `undo of ${o.kind} ${o.id}`, note: `${o.kind} ${o.id}: undoing what it did${o.cause >= 0 ? `, after: ${drafts[o.cause]!.note}` : ''}`, recs: o.recs.filter((ri) => ri >= 0 && records[ri]!.x >= o.undoX), link: o.cause, fail: true });
  }

  // The volatile journal: transient containers, placed between the durable records by time.
  const xend = addContainers(image.volatile, { ats, records, lastX }, book, plans, push);

  if (image.damage) marks.push({ x: image.damage.seq, kind: 'damage', rec: -1, label: `${image.damage.kind === 'torn' ? 'torn tail' : image.damage.kind === 'corrupt' ? 'corrupt record' : 'record from a newer atelier'} at record ${image.damage.seq}`, fail: true });

  const { lanes, index } = book.finish();
  const spans: Span[] = drafts.map(({ laneId, ...s }) => ({ ...s, lane: index.get(laneId)! }));
  for (const [k, s] of spans.entries()) if (s.kind !== 'op' && s.kind !== 'undo' && s.kind !== 'band') for (const ri of s.recs) if (records[ri]!.span < 0) records[ri]!.span = k;
  marks.sort((a, b) => a.x - b.x || a.rec - b.rec);
  const volatileCount = records.length - durable;
  return {
    header: {
      version: opts.version,
      journal: opts.journal,
      records: durable,
      first,
      last,
      firstAt: durable ? ats[0] || null : null,
      lastAt: durable ? ats[durable - 1] || null : null,
      volatile: volatileCount,
      damage: image.damage,
      keptTorn: image.keptTorn,
      ops: ops.size,
      failures,
    },
    lanes,
    spans,
    marks,
    records: records.map(({ op: _op, ...r }) => r),
    xmin: (first ?? 1) - 0.5,
    xmax: Math.max(xend, image.damage?.seq ?? 0) + 0.5,
  };
}

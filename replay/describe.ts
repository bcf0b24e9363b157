/**
 * Records in words: each journal record as the decision it records (which op, which step of which
 * phase, what the backend answered, what reconciliation observed and which row of the table judged),
 * which records are failures, and the listing's filters (`--workshop`, `--op`, `--type`,
 * `--failures`).
 *
 * @example
 * ```ts
 * const plans: Plans = new Map();
 * describeRecord(record, plans); // 'op-3f2a refresh do#2 setup-base ros2 failed EXEC_FAILED: exit 1'
 * ```
 */
import type { JournalRecord, Plan } from '../events/catalogue.ts';
import { AtelierError } from '../machines/errors.ts';
import type { PlanStep } from '../machines/index.ts';

/** What `describeRecord` remembers of each op: its plan and undo steps, to name steps by label. */
export type Plans = Map<string, { plan: Plan; undo: readonly PlanStep[]; workshop: string }>;

/** The label of an op's step in a phase, as its plan (or its journaled undo steps) names it. */
export function stepLabel(plans: Plans, op: string, phase: 'do' | 'undo' | 'cleanup', step: number): string {
  const p = plans.get(op);
  const steps = !p ? [] : phase === 'do' ? p.plan.do : phase === 'cleanup' ? p.plan.cleanup : p.undo;
  return steps[step]?.label ?? '?';
}

/** Keep what later records need to be described (plans, undo steps); call for every record in order. */
export function remember(r: JournalRecord, plans: Plans): void {
  if (r.type === 'op.started') plans.set(r.data.op, { plan: r.data.plan, undo: [], workshop: r.data.workshop });
  if (r.type === 'op.phase' && r.data.phase === 'undo') {
    const p = plans.get(r.data.op);
    if (p) p.undo = r.data.steps ?? [];
  }
}

/** One line describing a (current-version) record as the decision it records. Calls `remember`. */
export function describeRecord(r: JournalRecord, plans: Plans): string {
  remember(r, plans);
  const ref = (o: { ref: { space: string; name: string } }) => `${o.ref.space}/${o.ref.name}`;
  switch (r.type) {
    case 'op.started':
      return `${r.data.op} ${r.data.kind}${r.data.sdk ? ` ${r.data.sdk}` : ''}: ${r.data.plan.do.length} do steps, ${r.data.plan.cleanup.length} clean-up`;
    case 'effect.requested':
      return `${r.data.op} ${r.data.phase}#${r.data.step} ${stepLabel(plans, r.data.op, r.data.phase, r.data.step)}${r.data.attempt > 1 ? ` (attempt ${r.data.attempt})` : ''}`;
    case 'effect.succeeded':
      return `${r.data.op} ${r.data.phase}#${r.data.step} ok`;
    case 'effect.failed':
      return `${r.data.op} ${r.data.phase}#${r.data.step} failed ${r.data.code}: ${r.data.message}`;
    case 'effect.observed':
      return `${r.data.op} ${r.data.phase}#${r.data.step} probed ${JSON.stringify(r.data.observation)} -> ${r.data.decision} (row ${r.data.row})${r.data.failure ? `, failing the op ${r.data.failure.code}` : ''}`;
    case 'op.phase':
      return `${r.data.op} -> ${r.data.phase}${r.data.code ? ` (${r.data.code}: ${r.data.message})` : ''}`;
    case 'op.finished':
      return `${r.data.op} ${r.data.outcome}${r.data.code ? ` (${r.data.code})` : ''}: workshop ${r.data.status}${r.data.garbage.length ? `, garbage ${r.data.garbage.map((l) => l.name).join(' ')}` : ''}`;
    case 'object.orphan-removed':
      return `${ref(r.data.object)} removed: nothing in the journal accounts for it`;
    case 'object.missing':
      return `${ref(r.data.object)} missing on the backend${r.data.workshop ? `: workshop ${r.data.workshop.status}` : ''}${r.data.forgetStash ? ': stash forgotten' : ''}`;
    case 'object.settled':
      return `${ref(r.data.object)} ${r.data.present ? 'present' : 'absent'}${r.data.unconfirmed ? ' (its completion was never journaled: forgotten)' : ''}`;
    case 'cache.evicting':
      return `${ref(r.data.object)} evicted from the SDK cache (${r.data.reason === 'gc' ? 'gc --cache' : 'cache policy'}): nobody holds it`;
    case 'cache.evicted':
      return `${ref(r.data.object)} ${r.data.kept ? 'still on the backend: kept in the cache' : 'removed'}`;
    case 'engine.reconciled':
      return `pending ${r.data.pending}, orphans ${r.data.orphans}, missing ${r.data.missing}`;
    case 'container.created':
      return `${r.data.id} from ${r.data.source.space}/${r.data.source.name}${r.data.keep ? ' (kept)' : ' (--rm)'}`;
    case 'container.started':
      return `${r.data.id} started`;
    case 'container.removed':
      return `${r.data.id} removed`;
    default:
      // A type this atelier does not know cannot be read (checkVersion refuses it); kept for safety.
      return JSON.stringify((r as { data: unknown }).data);
  }
}

/** The op a record belongs to, if any. */
export function opOf(r: JournalRecord): string | undefined {
  const d = r.data as { op?: unknown; object?: { op?: unknown } };
  if (typeof d.op === 'string') return d.op;
  return typeof d.object?.op === 'string' ? d.object.op : undefined;
}

/**
 * Whether a record tells of something going wrong: a failed effect, an op entering undo, an op that
 * did not end `done`, an object found missing, a probe that failed its op.
 */
export function isFailure(r: JournalRecord): boolean {
  switch (r.type) {
    case 'effect.failed':
    case 'object.missing':
      return true;
    case 'op.phase':
      return r.data.phase === 'undo';
    case 'op.finished':
      return r.data.outcome !== 'done';
    case 'effect.observed':
      return r.data.failure !== undefined;
    default:
      return false;
  }
}

/** The listing's filters; every one given must hold. */
export interface RecordFilter {
  workshop?: string;
  op?: string;
  /** Comma-separated types; `effect.*` matches a family. */
  type?: string;
  failures?: boolean;
}

/**
 * Compile filters into a predicate. `plans` (filled as records are described) tells which workshop
 * an op's records belong to.
 *
 * @throws AtelierError `INVALID_ARGUMENT` for a `--type` that matches no record type.
 */
export function recordFilter(f: RecordFilter, plans: Plans, knownTypes: readonly string[]): (r: JournalRecord) => boolean {
  const types = f.type
    ?.split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  const matchers = (types ?? []).map((t) => {
    const m = t.endsWith('*') ? (x: string) => x.startsWith(t.slice(0, -1)) : (x: string) => x === t;
    if (!knownTypes.some(m)) throw new AtelierError('INVALID_ARGUMENT', `--type ${JSON.stringify(t)} matches no record type: give one of ${knownTypes.join(', ')} (or a family such as effect.*)`, { option: 'type' });
    return m;
  });
  return (r) => {
    if (f.failures && !isFailure(r)) return false;
    if (matchers.length && !matchers.some((m) => m(r.type))) return false;
    const op = opOf(r);
    if (f.op !== undefined && op !== f.op) return false;
    if (f.workshop !== undefined) {
      const ws = r.key === f.workshop || (op !== undefined && plans.get(op)?.workshop === f.workshop) || (r.data as { object?: { workshop?: string } }).object?.workshop === f.workshop;
      if (!ws) return false;
    }
    return true;
  };
}

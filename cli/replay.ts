/**
 * `atelier replay`: the replay debugger. It reads a state directory's journal without taking the
 * lock and without repairing anything (a torn tail is reported, not cut), folds it up to any
 * sequence number, and prints each record as the decision it was: which op, which step of which
 * phase, what the backend answered, what reconciliation observed and judged.
 *
 * Because every decision is journaled, replaying a crash image's journal shows exactly what the
 * engine decided and why, offline, including what a reconciliation did.
 *
 * @example
 * ```sh
 * atelier --state-dir /tmp/st replay --events --until 40 --workshop nav2
 * atelier --state-dir /tmp/st --json replay | jq '.state.workshops'
 * ```
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { JournalRecord, Plan } from '../events/catalogue.ts';
import { corruptError, listSegments, readSegment, scanSegment } from '../events/segments.ts';
import { checkVersion, upcastRecord } from '../events/upcast.ts';
import { evolve, initialState, type FoldState, type PlanStep } from '../machines/index.ts';
import type { Context } from './context.ts';

export interface JournalImage {
  readonly records: JournalRecord[];
  /** A torn last record, as the next engine start would cut it. */
  readonly torn: { readonly segment: string; readonly offset: number; readonly bytes: number } | null;
  /** Torn pieces earlier starts kept aside. */
  readonly keptTorn: string[];
}

/**
 * Read every record of a journal directory, read-only, by the same rules as start-up
 * (`scanSegment`): a torn tail (a preallocated segment's NUL filler excluded) is reported, and
 * mid-file corruption is `JOURNAL_CORRUPT`.
 */
export async function readJournalImage(dir: string): Promise<JournalImage> {
  const segs = await listSegments(dir);
  const records: JournalRecord[] = [];
  let torn: JournalImage['torn'] = null;
  let expected = segs[0]?.first ?? 1;
  for (const [i, seg] of segs.entries()) {
    if (seg.first !== expected) throw corruptError(seg.path, expected, 0, `the segment starts at record ${seg.first}`);
    const scan = scanSegment(seg, await readSegment(seg.path), expected, i === segs.length - 1, 0, (record, offset) => {
      checkVersion(record, { segment: seg.path, offset });
      records.push(record);
    });
    if (scan.torn) torn = { segment: seg.path, ...scan.torn };
    expected = scan.nextSeq;
  }
  const keptTorn = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith('torn-')).sort();
  return { records, torn, keptTorn };
}

/** What `describeRecord` remembers of each op: its plan and undo steps, to name steps by label. */
export type Plans = Map<string, { plan: Plan; undo: readonly PlanStep[] }>;

/** One line describing a (current-version) record as the decision it records. */
export function describeRecord(r: JournalRecord, plans: Plans): string {
  const label = (op: string, phase: 'do' | 'undo' | 'cleanup', step: number) => {
    const p = plans.get(op);
    const steps = !p ? [] : phase === 'do' ? p.plan.do : phase === 'cleanup' ? p.plan.cleanup : p.undo;
    return steps[step]?.label ?? '?';
  };
  switch (r.type) {
    case 'op.started':
      plans.set(r.data.op, { plan: r.data.plan, undo: [] });
      return `${r.data.op} ${r.data.kind}${r.data.sdk ? ` ${r.data.sdk}` : ''}: ${r.data.plan.do.length} do steps, ${r.data.plan.cleanup.length} clean-up`;
    case 'effect.requested':
      return `${r.data.op} ${r.data.phase}#${r.data.step} ${label(r.data.op, r.data.phase, r.data.step)}${r.data.attempt > 1 ? ` (attempt ${r.data.attempt})` : ''}`;
    case 'effect.succeeded':
      return `${r.data.op} ${r.data.phase}#${r.data.step} ok`;
    case 'effect.failed':
      return `${r.data.op} ${r.data.phase}#${r.data.step} failed ${r.data.code}: ${r.data.message}`;
    case 'effect.observed':
      return `${r.data.op} ${r.data.phase}#${r.data.step} probed ${JSON.stringify(r.data.observation)} -> ${r.data.decision} (row ${r.data.row})`;
    case 'op.phase': {
      const p = plans.get(r.data.op);
      if (p && r.data.phase === 'undo') p.undo = r.data.steps ?? [];
      return `${r.data.op} -> ${r.data.phase}${r.data.code ? ` (${r.data.code}: ${r.data.message})` : ''}`;
    }
    case 'op.finished':
      return `${r.data.op} ${r.data.outcome}${r.data.code ? ` (${r.data.code})` : ''}: workshop ${r.data.status}${r.data.garbage.length ? `, garbage ${r.data.garbage.map((l) => l.name).join(' ')}` : ''}`;
    case 'object.orphan-removed':
    case 'object.missing':
      return `${r.data.object.ref.space}/${r.data.object.ref.name}`;
    case 'object.settled':
      return `${r.data.object.ref.space}/${r.data.object.ref.name} ${r.data.present ? 'present' : 'absent'}`;
    case 'engine.reconciled':
      return `pending ${r.data.pending}, orphans ${r.data.orphans}, missing ${r.data.missing}`;
    default:
      return JSON.stringify(r.data);
  }
}

export interface ReplayOptions {
  until?: number;
  workshop?: string;
  events?: boolean;
}

/** The `replay` command: prints records (with `--events`) and the state folded up to `--until`. */
export async function replayCommand(ctx: Context, opts: ReplayOptions): Promise<number> {
  const image = await readJournalImage(join(ctx.stateDir, 'journal'));
  const until = opts.until ?? Number.MAX_SAFE_INTEGER;
  const state: FoldState = initialState();
  const plans: Plans = new Map();
  const shown: string[] = [];
  const touches = (r: JournalRecord) => !opts.workshop || r.key === opts.workshop;
  for (const stored of image.records) {
    if (stored.seq > until) break;
    // An old record is shown and folded as this atelier reads it: upcast, with the state before it.
    const r = upcastRecord(stored, state);
    const text = describeRecord(r, plans);
    evolve(state, r);
    if (opts.events && touches(r)) shown.push(`${String(r.seq).padStart(6)}  ${r.type.padEnd(22)} ${r.key.padEnd(16)} ${text}`);
  }
  const workshops = opts.workshop ? Object.fromEntries(Object.entries(state.workshops).filter(([k]) => k === opts.workshop)) : state.workshops;
  const ops = Object.fromEntries(Object.entries(state.ops).filter(([, o]) => !opts.workshop || o.workshop === opts.workshop));
  const objects = Object.fromEntries(Object.entries(state.objects).filter(([, o]) => !opts.workshop || o.workshop === opts.workshop));
  if (ctx.out.json) {
    ctx.out.result({ seq: state.seq, records: image.records.length, torn: image.torn, keptTorn: image.keptTorn, state: { workshops, ops, objects } }, () => '');
    return 0;
  }
  const text = [...shown];
  text.push(`journal: ${image.records.length} records; state at seq ${state.seq}`);
  if (image.torn) text.push(`torn tail: ${image.torn.bytes} bytes at ${image.torn.segment}:${image.torn.offset} (the next start cuts it and keeps it aside)`);
  for (const t of image.keptTorn) text.push(`kept torn piece: ${t}`);
  for (const w of Object.values(workshops)) {
    text.push(`workshop ${w.name}: ${w.status}${w.op ? ` (${w.op.kind} ${w.op.id}, ${w.op.phase})` : ''}, instance ${w.instance}, base ${w.base}`);
    for (const l of w.sdks) text.push(`  sdk ${l.sdk}: ${l.layer}`);
    if (w.stash) text.push(`  stash ${w.stash.layer} (${w.stash.op})`);
    if (w.lastError) text.push(`  last error ${w.lastError.code}: ${w.lastError.message}`);
  }
  for (const o of Object.values(ops)) text.push(`op ${o.id} ${o.kind} on ${o.workshop}: ${o.phase}#${o.step}${o.pending ? ' (effect requested, no outcome yet: reconciliation probes it)' : ''}`);
  text.push(`objects accounted for: ${Object.keys(objects).length}`);
  ctx.out.result({}, () => text.join('\n'));
  return 0;
}

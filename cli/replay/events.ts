/**
 * `atelier replay` (the listing) and `atelier replay at SEQ`: the records as the decisions they
 * record, filtered by workshop, op, type or failures, and the state folded up to a point.
 *
 * Like every replay command it reads a journal copied from anywhere (`--journal DIR`) or the state
 * directory's, without the lock and without repairing anything: a torn tail or a corrupt record
 * stops the reading there, and what came before is shown with where the damage is.
 *
 * @example
 * ```sh
 * atelier replay --events --failures --workshop nav2
 * atelier replay --journal /tmp/from-alice at 40 --json | jq '.state.workshops'
 * ```
 */
import { EVENT_VERSIONS, type JournalRecord } from '../../events/catalogue.ts';
import type { FoldState } from '../../machines/index.ts';
import type { Context } from '../context.ts';
import { describeRecord, recordFilter, remember, type Plans, type RecordFilter } from '../../replay/describe.ts';
import { journalDirOf, keptTornPieces, openImage, type JournalDamage, type JournalImage, type ScanResult } from '../../replay/image.ts';
import { checkSeqIn, lastSeq, streamWalk } from '../../replay/walk.ts';

export interface ReplayOptions extends RecordFilter {
  journal?: string;
  until?: number;
  events?: boolean;
}

/** The image a replay command reads, from `--journal` or the context's state directory. */
export function imageFor(ctx: Context, opts: { journal?: string }): Promise<JournalImage> {
  return openImage({ ...(opts.journal !== undefined ? { journal: opts.journal } : {}), stateDir: ctx.stateDir, runDir: ctx.runDir });
}

/** One listing line: `    12  effect.failed          nav2             op-… do#2 failed EXEC_FAILED: exit 1`. */
export function recordLine(r: JournalRecord, text: string): string {
  return `${String(r.seq).padStart(6)}  ${r.type.padEnd(22)} ${r.key.padEnd(16)} ${text}`;
}

/** The header every replay command's JSON carries: where the journal ends and whether it is damaged. */
export interface JournalFacts {
  readonly journal: string;
  readonly first: number;
  readonly last: number;
  readonly records: number;
  readonly damage: JournalDamage | null;
  readonly keptTorn: string[];
}

export function journalFacts(image: JournalImage): JournalFacts {
  return { journal: image.dir, first: image.records[0]?.seq ?? 0, last: lastSeq(image), records: image.records.length, damage: image.damage, keptTorn: image.keptTorn };
}

/** The facts of a journal read by `streamWalk`. */
export async function streamFacts(dir: string, scan: ScanResult): Promise<JournalFacts> {
  return { journal: dir, first: scan.first, last: scan.last, records: scan.count, damage: scan.damage, keptTorn: await keptTornPieces(dir) };
}

/** Lines saying where the journal is damaged, for the human output. */
export function damageLines(facts: Pick<JournalFacts, 'damage' | 'keptTorn'>): string[] {
  const out: string[] = [];
  if (facts.damage) out.push(`${facts.damage.kind === 'torn' ? 'torn tail' : facts.damage.kind === 'corrupt' ? 'CORRUPT' : 'NEWER VERSION'} at record ${facts.damage.seq}: ${facts.damage.message}`);
  for (const t of facts.keptTorn) out.push(`kept torn piece: ${t}`);
  return out;
}

/** The state's workshops, ops and objects, narrowed to one workshop when asked. */
export function stateView(state: FoldState, workshop?: string): Pick<FoldState, 'workshops' | 'ops' | 'objects'> {
  if (workshop === undefined) return { workshops: state.workshops, ops: state.ops, objects: state.objects };
  const mine = <T extends { workshop?: string }>(rec: Record<string, T>) => Object.fromEntries(Object.entries(rec).filter(([, o]) => o.workshop === workshop));
  return { workshops: Object.fromEntries(Object.entries(state.workshops).filter(([k]) => k === workshop)), ops: mine(state.ops), objects: mine(state.objects) };
}

/** The human lines describing a state. */
export function stateLines(view: Pick<FoldState, 'workshops' | 'ops' | 'objects'>): string[] {
  const text: string[] = [];
  for (const w of Object.values(view.workshops)) {
    text.push(`workshop ${w.name}: ${w.status}${w.op ? ` (${w.op.kind} ${w.op.id}, ${w.op.phase})` : ''}, instance ${w.instance}, base ${w.base}`);
    for (const l of w.sdks) text.push(`  sdk ${l.sdk}: ${l.layer}`);
    if (w.stash) text.push(`  stash ${w.stash.layer} (${w.stash.op})`);
    if (w.lastError) text.push(`  last error ${w.lastError.code}: ${w.lastError.message} (op ${w.lastError.op})`);
  }
  for (const o of Object.values(view.ops)) text.push(`op ${o.id} ${o.kind} on ${o.workshop}: ${o.phase}#${o.step}${o.pending ? ' (effect requested, no outcome yet: reconciliation probes it)' : ''}`);
  text.push(`objects accounted for: ${Object.keys(view.objects).length}`);
  return text;
}

/**
 * `atelier replay`: prints the records (with `--events`, or any record filter) and the state folded
 * up to `--until`.
 */
export async function replayCommand(ctx: Context, opts: ReplayOptions): Promise<number> {
  const dir = await journalDirOf({ ...opts, stateDir: ctx.stateDir });
  const until = opts.until ?? Number.MAX_SAFE_INTEGER;
  const plans: Plans = new Map();
  const listing = opts.events === true || opts.op !== undefined || opts.type !== undefined || opts.failures === true;
  const keep = recordFilter(opts, plans, Object.keys(EVENT_VERSIONS));
  const shown: { record: JournalRecord; text: string }[] = [];
  const { state, scan } = await streamWalk(
    dir,
    (r) => {
      if (!listing) return;
      const text = describeRecord(r, plans);
      if (keep(r)) shown.push({ record: r, text });
    },
    until,
  );
  const facts = await streamFacts(dir, scan);
  const view = stateView(state, opts.workshop);
  if (ctx.out.json) {
    ctx.out.result({ ...facts, torn: facts.damage?.kind === 'torn' ? facts.damage : null, seq: state.seq, ...(listing ? { events: shown.map((s) => ({ ...s.record, text: s.text })) } : {}), state: view }, () => '');
    return 0;
  }
  const text = shown.map((s) => recordLine(s.record, s.text));
  text.push(`journal: ${facts.records} records; state at seq ${state.seq}`);
  text.push(...damageLines(facts), ...stateLines(view));
  ctx.out.result({}, () => text.join('\n'));
  return 0;
}

/** `atelier replay at SEQ`: the state right after record SEQ (and the record itself). */
export async function replayAtCommand(ctx: Context, seq: number, opts: { journal?: string; workshop?: string }): Promise<number> {
  const dir = await journalDirOf({ ...opts, stateDir: ctx.stateDir });
  const plans: Plans = new Map();
  let at: { record: JournalRecord; text: string } | null = null;
  const { state, scan } = await streamWalk(
    dir,
    (r) => {
      if (r.seq === seq) at = { record: r, text: describeRecord(r, plans) };
      else remember(r, plans);
    },
    seq,
  );
  checkSeqIn(scan, seq);
  const facts = await streamFacts(dir, scan);
  const view = stateView(state, opts.workshop);
  const rec = at as { record: JournalRecord; text: string } | null;
  if (ctx.out.json) {
    ctx.out.result({ ...facts, seq, record: rec ? { ...rec.record, text: rec.text } : null, state: view }, () => '');
    return 0;
  }
  const text = [rec ? `after ${recordLine(rec.record, rec.text).trimStart()}` : 'before the first record', ...stateLines(view), ...damageLines(facts)];
  ctx.out.result({}, () => text.join('\n'));
  return 0;
}

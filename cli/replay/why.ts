/**
 * `atelier replay why NAME`: the chain of decisions behind a workshop's status, in plain words.
 * Every op on the workshop, in order: what it set out to do, each step and how it went, what failed
 * with which code, what was undone, what reconciliation observed after a crash and which row of the
 * reconciliation table decided; then objects reconciliation found missing; and a closing "because"
 * that names the record that set the status it has now.
 *
 * Nothing is inferred: every sentence is read off a journaled decision (the events carry them).
 *
 * @example
 * ```sh
 * atelier replay why nav2
 * # nav2 is ready (at seq 61).
 * #   op-k2 refresh (seq 18–44): stash; create instance; setup-base ros2 FAILED EXEC_FAILED: exit 1 …
 * # because: op-k2 refresh failed at "setup-base ros2" (EXEC_FAILED) and was undone at seq 44 …
 * ```
 */
import type { JournalRecord } from '../../events/catalogue.ts';
import { AtelierError } from '../../machines/errors.ts';
import type { Context } from '../context.ts';
import { remember, stepLabel, type Plans } from '../../replay/describe.ts';
import { damageLines, streamFacts } from './events.ts';
import { journalDirOf } from '../../replay/image.ts';
import { streamWalk } from '../../replay/walk.ts';

/** The reconciliation table's rows (machines/layer.ts, docs/design.md) in words. */
export const ROWS: Readonly<Record<string, string>> = {
  exec: "an exec's outcome cannot be observed, so the op is judged as if the script had run half-way",
  'not-owned': 'the target is there but not ours: never touched, the step fails',
  'create-done': 'the target is there, made by this op: the step had taken effect',
  'create-conflict': 'the target is ours but made by another op: a leftover, removed and the step redone',
  'create-absent': 'the target is not there: the step had not taken effect, so it is redone',
  'refresh-done': "the target carries this step's tags: the refresh had taken effect",
  'refresh-redo': "the target does not carry this step's tags: the refresh is redone",
  'remove-done': 'the target is gone: the removal had taken effect',
  'remove-redo': 'the target is still there: the removal is redone',
  'status-done': 'the instance is in the wanted status: the step had taken effect',
  'status-redo': 'the instance is not in the wanted status: the step is redone',
  'status-absent': 'the instance is gone: the step fails',
};

/** One sentence of the explanation, with the record it is read from. */
export interface WhyLine {
  readonly seq: number;
  readonly text: string;
}

/** What one op did, as `why` tells it. */
export interface OpStory {
  readonly op: string;
  readonly kind: string;
  readonly first: number;
  last: number;
  readonly lines: WhyLine[];
  outcome: string | null;
  /** The op ended with the workshop gone (removed, or a launch undone): what came before it is another workshop's story. */
  endedAbsent: boolean;
}

export interface WhyReport {
  readonly workshop: string;
  /** `absent` when the workshop does not exist at the end of the journal. */
  readonly status: string;
  readonly lastError: { op: string; code: string; message: string } | null;
  readonly ops: OpStory[];
  /** Records about the workshop outside its ops: objects found missing or settled, orphans removed. */
  readonly observations: WhyLine[];
  /** The record that set the status it has now, and why. */
  readonly because: WhyLine | null;
}

const quote = (s: string) => JSON.stringify(s);

/** What `why` has to say about a workshop, built record by record. */
export interface Explainer {
  /** Take the next record (upcast, in journal order). */
  feed(r: JournalRecord): void;
  /** The explanation so far; `seen` once an op on the workshop started. */
  result(): Omit<WhyReport, 'status' | 'lastError'> & { seen: boolean };
}

/** Build the explanation for `name` as the journal is read (nothing is kept but the story). */
export function explainer(name: string, plans: Plans = new Map()): Explainer {
  const ops = new Map<string, OpStory>();
  const observations: WhyLine[] = [];
  let because: WhyLine | null = null;
  let seen = false;
  const label = (op: string, phase: 'do' | 'undo' | 'cleanup', step: number) => quote(stepLabel(plans, op, phase, step));
  const feed = (r: JournalRecord): void => {
    remember(r, plans);
    const d = r.data as { op?: string };
    const story = d.op !== undefined ? ops.get(d.op) : undefined;
    const add = (text: string) => {
      story!.lines.push({ seq: r.seq, text });
      story!.last = r.seq;
    };
    switch (r.type) {
      case 'op.started':
        if (r.data.workshop !== name) break;
        seen = true;
        ops.set(r.data.op, { op: r.data.op, kind: r.data.kind, first: r.seq, last: r.seq, lines: [], outcome: null, endedAbsent: false });
        ops.get(r.data.op)!.lines.push({ seq: r.seq, text: `${r.data.kind}${r.data.sdk ? ` to ${r.data.sdk}` : ''} planned ${r.data.plan.do.length} steps: ${r.data.plan.do.map((s) => s.label).join(', ')}` });
        because = { seq: r.seq, text: `${r.data.op} ${r.data.kind} started at seq ${r.seq} and has not ended: the next start (or atelier reconcile) settles it` };
        break;
      case 'effect.succeeded':
        if (story) add(`${r.data.phase} step ${r.data.step} ${label(r.data.op, r.data.phase, r.data.step)} succeeded`);
        break;
      case 'effect.requested':
        if (story && r.data.attempt > 1) add(`${r.data.phase} step ${r.data.step} ${label(r.data.op, r.data.phase, r.data.step)} retried (attempt ${r.data.attempt})`);
        break;
      case 'effect.failed':
        if (story) add(`${r.data.phase} step ${r.data.step} ${label(r.data.op, r.data.phase, r.data.step)} FAILED with ${r.data.code}: ${r.data.message}`);
        break;
      case 'effect.observed':
        if (story) {
          const o = r.data.observation;
          const seenAs = o.present ? `present${o.owned === false ? ', not ours' : ''}${o.op ? `, made by ${o.op}` : ''}${o.status ? `, ${o.status}` : ''}` : 'absent';
          add(
            `after a crash, reconciliation probed ${r.data.phase} step ${r.data.step} ${label(r.data.op, r.data.phase, r.data.step)}: the target was ${seenAs}; ` +
              `row ${quote(r.data.row)} of the reconciliation table decided ${r.data.decision} (${ROWS[r.data.row] ?? 'see docs/design.md'})${r.data.failure ? `, failing the op with ${r.data.failure.code}` : ''}`,
          );
        }
        break;
      case 'op.phase':
        if (!story) break;
        if (r.data.phase === 'undo') {
          const steps = (r.data.steps ?? []).map((s) => s.label);
          add(`so it is undone (${r.data.code ?? r.data.reason}${r.data.message ? `: ${r.data.message}` : ''}): ${steps.length ? steps.join(', ') : 'nothing to undo'}`);
        } else if (r.data.phase === 'cleanup') add('its steps are done; cleaning up');
        break;
      case 'op.finished': {
        if (!story) break;
        const o = r.data;
        const how = o.outcome === 'done' ? 'finished' : o.outcome === 'undone' ? `was undone${o.code ? ` (${o.code}${o.message ? `: ${o.message}` : ''})` : ''}` : `gave up: BROKEN${o.code ? ` (${o.code}${o.message ? `: ${o.message}` : ''})` : ''}`;
        const after = o.status === 'absent' ? 'the workshop no longer exists' : `the workshop is ${o.status}`;
        story.outcome = o.outcome;
        story.endedAbsent = o.status === 'absent';
        add(`${how}; ${after}${o.garbage.length ? `; left ${o.garbage.map((g) => g.name).join(', ')} to gc` : ''}`);
        because = { seq: r.seq, text: `${o.op} ${story.kind} ${how} at seq ${r.seq}, and ${after}` };
        break;
      }
      case 'object.missing': {
        if (r.data.object.workshop !== name && r.key !== name) break;
        const what = `${r.data.object.kind} ${r.data.object.ref.space}/${r.data.object.ref.name}`;
        const line = { seq: r.seq, text: `reconciliation found ${what} missing on the backend${r.data.workshop ? `: the workshop becomes ${r.data.workshop.status}${r.data.workshop.instanceLost ? ' (its instance is lost: only remove helps)' : ' (a refresh rebuilds it)'}` : ''}${r.data.forgetStash ? '; the stash is forgotten' : ''}` };
        observations.push(line);
        if (r.data.workshop) because = { seq: r.seq, text: `at seq ${r.seq} ${line.text}` };
        break;
      }
      case 'object.settled':
        if (r.data.object.workshop === name) observations.push({ seq: r.seq, text: `reconciliation settled ${r.data.object.ref.space}/${r.data.object.ref.name}, left unfinished by ${r.data.object.op ?? 'an op'}: ${r.data.present ? 'present' : 'absent'}${r.data.forgetStash ? '; the stash is forgotten' : ''}` });
        break;
      case 'object.orphan-removed':
        if (r.data.object.workshop === name) observations.push({ seq: r.seq, text: `${r.data.object.ref.space}/${r.data.object.ref.name} (op ${r.data.object.op ?? '?'}) was on the backend with nothing in the journal accounting for it: removed` });
        break;
      default:
        break;
    }
  };
  return { feed, result: () => ({ workshop: name, ops: [...ops.values()], observations, because, seen }) };
}

export async function replayWhyCommand(ctx: Context, name: string, opts: { journal?: string; until?: number; all?: boolean }): Promise<number> {
  const dir = await journalDirOf({ ...opts, stateDir: ctx.stateDir });
  const known = new Set<string>();
  const teller = explainer(name);
  const { state, scan } = await streamWalk(
    dir,
    (r) => {
      if (r.type === 'op.started') known.add(r.data.workshop);
      teller.feed(r);
    },
    opts.until,
  );
  const facts = await streamFacts(dir, scan);
  const story = teller.result();
  const ws = state.workshops[name];
  if (!story.seen && !ws) {
    throw new AtelierError('NOT_FOUND', `no op in this journal concerns a workshop named ${quote(name)}: give one of ${[...known].sort().join(', ') || '(none: the journal holds no op)'}`, { workshop: name });
  }
  // The workshop as it is now began after the last op that left it absent (unless --all, or it is absent now).
  let ops = story.ops;
  let observations = story.observations;
  let earlier = 0;
  const gone = ops.findLastIndex((o) => o.endedAbsent);
  if (!opts.all && ws && gone >= 0) {
    earlier = gone + 1;
    const from = ops[gone]!.last;
    ops = ops.slice(gone + 1);
    observations = observations.filter((l) => l.seq > from);
  }
  const report: WhyReport = { workshop: name, status: ws?.status ?? 'absent', lastError: ws?.lastError ?? null, ops, observations, because: story.because };
  if (ctx.out.json) {
    ctx.out.result({ ...facts, seq: state.seq, earlierOps: earlier, ...report }, () => '');
    return 0;
  }
  const text = [`${name} is ${report.status === 'absent' ? 'absent (it does not exist)' : report.status} at seq ${state.seq}${report.lastError ? `; last error ${report.lastError.code} from ${report.lastError.op}: ${report.lastError.message}` : ''}.`];
  if (earlier) text.push(`(${earlier} earlier op${earlier > 1 ? 's' : ''} ended with no workshop ${name}: --all shows them)`);
  for (const op of report.ops) {
    text.push('', `${op.op} ${op.kind} (seq ${op.first}-${op.last})${op.outcome ? `: ${op.outcome}` : ': in progress'}`);
    for (const l of op.lines) text.push(`  ${String(l.seq).padStart(6)}  ${l.text}`);
  }
  if (report.observations.length) {
    text.push('', 'reconciliation and gc:');
    for (const l of report.observations) text.push(`  ${String(l.seq).padStart(6)}  ${l.text}`);
  }
  if (report.because) text.push('', `because: ${report.because.text}.`);
  if (report.status === 'broken') text.push(ws && !ws.instancePresent ? `to repair: its instance is lost; atelier remove ${name}, then launch it again` : `to repair: atelier refresh FILE rebuilds it (or atelier unstash ${name} when it has a stash), or atelier remove ${name}`);
  text.push(...damageLines(facts));
  ctx.out.result({}, () => text.join('\n'));
  return 0;
}

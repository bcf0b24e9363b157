/**
 * Changes: what the daemon reports of each operation, in the shape of snapd's and workshopd's
 * changes (`/v1/changes`): a kind, a summary, a status, its tasks with their own status and
 * progress, spawn and ready times, and the error.
 *
 * A change is an op of the journal: its id is the op id, and it is folded from the journal's
 * records (`foldChange`), so a change's history survives a restart of the daemon, and a change in
 * flight when the daemon was killed shows the outcome the next start's reconciliation gave it. A
 * transient container's run is a change too (its op id is in `container.created`, in the volatile
 * journal). `gc` and `reconcile` journal no op: their changes live in the daemon's memory.
 *
 * | journal                          | change                      | task                       |
 * | -------------------------------- | --------------------------- | -------------------------- |
 * | op.started                       | Doing, one task a step      | Do                         |
 * | effect.requested                 |                             | Doing                      |
 * | effect.succeeded / observed done |                             | Done                       |
 * | effect.failed                    |                             | Error (Doing again if retried) |
 * | op.phase undo                    | Undoing, one task an undo step | steps never run: Hold   |
 * | op.finished done/undone/broken   | Done / Undone / Error       | steps never run: Hold      |
 *
 * @example
 * ```ts
 * const book = new ChangeBook();
 * for (const r of records) book.apply(r, 'durable');
 * book.get('op-7')?.status; // 'Done'
 * ```
 */
import type { JournalRecord } from '../events/catalogue.ts';
import type { PlanStep } from '../machines/index.ts';

export type Status = 'Do' | 'Doing' | 'Done' | 'Undoing' | 'Undone' | 'Error' | 'Hold';

export interface Task {
  readonly id: string;
  /** `do`, `undo` or `cleanup`: the phase of the op the step belongs to. */
  readonly kind: string;
  readonly summary: string;
  status: Status;
  progress: { label: string; done: number; total: number };
  log: string[];
  'spawn-time'?: string;
  'ready-time'?: string;
}

export interface Change {
  readonly id: string;
  readonly kind: string;
  readonly summary: string;
  status: Status;
  ready: boolean;
  readonly 'spawn-time': string;
  'ready-time'?: string;
  err?: string;
  /** The error's code and message apart (`err` is `CODE: message`). */
  error?: { kind: string; message: string };
  tasks: Task[];
  /** What the change produced, when it produced something: a run's exit code and output, gc's orphans. */
  data?: Record<string, unknown>;
}

/** How many finished changes are kept (the oldest go first); changes in progress are always kept. */
export const KEEP_READY = 2000;

const task = (id: string, kind: string, step: PlanStep | string): Task => ({
  id,
  kind,
  summary: typeof step === 'string' ? step : step.label,
  status: 'Do',
  progress: { label: '', done: 0, total: 1 },
  log: [],
});

function taskDone(t: Task, at: string): void {
  t.status = 'Done';
  t['ready-time'] = at;
  t.progress.done = t.progress.total;
}

const summaryOf = (kind: string, workshop: string, sdk?: string): string => `${kind[0]!.toUpperCase()}${kind.slice(1)} workshop "${workshop}"${sdk ? ` to SDK "${sdk}"` : ''}`;

/** The changes, folded from journal records, plus those the daemon keeps itself. */
export class ChangeBook {
  private readonly changes = new Map<string, Change>();
  /** How many changes are ready (kept by `finish` and `prune`, not counted each time). */
  private ready = 0;
  /** Containers' ids to the change (op id) that ran them. */
  private readonly runs = new Map<string, string>();
  private readonly waiters = new Map<string, Array<() => void>>();
  /** Changes this daemon runs and ends itself (a run's result is not in the journal). */
  private readonly driven = new Set<string>();
  /**
   * Ends of driven changes whose first record the book has not seen yet (a run on a fast backend can
   * end before its `container.created` reaches the book): applied when it does.
   */
  private readonly early = new Map<string, Parameters<ChangeBook['finish']>>();

  get(id: string): Change | undefined {
    return this.changes.get(id);
  }

  /** Every change, oldest first; `select` as snapd's: `all`, `in-progress` (default) or `ready`. */
  list(select: 'all' | 'in-progress' | 'ready' = 'in-progress'): Change[] {
    const all = [...this.changes.values()];
    return select === 'all' ? all : all.filter((c) => c.ready === (select === 'ready'));
  }

  /** Settles once change `id` is ready (at once if it is, or does not exist). */
  whenReady(id: string): Promise<void> {
    const c = this.changes.get(id);
    if (!c || c.ready) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.waiters.get(id) ?? [];
      list.push(resolve);
      this.waiters.set(id, list);
    });
  }

  /** The daemon runs change `id` and will end it (`finish`), with what it produced. */
  drive(id: string): void {
    this.driven.add(id);
  }

  /** A change of the daemon's own (gc, reconcile): one task, in memory only. */
  start(id: string, kind: string, summary: string, at: string): Change {
    const c: Change = { id, kind, summary, status: 'Doing', ready: false, 'spawn-time': at, tasks: [{ ...task(`${id}/0`, kind, summary), status: 'Doing', 'spawn-time': at }] };
    this.changes.set(id, c);
    return c;
  }

  /** End a change: its status and error, what it produced; every task not finished is put on hold. */
  finish(id: string, status: 'Done' | 'Undone' | 'Error', at: string, err?: string, data?: Record<string, unknown>, error?: { kind: string; message: string }): void {
    const c = this.changes.get(id);
    if (!c) {
      if (this.driven.has(id)) this.early.set(id, [id, status, at, err, data, error]);
      return;
    }
    if (data) c.data = { ...c.data, ...data };
    if (c.ready) return;
    c.status = status;
    c.ready = true;
    this.ready++;
    c['ready-time'] = at;
    if (err !== undefined) c.err = err;
    if (error) c.error = error;
    for (const t of c.tasks) {
      if (t.status === 'Do') t.status = 'Hold';
      else if (t.status === 'Doing') {
        t.status = status === 'Done' ? 'Done' : 'Error';
        t['ready-time'] = at;
        if (status === 'Done') t.progress.done = t.progress.total;
      }
    }
    for (const w of this.waiters.get(id) ?? []) w();
    this.waiters.delete(id);
    this.driven.delete(id);
    this.prune();
  }

  /** Attach what a change produced (a run's result, which the journal does not hold). */
  attach(id: string, data: Record<string, unknown>): void {
    const c = this.changes.get(id);
    if (c) c.data = { ...c.data, ...data };
  }

  private taskOf(op: string, phase: string, step: number): Task | undefined {
    const c = this.changes.get(op);
    return c?.tasks.find((t) => t.id === `${op}/${phase}/${step}`);
  }

  /** Fold one journal record (durable or volatile) into the changes. Unknown types are ignored. */
  apply(r: JournalRecord, journal: 'durable' | 'volatile'): void {
    const d = r.data as Record<string, any>;
    switch (journal === 'durable' ? r.type : `volatile:${r.type}`) {
      case 'op.started': {
        const plan = d.plan as { do: PlanStep[]; cleanup: PlanStep[] };
        const tasks = [...plan.do.map((s, i) => task(`${d.op}/do/${i}`, 'do', s)), ...plan.cleanup.map((s, i) => task(`${d.op}/cleanup/${i}`, 'cleanup', s))];
        this.changes.set(d.op, { id: d.op, kind: d.kind, summary: summaryOf(d.kind, d.workshop, d.sdk), status: 'Doing', ready: false, 'spawn-time': d.at, tasks });
        this.finishEarly(d.op);
        return;
      }
      case 'effect.requested': {
        const t = this.taskOf(d.op, d.phase, d.step);
        if (!t) return;
        t.status = 'Doing';
        t['spawn-time'] ??= d.at;
        t.progress.label = d.attempt > 1 ? `attempt ${d.attempt}` : '';
        return;
      }
      case 'effect.succeeded': {
        const t = this.taskOf(d.op, d.phase, d.step);
        if (t) taskDone(t, d.at);
        return;
      }
      case 'effect.observed': {
        const t = this.taskOf(d.op, d.phase, d.step);
        if (!t) return;
        t.log.push(`${d.at} reconciliation: ${d.decision} (${d.row ?? 'v1'})`);
        if (d.decision === 'done') taskDone(t, d.at);
        return;
      }
      case 'effect.failed': {
        const t = this.taskOf(d.op, d.phase, d.step);
        if (!t) return;
        t.status = 'Error';
        t.log.push(`${d.at} ${d.code}: ${d.message}`);
        return;
      }
      case 'op.phase': {
        const c = this.changes.get(d.op);
        if (!c || d.phase !== 'undo') return;
        c.status = 'Undoing';
        for (const t of c.tasks) if (t.status === 'Do') t.status = 'Hold';
        const steps = (d.steps ?? []) as PlanStep[];
        c.tasks.push(...steps.map((s, i) => task(`${d.op}/undo/${i}`, 'undo', s)));
        return;
      }
      case 'op.finished': {
        const failed = d.outcome !== 'done';
        const error = { kind: d.code ?? 'OP_FAILED', message: d.message ?? '' };
        this.finish(d.op, d.outcome === 'done' ? 'Done' : d.outcome === 'undone' ? 'Undone' : 'Error', d.at, failed ? `${error.kind}: ${error.message}` : undefined, undefined, failed ? error : undefined);
        return;
      }
      case 'volatile:container.created': {
        const tasks = [task(`${d.op}/run/0`, 'run', `create and start ${d.ref.name} from ${d.source.name}`), task(`${d.op}/run/1`, 'run', `remove ${d.ref.name}`)];
        tasks[0]!.status = 'Doing';
        this.runs.set(d.id, d.op);
        this.changes.set(d.op, { id: d.op, kind: 'run', summary: `Run a container from "${d.source.name}"${d.keep ? ' (kept)' : ''}`, status: 'Doing', ready: false, 'spawn-time': d.at, tasks, data: { id: d.id } });
        this.finishEarly(d.op);
        return;
      }
      case 'volatile:container.started': {
        const c = this.changes.get(this.runs.get(d.id) ?? '');
        const t = c?.tasks[0];
        if (t) taskDone(t, d.at);
        // A kept container, read back from the journal: its run ended once it was running.
        if (c && !c.ready && !this.driven.has(c.id) && c.summary.endsWith('(kept)')) this.finish(c.id, 'Done', d.at);
        return;
      }
      case 'volatile:container.removed': {
        const c = this.changes.get(this.runs.get(d.id) ?? '');
        const t = c?.tasks[1];
        if (t) taskDone(t, d.at);
        if (c && !c.ready && !this.driven.has(c.id) && c.tasks[0]!.status === 'Done') this.finish(c.id, 'Done', d.at);
        this.runs.delete(d.id);
        return;
      }
      default:
        return;
    }
  }

  private finishEarly(id: string): void {
    const args = this.early.get(id);
    if (!args) return;
    this.early.delete(id);
    this.finish(...args);
  }

  private prune(): void {
    if (this.ready <= KEEP_READY) return;
    for (const [id, c] of this.changes) {
      if (this.ready <= KEEP_READY) break;
      if (c.ready) {
        this.changes.delete(id);
        this.ready--;
      }
    }
  }
}

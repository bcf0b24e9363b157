/**
 * Where the CLI's commands run: through atelierd when it answers on its socket for the same state
 * directory (`daemon-host.ts`), else in this process (`local-host.ts`; `--no-daemon` forces it).
 * Either way a command sees the same results, errors and exit codes.
 *
 * In process, reading is free: `list` and `show` read the checkpoint and journal read-only (no
 * lock, no write), and a command is first checked against that state by the domain core's
 * `decide`, so one refused for bad input opens nothing and writes nothing.
 *
 * @example
 * ```ts
 * const host = await hostFor(ctx);
 * const ws = await host.list();
 * ```
 */
import type { CommandOptions, ExecRequest, GcReport, ReconcileReport, RunRequest, RunResult, UsageReport, WorkshopView } from '../engine/api.ts';
import type { SpawnedProcess } from '../backends/types.ts';
import type { IsolationReport } from '../backends/select.ts';

export interface Host {
  /** `local` or `daemon` (for messages and tests). */
  readonly kind: 'local' | 'daemon';
  list(): Promise<WorkshopView[]>;
  show(name: string): Promise<WorkshopView>;
  /** What a started workshop is isolated by on this host's backend (`atelier show`). */
  isolation(): Promise<IsolationReport>;
  /** `file`: a workshop file (or its project directory). */
  launch(file: string, opts: CommandOptions): Promise<WorkshopView>;
  refresh(file: string, opts: CommandOptions): Promise<WorkshopView>;
  stash(name: string, opts: CommandOptions): Promise<WorkshopView>;
  unstash(name: string, opts: CommandOptions): Promise<WorkshopView>;
  restore(name: string, sdk: string, opts: CommandOptions): Promise<WorkshopView>;
  remove(name: string, opts: CommandOptions): Promise<void>;
  /** `atelier start` / `atelier stop`: journaled ops of one step. */
  start(name: string, opts: CommandOptions): Promise<WorkshopView>;
  stop(name: string, opts: CommandOptions): Promise<WorkshopView>;
  /**
   * `atelier exec` and `atelier shell` (with `req.terminal`): start a process in the workshop with
   * its streams connected; `exit` gives its status. In process it holds no lock (nothing is
   * journaled), so a shell left open blocks no other command.
   */
  exec(name: string, req: ExecRequest): Promise<SpawnedProcess>;
  run(req: RunRequest, opts: CommandOptions): Promise<RunResult>;
  /** `atelier gc`: orphans; with `cache`, also every cached SDK layer (`GcReport.evicted`). */
  gc(dryRun: boolean, cache?: boolean): Promise<GcReport>;
  reconcile(): Promise<ReconcileReport>;
  bases(): Promise<{ bases: string[]; defaultBase: string }>;
  /** `atelier df`: the disks, degraded mode, and what each object and the journal hold. Reads only. */
  df(): Promise<UsageReport>;
}

/**
 * The CLI in process: reads answer from the state read-only; commands are checked against it by
 * `decide` first (a refused one writes nothing), then run on an engine opened for the command.
 *
 * A command is not pre-checked when the state holds an op in progress (a crash left it): opening the
 * engine reconciles it first, and what is allowed then may differ.
 *
 * @example
 * ```ts
 * const host = new LocalHost(ctx);
 * await host.launch('fixtures/quickstart/workshop.yaml', opts);
 * ```
 */
import { mkdir } from 'node:fs/promises';
import { isBackendError, type Backend, type SpawnedProcess } from '../backends/types.ts';
import { execIn } from '../engine/exec.ts';
import { addBase as addBackendBase, createBackend, effectiveDefaultBase, isolationOf, type IsolationReport } from '../backends/select.ts';
import { sortedByName, type CommandOptions, type Engine, type ExecRequest, type GcReport, type ReconcileReport, type RunRequest, type RunResult, type UsageReport, type WorkshopView } from '../engine/api.ts';
import { didYouMeanHint } from '../engine/hints.ts';
import { readState } from '../engine/read-state.ts';
import { degradedError, measureSpace, PRECHECK_IDS, usageReport } from '../engine/space.ts';
import { AtelierError, isAtelierError } from '../machines/errors.ts';
import { decide, type DomainState, type Input, type WorkshopSpec } from '../machines/index.ts';
import type { Context } from './context.ts';
import type { Host } from './host.ts';

/** Ids for a pre-check: a decision's ids are only drawn once a command is accepted, and thrown away here. */

async function quietly(fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch {
    // Closing is best effort: the command's own outcome is what the user needs to see.
  }
}

export class LocalHost implements Host {
  readonly kind = 'local' as const;

  constructor(private readonly ctx: Context) {}

  /** The state, read-only; a state directory that holds none is an error (nothing is created). */
  private async state(): Promise<DomainState> {
    const st = await readState(this.ctx.stateDir, this.ctx.runDir);
    if (!st) throw noState(this.ctx.stateDir);
    return st;
  }

  private names(st: DomainState): string[] {
    return Object.keys(st.durable.workshops);
  }

  async list(): Promise<WorkshopView[]> {
    const st = await this.state();
    return sortedByName(Object.values(st.durable.workshops));
  }

  async show(name: string): Promise<WorkshopView> {
    const st = await this.state();
    const ws = st.durable.workshops[name];
    if (!ws) throw new AtelierError('NOT_FOUND', `no workshop "${name}"${didYouMeanHint(name, this.names(st))} (list them with \`atelier list\`)`, { workshop: name });
    return ws;
  }

  /**
   * Check a command against the state as the engine would (without opening it): throws what the
   * engine would refuse it with. A missing state passes only for `launch`.
   */
  private async precheck(input: Input | null, launch = false): Promise<void> {
    const st = await readState(this.ctx.stateDir, this.ctx.runDir);
    if (!st) {
      if (launch) return;
      throw noState(this.ctx.stateDir);
    }
    if (input === null || Object.keys(st.durable.ops).length > 0) return;
    try {
      decide(st, input);
    } catch (e) {
      if (!isAtelierError(e)) throw e;
      // The hints the engine adds: the closest SDK, the closest workshop.
      const sdk = input.type === 'command' && input.kind === 'restore' ? input.sdk : undefined;
      const ws = input.type === 'command' ? st.durable.workshops[input.workshop] : undefined;
      if (sdk !== undefined && ws) throw new AtelierError(e.code, `${e.message}${didYouMeanHint(sdk, ws.sdks.map((l) => l.sdk))}`, { ...e.info });
      const name = input.type === 'command' ? input.workshop : input.type === 'run' ? input.from : '';
      if (e.code === 'NOT_FOUND' && name && !e.message.includes('did you mean')) throw new AtelierError('NOT_FOUND', `${e.message}${didYouMeanHint(name, this.names(st))}`, { ...e.info });
      throw e;
    }
  }

  private commandCheck(kind: Extract<Input, { type: 'command' }>['kind'], workshop: string, more: { spec?: WorkshopSpec; sdk?: string } = {}): Input {
    return { type: 'command', kind, workshop, ...more, owner: this.ctx.owner, at: '', ids: PRECHECK_IDS };
  }

  /**
   * Open the engine on the configured backend, run `fn`, close both. `making`: a command that
   * makes things, refused with `NO_SPACE` before anything is opened while a disk is full (the
   * engine would refuse it too, after journaling its start).
   */
  private async withEngine<T>(fn: (engine: Engine, backend: Backend) => Promise<T>, opts: { reconcile?: boolean; making?: { kind: string; name: string } } = {}): Promise<T> {
    const { openEngine } = await import('../engine/open.ts');
    // The backend first: one that is down is refused before any directory is made.
    const backend = await createBackend(this.ctx.backendConfig);
    try {
      await backend.ensureProjects(this.ctx.owner).catch((e: unknown) => {
        if (isBackendError(e, 'UNAVAILABLE')) throw new AtelierError('UNAVAILABLE', `the ${backend.kind} backend is unavailable: ${e.message}`, { backend: backend.kind }, { cause: e });
        throw e;
      });
      if (opts.making) {
        // The reserve is not counted: opening the engine writes it again when there is room.
        const space = await measureSpace({ stateDir: this.ctx.stateDir, backend, minFree: this.ctx.minFree, reserveWhole: null });
        if (space.degraded) throw degradedError(opts.making.kind, opts.making.name, space);
      }
      await ensureDirs(this.ctx);
    } catch (e) {
      await quietly(() => backend.close());
      throw e;
    }
    let engine: Engine;
    try {
      engine = await openEngine({ stateDir: this.ctx.stateDir, runDir: this.ctx.runDir, backend, owner: this.ctx.owner, minFreeBytes: this.ctx.minFree, ...(this.ctx.cacheKeep ? { cacheKeep: this.ctx.cacheKeep } : {}), ...(opts.reconcile === undefined ? {} : { reconcile: opts.reconcile }) });
    } catch (e) {
      await quietly(() => backend.close());
      throw e;
    }
    try {
      return await fn(engine, backend);
    } finally {
      await quietly(() => engine.close());
      await quietly(() => backend.close());
    }
  }

  private async spec(file: string): Promise<WorkshopSpec> {
    const { loadWorkshopFile } = await import('../engine/workshop-file.ts');
    return loadWorkshopFile(file, { defaultBase: '' });
  }

  private async launchOrRefresh(kind: 'launch' | 'refresh', file: string, opts: CommandOptions): Promise<WorkshopView> {
    const spec0 = await this.spec(file);
    await this.precheck(this.commandCheck(kind, spec0.name, { spec: spec0 }), kind === 'launch');
    return this.withEngine(async (engine, backend) => {
      const spec = spec0.defaultBase ? { ...spec0, base: effectiveDefaultBase(backend, this.ctx.backendConfig) } : spec0;
      return kind === 'launch' ? engine.launch(spec, opts) : engine.refresh(spec, opts);
    }, { making: { kind, name: spec0.name } });
  }

  launch(file: string, opts: CommandOptions): Promise<WorkshopView> {
    return this.launchOrRefresh('launch', file, opts);
  }

  refresh(file: string, opts: CommandOptions): Promise<WorkshopView> {
    return this.launchOrRefresh('refresh', file, opts);
  }

  async stash(name: string, opts: CommandOptions): Promise<WorkshopView> {
    await this.precheck(this.commandCheck('stash', name));
    return this.withEngine((engine) => engine.stash(name, opts), { making: { kind: 'stash', name } });
  }

  async unstash(name: string, opts: CommandOptions): Promise<WorkshopView> {
    await this.precheck(this.commandCheck('unstash', name));
    return this.withEngine((engine) => engine.unstash(name, opts), { making: { kind: 'unstash', name } });
  }

  async restore(name: string, sdk: string, opts: CommandOptions): Promise<WorkshopView> {
    await this.precheck(this.commandCheck('restore', name, { sdk }));
    return this.withEngine((engine) => engine.restore(name, sdk, opts), { making: { kind: 'restore', name } });
  }

  async remove(name: string, opts: CommandOptions): Promise<void> {
    await this.precheck(this.commandCheck('remove', name));
    await this.withEngine((engine) => engine.remove(name, opts));
  }

  isolation(): Promise<IsolationReport> {
    return isolationOf(this.ctx.backendConfig.kind);
  }

  async start(name: string, opts: CommandOptions): Promise<WorkshopView> {
    await this.precheck(this.commandCheck('start', name));
    return this.withEngine((engine) => engine.start(name, opts));
  }

  async stop(name: string, opts: CommandOptions): Promise<WorkshopView> {
    await this.precheck(this.commandCheck('stop', name));
    return this.withEngine((engine) => engine.stop(name, opts));
  }

  /**
   * Without the engine: the state read-only and the backend directly, so an open shell holds no
   * lock. The backend is closed once the process has ended.
   */
  async exec(name: string, req: ExecRequest): Promise<SpawnedProcess> {
    const world = await this.state();
    const backend = await createBackend(this.ctx.backendConfig);
    let p: SpawnedProcess;
    try {
      p = await execIn({ backend, world }, name, req);
    } catch (e) {
      await quietly(() => backend.close());
      if (isBackendError(e, 'UNAVAILABLE')) throw new AtelierError('UNAVAILABLE', `the ${backend.kind} backend is unavailable: ${e.message}`, { backend: backend.kind }, { cause: e });
      throw e;
    }
    const exit = p.exit.finally(() => quietly(() => backend.close()));
    return { exit, resize: (c, r) => p.resize(c, r), kill: (s) => p.kill(s) };
  }

  async run(req: RunRequest, opts: CommandOptions): Promise<RunResult> {
    await this.precheck({ type: 'run', from: req.from, at: '', ids: PRECHECK_IDS });
    return this.withEngine((engine) => engine.run(req, opts), { making: { kind: 'run', name: req.from } });
  }

  async gc(dryRun: boolean, cache = false): Promise<GcReport> {
    await this.precheck(null);
    return this.withEngine((engine) => engine.gc({ dryRun, ...(cache ? { cache } : {}) }));
  }

  async reconcile(): Promise<ReconcileReport> {
    await this.precheck(null);
    // Opened without the start-up pass, so the report covers this run.
    return this.withEngine((engine) => engine.reconcile(), { reconcile: false });
  }

  async bases(): Promise<{ bases: string[]; defaultBase: string }> {
    const backend = await createBackend(this.ctx.backendConfig, { readOnly: true });
    try {
      return { bases: await backend.listBases(), defaultBase: effectiveDefaultBase(backend, this.ctx.backendConfig) };
    } finally {
      await quietly(() => backend.close());
    }
  }

  /**
   * `atelier df`, read-only as `list` is: the state read without the lock, the backend opened
   * read-only for its disk and what each object holds.
   */
  async df(): Promise<UsageReport> {
    const st = await this.state();
    const backend = await createBackend(this.ctx.backendConfig, { readOnly: true });
    try {
      // The reserve is not judged here: the next engine to open writes a spent one again if it
      // can (the journal line shows whether there is one).
      return await usageReport({ stateDir: this.ctx.stateDir, backend, minFree: this.ctx.minFree, reserveWhole: null, owner: this.ctx.owner, state: st.durable });
    } finally {
      await quietly(() => backend.close());
    }
  }

  /**
   * `atelier base add`: on the backend, no engine. `source`: a path, or a function that makes the
   * root (a Debian build), called once the backend is known to take bases and the name is free.
   */
  async addBase(name: string, source: string | (() => Promise<string>)): Promise<void> {
    await ensureDirs(this.ctx);
    const backend = await createBackend(this.ctx.backendConfig);
    try {
      await addBackendBase(backend, name, source);
    } finally {
      await quietly(() => backend.close());
    }
  }
}

/** A state directory that holds no state: a mistyped `--state-dir`, most likely. */
export function noState(stateDir: string): AtelierError {
  return new AtelierError('NOT_FOUND', `no atelier state in ${stateDir}: nothing was ever launched there (check --state-dir, or launch a workshop first)`, { stateDir });
}

/**
 * Create the state and run directories up front, so that a directory the user may not create is
 * a clear invalid-input error naming the option to use, not an errno from deep in the engine.
 */
async function ensureDirs(ctx: Context): Promise<void> {
  const dirs: [string, string, string][] = [
    [ctx.stateDir, '--state-dir', 'set XDG_STATE_HOME or pass --state-dir DIR'],
    [ctx.runDir, '--run-dir', 'set XDG_RUNTIME_DIR or pass --run-dir DIR'],
  ];
  for (const [dir, option, fix] of dirs) {
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new AtelierError('INVALID_ARGUMENT', `cannot create ${option} directory ${dir} (${err.message}): ${fix}`, { option, path: dir }, { cause: e });
    }
  }
}

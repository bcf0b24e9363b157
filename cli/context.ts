/**
 * What every CLI command shares: the global options resolved to paths and an owner, opening the
 * engine (after input was validated) and closing it, progress, and Ctrl-C handling.
 *
 * @example
 * ```ts
 * const ctx = resolveContext(globals, io);
 * await withEngine(ctx, async (engine, backend) => engine.list());
 * ```
 */
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { defaultRunDir, defaultStateDir } from '../engine/paths.ts';
import { AtelierError } from '../machines/errors.ts';
import type { Backend } from '../backends/types.ts';
import type { CommandOptions, Engine, EngineOptions } from '../engine/api.ts';
import { didYouMeanHint } from '../engine/hints.ts';
import { ownerName } from '../machines/names.ts';
import { type BackendConfig, type BackendKind, createBackend } from '../backends/select.ts';
import { describeError, Output } from './output.ts';
import { createProgress, type ProgressMode } from './progress.ts';

/** The global options as commander parses them. */
export interface GlobalOptions {
  stateDir?: string;
  runDir?: string;
  backend: BackendKind;
  lxdSocket?: string;
  baseDefault?: string;
  json?: boolean;
}

export interface Io {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
}

export interface Context {
  readonly out: Output;
  readonly backendConfig: BackendConfig;
  readonly stateDir: string;
  readonly runDir: string;
  readonly owner: string;
  readonly progressMode: ProgressMode;
  readonly io: Io;
}

export { defaultRunDir, defaultStateDir } from '../engine/paths.ts';

/** The current user's owner name; `os.userInfo()` throws when the uid has no passwd entry. */
export function currentOwner(): string {
  try {
    return ownerName(os.userInfo());
  } catch {
    return String(process.getuid?.() ?? 0);
  }
}

export function resolveContext(g: GlobalOptions, io: Io): Context {
  const stateDir = path.resolve(g.stateDir ?? defaultStateDir(io.env));
  const runDir = path.resolve(g.runDir ?? defaultRunDir(io.env));
  const owner = currentOwner();
  const json = g.json === true;
  if (g.baseDefault !== undefined && (g.baseDefault.trim() === '' || /[\s\x00-\x1f]/.test(g.baseDefault))) {
    throw new AtelierError('INVALID_ARGUMENT', `--base-default ${JSON.stringify(g.baseDefault)} is not a valid base name: give a base without spaces, e.g. --base-default busybox`, {
      option: 'base-default',
    });
  }
  return {
    out: new Output({ json, stdout: io.stdout, stderr: io.stderr }),
    backendConfig: {
      kind: g.backend,
      stateDir,
      runDir,
      owner,
      ...(g.lxdSocket === undefined ? {} : { lxdSocket: g.lxdSocket }),
      ...(g.baseDefault === undefined ? {} : { baseDefault: g.baseDefault }),
    },
    stateDir,
    runDir,
    owner,
    progressMode: json ? 'off' : io.stderr.isTTY ? 'tty' : 'plain',
    io,
  };
}

/**
 * The engine is imported on demand (a literal specifier: typed, and followed by the build and the
 * import rules), so `--help` and input errors never load it.
 */
async function loadOpenEngine(): Promise<(opts: EngineOptions) => Promise<Engine>> {
  return (await import('../engine/open.ts')).openEngine;
}

async function quietly(fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch {
    // Closing is best effort: the command's own outcome is what the user needs to see.
  }
}

/** Create just the backend (for `base add` / `base list`), closing it afterwards. */
export async function withBackend<T>(ctx: Context, fn: (backend: Backend) => Promise<T>): Promise<T> {
  const backend = await createBackend(ctx.backendConfig);
  try {
    return await fn(backend);
  } finally {
    await quietly(() => backend.close());
  }
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

/**
 * Open the engine on the configured backend, run `fn`, close both. Call it only once the
 * command's input is validated: opening appends to the journal (reconciliation).
 */
export async function withEngine<T>(ctx: Context, fn: (engine: Engine, backend: Backend) => Promise<T>, opts: { reconcile?: boolean } = {}): Promise<T> {
  const openEngine = await loadOpenEngine();
  await ensureDirs(ctx);
  const backend = await createBackend(ctx.backendConfig);
  let engine: Engine;
  try {
    engine = await openEngine({
      stateDir: ctx.stateDir,
      runDir: ctx.runDir,
      backend,
      owner: ctx.owner,
      ...(opts.reconcile === undefined ? {} : { reconcile: opts.reconcile }),
    });
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

/**
 * Command options for a long-running command: progress on stderr, and Ctrl-C (or SIGTERM) aborts
 * the command (the engine undoes it, exit 1); a second one exits at once, leaving recovery to the
 * next start.
 */
export async function withCommandOptions<T>(ctx: Context, fn: (opts: CommandOptions) => Promise<T>): Promise<T> {
  const progress = createProgress({ mode: ctx.progressMode, stream: ctx.io.stderr });
  const abort = new AbortController();
  const onSigint = (): void => {
    if (abort.signal.aborted) process.exit(130);
    ctx.out.note('\ninterrupted: undoing the command (press Ctrl-C again to quit now; the next start reconciles)');
    abort.abort();
  };
  // SIGTERM (a service manager stopping us) gets the same treatment: undo rather than leave
  // the work half-done for the next start to reconcile.
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  try {
    return await fn({ signal: abort.signal, onProgress: progress.onProgress });
  } finally {
    progress.stop();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}

/** Add a did-you-mean hint naming the closest existing workshop to a `NOT_FOUND` error. */
export function withWorkshopHint(engine: Engine, name: string, e: unknown): unknown {
  const { code, message } = describeError(e);
  if (code !== 'NOT_FOUND' || message.includes('did you mean')) return e;
  const hint = didYouMeanHint(
    name,
    engine.list().map((w) => w.name),
  );
  if (hint === '') return e;
  return new AtelierError('NOT_FOUND', `${message}${hint}`, { ...((e as AtelierError).info ?? {}), workshop: name }, { cause: e });
}

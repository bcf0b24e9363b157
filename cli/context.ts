/**
 * What every CLI command shares: the global options resolved to paths, an owner and a daemon
 * socket; progress, and Ctrl-C handling. Where a command runs is `connect.ts`'s choice.
 *
 * @example
 * ```ts
 * const ctx = resolveContext(globals, io);
 * await withCommandOptions(ctx, (opts) => host.launch(file, opts));
 * ```
 */
import os from 'node:os';
import path from 'node:path';
import { defaultRunDir, defaultSocket, defaultStateDir } from '../engine/paths.ts';
import { AtelierError, isAtelierError } from '../machines/errors.ts';
import type { CommandOptions, EngineOptions } from '../engine/api.ts';
import { ownerName } from '../machines/names.ts';
import type { BackendConfig, BackendKind } from '../backends/select.ts';
import { Output } from './output.ts';
import { createProgress, type ProgressMode } from './progress.ts';
import { DEFAULT_MIN_FREE, parseSize } from '../engine/sizes.ts';

/** The global options as commander parses them. */
export interface GlobalOptions {
  stateDir?: string;
  runDir?: string;
  backend: BackendKind;
  /** True when `--backend` was given (not the default). */
  backendGiven?: boolean;
  socket?: string;
  /** False with `--no-daemon`. */
  daemon?: boolean;
  lxdSocket?: string;
  baseDefault?: string;
  json?: boolean;
  /** `--min-free`: a size (`64M`); default `$ATELIER_MIN_FREE`, else the engine's. */
  minFree?: string;
  /** `--cache-keep`: a count (`10`) or a size (`20GiB`); default `$ATELIER_CACHE_KEEP`, else the engine's. */
  cacheKeep?: string;
}

/** The SDK cache's policy, as the engine takes it (`EngineOptions.cacheKeep`). */
export type CacheKeep = NonNullable<EngineOptions['cacheKeep']>;

export interface Io {
  /** What `exec` and `shell` read (default: this process's stdin). */
  readonly stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
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
  /** Whether to use atelierd, and on which socket. */
  readonly daemon: { readonly use: boolean; readonly socket: string; readonly backendGiven: boolean };
  /** The free-space watermark in bytes (`--min-free`, `ATELIER_MIN_FREE`; see engine/space.ts). */
  readonly minFree: number;
  /**
   * The SDK cache's policy for an engine opened in this process (`--cache-keep`,
   * `ATELIER_CACHE_KEEP`); absent: the engine's default (10 layers). atelierd keeps its own.
   */
  readonly cacheKeep?: CacheKeep;
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
  const minFreeText = g.minFree ?? io.env.ATELIER_MIN_FREE;
  const minFree = minFreeText === undefined || minFreeText === '' ? DEFAULT_MIN_FREE : parseSize(minFreeText);
  if (minFree === null) {
    const from = g.minFree !== undefined ? '--min-free' : 'ATELIER_MIN_FREE';
    throw new AtelierError('INVALID_ARGUMENT', `${from} ${JSON.stringify(minFreeText)} is not a size: give bytes or a size such as 64M or 1G`, { option: 'min-free' });
  }
  return {
    minFree,
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
    daemon: { use: g.daemon !== false, socket: path.resolve(g.socket ?? io.env.ATELIER_SOCKET ?? defaultSocket(io.env)), backendGiven: g.backendGiven === true },
  };
}

/**
 * `--cache-keep` (else `$ATELIER_CACHE_KEEP`) read as the engine reads it, or undefined for the
 * engine's default when neither is given (or the variable is empty). Asynchronous because the
 * parser's module (engine/cache.ts) brings rxjs, which every command would otherwise pay to load.
 *
 * @throws AtelierError `INVALID_ARGUMENT` (exit 2) naming the option, or the variable, and the value.
 */
export async function resolveCacheKeep(g: Pick<GlobalOptions, 'cacheKeep'>, env: NodeJS.ProcessEnv): Promise<CacheKeep | undefined> {
  const text = g.cacheKeep ?? env.ATELIER_CACHE_KEEP;
  if (text === undefined || (g.cacheKeep === undefined && text === '')) return undefined;
  const { parseCacheKeep } = await import('../engine/cache.ts');
  try {
    return parseCacheKeep(text);
  } catch (e) {
    if (g.cacheKeep !== undefined || !isAtelierError(e)) throw e;
    // From the environment: say so, as --min-free does for ATELIER_MIN_FREE.
    throw new AtelierError(e.code, e.message.startsWith('--cache-keep ') ? `ATELIER_CACHE_KEEP${e.message.slice('--cache-keep'.length)}` : `ATELIER_CACHE_KEEP: ${e.message}`, { ...e.info, option: 'cache-keep', env: 'ATELIER_CACHE_KEEP' });
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

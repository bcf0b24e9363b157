/**
 * Building the backend the CLI was asked for (`--backend fake|overlay|lxd`).
 *
 * Each adapter is imported on demand, so `atelier --help`, or a command on the fake backend, never
 * loads LXD or overlay code, and a build without an adapter fails with a clear `UNAVAILABLE`
 * (exit 5) instead of a module-loader stack trace.
 *
 * - fake: state persisted to `<stateDir>/fake-backend.json`, so commands work across processes.
 * - overlay: layers and instances under `<stateDir>/overlay`.
 * - lxd: the LXD REST API on `--lxd-socket` (the adapter's default otherwise), projects named after
 *   the owner.
 *
 * @example
 * ```ts
 * const backend = await createBackend({ kind: 'fake', stateDir: '/tmp/st', owner: 'alice' });
 * ```
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { AtelierError } from '../errors.ts';
import type { Backend } from '../backends/types.ts';

export const BACKEND_KINDS = ['fake', 'overlay', 'lxd'] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];

export interface BackendConfig {
  readonly kind: BackendKind;
  readonly stateDir: string;
  /** `--run-dir`: volatile state (the overlay backend's started instances and mounts live below it). */
  readonly runDir?: string;
  readonly owner: string;
  /** `--lxd-socket`. */
  readonly lxdSocket?: string;
  /** `--base-default`: the base used when a workshop file names none. */
  readonly baseDefault?: string;
}

type Factory = (opts: Record<string, unknown>) => Backend | Promise<Backend>;
type AdapterModule = Record<string, unknown>;

const FACTORIES: Record<BackendKind, string> = {
  fake: 'createFakeBackend',
  overlay: 'createOverlayBackend',
  lxd: 'createLxdBackend',
};

/** `<stateDir>/fake-backend.json`: where the fake keeps its objects between CLI runs. */
export function fakeStateFile(stateDir: string): string {
  return path.join(stateDir, 'fake-backend.json');
}

/** `<stateDir>/overlay`: the overlay backend's root. */
export function overlayRoot(stateDir: string): string {
  return path.join(stateDir, 'overlay');
}

/**
 * `<runDir>/overlay-<8 hex of the root>`: the overlay's volatile state. Keyed by the root because
 * the default run directory is shared by every state directory of the user.
 */
export function overlayRunDir(runDir: string, root: string): string {
  return path.join(runDir, `overlay-${createHash('sha256').update(root).digest('hex').slice(0, 8)}`);
}

async function importAdapter(kind: BackendKind): Promise<AdapterModule> {
  const url = new URL(`../backends/${kind}/index.ts`, import.meta.url);
  try {
    return (await import(url.href)) as AdapterModule;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    // Only "this adapter's entry file is missing" means unavailable; an error inside an adapter
    // that exists is a bug and must surface as it is.
    if (err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes(`backends/${kind}/index.ts`)) {
      throw new AtelierError(
        'UNAVAILABLE',
        `the ${kind} backend is not available in this build (backends/${kind}/index.ts is missing): use another backend, e.g. --backend fake`,
        { backend: kind },
        { cause: e },
      );
    }
    throw e;
  }
}

function factoryOf(kind: BackendKind, mod: AdapterModule): Factory {
  const f = mod[FACTORIES[kind]];
  if (typeof f !== 'function') {
    throw new AtelierError('UNAVAILABLE', `the ${kind} backend does not export ${FACTORIES[kind]}(): this build is incomplete; use another backend, e.g. --backend fake`, {
      backend: kind,
    });
  }
  return f as Factory;
}

/** Errors a factory throws (socket missing, ...) keep their code; anything else becomes UNAVAILABLE. */
function asUnavailable(kind: BackendKind, e: unknown): unknown {
  if (typeof (e as { code?: unknown })?.code === 'string' && e instanceof Error && (e.name === 'AtelierError' || e.name === 'BackendError')) return e;
  return new AtelierError('UNAVAILABLE', `cannot start the ${kind} backend: ${(e as Error)?.message ?? String(e)}`, { backend: kind }, { cause: e });
}

/**
 * Create the configured backend. Throws `UNAVAILABLE` when the adapter is missing from this build
 * or cannot start.
 *
 * @example
 * const b = await createBackend({ kind: 'overlay', stateDir, owner: 'alice', baseDefault: 'busybox' });
 */
export async function createBackend(cfg: BackendConfig): Promise<Backend> {
  const factory = factoryOf(cfg.kind, await importAdapter(cfg.kind));
  const common = cfg.baseDefault === undefined ? {} : { defaultBase: cfg.baseDefault };
  try {
    switch (cfg.kind) {
      case 'fake':
        await mkdir(cfg.stateDir, { recursive: true });
        return await factory({ ...common, file: fakeStateFile(cfg.stateDir) });
      case 'overlay':
        await mkdir(overlayRoot(cfg.stateDir), { recursive: true });
        return await factory({
          ...common,
          root: overlayRoot(cfg.stateDir),
          ...(cfg.runDir === undefined ? {} : { runDir: overlayRunDir(cfg.runDir, overlayRoot(cfg.stateDir)) }),
        });
      case 'lxd':
        return await factory({ ...common, owner: cfg.owner, ...(cfg.lxdSocket === undefined ? {} : { socket: cfg.lxdSocket }) });
    }
  } catch (e) {
    throw asUnavailable(cfg.kind, e);
  }
}

/**
 * The base a workshop file without `base:` gets: `--base-default` if given, else the backend's.
 */
export function effectiveDefaultBase(backend: Backend, cfg: BackendConfig): string {
  return cfg.baseDefault ?? backend.defaultBase;
}

/**
 * `atelier base add NAME PATH`: register a base directory or tarball. Only the overlay backend
 * has registrable bases (LXD bases are image aliases: use `lxc image import --alias`).
 *
 * @example
 * await addBase(backend, 'busybox', '/srv/bases/busybox');
 */
export async function addBase(backend: Backend, name: string, basePath: string): Promise<void> {
  const add = (backend as unknown as { addBase?: (name: string, path: string) => unknown }).addBase;
  if (typeof add !== 'function') {
    const hint = backend.kind === 'lxd' ? ' (LXD bases are image aliases: add one with `lxc image import ... --alias NAME`)' : '';
    throw new AtelierError('INVALID_ARGUMENT', `cannot add base "${name}": the ${backend.kind} backend has no registrable bases${hint}; use --backend overlay`, {
      backend: backend.kind,
      base: name,
    });
  }
  await add.call(backend, name, path.resolve(basePath));
}

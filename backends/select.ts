/**
 * Building the backend a host was asked for (`--backend fake|overlay|lxd`, for the CLI and for
 * atelierd): which adapter, where its files go, and its options.
 *
 * Each adapter's factory is imported with a literal specifier inside the switch on the kind
 * (`await import('./lxd/index.ts')`), so tsc types the factory and checks the options
 * passed to it, and tools can follow the import. Dynamic, not top-level, because every CLI command
 * (`--help` included) loads this module: measured with `node bin/atelier.js`, top-level imports of
 * the three adapters cost about 100 ms of CPU on `--help` (~650 ms) and 40-80 ms on
 * `--backend fake list` (~950 ms), loading overlay and LXD code neither uses; imported on demand,
 * both run as fast as before.
 *
 * - fake: state persisted to `<stateDir>/fake-backend.json`, so commands work across processes;
 *   `ATELIER_FAKE_LATENCY_MS` makes each of its mutating calls take that long (a slow backend).
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
import { AtelierError } from '../machines/errors.ts';
import type { Backend } from './types.ts';

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

/** Errors a factory throws (socket missing, ...) keep their code; anything else becomes UNAVAILABLE. */
function asUnavailable(kind: BackendKind, e: unknown): unknown {
  if (typeof (e as { code?: unknown })?.code === 'string' && e instanceof Error && (e.name === 'AtelierError' || e.name === 'BackendError')) return e;
  return new AtelierError('UNAVAILABLE', `cannot start the ${kind} backend: ${(e as Error)?.message ?? String(e)}`, { backend: kind }, { cause: e });
}

/**
 * Start an adapter whose module is already loaded. Only starting is wrapped: an error while
 * loading an adapter's module is a bug and surfaces as it is.
 */
async function starting(kind: BackendKind, start: () => Backend | Promise<Backend>): Promise<Backend> {
  try {
    return await start();
  } catch (e) {
    throw asUnavailable(kind, e);
  }
}

/**
 * Create the configured backend. Throws `UNAVAILABLE` when the adapter cannot start.
 * `readOnly`: the caller only reads (its bases): the fake then creates and saves nothing. (The
 * overlay and LXD adapters open as usual: opening an overlay store may tidy what a crash left.)
 *
 * @example
 * const b = await createBackend({ kind: 'overlay', stateDir, owner: 'alice', baseDefault: 'busybox' });
 */
export async function createBackend(cfg: BackendConfig, opts: { readOnly?: boolean } = {}): Promise<Backend> {
  const common = cfg.baseDefault === undefined ? {} : { defaultBase: cfg.baseDefault };
  switch (cfg.kind) {
    case 'fake': {
      const { createFakeBackend } = await import('./fake/index.ts');
      if (opts.readOnly) {
        // To read (its bases): its image loaded into memory, nothing created or saved.
        const { loadImage } = await import('./fake/persistence.ts');
        return starting(cfg.kind, async () => {
          const fake = createFakeBackend(common);
          const image = loadImage(fakeStateFile(cfg.stateDir));
          if (image) fake.load(image);
          return fake;
        });
      }
      return starting(cfg.kind, async () => {
        await mkdir(cfg.stateDir, { recursive: true });
        const latency = Number(process.env.ATELIER_FAKE_LATENCY_MS ?? 0);
        return createFakeBackend({ ...common, file: fakeStateFile(cfg.stateDir), ...(latency > 0 ? { latencyMs: latency } : {}) });
      });
    }
    case 'overlay': {
      const { createOverlayBackend } = await import('./overlay/index.ts');
      const root = overlayRoot(cfg.stateDir);
      return starting(cfg.kind, async () => {
        await mkdir(root, { recursive: true });
        return createOverlayBackend({ ...common, root, ...(cfg.runDir === undefined ? {} : { runDir: overlayRunDir(cfg.runDir, root) }) });
      });
    }
    case 'lxd': {
      const { createLxdBackend } = await import('./lxd/index.ts');
      return starting(cfg.kind, () => createLxdBackend({ ...common, owner: cfg.owner, ...(cfg.lxdSocket === undefined ? {} : { socket: cfg.lxdSocket }) }));
    }
  }
}

/** What a started workshop is isolated by on a backend, for `atelier show`: a kind and a sentence. */
export interface IsolationReport {
  readonly kind: 'runc' | 'chroot' | 'host' | 'lxd' | 'none';
  readonly detail: string;
}

/**
 * The isolation workshops get on `kind` for this process, without opening the backend (`show` only
 * reads): overlay runs containers as root with runc and a static catatonit, else only mounts roots
 * (`chroot` as root, `host` otherwise: hooks as this user on the host, no exec or shell).
 *
 * @example
 * (await isolationOf('overlay')).kind; // 'runc' as root with runc installed
 */
export async function isolationOf(kind: BackendKind): Promise<IsolationReport> {
  switch (kind) {
    case 'fake':
      return { kind: 'none', detail: 'none: the fake backend is in memory; hooks and exec run in its small shell interpreter' };
    case 'lxd':
      return { kind: 'lxd', detail: "lxd: an LXD system container (its own namespaces and network on LXD's bridge); exec and shell through LXD's exec API" };
    case 'overlay': {
      const { findRuntime } = await import('./overlay/runtime.ts');
      const found = await findRuntime();
      if ('tools' in found) return { kind: 'runc', detail: "runc: a container with its own mount, pid, uts, ipc and cgroup namespaces and the host's network; PID 1 catatonit; hooks, exec and shell run inside" };
      const root = typeof process.getuid === 'function' && process.getuid() === 0;
      return root
        ? { kind: 'chroot', detail: `chroot: the root is only mounted; hooks run under chroot in the host's namespaces (same processes, network and hostname as the host); no exec or shell (${found.reason})` }
        : { kind: 'host', detail: `host: no isolation; the copy driver keeps each root as a directory and hooks run as you on the host with ATELIER_ROOTFS pointing at it; no exec or shell (${found.reason})` };
    }
  }
}

/**
 * The base a workshop file without `base:` gets: `--base-default` if given, else the backend's.
 */
export function effectiveDefaultBase(backend: Backend, cfg: BackendConfig): string {
  return cfg.baseDefault ?? backend.defaultBase;
}

/**
 * `atelier base add NAME PATH` and `atelier base add NAME --debian SUITE`: import a root
 * filesystem directory or tarball as a base, on any backend whose adapter has
 * `addBase(name, path)` (overlay: a base directory; LXD: an image with that alias). `source` may
 * be a function that makes the root (a Debian build): it is only called once the backend is known
 * to take bases and the name is free, so a taken name or an unsuitable backend fails at once.
 *
 * @example
 * await addBase(backend, 'busybox', '/srv/bases/busybox');
 * await addBase(backend, 'bookworm', async () => (await buildDebianRoot({ suite: 'bookworm' })).path);
 */
export async function addBase(backend: Backend, name: string, source: string | (() => Promise<string>)): Promise<void> {
  const add = (backend as unknown as { addBase?: (name: string, path: string) => unknown }).addBase;
  if (typeof add !== 'function') {
    // The fake's bases are fixed when it is made (`createFakeBackend({ bases })`); overlay and LXD take new ones.
    throw new AtelierError('INVALID_ARGUMENT', `cannot add base "${name}": the ${backend.kind} backend has no registrable bases; use --backend overlay or --backend lxd`, {
      backend: backend.kind,
      base: name,
    });
  }
  if (typeof source === 'function' && (await backend.listBases()).includes(name)) {
    throw new AtelierError('ALREADY_EXISTS', `cannot add base "${name}": the ${backend.kind} backend already has a base of that name (\`atelier base list\`)`, { backend: backend.kind, base: name });
  }
  const basePath = typeof source === 'string' ? source : await source();
  await add.call(backend, name, path.resolve(basePath));
}

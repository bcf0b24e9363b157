/**
 * The overlay backend: workshops and layers as directories on local disk, with immutable layers
 * shared between objects. Mounted with kernel overlayfs when this process may mount (the
 * `overlayfs` driver), served by full directory copies otherwise (the `copy` driver, like
 * containers/storage's vfs). See `layout.ts` for the on-disk layout and `drivers.ts` for the two
 * drivers.
 *
 * A started instance runs as an OCI container under runc when this process is root and runc and a
 * static catatonit are installed (`isolation` is then `runc`; `bundle.ts` says what the container
 * gets, `runtime.ts` how it is run): hooks and `spawn` run inside it. Otherwise a started instance
 * is only mounted and hooks run under `chroot` (root) or on the host with `ATELIER_ROOTFS` at the
 * merged root (see `exec.ts`). `README.md` in this directory has the whole picture.
 *
 * @example
 * ```ts
 * import { createOverlayBackend } from './backends/overlay/index.ts';
 * const backend = await createOverlayBackend({ root: `${stateDir}/overlay` });
 * await backend.addBase('bookworm', '/srv/rootfs/bookworm.tar.zst');
 * console.log(backend.driver, await backend.listBases()); // 'overlayfs' [ 'bookworm', 'minimal' ]
 * console.log(backend.isolation); // 'runc' (root with runc and catatonit), else 'chroot' or 'host'
 * ```
 */
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Backend, ObjectRef } from '../types.ts';
import { OverlayAdapter } from './backend.ts';
import { BaseRegistry } from './bases.ts';
import { selectDriver } from './drivers.ts';
import type { DriverName } from './drivers.ts';
import { Layout } from './layout.ts';
import { StoreLock } from './lock.ts';
import { checkRef } from './meta.ts';
import { Store } from './store.ts';
import { ensureDir } from './fsutil.ts';
import { findRuntime, Runc } from './runtime.ts';
import type { Isolation } from './runtime.ts';
import { BackendError } from '../types.ts';

export type { DriverName } from './drivers.ts';
export type { Isolation } from './runtime.ts';

export interface OverlayBackendOptions {
  /** Where layers and instances live; default in the CLI: `<stateDir>/overlay`. */
  root: string;
  /** `auto` (default): `overlayfs` when this process may mount overlayfs, else `copy`. */
  driver?: DriverName | 'auto';
  /** The base used when a workshop file names none (default `minimal`, built at first use). */
  defaultBase?: string;
  /** Chains longer than this are flattened by a hardlink merge (default 64). */
  flattenThreshold?: number;
  /**
   * Volatile state (started instances, live transient containers); must be wiped by a reboot.
   * Default `$XDG_RUNTIME_DIR/atelier/overlay-<hash of root>`, else `/run/atelier/overlay-<hash>`
   * (root) or `<tmpdir>/atelier-<uid>/overlay-<hash>`.
   */
  runDir?: string;
  /**
   * How started instances run: `auto` (default) as runc containers when this process is root and
   * runc and a static catatonit are installed, else only mounted; `runc` requires containers
   * (`UNAVAILABLE` at open when they cannot run); `none` only mounts (hooks under chroot or on the
   * host, no `spawn`). See `Isolation`.
   */
  runtime?: 'auto' | 'runc' | 'none';
}

/** What start-up recovery cleaned: dead transient containers, stale mounts, half-made directories. */
export interface RecoveryReport {
  readonly containers: readonly string[];
  readonly mounts: readonly string[];
  readonly tmp: readonly string[];
  /** Started instances whose container was missing, half-created or dead, and was run again. */
  readonly restarted: readonly string[];
  /** runc containers (ids) of no started instance that were deleted, their processes killed. */
  readonly orphans: readonly string[];
}

/** A read-only view of an object's root filesystem (writes fail with EROFS on overlayfs). */
export interface RootView {
  readonly path: string;
  release(): Promise<void>;
}

/** The port plus what only this backend has. */
export interface OverlayBackend extends Backend {
  readonly kind: 'overlay';
  /** The driver this root uses (fixed per root). */
  readonly driver: DriverName;
  /**
   * What a started instance is isolated by: `runc` (a container), `chroot` or `host` (only
   * mounted). For `atelier show` and `atelier doctor`; see `Isolation` for what each means.
   */
  readonly isolation: Isolation;
  /** Why `isolation` is not `runc` (e.g. `runc is not installed`), or null when it is. */
  readonly isolationReason: string | null;
  readonly root: string;
  readonly runDir: string;
  /** What recovery did when this backend was opened. */
  readonly recovery: RecoveryReport;
  /**
   * Register a base: a directory or a tarball (any compression tar detects), imported once.
   * A taken name is `ALREADY_EXISTS`; a missing path `NOT_FOUND`; a bad name `INVALID`.
   * @example await backend.addBase('bookworm', '/srv/rootfs/bookworm.tar.zst');
   */
  addBase(name: string, path: string): Promise<void>;
  /** Forget a base; workshops made from it keep their data. Absent: succeeds. */
  removeBase(name: string): Promise<void>;
  /** Remove unreferenced blobs now (also done after every remove and at start-up). */
  gc(): Promise<{ blobs: readonly string[] }>;
  /** Mount a read-only view of an object's root (for debugging and tests); release it after use. */
  mountView(ref: ObjectRef): Promise<RootView>;
  /**
   * Stop every started instance (containers ended, roots unmounted), as a host shutdown would:
   * for test clean-up and a daemon's orderly exit (`close` leaves them running). Returns their names.
   */
  stopAll(): Promise<string[]>;
}

class OverlayBackendImpl extends OverlayAdapter implements OverlayBackend {
  override readonly kind = 'overlay' as const;
  constructor(
    store: Store,
    lock: StoreLock,
    defaultBase: string,
    readonly recovery: RecoveryReport,
    isolation: Isolation,
    isolationReason: string | null,
  ) {
    super(store, lock, defaultBase, isolation, isolationReason);
  }
  get driver(): DriverName {
    return this.store.driver.name;
  }
  get root(): string {
    return this.store.layout.root;
  }
  get runDir(): string {
    return this.store.layout.runDir;
  }
  addBase(name: string, path: string): Promise<void> {
    return this.locked(`base add ${name}`, () => this.store.bases.add(name, path));
  }
  removeBase(name: string): Promise<void> {
    return this.locked(`base remove ${name}`, async () => {
      await this.store.bases.remove(name);
      await this.store.gc();
    });
  }
  gc(): Promise<{ blobs: readonly string[] }> {
    return this.locked('gc', async () => ({ blobs: await this.store.gc() }));
  }
  mountView(ref: ObjectRef): Promise<RootView> {
    checkRef(ref);
    return this.locked(`view ${ref.name}`, async () => this.viewOf(await this.store.mustMeta(ref)));
  }
  stopAll(): Promise<string[]> {
    return this.locked('stop all', async () => {
      const stopped: string[] = [];
      for (const m of await this.store.allMetas()) {
        if (!(await this.store.started(m.ref))) continue;
        await this.store.stop(m);
        stopped.push(m.ref.name);
      }
      return stopped;
    });
  }
}

function defaultRunDir(root: string): string {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  // /run is only writable by root; an unprivileged user without XDG_RUNTIME_DIR gets the temp
  // directory, which is also cleared by a reboot on most systems.
  const base = process.env.XDG_RUNTIME_DIR
    ? join(process.env.XDG_RUNTIME_DIR, 'atelier')
    : isRoot
      ? '/run/atelier'
      : join(tmpdir(), `atelier-${process.getuid?.() ?? 'user'}`);
  return join(base, `overlay-${createHash('sha256').update(root).digest('hex').slice(0, 12)}`);
}

/**
 * Open (creating if needed) an overlay store at `opts.root`, choose its driver, and recover from
 * whatever a crash or a reboot left behind.
 *
 * @example
 * ```ts
 * const b = await createOverlayBackend({ root: '/var/lib/atelier/overlay', driver: 'copy' });
 * ```
 */
export async function createOverlayBackend(opts: OverlayBackendOptions): Promise<OverlayBackend> {
  const root = resolve(opts.root);
  const layout = new Layout(root, resolve(opts.runDir ?? defaultRunDir(root)));
  await ensureDir(root);
  const lock = new StoreLock(root);
  const defaultBase = opts.defaultBase ?? 'minimal';
  const threshold = Math.max(2, opts.flattenThreshold ?? 64);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const wanted = opts.runtime ?? 'auto';
  const found = wanted === 'none' ? { reason: 'containers are turned off (runtime: none)' } : await findRuntime();
  if (wanted === 'runc' && !('tools' in found)) throw new BackendError('UNAVAILABLE', `overlay workshops cannot run as containers here: ${found.reason}`);
  const runtime = 'tools' in found ? new Runc(found.tools, layout.runDir) : null;
  const isolation: Isolation = runtime ? 'runc' : isRoot ? 'chroot' : 'host';
  const { store, recovery } = await lock.run(async () => {
    await layout.init();
    const driver = await selectDriver(layout, opts.driver ?? 'auto');
    const store = new Store(layout, driver, new BaseRegistry(layout, defaultBase), threshold, runtime);
    return { store, recovery: await store.recover() };
  });
  return new OverlayBackendImpl(store, lock, defaultBase, recovery, isolation, 'reason' in found ? found.reason : null);
}

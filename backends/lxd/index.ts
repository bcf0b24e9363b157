/**
 * The LXD backend: atelier's port on a real LXD daemon, through its REST API over the unix socket.
 *
 * One adapter instance serves one owner: operations that name only an object (remove, start, stop,
 * exec, inspect, readFile) look in `workshop.<owner>` / `workshop-layers.<owner>`.
 *
 * @example
 * ```ts
 * import { createLxdBackend } from 'atelier/backends/lxd';
 * const lxd = createLxdBackend({ owner: 'alice' });       // socket: /var/lib/lxd/unix.socket, then the snap's
 * await lxd.ensureProjects('alice');
 * console.log(await lxd.listBases());                       // image aliases, e.g. ['busybox']
 * ```
 * A test daemon with a `busybox` image: `bash scripts/lxd-setup.sh` (root, Debian).
 */
import type { Backend } from '../types.ts';
import { LxdAdapter } from './adapter.ts';
import { LxdClient, resolveSocket } from './client.ts';

export interface LxdBackendOptions {
  /** Whose objects this adapter manages (its projects are `workshop.<owner>` and `workshop-layers.<owner>`). */
  owner: string;
  /** The LXD socket. Default: `/var/lib/lxd/unix.socket` if it exists, else `/var/snap/lxd/common/lxd/unix.socket`. */
  socket?: string;
  /** The image alias used when a workshop file names no base. Default `busybox`. */
  defaultBase?: string;
  /** Seconds a graceful stop may take before it is forced; 0 forces at once. Default 10. */
  stopTimeoutS?: number;
  /** Profiles every instance and copy gets (copies do not inherit them). Default `['default']`. */
  profiles?: string[];
  /** Storage pool for new workshops (a root disk on the instance); default: the profile's. Copies stay on their source's pool. */
  pool?: string;
}

/**
 * The LXD adapter for `opts.owner`. Besides the port it has `addBase(name, path)`: a root
 * filesystem (directory or tarball) imported as an image aliased `name` (`atelier base add`).
 */
export function createLxdBackend(opts: LxdBackendOptions): Backend & { addBase(name: string, path: string): Promise<void> } {
  const client = new LxdClient(resolveSocket(opts.socket));
  return new LxdAdapter(client, {
    owner: opts.owner,
    defaultBase: opts.defaultBase ?? 'busybox',
    stopTimeoutS: opts.stopTimeoutS ?? 10,
    profiles: opts.profiles ?? ['default'],
    ...(opts.pool ? { pool: opts.pool } : {}),
  });
}

/**
 * atelierd's unix socket: the authority over the daemon. Whoever can connect can do anything
 * atelier can, so the socket is its owner's alone: its directory is made 0700 and the socket 0600
 * (Podman's advice for its own service socket; LXD once shipped a world-writable one).
 *
 * - A socket file that answers belongs to a live daemon: a second one is refused (`ALREADY_RUNNING`).
 * - A socket file that does not answer was left by a daemon that died: it is replaced.
 * - Under systemd socket activation (`LISTEN_FDS=1` for this pid), the socket systemd made is used
 *   as it is (fd 3): systemd owns its path and its mode (`contrib/atelierd.socket`).
 *
 * @example
 * ```ts
 * const where = await prepareSocket('/run/atelier/atelierd.sock'); // { path } or { fd: 3 }
 * ```
 */
import { chmodSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { AtelierError } from '../machines/errors.ts';

/** Where the server listens: a path it binds, or a descriptor systemd bound for it. */
export type Listen = { readonly path: string } | { readonly fd: number; readonly path: string };

/** Whether something accepts connections on `file` (a live daemon). */
function answers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect({ path: file });
    const done = (ok: boolean) => {
      c.destroy();
      resolve(ok);
    };
    c.once('connect', () => done(true));
    c.once('error', () => done(false));
    c.setTimeout(2000, () => done(false));
  });
}

/** The descriptor systemd passed, when this process was socket-activated with exactly one. */
function activated(env: NodeJS.ProcessEnv): number | null {
  return env.LISTEN_PID === String(process.pid) && env.LISTEN_FDS === '1' ? 3 : null;
}

/**
 * Make ready to listen on `file`: its directory (0700, created if needed), and no stale socket.
 *
 * @throws AtelierError `ALREADY_RUNNING` when a daemon answers on `file`; `INVALID_ARGUMENT` when
 *   `file` is something other than a socket.
 */
export async function prepareSocket(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Listen> {
  const fd = activated(env);
  if (fd !== null) return { fd, path: file };
  const dir = path.dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  let st: ReturnType<typeof lstatSync> | null = null;
  try {
    st = lstatSync(file);
  } catch {
    st = null;
  }
  if (st) {
    if (!st.isSocket()) throw new AtelierError('INVALID_ARGUMENT', `${file} exists and is not a socket: remove it or choose another --socket`, { socket: file });
    if (await answers(file)) throw new AtelierError('ALREADY_RUNNING', `atelierd is already running on ${file}: stop it first (or give this one another --socket and --state-dir)`, { socket: file });
    rmSync(file, { force: true });
  }
  return { path: file };
}

/** Run `listen` with a umask that leaves the socket it creates 0600 from the start, then make sure of it. */
export async function listenPrivately<T>(file: string, listen: () => Promise<T>): Promise<T> {
  const old = process.umask(0o177);
  try {
    const r = await listen();
    chmodSync(file, 0o600);
    return r;
  } finally {
    process.umask(old);
  }
}

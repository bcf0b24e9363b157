/**
 * `Backend.spawn` on overlay: a process in a started workshop's container (`runc exec`, launched by
 * `process.ts`) with the caller's streams connected.
 *
 * - **User**: `req.user` resolved in the root's own `/etc/passwd` and `/etc/group` (`inroot.ts`);
 *   an unknown name is `NOT_FOUND`. `HOME` comes from the passwd entry.
 * - **Directory**: `req.cwd`, which must be a directory in the instance (`INVALID` otherwise); by
 *   default the user's home, or `/` when the home does not exist.
 * - **Environment**: the container's (`PATH`, `LANG=C.UTF-8`), `HOME`, `TERM=xterm-256color` on a
 *   terminal, then `req.env` (which wins).
 * - **Exit status**: the process's, 128 + n when signal n ended it. A program that cannot be found
 *   ends with 127 and one that cannot be executed with 126 (runc's message on stderr), as a shell
 *   (and `podman exec`) would: `atelier exec ws nope` behaves like typing `nope`.
 * - **Errors**: a container that is not running is `INVALID`; runc failing otherwise `INTERNAL`;
 *   runc or `script` missing `UNAVAILABLE`.
 *
 * Until runc has started the process, what arrives on its stderr is runc's (its errors): it is held
 * and written to `req.stderr` only once the process runs.
 *
 * @example
 * ```ts
 * const p = await spawnInContainer(runc, 'nav2', rootfs, { argv: ['id', '-u'], stdout: process.stdout, stderr: process.stderr }, tmp);
 * await p.exit; // 0
 * ```
 */
import { posix } from 'node:path';
import { BackendError } from '../types.ts';
import type { SpawnRequest, SpawnedProcess } from '../types.ts';
import { lookupUser, resolveInRoot } from './inroot.ts';
import { launch } from './process.ts';
import type { Runc } from './runtime.ts';
import { writeAll as write } from '../streams.ts';

const NOT_FOUND = /exec: .*(executable file not found|no such file or directory)/i;
const NOT_EXECUTABLE = /exec: .*(permission denied|exec format error)/i;
const NOT_RUNNING = /stopped container|container .*does not exist|not running|cannot exec in a (paused|stopped)/i;

/** Start `req.argv` in `name`'s running container, whose root is mounted at `rootfs` on the host. */
export async function spawnInContainer(runc: Runc, name: string, rootfs: string, req: SpawnRequest, tmp: string): Promise<SpawnedProcess> {
  const user = await lookupUser(rootfs, req.user);
  let cwd: string;
  if (req.cwd !== undefined) {
    if (!req.cwd.startsWith('/')) throw new BackendError('INVALID', `the working directory must be absolute: ${req.cwd}`, { cwd: req.cwd });
    if ((await resolveInRoot(rootfs, req.cwd)).type !== 'dir') throw new BackendError('INVALID', `no directory ${req.cwd} in ${name}`, { cwd: req.cwd });
    cwd = posix.normalize(req.cwd);
  } else {
    cwd = (await resolveInRoot(rootfs, user.home)).type === 'dir' ? user.home : '/';
  }
  const env = [`HOME=${user.home}`, ...(req.terminal ? ['TERM=xterm-256color'] : []), ...Object.entries(req.env ?? {}).map(([k, v]) => `${k}=${v}`)];
  const terminal = req.terminal ? { cols: Math.max(1, Math.floor(req.terminal.cols)), rows: Math.max(1, Math.floor(req.terminal.rows)) } : undefined;
  const l = await launch(runc, name, { argv: req.argv, env, cwd, user, ...(terminal ? { terminal } : {}) }, tmp);
  const child = l.child;

  child.stdout!.pipe(req.stdout, { end: false });
  const held: Buffer[] = [];
  let holding = true;
  child.stderr!.on('data', (d: Buffer) => (holding ? held.push(d) : req.stderr.write(d)));
  child.stdin!.on('error', () => undefined); // the process may end before reading everything
  if (req.stdin) req.stdin.pipe(child.stdin!);
  else child.stdin!.end();
  const detachStdin = () => {
    if (req.stdin) req.stdin.unpipe(child.stdin!);
  };

  const s = await l.started;
  if ('failed' in s) {
    detachStdin();
    const spawnError = await l.exited.then(
      () => null,
      (e: Error) => e,
    );
    if (spawnError) throw new BackendError('UNAVAILABLE', `cannot start a process in ${name}: ${spawnError.message}`);
    const msg = (terminal ? s.failed : Buffer.concat(held).toString('utf8')).trim();
    const status = NOT_FOUND.test(msg) ? 127 : NOT_EXECUTABLE.test(msg) ? 126 : null;
    if (status === null) {
      if (NOT_RUNNING.test(msg)) throw new BackendError('INVALID', `${name} is not running; start it first`, { ref: { space: 'workshops', name } });
      throw new BackendError('INTERNAL', `runc could not start ${JSON.stringify(req.argv[0])} in ${name}: ${msg}`, { exitCode: s.code });
    }
    // As a shell would say it: the caller sees the status and why.
    await write(req.stderr, `${req.argv[0]}: ${status === 127 ? 'command not found' : 'cannot execute'}\n`);
    return { exit: Promise.resolve(status), resize: () => {}, kill: () => {} };
  }
  holding = false;
  for (const d of held.splice(0)) req.stderr.write(d);

  const exit = l.exited.then(
    async (code) => {
      detachStdin();
      await write(req.stdout, '');
      return code;
    },
    (e: Error) => {
      detachStdin();
      throw new BackendError('UNAVAILABLE', `lost the process in ${name}: ${e.message}`);
    },
  );
  return {
    exit,
    resize: (cols, rows) => l.resize(Math.max(1, Math.floor(cols)), Math.max(1, Math.floor(rows))),
    kill: (signal = 'SIGTERM') => l.signal(signal),
  };
}


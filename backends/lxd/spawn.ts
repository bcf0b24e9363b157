/**
 * `Backend.spawn` on LXD: `POST /1.0/instances/NAME/exec` with `wait-for-websocket: true`, then the
 * operation's websockets connected to the caller's streams (`exec-stream.ts`).
 *
 * - **User**: LXD's exec takes numeric ids only, so `req.user` (a name or `uid`, optionally
 *   `:group` or `:gid`) is looked up in the instance's own `/etc/passwd` and `/etc/group` through
 *   the file API; an unknown name is `NOT_FOUND`. `HOME` and `USER` come from the passwd entry
 *   (a bare uid without one: `HOME=/`, root's `/root`). LXD sets no supplementary groups.
 * - **Directory**: `req.cwd`, which must be a directory in the instance (`INVALID` otherwise: LXD
 *   itself would silently run the process in `/`); by default the user's home, or `/` when the home
 *   does not exist.
 * - **Environment**: `PATH` (Debian's default), `HOME`, `USER`, `LANG=C.UTF-8`,
 *   `TERM=xterm-256color` on a terminal, then `req.env`, which wins.
 * - **Exit status**: the process's, 128 + n when signal n ended it; a program that cannot be found
 *   127 and one that cannot be executed 126, with a shell's message (as on overlay).
 *
 * @example
 * ```ts
 * const p = await spawnProcess(client, 'nav2', 'workshop.alice', { argv: ['id', '-un'], user: 'nobody', stdout: process.stdout, stderr: process.stderr });
 * await p.exit; // 0, after "nobody" was written
 * ```
 */
import { posix } from 'node:path';
import { BackendError } from '../types.ts';
import type { SpawnRequest, SpawnedProcess } from '../types.ts';
import type { LxdClient, LxdOperation } from './client.ts';
import { attachExec } from './exec-stream.ts';
import { resolve } from './files.ts';

/** Debian's default for a login shell's `PATH` (what LXD itself would set, without the snap's). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const NUMERIC = /^[0-9]+$/;

/** A user as LXD's exec wants it. */
export interface ExecUser {
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  /** The passwd entry's name, when there is one. */
  readonly name?: string;
}

/** Start `req.argv` in the running instance `name` of `project` (checked by the caller). */
export async function spawnProcess(client: LxdClient, name: string, project: string, req: SpawnRequest): Promise<SpawnedProcess> {
  const user = await lookupUser(client, name, project, req.user);
  const cwd = await workingDirectory(client, name, project, req.cwd, user.home);
  const environment: Record<string, string> = {
    PATH: DEFAULT_PATH,
    HOME: user.home,
    ...(user.name ? { USER: user.name } : {}),
    LANG: 'C.UTF-8',
    ...(req.terminal ? { TERM: 'xterm-256color' } : {}),
    ...(req.env ?? {}),
  };
  const size = (n: number) => Math.max(1, Math.floor(n));
  const env = await client.call(
    'POST',
    `/1.0/instances/${encodeURIComponent(name)}/exec`,
    {
      command: req.argv,
      environment,
      'wait-for-websocket': true,
      interactive: !!req.terminal,
      ...(req.terminal ? { width: size(req.terminal.cols), height: size(req.terminal.rows) } : {}),
      'record-output': false,
      cwd,
      user: user.uid,
      group: user.gid,
    },
    { project },
  );
  const op = env.metadata as LxdOperation | undefined;
  const fds = (op?.metadata?.['fds'] ?? null) as Record<string, string> | null;
  if (!op?.id || !fds) throw new BackendError('INTERNAL', `LXD answered exec in ${name} without an operation and its websockets`);
  return attachExec(client, op.id, fds, {
    name,
    argv0: req.argv[0]!,
    interactive: !!req.terminal,
    stdin: req.stdin ?? null,
    stdout: req.stdout,
    stderr: req.stderr,
  });
}

/** `user` (a name or uid, optionally `:group` / `:gid`; default root) in the instance's files. */
export async function lookupUser(client: LxdClient, name: string, project: string, user: string | undefined): Promise<ExecUser> {
  // The default needs no lookup: the common case costs no request.
  if (user === undefined) return { uid: 0, gid: 0, home: '/root', name: 'root' };
  const [u, g] = user.split(':', 2) as [string, string | undefined];
  if (!u || g === '') throw new BackendError('INVALID', `bad user ${JSON.stringify(user)}: use a name or uid[:gid]`, { user });
  const numeric = NUMERIC.test(u);
  const passwd = await records(client, name, project, '/etc/passwd');
  const entry = passwd.find((p) => (numeric ? p[2] === u : p[0] === u));
  if (!entry && !numeric) {
    // A root without /etc/passwd (a bare tree) still has root.
    if (u !== 'root') throw new BackendError('NOT_FOUND', `no user ${u} in ${name}'s /etc/passwd`, { user: u });
  }
  const uid = entry ? Number(entry[2]) : numeric ? Number(u) : 0;
  let gid = entry ? Number(entry[3]) : 0;
  if (g !== undefined) {
    if (NUMERIC.test(g)) gid = Number(g);
    else {
      const grp = (await records(client, name, project, '/etc/group')).find((x) => x[0] === g);
      if (!grp) throw new BackendError('NOT_FOUND', `no group ${g} in ${name}'s /etc/group`, { group: g });
      gid = Number(grp[2]);
    }
  }
  const home = posix.normalize(entry?.[5] || (uid === 0 ? '/root' : '/'));
  const userName = entry?.[0] ?? (uid === 0 ? 'root' : undefined);
  return { uid, gid, home, ...(userName ? { name: userName } : {}) };
}

/** The colon-separated records of a file in the instance (none when it is absent). */
async function records(client: LxdClient, name: string, project: string, path: string): Promise<string[][]> {
  const f = await resolve(client, name, project, path, 'GET');
  if (!f || f.type !== 'file') return [];
  return f.body
    .toString('utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

/** `cwd` when it is a directory in the instance (`INVALID` otherwise); else `home`, or `/`. */
async function workingDirectory(client: LxdClient, name: string, project: string, cwd: string | undefined, home: string): Promise<string> {
  if (cwd !== undefined) {
    if (!cwd.startsWith('/')) throw new BackendError('INVALID', `the working directory must be absolute: ${cwd}`, { cwd });
    if ((await resolve(client, name, project, cwd))?.type !== 'dir') throw new BackendError('INVALID', `no directory ${cwd} in ${name}`, { cwd });
    return posix.normalize(cwd);
  }
  if (home === '/') return '/';
  return (await resolve(client, name, project, home))?.type === 'dir' ? home : '/';
}

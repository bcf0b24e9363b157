/**
 * `atelier exec`, `atelier shell`, `atelier start`, `atelier stop`: working in a workshop.
 *
 * `exec` runs a command with the caller's stdin, stdout and stderr connected and exits with the
 * command's status (`lxc exec`, `podman exec`); `shell` opens an interactive login shell on a
 * pseudo-terminal that follows the caller's window size. Both need a started workshop: a stopped
 * one is `FAILED_PRECONDITION` with the command that starts it. (`start` and `stop`, journaled ops,
 * are in `commands.ts` with the other commands on a workshop.)
 *
 * @example
 * ```ts
 * const code = await execCommand(ctx, 'nav2', ['ls', '/'], { env: ['A=1'] });
 * ```
 */
import { AtelierError } from '../machines/errors.ts';
import { validateWorkshopName } from '../machines/names.ts';
import type { SpawnedProcess } from '../backends/types.ts';
import { hostFor } from './connect.ts';
import type { Context } from './context.ts';

export interface ExecOptions {
  /** `K=V` pairs (`--env`, repeatable). */
  readonly env?: readonly string[];
  readonly cwd?: string;
  readonly user?: string;
}

/** The caller's terminal, as a shell needs it. */
type Stdin = NodeJS.ReadStream;

/** `--env K=V` pairs as an object; a pair without `=` or with a bad name is refused. */
export function parseEnv(pairs: readonly string[] = []): Record<string, string> {
  const env: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    const key = i > 0 ? p.slice(0, i) : '';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      throw new AtelierError('INVALID_ARGUMENT', `--env ${JSON.stringify(p)} is not NAME=VALUE: give e.g. --env LANG=C.UTF-8`, { option: 'env' });
    }
    env[key] = p.slice(i + 1);
  }
  return env;
}

function checkOptions(o: ExecOptions): void {
  if (o.cwd !== undefined && !o.cwd.startsWith('/')) throw new AtelierError('INVALID_ARGUMENT', `--cwd ${JSON.stringify(o.cwd)} must be an absolute path inside the workshop, e.g. --cwd /root`, { option: 'cwd' });
  if (o.user !== undefined && !/^(?:[a-z_][a-z0-9_-]*\$?|\d+(?::\d+)?)$/.test(o.user)) {
    throw new AtelierError('INVALID_ARGUMENT', `--user ${JSON.stringify(o.user)} is neither a user name nor uid[:gid]: give e.g. --user root or --user 1000:1000`, { option: 'user' });
  }
}

/** Wait for a process while forwarding Ctrl-C and SIGTERM to it (the caller's terminal is its terminal). */
async function waitFor(p: SpawnedProcess): Promise<number> {
  const forward = (sig: NodeJS.Signals) => () => p.kill(sig);
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  const onHup = forward('SIGHUP');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  process.on('SIGHUP', onHup);
  try {
    return await p.exit;
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    process.off('SIGHUP', onHup);
  }
}

/** `atelier exec NAME [--env K=V] [--cwd DIR] [--user U] -- CMD ARGS...`: the command's exit status. */
export async function execCommand(ctx: Context, name: string, command: readonly string[], o: ExecOptions): Promise<number> {
  validateWorkshopName(name);
  if (command.length === 0) throw new AtelierError('INVALID_ARGUMENT', `no command to run in "${name}": give one after --, e.g. atelier exec ${name} -- ls /`, { workshop: name });
  checkOptions(o);
  const env = parseEnv(o.env);
  const host = await hostFor(ctx);
  const stdin = (ctx.io.stdin ?? process.stdin) as Stdin;
  const p = await host.exec(name, {
    command,
    env,
    ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
    ...(o.user !== undefined ? { user: o.user } : {}),
    stdin,
    stdout: ctx.io.stdout,
    stderr: ctx.io.stderr,
  });
  try {
    return await waitFor(p);
  } finally {
    stdin.pause?.();
  }
}

/**
 * The login shell: bash when the workshop has it (a Debian base), else sh (busybox).
 * `exec` so the shell is the process the terminal's signals reach.
 */
export const LOGIN_SHELL = ['/bin/sh', '-c', 'if [ -x /bin/bash ]; then exec /bin/bash -l; else exec /bin/sh -l; fi'] as const;

/** `atelier shell NAME [--user U] [--cwd DIR]`: an interactive shell on the caller's terminal. */
export async function shellCommand(ctx: Context, name: string, o: Omit<ExecOptions, 'env'> & { env?: readonly string[] }): Promise<number> {
  validateWorkshopName(name);
  checkOptions(o);
  const env = parseEnv(o.env);
  const stdin = (ctx.io.stdin ?? process.stdin) as Stdin;
  const out = ctx.io.stdout as NodeJS.WriteStream;
  if (!stdin.isTTY || typeof stdin.setRawMode !== 'function') {
    throw new AtelierError('INVALID_ARGUMENT', `atelier shell needs a terminal on stdin; without one run a command: atelier exec ${name} -- sh -c '...'`, { workshop: name });
  }
  const host = await hostFor(ctx);
  const size = () => ({ cols: out.columns || 80, rows: out.rows || 24 });
  const p = await host.exec(name, {
    command: LOGIN_SHELL,
    env: { ...(process.env.TERM ? { TERM: process.env.TERM } : {}), ...env },
    ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
    ...(o.user !== undefined ? { user: o.user } : {}),
    terminal: size(),
    stdin,
    stdout: out,
    stderr: ctx.io.stderr,
  });
  // Raw mode: keys go to the shell as typed (Ctrl-C included); the window size follows the terminal's.
  stdin.setRawMode(true);
  const onResize = () => p.resize(size().cols, size().rows);
  out.on?.('resize', onResize);
  try {
    return await p.exit;
  } finally {
    out.off?.('resize', onResize);
    stdin.setRawMode(false);
    stdin.pause();
  }
}

/**
 * Where atelier keeps things by default, for every host (the CLI, atelierd, an embedding program):
 * the state directory (journal, checkpoints, lock), the run directory (tmpfs: the volatile journal)
 * and atelierd's socket. XDG base directory variables are honoured when they hold absolute paths.
 *
 * @example
 * ```ts
 * defaultStateDir(process.env);  // '/home/alice/.local/state/atelier'
 * defaultSocket(process.env, 0); // '/run/atelier/atelierd.sock' (root)
 * ```
 */
import os from 'node:os';
import path from 'node:path';

/** An XDG base directory variable is only honoured when it holds an absolute path (XDG spec). */
function xdg(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name];
  return v && path.isAbsolute(v) ? v : undefined;
}

/** `$XDG_STATE_HOME/atelier`, else `~/.local/state/atelier`. */
export function defaultStateDir(env: NodeJS.ProcessEnv): string {
  return path.join(xdg(env, 'XDG_STATE_HOME') ?? path.join(os.homedir(), '.local', 'state'), 'atelier');
}

/** `$XDG_RUNTIME_DIR/atelier` (tmpfs), else `/run/atelier`. */
export function defaultRunDir(env: NodeJS.ProcessEnv): string {
  return path.join(xdg(env, 'XDG_RUNTIME_DIR') ?? '/run', 'atelier');
}

/**
 * atelierd's socket: `/run/atelier/atelierd.sock` for root, else
 * `$XDG_RUNTIME_DIR/atelier/atelierd.sock` (`/run/atelier/...` when that is unset).
 */
export function defaultSocket(env: NodeJS.ProcessEnv, uid: number = process.getuid?.() ?? 0): string {
  const base = uid === 0 ? '/run' : (xdg(env, 'XDG_RUNTIME_DIR') ?? '/run');
  return path.join(base, 'atelier', 'atelierd.sock');
}

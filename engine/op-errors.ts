/**
 * The error a command's caller gets when its op did not end done: the same words in process and
 * through atelierd (the CLI composes them from the change and the workshop it finds after it).
 *
 * @example
 * ```ts
 * opError('refresh', 'nav2', 'undone', { code: 'EXEC_FAILED', message: 'setup-base nav2: exit 1' }, true, 'op-7');
 * // AtelierError OP_FAILED: cannot refresh "nav2": setup-base nav2: exit 1; the workshop was returned to how it was
 * ```
 */
import { AtelierError } from '../machines/errors.ts';

export function opError(kind: string, name: string, outcome: 'undone' | 'broken', err: { code: string; message: string }, workshopRemains: boolean, op: string): AtelierError {
  if (outcome === 'broken')
    return new AtelierError('BROKEN', `cannot ${kind} "${name}": ${err.message}; it could not be undone either, so the workshop is marked broken (run \`atelier reconcile\` once the backend is healthy, or remove it)`, { workshop: name, op, cause: err.code });
  // A full disk keeps its own code (and exit code): what to do about it is not what to do about a failed hook.
  return new AtelierError(err.code === 'ABORTED' ? 'ABORTED' : err.code === 'NO_SPACE' ? 'NO_SPACE' : 'OP_FAILED', `cannot ${kind} "${name}": ${err.message}; ${workshopRemains ? 'the workshop was returned to how it was' : 'everything it created was removed'}`, { workshop: name, op, cause: err.code });
}

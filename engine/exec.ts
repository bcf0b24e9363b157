/**
 * `exec`: a process in a workshop, with its standard streams connected (`atelier exec`, `atelier
 * shell`, atelierd's exec endpoint). The workshop chart says whether it may run (`decide`'s `exec`
 * input: a stopped workshop is `FAILED_PRECONDITION` naming `atelier start`, a busy one `BUSY`);
 * the backend runs it (`Backend.spawn`). Nothing is journaled: a process is not an op, and it
 * changes nothing the journal accounts for (what it writes in the workshop's root is the
 * workshop's own business, as in `lxc exec` or `podman exec`).
 *
 * Not serialised with the workshop's ops: a shell may stay open for hours, and a refresh or stop
 * meanwhile ends it, as stopping an LXD container ends `lxc exec`.
 *
 * @example
 * ```ts
 * const p = await execIn(engine, 'nav2', { command: ['ls', '/'], stdout: process.stdout, stderr: process.stderr });
 * process.exitCode = await p.exit;
 * ```
 */
import { isBackendError, type Backend, type SpawnedProcess, type SpawnRequest } from '../backends/types.ts';
import { AtelierError } from '../machines/errors.ts';
import { decide, instanceRef, type DomainState } from '../machines/index.ts';
import { validateWorkshopName } from '../machines/names.ts';
import { didYouMeanHint } from './hints.ts';

/** What `Engine.exec` runs: `SpawnRequest` with the command named as users name it. */
export interface ExecRequest extends Omit<SpawnRequest, 'argv'> {
  /** The program and its arguments (looked up in the workshop's `PATH`). */
  readonly command: readonly string[];
}

/** What `execIn` needs of the engine. */
export interface ExecHost {
  readonly backend: Backend;
  readonly world: DomainState;
}

/**
 * Start `req.command` in workshop `name`; resolves once it runs (`exit` gives its status).
 *
 * @throws `INVALID_ARGUMENT` (no command; a terminal on a backend without them), `INVALID_NAME`,
 *   `NOT_FOUND` (the workshop, or the user in it), `BUSY`, `FAILED_PRECONDITION` (stopped, or its
 *   instance lost), `UNAVAILABLE`.
 */
export async function execIn(host: ExecHost, name: string, req: ExecRequest): Promise<SpawnedProcess> {
  validateWorkshopName(name);
  if (req.command.length === 0 || req.command[0] === '') throw new AtelierError('INVALID_ARGUMENT', `cannot exec in "${name}": no command given (e.g. atelier exec ${name} -- ls /)`, { workshop: name });
  const ws = host.world.durable.workshops[name];
  if (!ws) {
    const names = Object.keys(host.world.durable.workshops);
    throw new AtelierError('NOT_FOUND', `cannot exec in "${name}": no such workshop${didYouMeanHint(name, names)} (list them with \`atelier list\`)`, { workshop: name });
  }
  const ref = instanceRef(ws.instance);
  let status: 'running' | 'stopped' = 'stopped';
  try {
    const info = await host.backend.inspect(ref);
    status = info?.status === 'running' ? 'running' : 'stopped';
  } catch (e) {
    throw backendFailure(e, name);
  }
  decide(host.world, { type: 'exec', workshop: name, status }); // refuses with its code, or allows
  const { command, ...rest } = req;
  try {
    return await host.backend.spawn(ref, { ...rest, argv: command });
  } catch (e) {
    // INVALID is also what a backend says of an instance stopped since the check: ask it again.
    const stopped = isBackendError(e, 'INVALID') && (await host.backend.inspect(ref).catch(() => null))?.status !== 'running';
    throw backendFailure(e, name, stopped);
  }
}

/** A backend's refusal in the words of the command (`stopped`: the instance is not running now). */
function backendFailure(e: unknown, name: string, stopped = false): unknown {
  if (!isBackendError(e)) return e;
  const info = { workshop: name, cause: e.code };
  switch (e.code) {
    case 'INVALID':
      // Stopped between the check and the call, or asked for what the backend cannot do (a terminal on the fake).
      return stopped
        ? new AtelierError('FAILED_PRECONDITION', `cannot exec in "${name}": workshop is stopped; start it first: atelier start ${name}`, info)
        : new AtelierError('INVALID_ARGUMENT', `cannot exec in "${name}": ${e.message}`, info);
    case 'NOT_FOUND':
      return new AtelierError('NOT_FOUND', `cannot exec in "${name}": ${e.message}`, info);
    case 'UNAVAILABLE':
      return new AtelierError('UNAVAILABLE', `cannot exec in "${name}": ${e.message}`, info);
    case 'NO_SPACE':
      return new AtelierError('NO_SPACE', `cannot exec in "${name}": ${e.message}`, info);
    default:
      return new AtelierError('OP_FAILED', `cannot exec in "${name}": ${e.message}`, info);
  }
}

/**
 * Where commands run: atelierd, when one answers on the socket for this state directory (its
 * `--socket`, `ATELIER_SOCKET`, or the default path), else this process (`--no-daemon` forces it).
 * A daemon serving another state directory is not used.
 *
 * @example
 * ```ts
 * const host = await hostFor(ctx); // a DaemonHost or a LocalHost
 * ```
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { AtelierError } from '../machines/errors.ts';
import type { Context } from './context.ts';
import type { Host } from './host.ts';

export async function hostFor(ctx: Context): Promise<Host> {
  const local = async () => new (await import('./local-host.ts')).LocalHost(ctx);
  if (!ctx.daemon.use) return local();
  // No socket file: no daemon, and no connection attempt to pay for.
  if (!existsSync(ctx.daemon.socket)) return local();
  const { DaemonHost, probeDaemon } = await import('./daemon-host.ts');
  const info = await probeDaemon(ctx.daemon.socket);
  if (!info || path.resolve(info['state-dir']) !== ctx.stateDir) return local();
  if (ctx.daemon.backendGiven && info.backend !== ctx.backendConfig.kind) {
    throw new AtelierError(
      'INVALID_ARGUMENT',
      `atelierd on ${ctx.daemon.socket} serves ${ctx.stateDir} with the ${info.backend} backend, not ${ctx.backendConfig.kind}: drop --backend, or use --no-daemon with another --state-dir`,
      { socket: ctx.daemon.socket, backend: info.backend },
    );
  }
  return new DaemonHost(ctx.daemon.socket, info);
}


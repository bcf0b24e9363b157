/**
 * `atelierd`: the host daemon that embeds atelier. One process holds one state directory (its lock,
 * for its lifetime), opens the engine on it, and serves the API (`server.ts`) on a unix socket only
 * its owner can use (`socket.ts`). It is also the example of embedding the library: everything it
 * does goes through `openEngine` and the `Engine` interface.
 *
 * Lifecycle (see daemon/README.md):
 * 1. the socket: a live daemon on it refuses this one; a stale file is replaced;
 * 2. the backend and the engine: opening replays the journal and reconciles it with the backend (a
 *    change in flight when the last daemon was killed ends as reconciliation decides);
 * 3. the changes: folded from the whole journal, then kept up to date from the live records;
 * 4. serve; on SIGTERM or SIGINT: stop accepting, end event streams, let changes in flight finish
 *    for `--grace` seconds, abort (undo) the rest, close the engine, remove the socket.
 *
 * @example
 * ```sh
 * atelierd --backend fake --state-dir /tmp/st --run-dir /tmp/run --socket /tmp/atelierd.sock
 * ```
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { openEngine } from '../engine/open.ts';
import { defaultRunDir, defaultSocket, defaultStateDir } from '../engine/paths.ts';
import { ATELIER_VERSION } from '../engine/version.ts';
import { parseSize } from '../engine/sizes.ts';
import { parseCacheKeep } from '../engine/cache.ts';
import { BACKEND_KINDS, createBackend, isolationOf, type BackendKind } from '../backends/select.ts';
import { exitCodeFor, isAtelierError } from '../machines/errors.ts';
import { ownerName } from '../machines/names.ts';
import { ChangeBook } from './changes.ts';
import { buildApi, Inflight } from './server.ts';
import { listenPrivately, prepareSocket } from './socket.ts';
import { userInfo } from 'node:os';

export interface DaemonOptions {
  readonly socket: string;
  readonly stateDir: string;
  readonly runDir: string;
  readonly backend: BackendKind;
  readonly lxdSocket?: string;
  readonly baseDefault?: string;
  /** Seconds changes in flight get to finish on SIGTERM before the rest are aborted (undone). */
  readonly grace: number;
  /** Write a checkpoint after this many journal records (the engine's default otherwise). */
  readonly checkpointEvery?: number;
  /** The free-space watermark of degraded mode, in bytes (the engine's default otherwise). */
  readonly minFree?: number;
  /** The SDK cache's policy (`--cache-keep`; the engine's default, 10 layers, otherwise). */
  readonly cacheKeep?: { readonly count?: number; readonly bytes?: number };
  /** Seconds an exec's client has to connect its websockets before its process is killed (5 by default). */
  readonly execConnectTimeout?: number;
}

/** A running daemon: where it listens, and how to stop it as SIGTERM does. */
export interface Daemon {
  readonly socket: string;
  stop(): Promise<void>;
}

/**
 * One JSON line per request on stderr. Lines are gathered and written once per turn of the event
 * loop: a write is a system call, and under load one call for many lines costs a fraction of one
 * call each (on this kind of virtual machine a write to a pipe costs tens of microseconds).
 */
let pending: string[] = [];
function flushLog(): void {
  if (pending.length === 0) return;
  const text = pending.join('');
  pending = [];
  process.stderr.write(text);
}
const log = (line: Record<string, unknown>): void => {
  if (pending.length === 0) setImmediate(flushLog);
  pending.push(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);
};

function owner(): string {
  try {
    return ownerName(userInfo());
  } catch {
    return String(process.getuid?.() ?? 0);
  }
}

/** Start a daemon: socket, engine, changes, API. Resolves once it accepts connections. */
export async function startDaemon(o: DaemonOptions): Promise<Daemon> {
  const listen = await prepareSocket(o.socket);
  const who = owner();
  const backend = await createBackend({ kind: o.backend, stateDir: o.stateDir, runDir: o.runDir, owner: who, ...(o.lxdSocket ? { lxdSocket: o.lxdSocket } : {}), ...(o.baseDefault ? { baseDefault: o.baseDefault } : {}) });
  const engine = await openEngine({ stateDir: o.stateDir, runDir: o.runDir, backend, owner: who, ...(o.checkpointEvery ? { checkpointEvery: o.checkpointEvery } : {}), ...(o.minFree !== undefined ? { minFreeBytes: o.minFree } : {}), ...(o.cacheKeep ? { cacheKeep: o.cacheKeep } : {}) });
  const book = new ChangeBook();
  // The whole journal first (history survives restarts), then live records, with no gap between.
  let caughtUp: () => void = () => undefined;
  const ready = new Promise<void>((r) => (caughtUp = r));
  const sub = engine.eventsAfter({}, () => caughtUp()).subscribe({ next: (e) => book.apply(e, e.journal), error: (e) => log({ event: 'changes-failed', message: String(e) }) });
  await ready;
  const info = { version: ATELIER_VERSION, backend: o.backend, 'default-base': backend.defaultBase, owner: who, 'state-dir': o.stateDir, 'run-dir': o.runDir, socket: o.socket, pid: process.pid, isolation: await isolationOf(o.backend) };
  const inflight = new Inflight();
  const { app, streams } = buildApi({ engine, book, info, log, ...(o.execConnectTimeout !== undefined ? { execConnectMs: o.execConnectTimeout * 1000 } : {}) }, inflight);
  await listenPrivately(o.socket, async () => {
    if ('fd' in listen) {
      await app.ready();
      await new Promise<void>((resolve, reject) => app.server.listen({ fd: listen.fd }, () => resolve()).once('error', reject));
    } else await app.listen({ path: listen.path });
  }).catch(async (e) => {
    await engine.close();
    throw e;
  });
  log({ event: 'started', ...info });

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      log({ event: 'stopping', inflight: inflight.running.size });
      app.server.close(); // no new connection
      for (const end of [...streams]) end();
      const grace = new Promise<'late'>((r) => setTimeout(() => r('late'), o.grace * 1000).unref());
      if ((await Promise.race([inflight.drain().then(() => 'drained' as const), grace])) === 'late') {
        log({ event: 'aborting', changes: [...inflight.controllers.keys()] });
        for (const ac of inflight.controllers.values()) ac.abort(new Error('atelierd is stopping'));
        await inflight.drain();
      }
      sub.unsubscribe();
      await app.close();
      await engine.close();
      if (!('fd' in listen)) rmSync(o.socket, { force: true });
      log({ event: 'stopped' });
      flushLog();
    })();
    return stopping;
  };
  return { socket: o.socket, stop };
}

function program(): Command {
  return new Command('atelierd')
    .description('The atelier host daemon: serves the engine on a unix socket (HTTP/1.1, JSON; see the README)')
    .version(ATELIER_VERSION, '-V, --version')
    .addOption(new Option('--socket <path>', 'the API socket (default: /run/atelier/atelierd.sock for root, else $XDG_RUNTIME_DIR/atelier/atelierd.sock)'))
    .addOption(new Option('--state-dir <dir>', 'journal, checkpoints and lock (default: $XDG_STATE_HOME/atelier or ~/.local/state/atelier)'))
    .addOption(new Option('--run-dir <dir>', 'volatile journal of transient containers (default: $XDG_RUNTIME_DIR/atelier or /run/atelier)'))
    .addOption(new Option('--backend <name>', 'where workshops live').choices(BACKEND_KINDS).default('overlay'))
    .addOption(new Option('--lxd-socket <path>', "LXD's unix socket (lxd backend)"))
    .addOption(new Option('--base-default <name>', "base for workshop files that name none (default: the backend's)"))
    .addOption(new Option('--grace <seconds>', 'on SIGTERM, how long changes in flight may run before they are aborted (undone)').default('30'))
    .addOption(new Option('--checkpoint-every <records>', 'write a checkpoint of the state after this many journal records (default 10000): start-up replays at most that many'))
    .addOption(new Option('--min-free <size>', "below this much free space on the journal's or the backend's disk, refuse launch, refresh, stash, unstash, restore and run; remove and gc still work (default: $ATELIER_MIN_FREE, else 32M)"))
    .addOption(new Option('--cache-keep <size|count>', 'how many shared SDK layers no workshop uses to keep for reuse (a count, e.g. 10) or how much of them (a size, e.g. 20GiB), the least recently used evicted first (default: $ATELIER_CACHE_KEEP, else 10)'))
    .addOption(new Option('--exec-connect-timeout <seconds>', "how long an exec's client has to connect its websockets before the process is killed").default('5'))
    .exitOverride();
}

/** `atelierd [options]`: runs until SIGTERM or SIGINT; the exit code says why it stopped. */
export async function main(argv: string[]): Promise<number> {
  const cmd = program();
  try {
    cmd.parse(argv);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
  const g = cmd.opts<{ socket?: string; stateDir?: string; runDir?: string; backend: BackendKind; lxdSocket?: string; baseDefault?: string; grace: string; checkpointEvery?: string; minFree?: string; cacheKeep?: string; execConnectTimeout: string }>();
  const grace = Number(g.grace);
  if (!Number.isFinite(grace) || grace < 0) {
    process.stderr.write(`atelierd: --grace ${JSON.stringify(g.grace)} is not a number of seconds\n`);
    return 2;
  }
  const execConnectTimeout = Number(g.execConnectTimeout);
  if (!Number.isFinite(execConnectTimeout) || execConnectTimeout <= 0) {
    process.stderr.write(`atelierd: --exec-connect-timeout ${JSON.stringify(g.execConnectTimeout)} is not a positive number of seconds\n`);
    return 2;
  }
  const checkpointEvery = g.checkpointEvery === undefined ? undefined : Number(g.checkpointEvery);
  if (checkpointEvery !== undefined && !(Number.isInteger(checkpointEvery) && checkpointEvery > 0)) {
    process.stderr.write(`atelierd: --checkpoint-every ${JSON.stringify(g.checkpointEvery)} is not a positive number of records\n`);
    return 2;
  }
  const minFreeText = g.minFree ?? process.env.ATELIER_MIN_FREE;
  const minFree = minFreeText === undefined || minFreeText === '' ? undefined : parseSize(minFreeText);
  if (minFree === null) {
    process.stderr.write(`atelierd: ${g.minFree !== undefined ? '--min-free' : 'ATELIER_MIN_FREE'} ${JSON.stringify(minFreeText)} is not a size: give bytes or a size such as 64M or 1G\n`);
    return 2;
  }
  const cacheKeepText = g.cacheKeep ?? process.env.ATELIER_CACHE_KEEP;
  let cacheKeep: DaemonOptions['cacheKeep'];
  if (cacheKeepText !== undefined && (g.cacheKeep !== undefined || cacheKeepText !== '')) {
    try {
      cacheKeep = parseCacheKeep(cacheKeepText);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      process.stderr.write(`atelierd: ${g.cacheKeep !== undefined ? message : message.replace(/^--cache-keep/, 'ATELIER_CACHE_KEEP')}\n`);
      return 2;
    }
  }
  let daemon: Daemon;
  try {
    daemon = await startDaemon({
      socket: path.resolve(g.socket ?? process.env.ATELIER_SOCKET ?? defaultSocket(process.env)),
      stateDir: path.resolve(g.stateDir ?? defaultStateDir(process.env)),
      runDir: path.resolve(g.runDir ?? defaultRunDir(process.env)),
      backend: g.backend,
      ...(g.lxdSocket ? { lxdSocket: g.lxdSocket } : {}),
      ...(g.baseDefault ? { baseDefault: g.baseDefault } : {}),
      grace,
      ...(checkpointEvery ? { checkpointEvery } : {}),
      ...(minFree !== undefined ? { minFree } : {}),
      ...(cacheKeep ? { cacheKeep } : {}),
      execConnectTimeout,
    });
  } catch (e) {
    const code = isAtelierError(e) ? e.code : 'INTERNAL';
    log({ event: 'failed', kind: code, message: e instanceof Error ? e.message : String(e) });
    flushLog();
    process.stderr.write(`atelierd: ${e instanceof Error ? e.message : String(e)}\n`);
    return exitCodeFor(code);
  }
  await new Promise<void>((resolve) => {
    const onSignal = (sig: string) => {
      log({ event: 'signal', signal: sig });
      void daemon.stop().then(resolve);
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
  });
  return 0;
}

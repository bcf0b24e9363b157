/**
 * atelierd's exec, as workshopd's and LXD's: `POST /v1/workshops/{name}/exec` starts a process in a
 * workshop and answers `202` with a change (kind `exec`); the process's streams go over websockets
 * of that change, `GET /v1/changes/{id}/websocket?id=<ws-id>`:
 *
 * | request              | websockets              | frames                                                    |
 * | -------------------- | ----------------------- | --------------------------------------------------------- |
 * | `interactive: false` | `stdio`, `stderr`, `control` | `stdio`: binary; the client's are stdin (an empty frame, or closing, is end-of-file), the daemon's stdout. `stderr`: the daemon's binary frames are stderr. |
 * | `interactive: true`  | `pty`, `control`        | `pty`: binary terminal bytes both ways                     |
 *
 * `control` takes JSON text frames: `{"command":"signal","signal":"SIGTERM"}` and
 * `{"command":"resize","width":120,"height":40}`. The daemon closes each output websocket (code
 * 1000) once the process has ended and all its output is sent, then the change becomes Done with
 * `data["exit-code"]` (a non-zero exit is still Done: the command ran).
 *
 * The process starts when the request is accepted, so that every refusal (the engine's, the
 * backend's: a stopped workshop, an unknown user, a terminal the fake cannot give) is the
 * request's own answer and no change is made for it; its output waits in memory (bounded: the
 * process blocks on a full pipe) until the client connects. A client that has not connected every
 * websocket within `connectMs` (5 s), that closes `control`, or whose connection drops, gets its
 * process killed (SIGKILL), as does an abort of the change: a client killed with its terminal
 * leaves no process behind. Those changes end in Error (`TIMEOUT`, `ABORTED`), with the exit code.
 *
 * @example
 * ```ts
 * const execs = new ExecSessions({ engine, book, log }, inflight);
 * execs.register(app); // inside a plugin registered after @fastify/websocket
 * ```
 */
import { constants } from 'node:os';
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { nanoid } from 'nanoid';
import type { RawData, WebSocket } from 'ws';
import type { SpawnedProcess } from '../backends/types.ts';
import type { Engine } from '../engine/api.ts';
import { validateWorkshopName } from '../machines/names.ts';
import type { ChangeBook } from './changes.ts';
import { accepted, ApiError } from './envelope.ts';
import { SCHEMAS } from './schemas.ts';

/** How long the daemon waits for a client to connect every websocket of an exec (default). */
export const EXEC_CONNECT_MS = 5000;

export type WebsocketId = 'stdio' | 'stderr' | 'pty' | 'control';

/** The body of `POST /v1/workshops/{name}/exec` (`SCHEMAS.exec`). */
export interface ExecBody {
  readonly command: string[];
  readonly environment?: Record<string, string>;
  readonly 'working-dir'?: string;
  readonly user?: string;
  readonly interactive?: boolean;
  readonly width?: number;
  readonly height?: number;
}

/** Where the daemon keeps its changes in flight (`server.ts`'s `Inflight`): abort reaches an exec there, and shutdown waits for it. */
export interface ExecInflight {
  readonly controllers: Map<string, AbortController>;
  readonly running: Map<string, Promise<unknown>>;
}

export interface ExecDeps {
  readonly engine: Engine;
  readonly book: ChangeBook;
  readonly log: (line: Record<string, unknown>) => void;
  /** How long a client has to connect its websockets (default `EXEC_CONNECT_MS`). */
  readonly connectMs?: number;
}

/** Output messages in flight on one websocket before its source is paused (each at most 64 KiB). */
const HIGH_WATER = 32;

const WS_OPEN = 1;
const WS_CLOSED = 3;

/** One process and its websockets. */
class Session {
  readonly sockets = new Map<WebsocketId, WebSocket>();
  readonly stdin = new PassThrough();
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  /** Each output websocket's delivery: settles once its sources have ended and it is closed (or gone). */
  private readonly delivered = new Map<WebsocketId, () => void>();
  readonly outputs: Promise<void>;
  private readonly pumping = new Set<WebsocketId>();
  proc: SpawnedProcess | null = null;
  exited = false;
  /** Why the daemon killed it, if it did. */
  killed: { kind: string; message: string } | null = null;
  timer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: string,
    readonly ids: readonly WebsocketId[],
  ) {
    const outs = ids.filter((w) => w !== 'control');
    this.outputs = Promise.all(outs.map((w) => new Promise<void>((r) => this.delivered.set(w, r)))).then(() => undefined);
  }

  /** The streams an output websocket carries: `pty` both of the process's (a terminal merges them anyway). */
  sourcesOf(w: WebsocketId): PassThrough[] {
    return w === 'stdio' ? [this.stdout] : w === 'stderr' ? [this.stderr] : w === 'pty' ? [this.stdout, this.stderr] : [];
  }

  /**
   * End it for `kind` (the first reason wins): the process is killed if it still runs, and output
   * for websockets never connected is dropped. Connected websockets still get what was written.
   */
  fail(kind: string, message: string): void {
    if (this.killed) return;
    this.killed = { kind, message };
    if (!this.exited) this.proc?.kill('SIGKILL');
    this.stdin.end();
    for (const w of this.ids) {
      if (w === 'control') continue;
      const ws = this.sockets.get(w);
      if (ws) this.pump(w, ws); // what was written goes out without waiting for the other websockets
      else {
        // Output no client will read is drained and dropped, so that the process is not held on a full pipe.
        for (const s of this.sourcesOf(w)) s.resume();
        this.delivered.get(w)?.();
      }
    }
  }

  /** Send `sources` on `ws` until they end, then close it; backpressure pauses the sources. */
  pump(w: WebsocketId, ws: WebSocket): void {
    if (this.pumping.has(w)) return;
    this.pumping.add(w);
    const sources = this.sourcesOf(w);
    const done = this.delivered.get(w)!;
    if (ws.readyState === WS_CLOSED) {
      // Closed before its output could flow (the client died between connecting and the rest).
      for (const s of sources) s.resume();
      done();
      return;
    }
    let open = sources.length;
    let inFlight = 0;
    let gone = false;
    const onData = (chunk: Buffer) => {
      if (gone || ws.readyState !== WS_OPEN) return; // the client went away: the output is dropped
      inFlight++;
      ws.send(chunk, { binary: true }, () => {
        inFlight--;
        if (inFlight < HIGH_WATER / 2) for (const s of sources) s.resume();
      });
      if (inFlight >= HIGH_WATER) for (const s of sources) s.pause();
    };
    for (const s of sources) {
      s.on('data', onData);
      s.once('end', () => {
        if (--open === 0 && ws.readyState === WS_OPEN) ws.close(1000, 'end of output');
      });
    }
    ws.once('close', () => {
      gone = true;
      for (const s of sources) s.resume();
      done();
    });
  }
}

const SIGNALS = new Set(Object.keys(constants.signals));

interface ControlMessage {
  readonly command?: unknown;
  readonly signal?: unknown;
  readonly width?: unknown;
  readonly height?: unknown;
}

/** A control frame's JSON object; null for a binary frame or anything but an object. */
function parseControl(text: string | null): ControlMessage | null {
  if (text === null) return null;
  try {
    const m: unknown = JSON.parse(text);
    return typeof m === 'object' && m !== null ? (m as ControlMessage) : null;
  } catch {
    return null;
  }
}

export class ExecSessions {
  private readonly sessions = new Map<string, Session>();
  private readonly connectMs: number;

  constructor(
    private readonly deps: ExecDeps,
    private readonly inflight: ExecInflight,
  ) {
    this.connectMs = deps.connectMs ?? EXEC_CONNECT_MS;
  }

  /** The exec endpoint and the websocket one, on an instance that has `@fastify/websocket`. */
  register(app: FastifyInstance): void {
    app.post<{ Params: { name: string }; Body: ExecBody }>('/v1/workshops/:name/exec', { schema: SCHEMAS.exec }, async (req, reply) => {
      const id = await this.start(validateWorkshopName(req.params.name), req.body);
      (req as FastifyRequest & { change: string }).change = id;
      return reply.code(202).header('location', `/v1/changes/${id}`).send(accepted(id));
    });

    app.route<{ Params: { id: string }; Querystring: { id: WebsocketId } }>({
      method: 'GET',
      url: '/v1/changes/:id/websocket',
      schema: SCHEMAS.execWebsocket,
      // Refusals before the upgrade are plain HTTP answers with the error envelope.
      preHandler: async (req) => {
        this.sessionFor(req.params.id, req.query.id);
      },
      handler: async () => {
        throw new ApiError('INVALID_ARGUMENT', 'this endpoint is a websocket: connect with a websocket client (Upgrade: websocket)');
      },
      wsHandler: (ws, req) => this.attach(this.sessionFor(req.params.id, req.query.id), req.query.id, ws),
    });
  }

  /** The session a websocket may join; refused when the change is not a live exec or that websocket is taken. */
  private sessionFor(change: string, w: WebsocketId): Session {
    const s = this.sessions.get(change);
    if (!s) {
      const c = this.deps.book.get(change);
      if (!c) throw new ApiError('NOT_FOUND', `no change "${change}"`, { change });
      if (c.kind !== 'exec') throw new ApiError('INVALID_ARGUMENT', `change "${change}" is a ${c.kind}, not an exec: it has no websockets`, { change });
      throw new ApiError('FAILED_PRECONDITION', `exec "${change}" has ended (${c.status}): its websockets are gone`, { change });
    }
    if (!s.ids.includes(w)) throw new ApiError('NOT_FOUND', `exec "${change}" has no websocket "${w}": it has ${s.ids.join(', ')}`, { change, websocket: w });
    if (s.sockets.has(w)) throw new ApiError('FAILED_PRECONDITION', `websocket "${w}" of exec "${change}" is already connected`, { change, websocket: w });
    return s;
  }

  /** Start the process (refusals throw before any change exists), then its change. */
  private async start(name: string, b: ExecBody): Promise<string> {
    const interactive = b.interactive === true;
    if (!interactive && (b.width !== undefined || b.height !== undefined)) throw new ApiError('INVALID_ARGUMENT', '"width" and "height" are the terminal\'s: give them with "interactive": true');
    const ids: WebsocketId[] = interactive ? ['pty', 'control'] : ['stdio', 'stderr', 'control'];
    const s = new Session(`exec-${nanoid(10)}`, ids);
    s.proc = await this.deps.engine.exec(name, {
      command: b.command,
      ...(b.environment ? { env: b.environment } : {}),
      ...(b['working-dir'] !== undefined ? { cwd: b['working-dir'] } : {}),
      ...(b.user !== undefined ? { user: b.user } : {}),
      ...(interactive ? { terminal: { cols: b.width ?? 80, rows: b.height ?? 24 } } : {}),
      stdin: s.stdin,
      stdout: s.stdout,
      stderr: s.stderr,
    });
    const { book } = this.deps;
    const shown = b.command.join(' ');
    book.start(s.id, 'exec', `Run ${JSON.stringify(shown.length > 80 ? `${shown.slice(0, 77)}...` : shown)} in "${name}"`, new Date().toISOString());
    book.attach(s.id, { workshop: name, command: b.command, interactive, 'websocket-ids': ids });
    this.sessions.set(s.id, s);
    const ac = new AbortController();
    ac.signal.addEventListener('abort', () => {
      const why = ac.signal.reason instanceof Error ? ac.signal.reason.message : 'aborted';
      s.fail('ABORTED', s.exited ? `${why} after the process ended` : `${why}: the process was killed (SIGKILL)`);
    });
    this.inflight.controllers.set(s.id, ac);
    s.timer = setTimeout(() => {
      const missing = s.ids.filter((w) => !s.sockets.has(w));
      s.fail('TIMEOUT', `no client connected websocket${missing.length > 1 ? 's' : ''} ${missing.join(', ')} within ${this.connectMs / 1000}s: ${s.exited ? 'its output was dropped' : 'the process was killed'}`);
    }, this.connectMs);
    const done = this.run(s).finally(() => {
      clearTimeout(s.timer);
      this.sessions.delete(s.id);
      this.inflight.controllers.delete(s.id);
      this.inflight.running.delete(s.id);
    });
    this.inflight.running.set(s.id, done);
    return s.id;
  }

  /** Wait for the process and for its output to be delivered, then end the change. */
  private async run(s: Session): Promise<void> {
    const { book, log } = this.deps;
    let code: number | null = null;
    let lost: { kind: string; message: string } | null = null;
    try {
      code = await s.proc!.exit;
    } catch (e) {
      lost = { kind: typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
    }
    s.exited = true;
    // The backend has written everything (that is when `exit` settles): end the streams so the websockets close after the last byte.
    s.stdout.end();
    s.stderr.end();
    s.stdin.end();
    // Each output websocket closes after its last byte, or was never connected and is dropped at the timeout.
    await s.outputs;
    const at = new Date().toISOString();
    const data = code === null ? undefined : { 'exit-code': code };
    const failure = lost ?? s.killed;
    if (failure) book.finish(s.id, 'Error', at, `${failure.kind}: ${failure.message}`, data, failure);
    else book.finish(s.id, 'Done', at, undefined, data);
    for (const ws of s.sockets.values()) if (ws.readyState === WS_OPEN) ws.close(1000, 'exec ended');
    log({ change: s.id, event: 'exec-ended', ...(code !== null ? { 'exit-code': code } : {}), ...(failure ? { kind: failure.kind } : {}) });
  }

  /** A websocket joins its session. */
  private attach(s: Session, w: WebsocketId, ws: WebSocket): void {
    s.sockets.set(w, ws);
    this.deps.log({ change: s.id, websocket: w, event: 'connected' });
    // Output flows once every websocket is there, so a client may connect them in any order and lose nothing.
    const all = s.ids.every((x) => s.sockets.has(x));
    if (all) {
      clearTimeout(s.timer);
      for (const [x, sock] of s.sockets) if (x !== 'control') s.pump(x, sock);
    } else if (s.killed) s.pump(w, ws); // the others will not come: what there is goes out now
    ws.on('close', (code: number) => {
      if (s.exited) return;
      // `control` closed, or any connection dropped without a close frame: the client is gone.
      if (w === 'control' || code === 1006) s.fail('ABORTED', `the client disconnected (websocket ${w} closed): the process was killed (SIGKILL)`);
      else if (w === 'stdio' || w === 'pty') s.stdin.end();
    });
    if (w === 'control') {
      ws.on('message', (data: RawData, binary: boolean) => this.control(s, binary ? null : data.toString()));
      return;
    }
    if (w === 'stdio' || w === 'pty') {
      ws.on('message', (data: RawData) => {
        const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
        if (s.stdin.writableEnded) return;
        if (buf.length === 0) s.stdin.end();
        else if (!s.stdin.write(buf) && !ws.isPaused) {
          // The process reads slower than the client writes: stop reading the socket until it catches up.
          ws.pause();
          s.stdin.once('drain', () => ws.resume());
        }
      });
    }
  }

  /** A control message: a signal, or the terminal's new size. Anything else is logged and ignored. */
  private control(s: Session, text: string | null): void {
    const m = parseControl(text);
    const size = (n: unknown) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 65535;
    if (m?.command === 'signal' && typeof m.signal === 'string' && SIGNALS.has(m.signal)) {
      if (!s.exited) s.proc?.kill(m.signal as NodeJS.Signals);
    } else if (m?.command === 'resize' && size(m.width) && size(m.height)) {
      if (!s.exited) s.proc?.resize(m.width as number, m.height as number);
    } else {
      this.deps.log({ change: s.id, websocket: 'control', event: 'ignored', message: (text ?? '(binary frame)').slice(0, 200) });
    }
  }
}

/**
 * `atelier exec` and `atelier shell` through atelierd: the exec request (`POST
 * /v1/workshops/{name}/exec`), then the change's websockets over the daemon's unix socket (`ws`
 * with a `ws+unix://` address): stdin goes out, stdout and stderr come back, signals and window
 * sizes go on `control`. The process's exit code is the change's (`data["exit-code"]`), read once
 * every output websocket has closed, so it comes after the last byte of output. See `daemon/exec.ts`
 * for the protocol.
 *
 * @example
 * ```ts
 * const p = await execThroughDaemon(socket, { command: ['ls', '/'], stdout: process.stdout, stderr: process.stderr }, calls);
 * process.exitCode = await p.exit;
 * ```
 */
import WebSocket from 'ws';
import type { SpawnedProcess } from '../backends/types.ts';
import type { ExecRequest } from '../engine/api.ts';
import { AtelierError } from '../machines/errors.ts';

/** The exec request as the daemon takes it (`daemon/schemas.ts`, `exec`). */
export interface ExecBody {
  command: string[];
  environment?: Record<string, string>;
  'working-dir'?: string;
  user?: string;
  interactive?: boolean;
  width?: number;
  height?: number;
}

/** A ready exec change, as far as the client reads it. */
export interface ExecChange {
  readonly status: string;
  readonly err?: string;
  readonly error?: { kind: string; message: string };
  readonly data?: Record<string, unknown>;
}

/** The daemon's requests the exec client needs (`DaemonHost` has them). */
export interface ExecCalls {
  /** POST the request: the change id, or the refusal as the `AtelierError` the engine would throw. */
  start(body: ExecBody): Promise<string>;
  /** The change once it is ready. */
  ready(id: string): Promise<ExecChange>;
  /** Abort the change (best effort: used when its websockets cannot be connected). */
  abort(id: string): Promise<void>;
}

/** Bytes waiting in a websocket before stdin is no longer read (resumed as they are sent). */
const HIGH_WATER = 1024 * 1024;
const FRAME = 64 * 1024;

/** The body for `req`. */
export function execBody(req: ExecRequest): ExecBody {
  return {
    command: [...req.command],
    ...(req.env && Object.keys(req.env).length > 0 ? { environment: { ...req.env } } : {}),
    ...(req.cwd !== undefined ? { 'working-dir': req.cwd } : {}),
    ...(req.user !== undefined ? { user: req.user } : {}),
    ...(req.terminal ? { interactive: true, width: req.terminal.cols, height: req.terminal.rows } : {}),
  };
}

/** A connected websocket, and (for an output one) when the daemon closed it: all its output received. */
interface Link {
  readonly ws: WebSocket;
  readonly received: Promise<void>;
}

/**
 * Connect websocket `w` of change `id`, its frames written to `out` from the first one; a refusal
 * is the daemon's error envelope as an `AtelierError`.
 */
function connect(socket: string, id: string, w: string, out: NodeJS.WritableStream | null): Promise<Link> {
  const ws = new WebSocket(`ws+unix://${socket}:/v1/changes/${encodeURIComponent(id)}/websocket?id=${w}`, { perMessageDeflate: false });
  const received = out ? receive(ws, out) : new Promise<void>((resolve) => ws.once('close', () => resolve()));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, received }));
    ws.once('unexpected-response', (req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        req.destroy();
        let e: { kind?: string; message?: string } = {};
        try {
          e = (JSON.parse(text) as { result?: typeof e }).result ?? {};
        } catch {
          // not the API's envelope: said below with the status
        }
        reject(new AtelierError((e.kind ?? 'UNAVAILABLE') as never, e.message ?? `atelierd refused websocket ${w} of ${id} (HTTP ${res.statusCode})`, { change: id, websocket: w }));
      });
    });
    ws.once('error', (e) => reject(new AtelierError('UNAVAILABLE', `cannot connect websocket ${w} of ${id} on ${socket}: ${e.message}`, { socket, change: id }, { cause: e })));
  });
}

/** Write websocket `ws`'s frames to `out`; settles once the daemon has closed it (all output received). */
function receive(ws: WebSocket, out: NodeJS.WritableStream): Promise<void> {
  ws.on('message', (data: WebSocket.RawData) => {
    const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    if (buf.length === 0) return;
    // A slow reader of our output (a pipe into `less`) holds the daemon's frames, and so the process.
    if (out.write(buf) === false && typeof out.once === 'function' && !ws.isPaused) {
      ws.pause();
      out.once('drain', () => ws.resume());
    }
  });
  return new Promise((resolve) => ws.once('close', () => resolve()));
}

/** Send `stdin` on `ws` as binary frames; its end as an empty frame. Returns how to stop reading it. */
function transmit(ws: WebSocket, stdin: NodeJS.ReadableStream | null | undefined): () => void {
  const send = (buf: Buffer | Uint8Array) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(buf, { binary: true }, () => {
      if (ws.bufferedAmount < HIGH_WATER) stdin?.resume();
    });
  };
  if (!stdin) {
    send(Buffer.alloc(0));
    return () => undefined;
  }
  const onData = (chunk: Buffer | string) => {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (buf.length === 0) return; // an empty frame means end-of-file
    // Frames of at most 64 KiB: the daemon refuses a frame over 1 MiB, and a stream may hand over any size.
    for (let i = 0; i < buf.length; i += FRAME) send(buf.subarray(i, i + FRAME));
    if (ws.bufferedAmount >= HIGH_WATER) stdin.pause();
  };
  const onEnd = () => send(Buffer.alloc(0));
  stdin.on('data', onData);
  stdin.once('end', onEnd);
  stdin.resume();
  return () => {
    stdin.off('data', onData);
    stdin.off('end', onEnd);
  };
}

/**
 * Start `req` through the daemon (`calls.start`), connect its websockets, and pump the streams.
 * Resolves once the process runs; `exit` settles after the last output with its exit code (137
 * when it was killed by an abort), or rejects with the change's error when it never ran to an end.
 */
export async function execThroughDaemon(socket: string, req: ExecRequest, calls: ExecCalls): Promise<SpawnedProcess> {
  const id = await calls.start(execBody(req));
  const wanted: [string, NodeJS.WritableStream | null][] = req.terminal
    ? [['pty', req.stdout], ['control', null]]
    : [['stdio', req.stdout], ['stderr', req.stderr], ['control', null]];
  const opened = await Promise.allSettled(wanted.map(([w, out]) => connect(socket, id, w, out)));
  const failed = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    for (const r of opened) if (r.status === 'fulfilled') r.value.ws.terminate();
    await calls.abort(id);
    throw failed.reason;
  }
  const links = opened.map((r) => (r as PromiseFulfilledResult<Link>).value);
  const main = links[0]!.ws;
  const control = links.at(-1)!.ws;
  const outputs = links.slice(0, -1).map((l) => l.received);
  const stopReading = transmit(main, req.stdin);
  const say = (m: Record<string, unknown>) => {
    if (control.readyState === WebSocket.OPEN) control.send(JSON.stringify(m));
  };
  // Asked for now, not once the output has ended: a daemon that is stopping answers the requests
  // it has (the change ends before it closes) but takes no new one.
  const ended = calls.ready(id);
  ended.catch(() => undefined); // (awaited below, after the output)
  const exit = (async () => {
    try {
      await Promise.all(outputs);
      const c = await ended;
      const code = c.data?.['exit-code'];
      if (typeof code === 'number') return code;
      const e = c.error ?? { kind: 'INTERNAL', message: c.err ?? `exec ${id} ended ${c.status} without an exit code` };
      throw new AtelierError(e.kind as never, e.message, { change: id });
    } finally {
      stopReading();
      for (const { ws } of links) if (ws.readyState === WebSocket.OPEN) ws.close(1000);
    }
  })();
  return {
    exit,
    resize: (cols, rows) => say({ command: 'resize', width: cols, height: rows }),
    kill: (signal = 'SIGTERM') => say({ command: 'signal', signal }),
  };
}

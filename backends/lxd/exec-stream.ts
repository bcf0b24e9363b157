/**
 * The streams of an LXD exec started with `wait-for-websocket: true`: the operation's websockets
 * (`/1.0/operations/ID/websocket?secret=S`, one per fd, over the unix socket) connected to a
 * spawned process's streams, as `lxc exec` does.
 *
 * - **Sockets**: non-interactive, `0` (stdin), `1` (stdout), `2` (stderr) and `control`;
 *   interactive, `0` (the pseudo-terminal, both ways) and `control`. LXD starts the command once all
 *   of them are connected, so nothing is missed.
 * - **End of input**: LXD reads an empty text message as "end of stream" (its barrier). For a
 *   pipe it closes the process's stdin. On a terminal the barrier would close the pseudo-terminal
 *   (the process gets SIGHUP, status 129), so end of input is the terminal's end-of-file character
 *   (^D) instead, as util-linux `script` sends it: a program reading lines sees end of file.
 * - **Output**: binary messages; LXD sends the barrier when the process's stream ends, then drops
 *   the connection. An interactive exec's operation only ends once the client has closed the
 *   terminal's socket after that barrier. `exit` settles after the operation ended (its
 *   `metadata.return` is the status, 128 + n for signal n) and every byte has been handed to the
 *   request's streams; a reader that cannot keep up pauses the socket (backpressure).
 * - **Control**: `{"command":"window-resize","args":{"width":"C","height":"R"}}` and
 *   `{"command":"signal","signal":N}`. When the control connection drops without a close frame
 *   (the caller was killed), LXD sends SIGKILL to the process; closed normally, it leaves it alone.
 *
 * Websockets through the `ws` package rather than by hand: the framing (client masking, fragments,
 * ping/pong and close handshakes, payload lengths) is easy to get subtly wrong, and `ws` is the
 * maintained client Node programs use, with no native code; atelierd already depends on it.
 *
 * @example
 * ```ts
 * const p = await attachExec(client, op.id, op.metadata.fds, { name: 'nav2', argv0: 'sh', interactive: false, stdin: null, stdout: process.stdout, stderr: process.stderr });
 * await p.exit; // 0
 * ```
 */
import { constants } from 'node:os';
import WebSocket from 'ws';
import { BackendError } from '../types.ts';
import type { SpawnedProcess } from '../types.ts';
import type { LxdClient, LxdOperation } from './client.ts';
import { writeAll as write } from '../streams.ts';

/** What `attachExec` connects. */
export interface ExecStreams {
  /** The instance, for messages. */
  readonly name: string;
  /** The program, for the "command not found" line. */
  readonly argv0: string;
  readonly interactive: boolean;
  readonly stdin: NodeJS.ReadableStream | null;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

/** Stop reading the caller's stdin while this much is queued for the daemon. */
const STDIN_HIGH_WATER = 1 << 20;
/** How long output may trail the operation's end before the sockets are dropped. */
const OUTPUT_GRACE_MS = 5_000;
/** LXD's words when the program could not be started, the status a shell gives, what it says. */
const LAUNCH_FAILURES: ReadonlyArray<readonly [RegExp, number, string]> = [
  [/command not found|no such file/i, 127, 'command not found'],
  [/not executable|permission denied|exec format error/i, 126, 'cannot execute'],
];
/** The terminal's end-of-file character (VEOF, ^D). */
const EOT = Buffer.from([4]);

/** Connect an exec operation's websockets to `io` and return the running process. */
export async function attachExec(client: LxdClient, opId: string, fds: Record<string, string>, io: ExecStreams): Promise<SpawnedProcess> {
  const keys = io.interactive ? ['0', 'control'] : ['0', '1', '2', 'control'];
  const socks: Record<string, WebSocket> = {};
  for (const k of keys) {
    const secret = fds[k];
    if (!secret) throw new BackendError('INTERNAL', `LXD's exec in ${io.name} has no websocket for fd ${k}`, { fds: Object.keys(fds) });
    const url = `ws+unix://${client.socketPath}:/1.0/operations/${encodeURIComponent(opId)}/websocket?secret=${encodeURIComponent(secret)}`;
    const s = new WebSocket(url, { perMessageDeflate: false });
    // A connection reset must not be an uncaught 'error' event: its outcome is in the operation
    // (`exit`) and, for the output, in the socket's close.
    s.on('error', () => undefined);
    socks[k] = s;
  }
  // The output handlers are attached before the sockets open: the command starts as soon as the
  // last one connects, and its first bytes may arrive with the open.
  const outputs = io.interactive ? [sink(socks['0']!, io.stdout, true)] : [sink(socks['1']!, io.stdout, false), sink(socks['2']!, io.stderr, false)];
  try {
    await Promise.all(Object.values(socks).map(opened));
  } catch (e) {
    for (const s of Object.values(socks)) s.terminate();
    // Without its sockets the command never starts: cancel the operation so LXD does not wait on.
    await client.raw('DELETE', `/1.0/operations/${encodeURIComponent(opId)}`).catch(() => undefined);
    throw new BackendError('UNAVAILABLE', `cannot connect to the process in ${io.name} through LXD: ${(e as Error).message}`, { operation: opId });
  }

  const detachStdin = pumpStdin(socks['0']!, io.stdin, io.interactive);
  const control = socks['control']!;
  let ended = false;
  control.on('message', () => undefined); // LXD sends nothing useful here; keep the socket read

  const exit = (async () => {
    let op: LxdOperation;
    try {
      // Not pooled: a shell may wait for hours, and must not hold a connection other calls need.
      op = await client.wait(opId, undefined, false);
    } catch (e) {
      ended = true;
      detachStdin();
      for (const s of Object.values(socks)) s.terminate();
      // Whatever went wrong (the daemon gone, the operation forgotten by a restarted one), the
      // process is out of reach: that is the port's UNAVAILABLE.
      const why = e instanceof Error ? e.message : String(e);
      throw new BackendError('UNAVAILABLE', `lost the process in ${io.name}: ${why}`, { operation: opId, ...(e instanceof BackendError ? { cause: e.code } : {}) });
    }
    ended = true;
    await Promise.race([Promise.all(outputs), delay(OUTPUT_GRACE_MS)]);
    detachStdin();
    for (const s of Object.values(socks)) if (s.readyState === WebSocket.OPEN) s.close(1000);
    const meta = (op.metadata ?? {}) as { return?: unknown };
    let status = typeof meta.return === 'number' ? meta.return : null;
    const failed = op.status === 'Failure' ? LAUNCH_FAILURES.find(([re]) => re.test(op.err)) : undefined;
    if (failed) {
      // LXD could not start the program and says so only in the operation: say it as a shell
      // would (`atelier exec ws nope` behaves like typing `nope`), with a shell's status.
      await write(io.interactive ? io.stdout : io.stderr, `${io.argv0}: ${failed[2]}\n`);
      status = failed[1];
    }
    if (status === null) throw new BackendError('INTERNAL', `LXD ran the process in ${io.name} but reports no exit status: ${op.err || op.status}`, { operation: op.id });
    await Promise.all([write(io.stdout, ''), write(io.stderr, '')]);
    return status;
  })();
  exit.catch(() => undefined); // the caller sees the rejection through `exit`; never unhandled here

  const sendControl = (msg: unknown) => {
    if (!ended && control.readyState === WebSocket.OPEN) control.send(JSON.stringify(msg));
  };
  return {
    exit,
    resize: (cols, rows) => {
      if (!io.interactive) return;
      const size = (n: number) => String(Math.max(1, Math.floor(n)));
      sendControl({ command: 'window-resize', args: { width: size(cols), height: size(rows) } });
    },
    kill: (signal = 'SIGTERM') => {
      const n = constants.signals[signal];
      if (n === undefined) throw new BackendError('INVALID', `unknown signal ${String(signal)}`);
      sendControl({ command: 'signal', signal: n });
    },
  };
}

function opened(s: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('open', () => resolve());
    s.once('error', reject);
    s.once('close', (code) => reject(new Error(`closed before it opened (${code})`)));
  });
}

/**
 * Copy a socket's binary messages to `out` until the barrier (an empty text message) or the
 * connection's end. An interactive socket is then closed by us: LXD ends the operation only then.
 */
function sink(s: WebSocket, out: NodeJS.WritableStream, closeAtBarrier: boolean): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    let paused = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve();
    };
    s.on('error', finish); // a dropped connection ends the stream; `exit` tells what happened
    s.on('close', finish);
    s.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        if (closeAtBarrier && s.readyState === WebSocket.OPEN) s.close(1000);
        finish();
        return;
      }
      if (done || data.length === 0) return;
      // Messages already received still arrive while paused: one drain listener is enough.
      if (!out.write(data) && !paused) {
        paused = true;
        s.pause();
        out.once('drain', () => {
          paused = false;
          s.resume();
        });
      }
    });
  });
}

/**
 * Send the caller's stdin on the stdin (or terminal) socket, then end of input; absent stdin is
 * end of input at once. Returns a function that stops reading it (when the process has ended):
 * it is paused again, so a terminal's stdin no longer keeps the caller's event loop alive.
 */
function pumpStdin(s: WebSocket, stdin: NodeJS.ReadableStream | null, interactive: boolean): () => void {
  let eofSent = false;
  const eof = () => {
    if (eofSent || s.readyState !== WebSocket.OPEN) return;
    eofSent = true;
    s.send(interactive ? EOT : '', { binary: interactive });
  };
  // A stream that has already ended and been read never says so again.
  if (!stdin || (stdin as { readableEnded?: boolean }).readableEnded) {
    eof();
    return () => undefined;
  }
  let detached = false;
  const onData = (chunk: Buffer | string) => {
    if (detached || eofSent || s.readyState !== WebSocket.OPEN) return;
    s.send(typeof chunk === 'string' ? Buffer.from(chunk) : chunk, { binary: true }, () => {
      if (!detached && s.bufferedAmount < STDIN_HIGH_WATER) stdin.resume();
    });
    if (s.bufferedAmount >= STDIN_HIGH_WATER) stdin.pause();
  };
  const onEnd = () => eof();
  stdin.on('data', onData);
  stdin.on('end', onEnd);
  stdin.on('error', onEnd);
  stdin.resume();
  return () => {
    if (detached) return;
    detached = true;
    stdin.removeListener('data', onData);
    stdin.removeListener('end', onEnd);
    stdin.removeListener('error', onEnd);
    stdin.pause();
  };
}


function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

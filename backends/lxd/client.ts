/**
 * A small typed client for the LXD REST API over its unix socket.
 *
 * No client library: Node's `http` module speaks HTTP over a unix socket through the `socketPath`
 * request option, which is all the LXD API needs. Async answers (`type: async`) are awaited through
 * `GET /1.0/operations/<id>/wait`; that call answers HTTP 200 even when the job failed, so the
 * operation's own `status` (`Success` / `Failure`) is checked. Errors become `BackendError`s with the
 * port's codes (see `errors.ts` in this folder).
 *
 * @example
 * ```ts
 * const c = new LxdClient(resolveSocket());
 * const inst = await c.get<LxdInstance>('/1.0/instances/nav2-1a2b3c4d', { project: 'workshop.alice' });
 * const op = await c.async('PUT', '/1.0/instances/nav2-1a2b3c4d/state', { action: 'start' }, { project: 'workshop.alice' });
 * ```
 */
import http from 'node:http';
import { existsSync } from 'node:fs';
import { BackendError } from '../types.ts';
import { fromLxd, unavailable } from './errors.ts';

/** Where the daemon listens: Debian's package first, then the snap. */
export const DEFAULT_SOCKETS = ['/var/lib/lxd/unix.socket', '/var/snap/lxd/common/lxd/unix.socket'] as const;

/** The socket to use: the one given, else the first default that exists, else the first default. */
export function resolveSocket(given?: string): string {
  if (given) return given;
  return DEFAULT_SOCKETS.find((p) => existsSync(p)) ?? DEFAULT_SOCKETS[0];
}

/** The envelope of every LXD answer. */
interface LxdEnvelope {
  type: 'sync' | 'async' | 'error';
  status_code?: number;
  error_code?: number;
  error?: string;
  operation?: string;
  metadata?: unknown;
}

/** An operation as `/1.0/operations/<id>` reports it. */
export interface LxdOperation {
  id: string;
  description?: string;
  status: string; // Success | Failure | Running | Cancelled ...
  status_code: number;
  err: string;
  metadata: Record<string, unknown> | null;
  resources?: Record<string, string[]> | null;
}

export interface LxdInstance {
  name: string;
  project?: string;
  status: string; // Running | Stopped | ...
  type: string;
  architecture: string;
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
  /** The devices with the profiles' merged in (where the root disk usually comes from). */
  expanded_devices?: Record<string, Record<string, string>>;
  profiles: string[];
  ephemeral: boolean;
  description: string;
  stateful?: boolean;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export type Query = Record<string, string | number | boolean | undefined>;

export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) if (v !== undefined) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  if (parts.length === 0) return path;
  return path + (path.includes('?') ? '&' : '?') + parts.join('&');
}

export class LxdClient {
  readonly socketPath: string;
  private readonly agent: http.Agent;

  constructor(socketPath: string) {
    this.socketPath = socketPath;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  }

  /**
   * One HTTP exchange; the body as bytes. A missing or refused socket is `UNAVAILABLE`.
   * `pooled: false` makes a connection of its own instead of one of the pool's 8: for a long poll
   * (a spawned process's wait may last as long as a shell session) that must not hold a pooled
   * connection every other call needs.
   */
  raw(method: string, path: string, body?: unknown, timeoutMs = 120_000, pooled = true): Promise<RawResponse> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<RawResponse>((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socketPath,
          agent: pooled ? this.agent : false,
          method,
          path,
          headers: { Host: 'lxd', ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', (e) => reject(unavailable(this.socketPath, e)));
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from LXD within ${timeoutMs} ms (${method} ${path})`)));
      req.on('error', (e) => reject(unavailable(this.socketPath, e)));
      if (payload) req.write(payload);
      req.end();
    });
  }

  /**
   * A request whose body is a stream (an image upload), answered like `call`. On a connection of
   * its own (an upload may take minutes). An error of the body (a `BackendError` from whatever
   * produces it) fails the request with that error; the daemon answering before the body is all
   * sent (a refusal) ends the exchange there, and the body is no longer read.
   */
  upload(path: string, headers: Record<string, string>, body: NodeJS.ReadableStream, query?: Query): Promise<LxdEnvelope> {
    const url = withQuery(path, query);
    return new Promise<LxdEnvelope>((resolve, reject) => {
      let bodyError: unknown = null;
      const req = http.request({ socketPath: this.socketPath, agent: false, method: 'POST', path: url, headers: { Host: 'lxd', ...headers } }, (res) => {
        body.unpipe(req);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => reject(unavailable(this.socketPath, e)));
        res.on('end', () => {
          if (bodyError) return reject(bodyError);
          let env: LxdEnvelope;
          try {
            env = JSON.parse(Buffer.concat(chunks).toString('utf8')) as LxdEnvelope;
          } catch {
            return reject(new BackendError('INTERNAL', `LXD answered POST ${url} with HTTP ${res.statusCode} and no JSON`, { status: res.statusCode }));
          }
          if (env.type === 'error' || (res.statusCode ?? 0) >= 400) return reject(fromLxd(env.error_code ?? res.statusCode ?? 500, env.error ?? `HTTP ${res.statusCode}`, { method: 'POST', path: url }));
          resolve(env);
        });
      });
      req.on('error', (e) => reject(bodyError ?? unavailable(this.socketPath, e)));
      body.on('error', (e: unknown) => {
        bodyError = e instanceof BackendError ? e : new BackendError('INTERNAL', `reading what was to be sent to LXD: ${(e as Error)?.message ?? String(e)}`);
        req.destroy();
        reject(bodyError);
      });
      body.pipe(req);
    });
  }

  /** A JSON exchange; error envelopes become `BackendError`s. */
  async call(method: string, path: string, body?: unknown, query?: Query, timeoutMs?: number, pooled = true): Promise<LxdEnvelope> {
    const url = withQuery(path, query);
    const res = await this.raw(method, url, body, timeoutMs, pooled);
    let env: LxdEnvelope;
    try {
      env = JSON.parse(res.body.toString('utf8')) as LxdEnvelope;
    } catch {
      throw new BackendError('INTERNAL', `LXD answered ${method} ${url} with HTTP ${res.status} and no JSON`, { status: res.status });
    }
    if (env.type === 'error' || res.status >= 400) {
      throw fromLxd(env.error_code ?? res.status, env.error ?? `HTTP ${res.status}`, { method, path: url });
    }
    return env;
  }

  /** A synchronous GET's metadata. */
  async get<T>(path: string, query?: Query): Promise<T> {
    return (await this.call('GET', path, undefined, query)).metadata as T;
  }

  /** A synchronous call's metadata (PATCH/PUT of config, project creation). */
  async sync<T = unknown>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
    const env = await this.call(method, path, body, query);
    if (env.type === 'async' && env.operation) {
      const op = await this.wait(env.operation);
      if (op.status !== 'Success') throw fromLxd(op.status_code, op.err || `operation ${op.status}`, { method, path: withQuery(path, query), operation: op.id });
      return op.metadata as T;
    }
    return env.metadata as T;
  }

  /**
   * An asynchronous call, awaited to its end. A `Failure` operation becomes a `BackendError`, unless
   * `allowFailure` (exec: a failed command still has an exit status to report).
   */
  async async(method: string, path: string, body?: unknown, query?: Query, opts: { timeoutS?: number; allowFailure?: boolean } = {}): Promise<LxdOperation> {
    const env = await this.call(method, path, body, query);
    if (env.type !== 'async' || !env.operation) {
      // Some endpoints answer synchronously; present that as a finished operation.
      return { id: '', status: 'Success', status_code: 200, err: '', metadata: (env.metadata as Record<string, unknown>) ?? null };
    }
    const op = await this.wait(env.operation, opts.timeoutS);
    if (op.status !== 'Success' && !opts.allowFailure) {
      throw fromLxd(op.status_code, op.err || `operation ${op.status}`, { method, path: withQuery(path, query), operation: op.id });
    }
    return op;
  }

  /**
   * Wait for an operation (by URL or id). Waits in slices so a long job never trips the HTTP
   * timeout; `timeoutS` bounds the whole wait and then the still-running operation is returned.
   * `pooled: false`: each slice on a connection of its own (see `raw`).
   */
  async wait(operation: string, timeoutS?: number, pooled = true): Promise<LxdOperation> {
    const [opPath, opQuery] = operation.startsWith('/') ? operation.split('?') : [`/1.0/operations/${operation}`, undefined];
    const deadline = timeoutS === undefined ? Infinity : Date.now() + timeoutS * 1000;
    for (;;) {
      const slice = Math.max(1, Math.min(30, Math.ceil((deadline - Date.now()) / 1000)));
      const url = `${opPath}/wait?timeout=${slice}${opQuery ? `&${opQuery}` : ''}`;
      const env = await this.call('GET', url, undefined, undefined, (slice + 30) * 1000, pooled);
      const op = env.metadata as LxdOperation;
      if (op.status !== 'Running' && op.status !== 'Pending') return op;
      if (Date.now() >= deadline) return op;
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Whether an error from this client says the daemon is not there. */
export function isUnavailable(e: unknown): boolean {
  return e instanceof BackendError && e.code === 'UNAVAILABLE';
}

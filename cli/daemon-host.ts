/**
 * The CLI as atelierd's client: each command is a request on the daemon's socket. A command that
 * starts a change is followed until the change is ready (long-polling `/wait`), its tasks turned into
 * the same progress lines the engine reports in process; Ctrl-C aborts the change (it is undone, as
 * in process). Results, errors and exit codes are the in-process ones: the error envelope's `kind`
 * is the error code, and a change that was undone or broke gives the error the engine would have.
 *
 * @example
 * ```ts
 * const host = await connectDaemon('/run/atelier/atelierd.sock'); // null when no daemon answers
 * await host?.list();
 * ```
 */
import http from 'node:http';
import path from 'node:path';
import type { CommandOptions, ExecRequest, GcReport, Progress, ReconcileReport, RunRequest, RunResult, UsageReport, WorkshopView } from '../engine/api.ts';
import type { SpawnedProcess } from '../backends/types.ts';
import { isolationOf, type BackendKind, type IsolationReport } from '../backends/select.ts';
import { didYouMeanHint } from '../engine/hints.ts';
import { opError } from '../engine/op-errors.ts';
import { AtelierError } from '../machines/errors.ts';
import { execThroughDaemon, type ExecChange } from './daemon-exec.ts';
import type { Host } from './host.ts';

interface Envelope {
  type: 'sync' | 'async' | 'error';
  'status-code': number;
  result?: any;
  change?: string;
}

interface Task {
  id: string;
  kind: string;
  summary: string;
  status: string;
}
interface Change {
  id: string;
  kind: string;
  status: string;
  ready: boolean;
  err?: string;
  error?: { kind: string; message: string };
  tasks: Task[];
  data?: Record<string, any>;
}

/** What `/v1/system-info` says of the daemon. */
export interface DaemonInfo {
  readonly version: string;
  readonly backend: string;
  readonly 'default-base': string;
  readonly 'state-dir': string;
  readonly socket: string;
  readonly pid: number;
}

/** How long a request waits before the daemon is taken not to answer. */
const CONNECT_MS = 2000;

function call(socket: string, method: string, url: string, body?: unknown, timeoutMs = 0): Promise<Envelope> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      { socketPath: socket, method, path: url, agent: false, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          try {
            resolve(JSON.parse(text) as Envelope);
          } catch {
            reject(new AtelierError('UNAVAILABLE', `atelierd on ${socket} answered ${method} ${url} with something that is not its API (HTTP ${res.statusCode})`));
          }
        });
      },
    );
    if (timeoutMs > 0) req.setTimeout(timeoutMs, () => req.destroy(new Error('timed out')));
    req.on('error', (e) => reject(new AtelierError('UNAVAILABLE', `atelierd on ${socket} does not answer (${e.message}): start it, or run with --no-daemon`, { socket }, { cause: e })));
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** The result of a request, or its error envelope as the `AtelierError` the engine would have thrown. */
async function result<T>(socket: string, method: string, url: string, body?: unknown): Promise<T> {
  const env = await call(socket, method, url, body);
  if (env.type === 'error') throw new AtelierError((env.result?.kind ?? 'INTERNAL') as never, String(env.result?.message ?? 'atelierd refused the request'), env.result?.value ?? {});
  return (env.type === 'async' ? env.change : env.result) as T;
}

/**
 * The daemon answering on `socket` (its `system-info`), or null when none does: no socket file, or
 * nobody listening on it.
 */
export async function probeDaemon(socket: string): Promise<DaemonInfo | null> {
  try {
    const env = await call(socket, 'GET', '/v1/system-info', undefined, CONNECT_MS);
    return env.type === 'sync' ? (env.result as DaemonInfo) : null;
  } catch {
    return null;
  }
}

export class DaemonHost implements Host {
  readonly kind = 'daemon' as const;

  constructor(
    readonly socket: string,
    readonly info: DaemonInfo,
  ) {}

  private get<T>(url: string): Promise<T> {
    return result<T>(this.socket, 'GET', url);
  }

  /** A NOT_FOUND for a workshop, with the closest name the daemon knows. */
  private async hinted(name: string, e: unknown): Promise<never> {
    if (e instanceof AtelierError && e.code === 'NOT_FOUND' && !e.message.includes('did you mean')) {
      const names = (await this.list().catch(() => [])).map((w) => w.name);
      const hint = didYouMeanHint(name, names);
      if (hint) throw new AtelierError('NOT_FOUND', `${e.message}${hint}`, { ...e.info });
    }
    throw e;
  }

  list(): Promise<WorkshopView[]> {
    return this.get<WorkshopView[]>('/v1/workshops');
  }

  show(name: string): Promise<WorkshopView> {
    return this.get<WorkshopView>(`/v1/workshops/${encodeURIComponent(name)}`).catch((e) => this.hinted(name, e));
  }

  /**
   * Follow a change to its end: progress lines from its tasks, Ctrl-C (the signal) aborting it once.
   * Resolves with the ready change.
   */
  private async follow(id: string, opts: CommandOptions, workshop: string): Promise<Change> {
    const seen = new Map<string, string>();
    let aborted = false;
    const report = (c: Change) => {
      const phases = new Map<string, number>();
      for (const t of c.tasks) phases.set(t.kind, (phases.get(t.kind) ?? 0) + 1);
      for (const t of c.tasks) {
        const before = seen.get(t.id) ?? 'Do';
        if (before === t.status) continue;
        seen.set(t.id, t.status);
        const status: Progress['status'] | null = t.status === 'Doing' ? 'started' : t.status === 'Done' ? 'done' : t.status === 'Error' ? 'failed' : null;
        if (status === null) continue;
        // A task finished between two looks was also started: report both, as the engine does.
        if (status !== 'started' && before !== 'Doing') report1(t, 'started', phases, c);
        report1(t, status, phases, c);
      }
    };
    const report1 = (t: Task, status: Progress['status'], phases: Map<string, number>, c: Change) => {
      const step = Number(t.id.split('/').at(-1));
      const phase = (['do', 'undo', 'cleanup'].includes(t.kind) ? t.kind : 'do') as Progress['phase'];
      opts.onProgress?.({ op: c.id, kind: (c.kind === 'run' ? 'launch' : c.kind) as Progress['kind'], workshop, phase, step, total: phases.get(t.kind) ?? 1, label: t.summary, status, at: new Date().toISOString() });
    };
    for (;;) {
      if (!aborted && opts.signal?.aborted) {
        aborted = true;
        await call(this.socket, 'POST', `/v1/changes/${id}`, { action: 'abort' }).catch(() => undefined);
      }
      const env = await call(this.socket, 'GET', `/v1/changes/${id}/wait?timeout=200ms`);
      const c = (env.type === 'sync' ? env.result : (await call(this.socket, 'GET', `/v1/changes/${id}`)).result) as Change;
      if (!c) throw new AtelierError('INTERNAL', `atelierd lost change ${id}`);
      report(c);
      if (c.ready) return c;
    }
  }

  /** Start a change and follow it; the error the engine would have thrown when it did not end done. */
  private async change(kind: string, workshop: string, url: string, body: unknown, opts: CommandOptions): Promise<Change> {
    let id: string;
    try {
      id = await result<string>(this.socket, 'POST', url, body);
    } catch (e) {
      return this.hinted(workshop, e);
    }
    opts.onOp?.(id);
    const c = await this.follow(id, opts, workshop);
    if (c.status === 'Done') return c;
    const err = c.error ? { code: c.error.kind, message: c.error.message } : { code: 'OP_FAILED', message: c.err ?? 'the operation failed' };
    if (c.kind === 'run' || c.kind === 'gc' || c.kind === 'reconcile') throw new AtelierError(err.code as never, err.message);
    const remains = await this.show(workshop).then(
      (w) => w,
      () => null,
    );
    throw opError(kind, workshop, c.status === 'Error' ? 'broken' : 'undone', remains?.lastError ?? err, remains !== null, id);
  }

  private async workshopChange(kind: string, name: string, url: string, body: unknown, opts: CommandOptions): Promise<WorkshopView> {
    await this.change(kind, name, url, body, opts);
    return this.show(name);
  }

  async launch(file: string, opts: CommandOptions): Promise<WorkshopView> {
    const name = await this.nameIn(file);
    return this.workshopChange('launch', name, '/v1/workshops', { action: 'launch', file: path.resolve(file) }, opts);
  }

  async refresh(file: string, opts: CommandOptions): Promise<WorkshopView> {
    const name = await this.nameIn(file);
    return this.workshopChange('refresh', name, '/v1/workshops', { action: 'refresh', file: path.resolve(file) }, opts);
  }

  /** The workshop a file names (the daemon reads the file too; this is for messages and the result). */
  private async nameIn(file: string): Promise<string> {
    const { loadWorkshopFile } = await import('../engine/workshop-file.ts');
    return (await loadWorkshopFile(file, { defaultBase: '' })).name;
  }

  stash(name: string, opts: CommandOptions): Promise<WorkshopView> {
    return this.workshopChange('stash', name, `/v1/workshops/${name}`, { action: 'stash' }, opts);
  }

  unstash(name: string, opts: CommandOptions): Promise<WorkshopView> {
    return this.workshopChange('unstash', name, `/v1/workshops/${name}`, { action: 'unstash' }, opts);
  }

  restore(name: string, sdk: string, opts: CommandOptions): Promise<WorkshopView> {
    return this.workshopChange('restore', name, `/v1/workshops/${name}`, { action: 'restore', sdk }, opts);
  }

  /** The daemon's (it runs the workshops, perhaps as another user than this CLI). */
  async isolation(): Promise<IsolationReport> {
    const given = (this.info as unknown as { isolation?: IsolationReport }).isolation;
    return given ?? isolationOf(this.info.backend as BackendKind);
  }

  start(name: string, opts: CommandOptions): Promise<WorkshopView> {
    return this.workshopChange('start', name, `/v1/workshops/${name}`, { action: 'start' }, opts);
  }

  stop(name: string, opts: CommandOptions): Promise<WorkshopView> {
    return this.workshopChange('stop', name, `/v1/workshops/${name}`, { action: 'stop' }, opts);
  }

  /** `atelier exec` / `atelier shell` through the daemon: its exec endpoint and websockets (`daemon-exec.ts`). */
  exec(name: string, req: ExecRequest): Promise<SpawnedProcess> {
    return execThroughDaemon(this.socket, req, {
      start: (body) => result<string>(this.socket, 'POST', `/v1/workshops/${encodeURIComponent(name)}/exec`, body).catch((e) => this.hinted(name, e)),
      ready: (id) => this.ready(id),
      abort: (id) => call(this.socket, 'POST', `/v1/changes/${id}`, { action: 'abort' }).then(
        () => undefined,
        () => undefined,
      ),
    });
  }

  /** Change `id` once ready: long polls of `/wait`, for as long as it takes (a process may run for hours). */
  private async ready(id: string): Promise<ExecChange> {
    for (;;) {
      const env = await call(this.socket, 'GET', `/v1/changes/${id}/wait?timeout=60s`);
      if (env.type === 'sync') return env.result as ExecChange;
      if (env.result?.kind !== 'TIMEOUT') throw new AtelierError((env.result?.kind ?? 'INTERNAL') as never, String(env.result?.message ?? `atelierd lost change ${id}`), { change: id });
    }
  }

  async remove(name: string, opts: CommandOptions): Promise<void> {
    await this.change('remove', name, `/v1/workshops/${name}`, { action: 'remove' }, opts);
  }

  async run(req: RunRequest, opts: CommandOptions): Promise<RunResult> {
    const c = await this.change('run', req.from, '/v1/containers', { from: req.from, ...(req.script !== undefined ? { script: req.script } : {}), ...(req.scratch !== undefined ? { scratch: req.scratch } : {}), ...(req.keep ? { keep: true } : {}) }, opts);
    const d = c.data ?? {};
    return { id: String(d.id), exitCode: Number(d['exit-code'] ?? 0), stdout: String(d.stdout ?? ''), stderr: String(d.stderr ?? '') };
  }

  async gc(dryRun: boolean, cache = false): Promise<GcReport> {
    const c = await this.change('gc', '', '/v1/gc', { 'dry-run': dryRun, ...(cache ? { cache } : {}) }, {});
    const evicted = c.data?.evicted;
    return { orphans: c.data?.orphans ?? [], dryRun: c.data?.['dry-run'] === true, ...(Array.isArray(evicted) ? { evicted } : {}) };
  }

  async reconcile(): Promise<ReconcileReport> {
    const c = await this.change('reconcile', '', '/v1/reconcile', undefined, {});
    const restarted = Number(c.data?.restarted ?? 0);
    return { pending: Number(c.data?.pending ?? 0), orphans: Number(c.data?.orphans ?? 0), missing: Number(c.data?.missing ?? 0), ...(restarted > 0 ? { restarted } : {}) };
  }

  async bases(): Promise<{ bases: string[]; defaultBase: string }> {
    const r = await this.get<{ bases: string[]; 'default-base': string }>('/v1/bases');
    return { bases: r.bases, defaultBase: r['default-base'] };
  }

  df(): Promise<UsageReport> {
    return this.get<UsageReport>('/v1/space');
  }
}

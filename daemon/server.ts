/**
 * atelierd's HTTP API: JSON over HTTP/1.1 on the unix socket, in snapd's and workshopd's shapes
 * (`envelope.ts`): reads answer at once (`sync`), commands start a change and answer `202`
 * (`async`, with a `Location` to follow), and `/v1/events` streams the journal as NDJSON.
 *
 * fastify serves it: it listens on a unix socket, caps the body (64 KiB), and checks each request
 * against a JSON schema (unknown fields refused: `additionalProperties: false`, and ajv told not to
 * strip them), so a malformed request is a 400 before any handler runs, and nothing is journaled.
 *
 * Exec (`exec.ts`) is the one endpoint whose change carries streams: its process's stdin, stdout and
 * stderr go over websockets of the change (`@fastify/websocket`, routed like any request, so a
 * refusal before the upgrade is an error envelope too).
 *
 * Commands on one workshop are serialised by refusing: a command on a workshop with a change in
 * flight answers 409 `BUSY` at once (as snapd answers a conflicting change), so that a 202 always
 * means the command was accepted and journaled. Different workshops run concurrently.
 *
 * @example
 * ```sh
 * curl --unix-socket /run/atelier/atelierd.sock http://localhost/v1/workshops
 * curl --unix-socket /run/atelier/atelierd.sock -d '{"action":"launch","file":"/srv/nav2/workshop.yaml"}' http://localhost/v1/workshops
 * curl --unix-socket /run/atelier/atelierd.sock 'http://localhost/v1/changes/op-3vx8q2k1m0ab/wait?timeout=60s'
 * ```
 */
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { nanoid } from 'nanoid';
import type { CommandOptions, Engine, JournalEvent } from '../engine/api.ts';
import { loadWorkshopFile, specFromInline, type InlineWorkshop } from '../engine/workshop-file.ts';
import { validateWorkshopName } from '../machines/names.ts';
import type { ChangeBook } from './changes.ts';
import { accepted, ApiError, envelopeOf, sync } from './envelope.ts';
import { ExecSessions } from './exec.ts';
import { SCHEMAS } from './schemas.ts';

/** What the API serves. */
export interface ApiDeps {
  readonly engine: Engine;
  readonly book: ChangeBook;
  readonly info: Record<string, unknown>;
  /** One JSON log line per request (stderr). */
  readonly log: (line: Record<string, unknown>) => void;
  /** How long an exec's client has to connect its websockets (`exec.ts`; 5 s by default). */
  readonly execConnectMs?: number;
}

/** The changes this daemon runs: how to abort each, and which workshops have one in flight. */
export class Inflight {
  readonly controllers = new Map<string, AbortController>();
  readonly workshops = new Set<string>();
  readonly running = new Map<string, Promise<unknown>>();

  /** Settles once every change in flight has ended. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }
}

/** Parse `30s`, `500ms`, `2m`, or plain seconds; null when malformed. */
function duration(text: string | undefined, fallback: number): number | null {
  if (text === undefined) return fallback;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text);
  if (!m) return null;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

const cursorOf = (text: string | undefined, name: string): number => {
  if (text === undefined) return 0;
  if (!/^\d+$/.test(text)) throw new ApiError('INVALID_ARGUMENT', `${name} must be a sequence number (a whole number), got ${JSON.stringify(text)}`, { field: name });
  return Number(text);
};

export function buildApi(deps: ApiDeps, inflight: Inflight): { app: FastifyInstance; streams: Set<() => void> } {
  const { engine, book } = deps;
  const streams = new Set<() => void>();
  const app = Fastify({
    logger: false,
    bodyLimit: 64 * 1024,
    // Refuse unknown fields rather than strip them, and take JSON types as they are.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } },
    return503OnClosing: true,
  });
  app.decorateRequest('change', '');

  // A callback hook, not an async one: one promise less on every request.
  app.addHook('onResponse', (req, reply, done) => {
    const change = (req as FastifyRequest & { change: string }).change;
    deps.log({ method: req.method, path: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10, ...(change ? { change } : {}) });
    done();
  });

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number; validation?: unknown[] }, _req, reply) => {
    let e: unknown = err;
    if (err.validation) e = new ApiError('INVALID_ARGUMENT', `invalid request: ${err.message}`);
    else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') e = new ApiError('INVALID_ARGUMENT', 'request body over 64 KiB: send a workshop file path instead of a large inline spec');
    else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') e = new ApiError('INVALID_ARGUMENT', 'send a JSON body (Content-Type: application/json)');
    else if (err.code?.startsWith('FST_ERR_CTP') || (err.statusCode === 400 && err instanceof SyntaxError)) e = new ApiError('INVALID_ARGUMENT', `malformed JSON body: ${err.message}`);
    else if (err.statusCode === 400) e = new ApiError('INVALID_ARGUMENT', err.message);
    const body = envelopeOf(e);
    void reply.code(body['status-code']).send(body);
  });

  app.setNotFoundHandler((req, reply) => {
    const body = envelopeOf(new ApiError('NOT_FOUND', `no endpoint ${req.method} ${req.url.split('?')[0]} (see the README's API section)`));
    void reply.code(404).send(body);
  });

  /** Start a change: answer 202 once its op is journaled, or the error it was refused with. */
  async function start(req: FastifyRequest, reply: FastifyReply, workshop: string | null, work: (opts: CommandOptions) => Promise<Record<string, unknown> | void>): Promise<unknown> {
    if (workshop !== null && (inflight.workshops.has(workshop) || engine.state.workshops[workshop]?.status === 'busy')) {
      throw Object.assign(new ApiError('BUSY', `workshop "${workshop}" has a change in progress: wait for it (GET /v1/changes?select=in-progress) and try again`, { workshop }));
    }
    if (workshop !== null) inflight.workshops.add(workshop);
    const ac = new AbortController();
    let opened: (id: string) => void = () => undefined;
    const op = new Promise<string>((resolve) => (opened = resolve));
    const running = work({ signal: ac.signal, onOp: (id) => opened(id) });
    const first = await Promise.race([op.then((id) => ({ id })), running.then(() => ({ id: null as string | null, error: null }), (error: unknown) => ({ id: null as string | null, error }))]);
    let id = first.id;
    // From here on the engine says whether the workshop is busy (its op is journaled, or the
    // command was refused): a client that waited for this change to be ready may start the next.
    if (workshop !== null) inflight.workshops.delete(workshop);
    if (id === null) {
      // Ended before its op was journaled: refused (or, for a command without an op, done at once).
      if ('error' in first && first.error) throw first.error;
      id = await op;
    }
    inflight.controllers.set(id, ac);
    book.drive(id);
    const settled = running.then(
      (data) => {
        if (data) book.finish(id, 'Done', new Date().toISOString(), undefined, data);
      },
      (e: unknown) => {
        const kind = typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'INTERNAL';
        const message = e instanceof Error ? e.message : String(e);
        book.finish(id, 'Error', new Date().toISOString(), message, undefined, { kind, message });
      },
    );
    const done = settled.finally(() => {
      inflight.controllers.delete(id);
      inflight.running.delete(id);
    });
    inflight.running.set(id, done);
    (req as FastifyRequest & { change: string }).change = id;
    return reply.code(202).header('location', `/v1/changes/${id}`).send(accepted(id));
  }

  /** A change the daemon keeps itself (gc, reconcile: no op in the journal). */
  async function startOwn(req: FastifyRequest, reply: FastifyReply, kind: string, summary: string, work: () => Promise<Record<string, unknown>>): Promise<unknown> {
    const id = `${kind}-${nanoid(10)}`;
    book.start(id, kind, summary, new Date().toISOString());
    const done = work().then(
      (data) => book.finish(id, 'Done', new Date().toISOString(), undefined, data),
      (e: unknown) => {
        const message = e instanceof Error ? e.message : String(e);
        book.finish(id, 'Error', new Date().toISOString(), message, undefined, { kind: typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'INTERNAL', message });
      },
    );
    inflight.running.set(id, done.finally(() => inflight.running.delete(id)));
    (req as FastifyRequest & { change: string }).change = id;
    return reply.code(202).header('location', `/v1/changes/${id}`).send(accepted(id));
  }

  // Exec's websockets (`exec.ts`): routed through fastify, so refusals before the upgrade are the
  // usual error envelopes. Its routes go in a plugin registered after this one, which sees them.
  void app.register(fastifyWebsocket, { options: { maxPayload: 1024 * 1024, perMessageDeflate: false } });
  void app.register(async (scope) => new ExecSessions({ engine, book, log: deps.log, ...(deps.execConnectMs !== undefined ? { connectMs: deps.execConnectMs } : {}) }, inflight).register(scope));

  app.get('/v1/system-info', async () => sync(deps.info));
  app.get('/v1/workshops', async () => sync(engine.list()));
  app.get<{ Params: { name: string } }>('/v1/workshops/:name', { schema: SCHEMAS.workshopParams }, async (req) => sync(engine.show(validateWorkshopName(req.params.name))));
  // `atelier df`: the disks (measured now: degraded mode is left here too once space is back) and what each object holds.
  app.get('/v1/space', async () => sync(await engine.usage()));
  app.get('/v1/bases', async () => sync({ bases: await engine.backend.listBases(), 'default-base': engine.backend.defaultBase }));

  app.post<{ Body: { action: 'launch' | 'refresh'; file?: string; spec?: InlineWorkshop } }>('/v1/workshops', { schema: SCHEMAS.workshops }, async (req, reply) => {
    const { action, file, spec: inline } = req.body;
    if ((file === undefined) === (inline === undefined)) throw new ApiError('INVALID_ARGUMENT', 'give exactly one of "file" (a workshop file path) and "spec" (an inline workshop)');
    const opts = { defaultBase: engine.backend.defaultBase };
    const spec = file !== undefined ? await loadWorkshopFile(file, opts) : specFromInline(inline!, opts);
    return start(req, reply, spec.name, (o) => (action === 'launch' ? engine.launch(spec, o) : engine.refresh(spec, o)).then(() => undefined));
  });

  app.post<{ Params: { name: string }; Body: { action: 'stash' | 'unstash' | 'restore' | 'remove' | 'start' | 'stop'; sdk?: string } }>(
    '/v1/workshops/:name',
    { schema: SCHEMAS.workshopAction },
    async (req, reply) => {
      const name = validateWorkshopName(req.params.name);
      const { action, sdk } = req.body;
      if (action === 'restore' && sdk === undefined) throw new ApiError('INVALID_ARGUMENT', 'restore needs "sdk": the SDK whose layer to return to');
      if (action !== 'restore' && sdk !== undefined) throw new ApiError('INVALID_ARGUMENT', `"sdk" is for restore only, not ${action}`);
      return start(req, reply, name, async (o) => {
        if (action === 'stash') await engine.stash(name, o);
        else if (action === 'unstash') await engine.unstash(name, o);
        else if (action === 'restore') await engine.restore(name, sdk!, o);
        else if (action === 'start') await engine.start(name, o);
        else if (action === 'stop') await engine.stop(name, o);
        else await engine.remove(name, o);
      });
    },
  );

  app.post<{ Body: { from: string; script?: string; keep?: boolean; scratch?: string } }>('/v1/containers', { schema: SCHEMAS.containers }, async (req, reply) => {
    const { from, script, keep, scratch } = req.body;
    return start(req, reply, null, async (o) => {
      const r = await engine.run({ from, ...(script !== undefined ? { script } : {}), ...(keep ? { keep } : {}), ...(scratch !== undefined ? { scratch } : {}) }, o);
      return { id: r.id, 'exit-code': r.exitCode, stdout: r.stdout, stderr: r.stderr };
    });
  });

  app.delete<{ Params: { id: string } }>('/v1/containers/:id', { schema: SCHEMAS.containerParams }, async (req) => {
    await engine.removeContainer(req.params.id);
    return sync({ removed: req.params.id });
  });

  // `cache`: also evict every cached SDK layer (`atelier gc --cache`); the result's `evicted` lists them.
  app.post<{ Body: { 'dry-run'?: boolean; cache?: boolean } | undefined }>('/v1/gc', { schema: SCHEMAS.gc }, async (req, reply) => {
    const dryRun = req.body?.['dry-run'] === true;
    const cache = req.body?.cache === true;
    const what = cache ? 'orphaned objects and cached SDK layers' : 'orphaned objects';
    return startOwn(req, reply, 'gc', dryRun ? `List ${what}` : `Remove ${what}`, async () => {
      const r = await engine.gc({ dryRun, ...(cache ? { cache } : {}) });
      return { orphans: r.orphans, 'dry-run': r.dryRun, ...(r.evicted ? { evicted: r.evicted } : {}) };
    });
  });

  app.post<{ Body: Record<string, never> | undefined }>('/v1/reconcile', { schema: SCHEMAS.reconcile }, async (req, reply) =>
    startOwn(req, reply, 'reconcile', 'Reconcile the journal with the backend', async () => ({ ...(await engine.reconcile()) })),
  );

  app.get<{ Querystring: { select?: 'all' | 'in-progress' | 'ready' } }>('/v1/changes', { schema: SCHEMAS.changes }, async (req) => sync(book.list(req.query.select ?? 'in-progress')));

  app.get<{ Params: { id: string } }>('/v1/changes/:id', { schema: SCHEMAS.changeParams }, async (req) => {
    const c = book.get(req.params.id);
    if (!c) throw new ApiError('NOT_FOUND', `no change "${req.params.id}" (list them with GET /v1/changes?select=all)`, { change: req.params.id });
    return sync(c);
  });

  app.get<{ Params: { id: string }; Querystring: { timeout?: string } }>('/v1/changes/:id/wait', { schema: SCHEMAS.changeWait }, async (req) => {
    const ms = duration(req.query.timeout, 30_000);
    if (ms === null) throw new ApiError('INVALID_ARGUMENT', `timeout ${JSON.stringify(req.query.timeout)} is not a duration: give e.g. 30s, 500ms or 2m`);
    const c = book.get(req.params.id);
    if (!c) throw new ApiError('NOT_FOUND', `no change "${req.params.id}" (list them with GET /v1/changes?select=all)`, { change: req.params.id });
    let timer: NodeJS.Timeout | undefined;
    const ready = c.ready || (await Promise.race([book.whenReady(c.id).then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]));
    clearTimeout(timer);
    if (!ready) throw new ApiError('TIMEOUT', `change "${c.id}" is not ready after ${req.query.timeout ?? '30s'}: wait again`, { change: c.id });
    return sync(book.get(c.id));
  });

  app.post<{ Params: { id: string }; Body: { action: 'abort' } }>('/v1/changes/:id', { schema: SCHEMAS.changeAction }, async (req) => {
    const c = book.get(req.params.id);
    if (!c) throw new ApiError('NOT_FOUND', `no change "${req.params.id}"`, { change: req.params.id });
    const ac = inflight.controllers.get(c.id);
    if (c.ready || !ac) throw new ApiError('FAILED_PRECONDITION', `change "${c.id}" has nothing left to abort (it is ${c.status})`, { change: c.id });
    ac.abort(new Error('aborted through the API'));
    (req as FastifyRequest & { change: string }).change = c.id;
    return sync(c);
  });

  app.get<{ Querystring: { after?: string; 'volatile-after'?: string; types?: string } }>('/v1/events', { schema: SCHEMAS.events }, (req, reply) => {
    const cursor = { after: cursorOf(req.query.after, 'after'), volatileAfter: cursorOf(req.query['volatile-after'], 'volatile-after') };
    // Types this daemon does not know are ignored, not an error (newer clients keep working).
    const types = req.query.types ? new Set(req.query.types.split(',').filter(Boolean)) : null;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    // Lines written in one turn of the event loop go out in one write (a system call each costs).
    let batch: string[] = [];
    const flush = () => {
      const text = batch.join('');
      batch = [];
      if (!res.writableEnded) res.write(text);
    };
    const write = (e: JournalEvent) => {
      if (types && !types.has(e.type)) return;
      if (batch.length === 0) setImmediate(flush);
      batch.push(`${JSON.stringify(e)}\n`);
    };
    const sub = engine.eventsAfter(cursor).subscribe({ next: write, error: () => res.end(), complete: () => res.end() });
    const end = () => {
      sub.unsubscribe();
      streams.delete(end);
      if (batch.length) flush();
      if (!res.writableEnded) res.end();
    };
    streams.add(end);
    req.raw.once('close', () => {
      end();
      deps.log({ method: req.method, path: req.url, status: 200, stream: 'closed' });
    });
  });

  return { app, streams };
}

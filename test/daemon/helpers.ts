/**
 * A real atelierd for tests: the compiled daemon (`bin/atelierd.js`, built by `npm test`'s first
 * step) in its own process, on a real unix socket in a temporary directory, on the fake backend
 * (persisted to the state directory, so a restarted daemon finds its objects). And a small client:
 * requests, change waits, and NDJSON event streams over the socket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/atelierd.js');
export const QUICKSTART = join(ROOT, 'fixtures/quickstart/workshop.yaml');

export interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: any;
  readonly text: string;
}

/** One HTTP request over the socket; a JSON body when `body` is an object, raw bytes when a string. */
export function request(socket: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolvePromise, reject) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = http.request(
      { socketPath: socket, method, path, headers: { ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}), ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          let parsed: unknown = undefined;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: parsed, text });
        });
      },
    );
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** Wait for a change to be ready (the API's wait), and return it. */
export async function waitChange(socket: string, id: string, timeout = '60s'): Promise<any> {
  for (;;) {
    const r = await request(socket, 'GET', `/v1/changes/${id}/wait?timeout=${timeout}`);
    if (r.status === 200) return r.body.result;
    if (r.status !== 504) throw new Error(`wait ${id}: ${r.status} ${r.text}`);
  }
}

export interface Daemon {
  readonly dir: string;
  readonly stateDir: string;
  readonly runDir: string;
  readonly socket: string;
  proc: ChildProcess;
  stderr: string;
  /** (Re)start the process on the same directories. */
  start(extra?: string[], env?: Record<string, string>): Promise<void>;
  /** SIGTERM, and wait for the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, and wait for it to be gone. */
  kill(): Promise<void>;
}

/** Resolves when the daemon answers on its socket; rejects if it exits first. */
async function answering(d: Daemon): Promise<void> {
  const exited = new Promise<never>((_, reject) => d.proc.once('exit', (code) => reject(new Error(`atelierd exited with ${code} before answering:\n${d.stderr}`))));
  const poll = (async () => {
    for (let i = 0; i < 400; i++) {
      try {
        const r = await request(d.socket, 'GET', '/v1/system-info');
        if (r.status === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`atelierd did not answer on ${d.socket}:\n${d.stderr}`);
  })();
  await Promise.race([poll, exited]);
}

export function spawnDaemon(args: string[], env: Record<string, string> = {}): { proc: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const proc = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d) => (out += d));
  const exit = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, output: () => out, exit };
}

/** A daemon on the fake backend in a fresh temporary directory. */
export async function daemon(opts: { latencyMs?: number; grace?: number } = {}): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'atelierd-test-'));
  const d: Daemon = {
    dir,
    stateDir: join(dir, 'state'),
    runDir: join(dir, 'run'),
    socket: join(dir, 'sock', 'atelierd.sock'),
    proc: null as unknown as ChildProcess,
    stderr: '',
    async start(extra = [], env = {}) {
      const s = spawnDaemon(
        ['--backend', 'fake', '--state-dir', d.stateDir, '--run-dir', d.runDir, '--socket', d.socket, '--grace', String(opts.grace ?? 5), ...extra],
        { ...(opts.latencyMs ? { ATELIER_FAKE_LATENCY_MS: String(opts.latencyMs) } : {}), ...env },
      );
      d.proc = s.proc;
      d.stderr = '';
      s.proc.stderr!.on('data', (x) => (d.stderr += x));
      await answering(d);
    },
    async stop() {
      const exit = new Promise<number | null>((r) => (d.proc.exitCode !== null ? r(d.proc.exitCode) : d.proc.once('exit', (code) => r(code))));
      d.proc.kill('SIGTERM');
      return exit;
    },
    async kill() {
      const exit = new Promise<void>((r) => (d.proc.exitCode !== null || d.proc.signalCode !== null ? r() : d.proc.once('exit', () => r())));
      d.proc.kill('SIGKILL');
      await exit;
    },
  };
  await d.start();
  return d;
}

/** A digest of every file under `dir` (paths, sizes, bytes): equal digests, byte-identical trees. */
export function treeDigest(dir: string): string {
  const h = createHash('sha256');
  const walk = (p: string) => {
    for (const name of readdirSync(p).sort()) {
      const f = join(p, name);
      const st = statSync(f);
      h.update(`${f.slice(dir.length)}\0${st.isDirectory() ? 'd' : st.size}\0`);
      if (st.isDirectory()) walk(f);
      else h.update(readFileSync(f));
    }
  };
  walk(dir);
  return h.digest('hex');
}

/** An NDJSON event stream: collects the records it receives until closed. */
export class EventStream {
  readonly records: any[] = [];
  private req: http.ClientRequest | null = null;
  private buf = '';
  closed: Promise<void>;
  private onClose: () => void = () => undefined;

  constructor(
    readonly socket: string,
    readonly path: string,
  ) {
    this.closed = new Promise((r) => (this.onClose = r));
    this.req = http.request({ socketPath: socket, path, method: 'GET' }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        this.buf += chunk;
        let nl: number;
        while ((nl = this.buf.indexOf('\n')) >= 0) {
          const line = this.buf.slice(0, nl);
          this.buf = this.buf.slice(nl + 1);
          if (line) this.records.push(JSON.parse(line));
        }
      });
      res.on('end', () => this.onClose());
      res.on('error', () => this.onClose());
    });
    this.req.on('error', () => this.onClose());
    this.req.end();
  }

  close(): void {
    this.req?.destroy();
    this.onClose();
  }

  /** Resolves once `pred` holds for the records received (polls). */
  async until(pred: (records: any[]) => boolean, ms = 30_000): Promise<void> {
    const end = Date.now() + ms;
    while (!pred(this.records)) {
      if (Date.now() > end) throw new Error(`event stream ${this.path}: condition not met after ${ms} ms (${this.records.length} records)`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

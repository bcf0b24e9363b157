/**
 * atelierd figures, each against a baseline measured in the same run (see bench/README.md):
 *
 * - `daemon.commands_per_s`: launch + remove of one-SDK workshops on the fake backend (persisted,
 *   as the daemon runs it) by 16 concurrent clients through the socket, each waiting for its
 *   change; baseline: the same commands by 16 concurrent callers of an in-process engine on the
 *   same backend configuration; five alternating rounds of each after three warm-up rounds of each,
 *   medians (`rounds`: each counted round's ratio). Target: ratio >= 0.8.
 * - `daemon.latency.p50` and `.p99`: `GET /v1/workshops` with 1,000 workshops, one request at a
 *   time; baseline: the same percentiles of a bare `node:http` server on a unix socket answering
 *   the same bytes (the transport's floor).
 * - `daemon.events_per_s`: records per second one client receives from `/v1/events?after=0` (the
 *   whole journal of those 1,000 workshops, as NDJSON); baseline: the same records through
 *   `engine.eventsAfter` in process.
 *
 * The daemon is the compiled one (`bin/atelierd.js`): `npm run bench` builds first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createFakeBackend } from '../backends/fake/index.ts';
import { saveImage } from '../backends/fake/persistence.ts';
import { createBackend } from '../backends/select.ts';
import { openEngine } from '../engine/open.ts';
import { specFromInline } from '../engine/workshop-file.ts';
import type { BenchEntry, Figure } from './run.ts';

const ROOT = resolve(import.meta.dirname, '..');
const SECONDS = Number(process.env.ATELIER_BENCH_SECONDS ?? 2);
/** Alternating rounds of the in-process baseline and the daemon (medians reported). */
const ROUNDS = 5;
/**
 * Rounds of each first, not counted: a daemon is a long-lived process, and what it sustains once
 * V8 has compiled its hot paths is the figure (the ratio climbs over the first rounds, from ~0.65
 * to its steady value, as the simulation figure does before its own warm-up).
 */
const WARMUP_ROUNDS = 3;
const CLIENTS = 16;

const inline = (name: string) => ({ name, project: `/srv/${name}`, sdks: [{ name: 'tools', 'setup-base': 'echo x > "${ATELIER_ROOTFS%/}/etc/x"' }] });

function get(socket: string, path: string, body?: unknown): Promise<{ status: number; json: any; bytes: number }> {
  return new Promise((res, rej) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ socketPath: socket, path, method: payload ? 'POST' : 'GET', headers: payload ? { 'content-type': 'application/json' } : {} }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => {
        const buf = Buffer.concat(chunks);
        res({ status: r.statusCode ?? 0, json: buf.length ? JSON.parse(buf.toString()) : null, bytes: buf.length });
      });
    });
    req.on('error', rej);
    if (payload) req.write(payload);
    req.end();
  });
}

async function startDaemon(stateDir: string, runDir: string, socket: string): Promise<ChildProcess> {
  const proc = spawn(process.execPath, [join(ROOT, 'bin/atelierd.js'), '--backend', 'fake', '--state-dir', stateDir, '--run-dir', runDir, '--socket', socket], { stdio: 'ignore' });
  for (let i = 0; i < 400; i++) {
    try {
      if ((await get(socket, '/v1/system-info')).status === 200) return proc;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  proc.kill('SIGKILL');
  throw new Error('atelierd did not start');
}

async function stopDaemon(proc: ChildProcess): Promise<void> {
  const exit = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await exit;
}

/** Commands per second by `CLIENTS` loops of launch + remove for `SECONDS`. */
async function loops(step: (client: number, i: number) => Promise<void>): Promise<number> {
  let commands = 0;
  const end = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      for (let i = 0; performance.now() < end; i++) {
        await step(c, i);
        commands += 2;
      }
    }),
  );
  return commands / ((performance.now() - t0) / 1000);
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

const scratch = () => fs.mkdtempSync(join(process.env.ATELIER_BENCH_DIR ?? tmpdir(), 'atelier-bench-daemon-'));

export const figures: BenchEntry[] = [
  {
    name: 'daemon.commands_per_s',
    async run(): Promise<Figure> {
      const dir = scratch();
      let proc: ChildProcess | null = null;
      try {
        // In process: the engine as a host embeds it, on the fake backend persisted as the daemon's is.
        const backend = await createBackend({ kind: 'fake', stateDir: join(dir, 'inproc'), runDir: join(dir, 'inproc-run'), owner: 'bench' });
        const engine = await openEngine({ stateDir: join(dir, 'inproc'), runDir: join(dir, 'inproc-run'), backend, owner: 'bench' });
        // Through the socket: POST, then wait for the change, as a client does.
        const socket = join(dir, 's', 'atelierd.sock');
        proc = await startDaemon(join(dir, 'd'), join(dir, 'd-run'), socket);
        const command = async (path: string, body: unknown) => {
          const r = await get(socket, path, body);
          if (r.status !== 202) throw new Error(`${path}: ${r.status} ${JSON.stringify(r.json)}`);
          await get(socket, `/v1/changes/${r.json.change}/wait?timeout=60s`);
        };
        // Rounds alternate, so that a change in the disk's or the machine's speed hits both.
        const base: number[] = [];
        const value: number[] = [];
        for (let round = -WARMUP_ROUNDS; round < ROUNDS; round++) {
          base.push(
            await loops(async (c, i) => {
              const spec = specFromInline(inline(`r${round + WARMUP_ROUNDS}w${c}x${i}`), { defaultBase: backend.defaultBase });
              await engine.launch(spec);
              await engine.remove(spec.name);
            }),
          );
          value.push(
            await loops(async (c, i) => {
              await command('/v1/workshops', { action: 'launch', spec: inline(`r${round + WARMUP_ROUNDS}w${c}x${i}`) });
              await command(`/v1/workshops/r${round + WARMUP_ROUNDS}w${c}x${i}`, { action: 'remove' });
            }),
          );
        }
        await engine.close();
        await stopDaemon(proc);
        proc = null;
        base.splice(0, WARMUP_ROUNDS);
        value.splice(0, WARMUP_ROUNDS);
        const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)]!;
        return {
          name: 'daemon.commands_per_s', value: Math.round(median(value)), unit: 'commands/s', baseline: Math.round(median(base)),
          rounds: value.map((v, i) => Number((v / base[i]!).toFixed(2))), clients: CLIENTS, seconds: SECONDS, target: 'ratio >= 0.8',
        };
      } finally {
        // A daemon left running would write into the directory being removed, and keep this process alive.
        if (proc) await stopDaemon(proc);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  },
  {
    name: 'daemon.latency',
    async run(): Promise<Figure[]> {
      const dir = scratch();
      let proc: ChildProcess | null = null;
      try {
        // 1,000 workshops, made in process on an in-memory fake, whose image the daemon then loads.
        const stateDir = join(dir, 'state');
        const backend = createFakeBackend({ seed: 1 });
        const engine = await openEngine({ stateDir, runDir: join(dir, 'run'), backend, owner: 'bench' });
        const names = Array.from({ length: 1000 }, (_, i) => `w${i}`);
        for (let k = 0; k < names.length; k += 50) await Promise.all(names.slice(k, k + 50).map((n) => engine.launch(specFromInline(inline(n), { defaultBase: backend.defaultBase }))));
        const t0 = performance.now();
        let inproc = 0;
        await new Promise<void>((res) => {
          const sub = engine.eventsAfter({}, () => {
            sub.unsubscribe();
            res();
          }).subscribe(() => inproc++);
        });
        const inprocRate = inproc / ((performance.now() - t0) / 1000);
        await engine.close();
        saveImage(join(stateDir, 'fake-backend.json'), backend.dump());
        const socket = join(dir, 's', 'atelierd.sock');
        proc = await startDaemon(stateDir, join(dir, 'run'), socket);
        const sample = async (sock: string) => {
          const ms: number[] = [];
          for (let i = 0; i < 300; i++) {
            const t = performance.now();
            const r = await get(sock, '/v1/workshops');
            ms.push(performance.now() - t);
            if (i === 0 && r.json.result.length !== 1000) throw new Error(`expected 1000 workshops, got ${r.json.result.length}`);
          }
          return ms.slice(20); // warm-up
        };
        const daemonMs = await sample(socket);
        const payload = JSON.stringify((await get(socket, '/v1/workshops')).json);
        // Events: the whole journal to one streaming client.
        const t1 = performance.now();
        const streamed = await new Promise<number>((res, rej) => {
          let lines = 0;
          const req = http.request({ socketPath: socket, path: '/v1/events?after=0', method: 'GET' }, (r) => {
            r.on('data', (c: Buffer) => {
              for (const b of c) if (b === 0x0a) lines++;
              if (lines >= inproc) {
                req.destroy();
                res(lines);
              }
            });
          });
          req.on('error', (e) => (lines >= inproc ? undefined : rej(e)));
          req.end();
        });
        const streamRate = streamed / ((performance.now() - t1) / 1000);
        await stopDaemon(proc);
        proc = null;
        // The floor: a bare node:http server on a unix socket answering the same bytes.
        const bare = join(dir, 's', 'bare.sock');
        const server = http.createServer((_q, r) => r.writeHead(200, { 'content-type': 'application/json' }).end(payload));
        await new Promise<void>((r) => server.listen(bare, r));
        const bareMs = await sample(bare);
        await new Promise((r) => server.close(r));
        return [
          { name: 'daemon.latency.p50', value: Number(percentile(daemonMs, 50).toFixed(2)), unit: 'ms', baseline: Number(percentile(bareMs, 50).toFixed(2)), workshops: 1000, bytes: payload.length, note: 'baseline: a bare node:http server answering the same bytes' },
          { name: 'daemon.latency.p99', value: Number(percentile(daemonMs, 99).toFixed(2)), unit: 'ms', baseline: Number(percentile(bareMs, 99).toFixed(2)), workshops: 1000 },
          { name: 'daemon.events_per_s', value: Math.round(streamRate), unit: 'records/s', baseline: Math.round(inprocRate), records: streamed, note: 'baseline: the same records through engine.eventsAfter in process' },
        ];
      } finally {
        if (proc) await stopDaemon(proc);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  },
];

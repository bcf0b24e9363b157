/**
 * How fast the `atelier` command starts, against `node -e 0` measured in the same run (the floor:
 * a Node process that does nothing). See bench/README.md.
 *
 * - `cli.version`: `atelier --version`. Target: ratio <= 1.5.
 * - `cli.list`: `atelier --no-daemon list` on a state directory holding 100 workshops (fake
 *   backend, as the engine leaves it: checkpoint plus journal tail), read in-process without a
 *   lock. Target: ratio <= 3.
 * - `cli.list.daemon`: the same `list` with atelierd running on that state directory: the CLI
 *   probes the socket and asks the daemon. Target: ratio <= 3.
 *
 * Each figure is the median wall time of `RUNS` runs of the command, each run alternating with a
 * run of the baseline (so that a change in the machine's load hits both), after two warm-up runs
 * of each (the page cache). The commands are the compiled ones (`bin/atelier.js` over `dist/`):
 * `npm run bench` builds first.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createFakeBackend } from '../backends/fake/index.ts';
import { saveImage } from '../backends/fake/persistence.ts';
import { openEngine } from '../engine/open.ts';
import { specFromInline } from '../engine/workshop-file.ts';
import type { BenchEntry, Figure } from './run.ts';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin/atelier.js');
const RUNS = Number(process.env.ATELIER_BENCH_CLI_RUNS ?? 21);
const WORKSHOPS = 100;

/** The environment the commands run in: no inherited socket or state directory. */
function env(): NodeJS.ProcessEnv {
  const e = { ...process.env };
  delete e.ATELIER_SOCKET;
  delete e.NODE_OPTIONS; // a `--import tsx` from the bench's own runner would be measured too
  return e;
}

/** Wall time of one run of `node ...args`, in ms; throws when it fails. */
function timeRun(args: string[], check?: (stdout: string) => void): number {
  const t = performance.now();
  const r = spawnSync(process.execPath, args, { env: env(), encoding: 'utf8' });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  check?.(r.stdout);
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The median of `args` beside the median of `node -e 0`, run alternately. */
function compare(name: string, args: string[], target: string, check?: (stdout: string) => void): Figure {
  const base: number[] = [];
  const value: number[] = [];
  for (let i = -2; i < RUNS; i++) {
    const b = timeRun(['-e', '0']);
    const v = timeRun(args, check);
    if (i >= 0) {
      base.push(b);
      value.push(v);
    }
  }
  return { name, value: Number(median(value).toFixed(1)), unit: 'ms', baseline: Number(median(base).toFixed(1)), runs: RUNS, target };
}

function get(socket: string, path: string): Promise<number> {
  return new Promise((res, rej) => {
    const req = http.request({ socketPath: socket, path }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode ?? 0));
    });
    req.on('error', rej);
    req.end();
  });
}

async function startDaemon(stateDir: string, runDir: string, socket: string): Promise<ChildProcess> {
  const proc = spawn(process.execPath, [join(ROOT, 'bin/atelierd.js'), '--backend', 'fake', '--state-dir', stateDir, '--run-dir', runDir, '--socket', socket], { stdio: 'ignore', env: env() });
  for (let i = 0; i < 400; i++) {
    try {
      if ((await get(socket, '/v1/system-info')) === 200) return proc;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  proc.kill('SIGKILL');
  throw new Error('atelierd did not start');
}

/** A state directory with `WORKSHOPS` workshops on the fake backend, saved where the CLI finds it. */
async function stateWithWorkshops(dir: string): Promise<{ stateDir: string; runDir: string }> {
  const stateDir = join(dir, 'state');
  const runDir = join(dir, 'run');
  const backend = createFakeBackend({ seed: 1 });
  const engine = await openEngine({ stateDir, runDir, backend, owner: 'bench' });
  for (let i = 0; i < WORKSHOPS; i++) {
    const inline = { name: `w${i}`, project: `/srv/w${i}`, sdks: [{ name: 'ros2', 'setup-base': 'true' }, { name: 'nav2', 'setup-base': 'true' }] };
    await engine.launch(specFromInline(inline, { defaultBase: backend.defaultBase }));
  }
  await engine.close();
  saveImage(join(stateDir, 'fake-backend.json'), backend.dump());
  return { stateDir, runDir };
}

const listed = (stdout: string) => {
  const rows = stdout.split('\n').filter((l) => /^w\d+ /.test(l)).length;
  if (rows !== WORKSHOPS) throw new Error(`list printed ${rows} workshops, expected ${WORKSHOPS}:\n${stdout}`);
};

const scratch = () => fs.mkdtempSync(join(process.env.ATELIER_BENCH_DIR ?? tmpdir(), 'atelier-bench-cli-'));

export const figures: BenchEntry[] = [
  {
    name: 'cli.version',
    async run(): Promise<Figure> {
      return compare('cli.version', [BIN, '--version'], 'ratio <= 1.5', (out) => {
        if (!/^\d+\.\d+\.\d+/.test(out)) throw new Error(`--version printed ${JSON.stringify(out)}`);
      });
    },
  },
  {
    name: 'cli.list',
    async run(): Promise<Figure[]> {
      const dir = scratch();
      let proc: ChildProcess | null = null;
      try {
        const { stateDir, runDir } = await stateWithWorkshops(dir);
        const socket = join(dir, 's', 'atelierd.sock');
        const common = [BIN, '--backend', 'fake', '--state-dir', stateDir, '--run-dir', runDir];
        const local = compare('cli.list', [...common, '--no-daemon', 'list'], 'ratio <= 3', listed);
        proc = await startDaemon(stateDir, runDir, socket);
        const viaDaemon = compare('cli.list.daemon', [...common, '--socket', socket, 'list'], 'ratio <= 3', listed);
        return [{ ...local, workshops: WORKSHOPS }, { ...viaDaemon, workshops: WORKSHOPS }];
      } finally {
        if (proc) {
          const exit = new Promise((r) => proc!.once('exit', r));
          proc.kill('SIGTERM');
          await exit;
        }
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  },
];

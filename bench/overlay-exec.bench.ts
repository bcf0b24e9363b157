/**
 * Overlay workshops as runc containers (see bench/README.md, "Overlay containers"): what the
 * library adds over runc itself, each figure beside the bare runc call it wraps, measured in the
 * same run, alternately (a change in the machine's load hits both).
 *
 * - `overlay.exec.true`: `spawn(['true'])` on a started workshop, from the call until `exit`
 *   settles (store lock, user and directory lookups, the launch's `sh` wrapper and guard, the pid
 *   file, the streams), against `runc --root R exec <id> true` spawned from Node with piped stdio.
 *   Target: ratio <= 1.5.
 * - `overlay.start`: `start` of a stopped workshop (overlayfs mount, bundle, `runc run -d`), against
 *   a bare `runc run -d` of the same bundle (copied, its own id and cgroup) on the already-mounted
 *   root. `mount_only_ms` is the same `start` on a store opened with `runtime: 'none'`: the
 *   mount-only start of before.
 * - `overlay.stop`: `stop` of that workshop (`runc kill` TERM, wait, `runc delete --force`, unmount,
 *   which syncs the upper's file system), against a bare `runc kill` TERM + wait + `runc delete
 *   --force` of the bare container. `mount_only_ms`: the mount-only stop (an unmount).
 *
 * Medians of `ATELIER_BENCH_EXEC_RUNS` (default 15) rounds after two warm-up rounds. Needs root,
 * runc and catatonit (skipped otherwise).
 *
 * @example
 * ```sh
 * npm run bench -- overlay.exec
 * ```
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createOverlayBackend } from '../backends/overlay/index.ts';
import type { OverlayBackend } from '../backends/overlay/index.ts';
import { mountsUnder, unmount } from '../backends/overlay/mounts.ts';
import { findRuntime } from '../backends/overlay/runtime.ts';
import type { ObjectRef } from '../backends/types.ts';
import type { BenchEntry, Figure } from './run.ts';

const RUNS = Number(process.env.ATELIER_BENCH_EXEC_RUNS ?? 15);
const WS: ObjectRef = { space: 'workshops', name: 'bench-exec' };
const now = () => performance.now();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (n: number) => Number(n.toFixed(1));

/** A sink for output nobody reads. */
const sink = () =>
  new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });

/**
 * Run a program to its end, its exit status: with piped stdio (as the library's launches are), or
 * none (`runc run -d` hands its stdio to the container's init, which would hold a pipe open).
 */
function runPiped(cmd: string, args: readonly string[], piped = true): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: piped ? ['pipe', 'pipe', 'pipe'] : 'ignore' });
    c.stdin?.end();
    c.stdout?.resume();
    c.stderr?.resume();
    c.on('error', reject);
    c.on('close', (code) => resolve(code ?? 1));
  });
}

async function open(dir: string, runtime: 'runc' | 'none'): Promise<OverlayBackend> {
  const b = await createOverlayBackend({ root: join(dir, `root-${runtime}`), runDir: join(dir, `run-${runtime}`), driver: 'overlayfs', runtime });
  await b.create({ target: WS, source: { base: b.defaultBase }, tags: { owner: 'bench', op: 'bench', kind: 'workshop' } });
  return b;
}

async function dispose(dir: string, backends: OverlayBackend[]): Promise<void> {
  for (const b of backends) await b.stopAll().catch(() => undefined);
  for (const m of await mountsUnder(dir)) await unmount(m);
  await rm(dir, { recursive: true, force: true });
}

async function skipReason(): Promise<string | null> {
  const found = await findRuntime();
  return 'tools' in found ? null : found.reason;
}

const exec: BenchEntry = {
  name: 'overlay.exec',
  async run() {
    const why = await skipReason();
    if (why) return { skipped: why };
    const dir = await mkdtemp(join(process.env.ATELIER_BENCH_DIR ?? tmpdir(), 'atelier-bench-exec-'));
    const b = await open(dir, 'runc');
    try {
      await b.start(WS);
      const runcRoot = join(b.runDir, 'runc');
      const lib: number[] = [];
      const bare: number[] = [];
      for (let i = -2; i < RUNS; i++) {
        let t = now();
        const code = await runPiped('runc', ['--root', runcRoot, 'exec', WS.name, 'true']);
        const bareMs = now() - t;
        t = now();
        const p = await b.spawn(WS, { argv: ['true'], stdout: sink(), stderr: sink() });
        const libCode = await p.exit;
        const libMs = now() - t;
        if (code !== 0 || libCode !== 0) throw new Error(`true exited ${code} (runc) / ${libCode} (spawn)`);
        if (i >= 0) {
          bare.push(bareMs);
          lib.push(libMs);
        }
      }
      const figure: Figure = { name: 'overlay.exec.true', value: median(lib), unit: 'ms', baseline: median(bare), baseline_is: 'runc exec <id> true', target_ratio: '<= 1.5', runs: RUNS };
      return figure;
    } finally {
      await dispose(dir, [b]);
    }
  },
};

/**
 * `atelier exec NAME -- true` as a user runs it (the compiled CLI, in process, no daemon), against
 * the same `runc exec` run directly: what a person waits for. Node's start-up and the CLI's
 * loading are most of it; no target (the library's figure above has one).
 */
const execCli: BenchEntry = {
  name: 'overlay.exec.cli',
  async run() {
    const why = await skipReason();
    if (why) return { skipped: why };
    const dir = await mkdtemp(join(process.env.ATELIER_BENCH_DIR ?? tmpdir(), 'atelier-bench-cli-'));
    const bin = join(import.meta.dirname, '..', 'bin', 'atelier.js');
    const args = ['--state-dir', join(dir, 'state'), '--run-dir', join(dir, 'run'), '--no-daemon'];
    try {
      await writeFile(join(dir, 'workshop.yaml'), 'name: bench\nsdks: []\n');
      if ((await runPiped(process.execPath, [bin, ...args, 'launch', join(dir, 'workshop.yaml')])) !== 0) throw new Error('atelier launch failed');
      const runcRoot = (await readdirNames(join(dir, 'run'))).map((d) => join(dir, 'run', d, 'runc'))[0]!;
      const id = (await readdirNames(runcRoot))[0]!;
      const cli: number[] = [];
      const bare: number[] = [];
      for (let i = -2; i < RUNS; i++) {
        let t = now();
        const code = await runPiped('runc', ['--root', runcRoot, 'exec', id, 'true']);
        const bareMs = now() - t;
        t = now();
        const cliCode = await runPiped(process.execPath, [bin, ...args, 'exec', 'bench', '--', 'true']);
        const cliMs = now() - t;
        if (code !== 0 || cliCode !== 0) throw new Error(`true exited ${code} (runc) / ${cliCode} (atelier exec)`);
        if (i >= 0) {
          bare.push(bareMs);
          cli.push(cliMs);
        }
      }
      return { name: 'overlay.exec.true.cli', value: median(cli), unit: 'ms', baseline: median(bare), baseline_is: 'runc exec <id> true', runs: RUNS };
    } finally {
      await runPiped(process.execPath, [bin, ...args, 'remove', 'bench']).catch(() => undefined);
      for (const m of await mountsUnder(dir)) await unmount(m);
      await rm(dir, { recursive: true, force: true });
    }
  },
};

async function readdirNames(d: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  return (await readdir(d)).filter((n) => !n.startsWith('.')).sort();
}

const lifecycle: BenchEntry = {
  name: 'overlay.start',
  async run() {
    const why = await skipReason();
    if (why) return { skipped: why };
    const dir = await mkdtemp(join(process.env.ATELIER_BENCH_DIR ?? tmpdir(), 'atelier-bench-start-'));
    const b = await open(dir, 'runc');
    const plain = await open(dir, 'none');
    try {
      // The bare container: the library's own bundle, under another id, cgroup and runc root.
      await b.start(WS);
      const config = JSON.parse(await readFile(join(b.runDir, 'bundles', WS.name, 'config.json'), 'utf8')) as { linux: { cgroupsPath: string } };
      config.linux.cgroupsPath = `/atelier/bench-${process.pid}`;
      const bundle = join(dir, 'bare-bundle');
      await mkdir(bundle);
      await writeFile(join(bundle, 'config.json'), JSON.stringify(config));
      const bareRoot = join(dir, 'bare-runc');
      const bareRun = () => runPiped('runc', ['--root', bareRoot, 'run', '-d', '--bundle', bundle, 'bare'], false);
      const bareStop = async () => {
        await runPiped('runc', ['--root', bareRoot, 'kill', 'bare', 'TERM']);
        for (let j = 0; j < 300; j++) {
          const st = await new Promise<string>((resolve) => {
            const c = spawn('runc', ['--root', bareRoot, 'state', 'bare'], { stdio: ['ignore', 'pipe', 'ignore'] });
            let out = '';
            c.stdout.on('data', (d: Buffer) => (out += d.toString()));
            c.on('close', () => resolve(out));
          });
          if (!st.includes('"running"')) break;
        }
        await runPiped('runc', ['--root', bareRoot, 'delete', '--force', 'bare']);
      };
      const rows = { start: [] as number[], stop: [] as number[], bareStart: [] as number[], bareStop: [] as number[], plainStart: [] as number[], plainStop: [] as number[] };
      for (let i = -2; i < RUNS; i++) {
        let t = now();
        if ((await bareRun()) !== 0) throw new Error('runc run -d of the bare bundle failed');
        const bareStart = now() - t;
        t = now();
        await bareStop();
        const bareStopMs = now() - t;
        t = now();
        await b.stop(WS);
        const stop = now() - t;
        t = now();
        await b.start(WS);
        const start = now() - t;
        t = now();
        await plain.start(WS);
        const plainStart = now() - t;
        t = now();
        await plain.stop(WS);
        const plainStop = now() - t;
        if (i < 0) continue;
        rows.start.push(start);
        rows.stop.push(stop);
        rows.bareStart.push(bareStart);
        rows.bareStop.push(bareStopMs);
        rows.plainStart.push(plainStart);
        rows.plainStop.push(plainStop);
      }
      return [
        { name: 'overlay.start', value: median(rows.start), unit: 'ms', baseline: median(rows.bareStart), baseline_is: 'runc run -d of the same bundle', mount_only_ms: round(median(rows.plainStart)), runs: RUNS },
        { name: 'overlay.stop', value: median(rows.stop), unit: 'ms', baseline: median(rows.bareStop), baseline_is: 'runc kill TERM + wait + runc delete --force', mount_only_ms: round(median(rows.plainStop)), runs: RUNS },
      ];
    } finally {
      await dispose(dir, [b, plain]);
    }
  },
};

export const figures: BenchEntry[] = [exec, execCli, lifecycle];

/**
 * The SDK cache on the real overlay backend (see bench/README.md, "SDK cache"): the engine
 * (`openEngineImpl`) on a temp state directory over an overlay store (overlayfs driver, runc) in a
 * temp directory. Every workshop has the same base (the store's default) and the same three SDKs,
 * in its own project (its own name and project id), so every one's SDK chain hashes the same and
 * names the same shared layers.
 *
 * - `cache.launch.second`: ms to launch a second workshop whose three SDKs (hooks that each take
 *   1 s: `sleep 1` and a file written) are in the cache, against the first launch of the same
 *   SDKs, which runs every hook (the baseline, measured in the same round). Rounds: launch A,
 *   launch B, remove both, `gc({ cache: true })` (so the next round's A finds nothing cached);
 *   medians of `ATELIER_BENCH_CACHE_RUNS` (default 3) rounds, after a warm-up launch without SDKs
 *   (which builds the default base). Target: ratio <= 0.1. `hooks_second` counts the hook steps
 *   of B's plans (0 when the cache works); `steps_first_ms` and `steps_second_ms` are A's and B's
 *   last round, step by step.
 * - `cache.disk.n10`: bytes ten such workshops add to the store against one (hooks without sleep,
 *   each writing 32 MiB of random data, so the layers dominate). Measured with
 *   `du -sx --block-size=1` of the store root (allocated blocks, each inode once, not descending
 *   into started workshops' mounts), minus the same of the store before the first launch (default
 *   base built). `usage_bytes_*` is the backend's own `usage()` summed over every owned object (each
 *   blob charged once, to the object that added it), as a cross-check. Target: ratio <= 1.1.
 *
 * Needs root, runc and catatonit (skipped otherwise). Takes ~30-40 s in all.
 *
 * @example
 * ```sh
 * npm run bench -- cache.
 * ```
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createOverlayBackend, type OverlayBackend } from '../backends/overlay/index.ts';
import { mountsUnder, unmount } from '../backends/overlay/mounts.ts';
import { findRuntime } from '../backends/overlay/runtime.ts';
import { openEngineImpl, type EngineImpl } from '../engine/engine.ts';
import { specFromInline } from '../engine/workshop-file.ts';
import type { WorkshopSpec } from '../events/catalogue.ts';
import type { BenchEntry, Figure } from './run.ts';

const RUNS = Number(process.env.ATELIER_BENCH_CACHE_RUNS ?? 3);
const OWNER = 'bench';
const SDKS = ['toolchain', 'middleware', 'app'] as const;
/** Random bytes each SDK's hook writes for the disk figure. */
const SDK_BYTES = 32 * 1024 * 1024;
const now = () => performance.now();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round1 = (n: number) => Number(n.toFixed(1));
const run = promisify(execFile);

interface Stack {
  readonly dir: string;
  readonly store: string;
  readonly backend: OverlayBackend;
  readonly engine: EngineImpl;
}

async function open(tag: string): Promise<Stack> {
  const dir = await mkdtemp(join(process.env.ATELIER_BENCH_DIR ?? tmpdir(), `atelier-bench-${tag}-`));
  const store = join(dir, 'store');
  const backend = await createOverlayBackend({ root: store, runDir: join(dir, 'run-store'), driver: 'overlayfs', runtime: 'runc' });
  const engine = await openEngineImpl({ stateDir: join(dir, 'state'), runDir: join(dir, 'run'), backend, owner: OWNER });
  return { dir, store, backend, engine };
}

async function dispose(s: Stack): Promise<void> {
  await s.engine.close().catch(() => undefined);
  await s.backend.stopAll().catch(() => undefined);
  await s.backend.close().catch(() => undefined);
  for (const m of await mountsUnder(s.dir)) await unmount(m);
  await rm(s.dir, { recursive: true, force: true });
}

/** The same base and SDK scripts for every workshop; its own name and project. */
function spec(s: Stack, name: string, script: (sdk: string) => string): WorkshopSpec {
  return specFromInline({ name, project: `/srv/bench/${name}`, sdks: SDKS.map((sdk) => ({ name: sdk, 'setup-base': script(sdk) })) }, { defaultBase: s.backend.defaultBase });
}

const slowHook = (sdk: string) => `sleep 1\nmkdir -p "\${ATELIER_ROOTFS%/}/opt/${sdk}"\necho ${sdk} > "\${ATELIER_ROOTFS%/}/opt/${sdk}/installed"\n`;
const bigHook = (sdk: string) => `mkdir -p "\${ATELIER_ROOTFS%/}/opt/${sdk}"\nhead -c ${SDK_BYTES} /dev/urandom > "\${ATELIER_ROOTFS%/}/opt/${sdk}/payload"\n`;

/** Hook steps in the plans of the ops journaled while `fn` ran. */
async function countingHooks<T>(e: EngineImpl, fn: () => Promise<T>): Promise<{ result: T; hooks: number }> {
  let hooks = 0;
  const sub = e.events$.subscribe((r) => {
    if (r.type === 'op.started') hooks += r.data.plan.do.filter((st) => st.effect.type === 'exec').length;
  });
  try {
    return { result: await fn(), hooks };
  } finally {
    sub.unsubscribe();
  }
}

/** Launch, timed, with each step's time (label -> ms). */
async function timedLaunch(e: EngineImpl, sp: WorkshopSpec): Promise<{ ms: number; hooks: number; steps: Record<string, number> }> {
  const steps: Record<string, number> = {};
  const started = new Map<string, number>();
  const t = now();
  const { hooks } = await countingHooks(e, () =>
    e.launch(sp, {
      onProgress: (p) => {
        const key = `${p.phase}.${p.step} ${p.label}`;
        if (p.status === 'started') started.set(key, now());
        else steps[key] = round1(now() - (started.get(key) ?? t));
      },
    }),
  );
  return { ms: now() - t, hooks, steps };
}

async function skipReason(): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'needs root (overlayfs mounts, runc)';
  const found = await findRuntime();
  return 'tools' in found ? null : found.reason;
}

/** Allocated bytes under `dir`, each inode once, on its own file system only. */
async function duBytes(dir: string): Promise<number> {
  const { stdout } = await run('du', ['-sx', '--block-size=1', dir]);
  return Number(stdout.split(/\s/)[0]);
}

async function usageBytes(s: Stack): Promise<number> {
  return (await s.backend.usage(OWNER)).reduce((sum, u) => sum + (u.bytes ?? 0), 0);
}

const launchSecond: BenchEntry = {
  name: 'cache.launch.second',
  async run(): Promise<Figure | { skipped: string }> {
    const why = await skipReason();
    if (why) return { skipped: why };
    const s = await open('cache-launch');
    try {
      // Warm-up: builds the default base and loads the engine's and the backend's code paths.
      await s.engine.launch(spec(s, 'warmup', () => ''));
      await s.engine.remove('warmup');
      await s.engine.gc({ cache: true });
      const first: number[] = [];
      const second: number[] = [];
      let hooksFirst = 0;
      let hooksSecond = 0;
      let evicted = 0;
      let steps: Record<string, number> = {};
      let stepsFirst: Record<string, number> = {};
      for (let i = 0; i < RUNS; i++) {
        const a = await timedLaunch(s.engine, spec(s, `first-${i}`, slowHook));
        const b = await timedLaunch(s.engine, spec(s, `second-${i}`, slowHook));
        first.push(a.ms);
        second.push(b.ms);
        hooksFirst += a.hooks;
        hooksSecond += b.hooks;
        steps = b.steps;
        stepsFirst = a.steps;
        await s.engine.remove(`first-${i}`);
        await s.engine.remove(`second-${i}`);
        evicted += (await s.engine.gc({ cache: true })).evicted?.length ?? 0;
      }
      return {
        name: 'cache.launch.second',
        value: median(second),
        unit: 'ms',
        baseline: median(first),
        baseline_is: 'first launch of the same three SDKs (3 hooks of 1 s each)',
        target_ratio: '<= 0.1',
        runs: RUNS,
        first_ms: first.map(round1),
        second_ms: second.map(round1),
        hooks_first: hooksFirst,
        hooks_second: hooksSecond,
        evicted_by_gc: evicted,
        steps_first_ms: stepsFirst,
        steps_second_ms: steps,
      };
    } finally {
      await dispose(s);
    }
  },
};

const diskN10: BenchEntry = {
  name: 'cache.disk.n10',
  async run(): Promise<Figure | { skipped: string }> {
    const why = await skipReason();
    if (why) return { skipped: why };
    const s = await open('cache-disk');
    try {
      // The empty store: the default base built (by a workshop without SDKs, removed again).
      await s.engine.launch(spec(s, 'warmup', () => ''));
      await s.engine.remove('warmup');
      await s.engine.gc({ cache: true });
      const empty = await duBytes(s.store);
      const t = now();
      const one = await countingHooks(s.engine, () => s.engine.launch(spec(s, 'ws-0', bigHook)));
      const firstMs = now() - t;
      const disk1 = (await duBytes(s.store)) - empty;
      const usage1 = await usageBytes(s);
      const t9 = now();
      const nine = await countingHooks(s.engine, async () => {
        for (let i = 1; i < 10; i++) await s.engine.launch(spec(s, `ws-${i}`, bigHook));
      });
      const nineMs = now() - t9;
      const disk10 = (await duBytes(s.store)) - empty;
      const usage10 = await usageBytes(s);
      const layers = new Set(s.engine.list().flatMap((w) => w.sdks.map((l) => l.layer)));
      return {
        name: 'cache.disk.n10',
        value: disk10,
        unit: 'bytes',
        baseline: disk1,
        baseline_is: 'the same store with one workshop (du -sx --block-size=1 of the store, minus the empty store)',
        target_ratio: '<= 1.1',
        sdk_bytes: SDK_BYTES,
        added_by_nine_bytes: disk10 - disk1,
        usage_bytes_1: usage1,
        usage_bytes_10: usage10,
        usage_ratio: Number((usage10 / usage1).toFixed(4)),
        sdk_layers_10: layers.size,
        hooks_1: one.hooks,
        hooks_next_9: nine.hooks,
        launch_first_ms: round1(firstMs),
        launch_next_9_ms: round1(nineMs),
      };
    } finally {
      await dispose(s);
    }
  },
};

export const figures: BenchEntry[] = [launchSecond, diskN10];

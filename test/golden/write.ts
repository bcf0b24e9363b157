/**
 * Writes golden journals: `node --import tsx test/golden/write.ts [CASE...]`.
 *
 * A generation is the code (and event schema) the cases were written with: `v1`, atelier 0.1.0
 * before the domain core (cases named as in `CASES`), and `v2`, the domain core, whose events carry
 * their decisions (cases named `v2-<case>`). This code writes only its own generation (`GENERATION`);
 * older ones stay as they were written.
 *
 * Each case runs a scenario on the fake backend with fixed ids, clock and seed, and keeps what the
 * engine wrote: `state/` (journal segments, checkpoints, torn-tail keepsakes), `run/volatile/` (the
 * volatile journal), `backend.json` (the fake's image), `folded.json` (the golden view of the fold,
 * `view.ts`) and, for a crash, `image/`: the same four taken at the instant of the crash, before
 * the next start reconciled it (the case's own `state/` then holds the reconciled journal).
 *
 * A case that exists is never written again: golden journals record what an earlier atelier wrote,
 * and `golden.test.ts` proves that every later one reads them the same. New cases may be added.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, appendFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createFakeBackend, type FakeBackend } from '../../backends/fake/index.ts';
import { SimulatedCrash, type BackendErrorCode, type CallKind } from '../../backends/types.ts';
import { openEngineImpl as openEngine, type EngineImpl } from '../../engine/engine.ts';
import { sequentialIds, steppingClock } from '../../engine/ids.ts';
import { encodeRecord } from '../../events/record.ts';
import { sdk, spec, V1, V2, V3 } from '../engine/helpers.ts';
import { foldCase, openCase } from './fold-case.ts';
import { prng } from '../support/prng.ts';

export const GOLDEN_DIR = resolve(import.meta.dirname, '../../fixtures/journals');

/** A running scenario: the engine, its backend, and how to crash and restart it. */
export class Harness {
  readonly dir = mkdtempSync(join(tmpdir(), 'atelier-golden-'));
  readonly stateDir = join(this.dir, 'state');
  readonly runDir = join(this.dir, 'run');
  readonly backend: FakeBackend = createFakeBackend({ seed: 7 });
  readonly ids = sequentialIds();
  readonly clock = steppingClock('2026-12-05T12:00:00.000Z');
  engine!: EngineImpl;
  image: { state: string; run: string; backend: string } | null = null;

  /** `sdkCache: false`: per-workshop SDK layers, as every journal before the SDK cache was written. */
  constructor(
    readonly checkpointEvery = 10_000,
    public opts: { sdkCache?: boolean; cacheKeep?: { count?: number; bytes?: number } } = {},
  ) {}

  async open(): Promise<EngineImpl> {
    this.engine = await openEngine({ stateDir: this.stateDir, runDir: this.runDir, backend: this.backend, owner: 'alice', ids: this.ids, clock: this.clock, checkpointEvery: this.checkpointEvery, ...(this.opts.sdkCache === false ? { sdkCache: false } : {}), ...(this.opts.cacheKeep ? { cacheKeep: this.opts.cacheKeep } : {}) });
    return this.engine;
  }

  get e(): EngineImpl {
    return this.engine;
  }

  /** The process dies: the engine is dropped as it stands, faults are cleared. */
  async crash(): Promise<void> {
    this.backend.setFaultPlan(null);
    await this.engine.crash();
  }

  /** Keep the crash image (journal and backend as the dead process left them) for `image/`. */
  keepImage(): void {
    const at = join(this.dir, 'image');
    copyState(this.stateDir, join(at, 'state'));
    copyRun(this.runDir, join(at, 'run'));
    writeFileSync(join(at, 'backend.json'), `${JSON.stringify(this.backend.dump())}\n`);
    this.image = { state: join(at, 'state'), run: join(at, 'run'), backend: join(at, 'backend.json') };
  }

  /** Run `cmd` with a crash `when` the `nth` call of `call` (optionally on a target) happens; keep the image; restart. */
  async crashAt(rule: { call: CallKind; nth?: number; target?: string; when: 'before' | 'after' }, cmd: () => Promise<unknown>): Promise<void> {
    this.backend.setFaultPlan({ rules: [{ ...rule, action: 'crash' }] });
    const err = await cmd().then(() => null, (e: unknown) => e);
    if (!(err instanceof SimulatedCrash)) throw new Error(`expected a crash at ${JSON.stringify(rule)}, got ${String(err)}`);
    await this.crash();
    this.keepImage();
    await this.open();
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Journal segments, torn-tail keepsakes and checkpoints; not the lock, not the preallocated next segment. */
function copyState(from: string, to: string): void {
  for (const sub of ['journal', 'checkpoints']) {
    const dir = join(from, sub);
    if (!existsSync(dir)) continue;
    mkdirSync(join(to, sub), { recursive: true });
    for (const name of readdirSync(dir)) if (/\.(jsonl|bin|json)$/.test(name)) cpSync(join(dir, name), join(to, sub, name));
  }
}

function copyRun(from: string, to: string): void {
  const dir = join(from, 'volatile');
  if (!existsSync(dir)) return;
  mkdirSync(join(to, 'volatile'), { recursive: true });
  for (const name of readdirSync(dir)) if (name.endsWith('.jsonl')) cpSync(join(dir, name), join(to, 'volatile', name));
}

const fail = (call: CallKind, when: 'before' | 'after', code: BackendErrorCode = 'INTERNAL', extra: { nth?: number; target?: string; once?: boolean } = {}) => ({ call, when, action: 'fail' as const, code, ...extra });
const swallow = (p: Promise<unknown>) => p.catch(() => undefined);

/** A second workshop, in another project, with an SDK of its own. */
const ROS = spec([sdk('ros2', 'humble'), sdk('tools', 'gdb')], { name: 'ros', projectId: '5e6f7a8b' });
/** Another workshop in another project (the SDK cache cases share layers with it). */
const OTHER = { name: 'perception', projectId: '5e6f7a8b' } as const;


/** Random commands, failures, crashes, reboots and lost objects on two workshops: the rare paths, all at once. */
async function randomWalk(h: Harness, seed: number, steps: number): Promise<void> {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const calls: CallKind[] = ['create', 'copy', 'remove', 'start', 'stop', 'exec'];
  for (let i = 0; i < steps; i++) {
    const roll = rnd();
    if (roll < 0.3) h.backend.setFaultPlan({ random: { seed: seed * 1000 + i, probability: 0.2, actions: ['fail-before', 'fail-after'], codes: ['INTERNAL', 'NO_SPACE', 'BUSY'] } });
    else if (roll < 0.4) h.backend.setFaultPlan({ rules: [fail('exec', 'before', 'EXEC_FAILED'), fail(pick(['copy', 'start', 'remove'] as const), 'before', 'NO_SPACE', { once: false, nth: 1 + Math.floor(rnd() * 4) })] });
    else if (roll < 0.75) h.backend.setFaultPlan({ rules: [{ call: pick(calls), nth: 1 + Math.floor(rnd() * 2), when: pick(['before', 'after'] as const), action: 'crash' }] });
    else h.backend.setFaultPlan(null);
    const e = h.e;
    const name = pick(['nav2', 'ros']);
    const ws = e.folded.workshops[name];
    const spec = () => (name === 'ros' ? ROS : pick([V1, V2, V3]));
    const cmds: Array<() => Promise<unknown>> = !ws
      ? [() => e.launch(spec()), () => e.launch(spec()), () => e.remove(name)]
      : ws.stash
        ? [() => e.unstash(name), () => e.unstash(name), () => e.remove(name), () => e.refresh(spec())]
        : ws.status === 'broken'
          ? [() => e.refresh(spec()), () => e.remove(name), () => e.reconcile()]
          : [
              () => e.refresh(spec()),
              () => e.refresh(spec()),
              () => e.stash(name),
              () => e.restore(name, 'ros2'),
              () => e.remove(name),
              () => e.run({ from: name, script: 'echo hi > "${ATELIER_ROOTFS%/}/tmp/x"', ...(rnd() < 0.3 ? { keep: true } : {}) }),
              () => e.gc(),
            ];
    const err = await pick(cmds)().then(() => null, (x: unknown) => x);
    const r = rnd();
    if (err instanceof SimulatedCrash || r < 0.08) {
      await h.crash();
      if (r < 0.03) {
        // A reboot: running instances stop, the run directory (tmpfs) is emptied.
        h.backend.reboot();
        rmSync(h.runDir, { recursive: true, force: true });
      }
      if (rnd() < 0.25) {
        // Something outside atelier removes one owned object, or leaves an owned one behind.
        const image = h.backend.dump();
        const owned = image.objects.filter((o) => o.tags.owner === 'alice' && o.tags.kind !== 'container');
        if (owned.length && rnd() < 0.6) h.backend.load({ ...image, objects: image.objects.filter((o) => o !== pick(owned)) });
        else h.backend.plant({ space: 'layers', name: `ros2-${(i + 1).toString(16).padStart(16, '0')}` }, { tags: { owner: 'alice', op: `op-gone-${i}`, kind: 'sdk', workshop: name } });
      }
      await h.open();
    }
  }
  h.backend.setFaultPlan(null);
}

export interface Case {
  readonly description: string;
  readonly checkpointEvery?: number;
  readonly run: (h: Harness) => Promise<void>;
  /** After close: damage the journal as a crash mid-write would. */
  readonly after?: (stateDir: string) => void;
}

export const CASES: Record<string, Case> = {
  launch: { description: 'launch a workshop with two SDKs', run: async (h) => void (await h.e.launch(V1)) },
  'refresh-reuse': { description: 'refresh with the last SDK changed: the first layer is reused', run: async (h) => void (await h.e.launch(V1), await h.e.refresh(V2)) },
  'refresh-from-base': { description: 'refresh with the first SDK changed: rebuilt from the base', run: async (h) => void (await h.e.launch(V1), await h.e.refresh(V3)) },
  'refresh-failed-undone': {
    description: "refresh whose new SDK's hook fails: undone from the stash",
    run: async (h) => {
      await h.e.launch(V1);
      h.backend.setFaultPlan({ rules: [fail('exec', 'before', 'EXEC_FAILED')] });
      await swallow(h.e.refresh(V2));
    },
  },
  'stash-unstash-restore': {
    description: 'stash, unstash, then restore the first SDK',
    run: async (h) => void (await h.e.launch(V1), await h.e.stash('nav2'), await h.e.unstash('nav2'), await h.e.restore('nav2', 'ros2')),
  },
  'stash-kept': { description: 'a workshop left with its stash', run: async (h) => void (await h.e.launch(V1), await h.e.stash('nav2')) },
  remove: { description: 'launch then remove', run: async (h) => void (await h.e.launch(V1), await h.e.remove('nav2')) },
  'run-rm': { description: 'a transient container run with --rm (the volatile journal)', run: async (h) => void (await h.e.launch(V1), await h.e.run({ from: 'nav2', script: 'echo hi' })) },
  'run-keep': {
    description: 'a container kept after its script, one from an SDK layer removed afterwards',
    run: async (h) => {
      const ws = await h.e.launch(V1);
      await h.e.run({ from: 'nav2', script: 'echo kept', keep: true });
      const r = await h.e.run({ from: ws.sdks[0]!.layer, keep: true, scratch: 'cache' });
      await h.e.removeContainer(r.id);
    },
  },
  'gc-orphan': {
    description: 'gc removes an owned object nobody accounts for, and leaves a foreign one',
    run: async (h) => {
      await h.e.launch(V1);
      h.backend.plant({ space: 'layers', name: 'nav-00000000deadbeef' }, { tags: { owner: 'alice', op: 'op-lost', kind: 'sdk', workshop: 'nav2' } });
      h.backend.plant({ space: 'layers', name: 'foreign-layer' }, { tags: { owner: 'bob', op: 'op-9', kind: 'sdk' } });
      await h.e.gc({ dryRun: true });
      await h.e.gc();
    },
  },
  'cleanup-leftovers': {
    description: "a refresh whose clean-up keeps failing: done, the stash left as garbage, then gc",
    run: async (h) => {
      await h.e.launch(V1);
      h.backend.setFaultPlan({ rules: [fail('remove', 'before', 'BUSY', { target: 'stash-', once: false })] });
      await h.e.refresh(V2);
      h.backend.setFaultPlan(null);
      await h.e.gc();
    },
  },
  aborted: {
    description: 'a refresh aborted by its caller half-way: undone (ABORTED)',
    run: async (h) => {
      await h.e.launch(V1);
      const ac = new AbortController();
      await swallow(h.e.refresh(V2, { signal: ac.signal, onProgress: (p) => (p.label.startsWith('rebuild') && p.status === 'done' ? ac.abort(new Error('interrupted by the user')) : undefined) }));
    },
  },
  'broken-undo': {
    description: 'a refresh that fails and whose undo fails too: the workshop is broken, keeps its stash, then unstash repairs it',
    run: async (h) => {
      await h.e.launch(V1);
      h.backend.setFaultPlan({ rules: [fail('exec', 'before', 'EXEC_FAILED'), fail('copy', 'before', 'NO_SPACE', { target: 'workshops/', once: false })] });
      await swallow(h.e.refresh(V2));
      h.backend.setFaultPlan(null);
      await h.e.unstash('nav2');
    },
  },
  'broken-stays': {
    description: 'a workshop left broken (failed refresh, failed undo), as the user finds it',
    run: async (h) => {
      await h.e.launch(V1);
      h.backend.setFaultPlan({ rules: [fail('exec', 'before', 'EXEC_FAILED'), fail('copy', 'before', 'NO_SPACE', { target: 'workshops/', once: false })] });
      await swallow(h.e.refresh(V3));
    },
  },
  'missing-layer': {
    description: 'an SDK layer removed behind the engine: reconciliation marks the workshop broken, a refresh repairs it',
    run: async (h) => {
      const ws = await h.e.launch(V1);
      await h.e.close();
      const lost = ws.sdks[1]!.layer;
      h.backend.load({ ...h.backend.dump(), objects: h.backend.dump().objects.filter((o) => o.name !== lost) } as never);
      await h.open();
      await h.e.refresh(V1);
    },
  },
  'missing-stash': {
    description: "a stash part removed behind the engine: the stash is forgotten, its other parts are garbage",
    run: async (h) => {
      await h.e.launch(V1);
      const ws = await h.e.stash('nav2');
      await h.e.close();
      h.backend.load({ ...h.backend.dump(), objects: h.backend.dump().objects.filter((o) => o.name !== ws.stash!.layer) } as never);
      await h.open();
    },
  },
  'two-workshops': {
    description: 'two workshops with commands in flight together',
    run: async (h) => {
      await Promise.all([h.e.launch(V1), h.e.launch(ROS)]);
      await Promise.all([h.e.refresh(V2), h.e.stash('ros'), h.e.run({ from: 'ros', script: 'echo x' })]);
      await Promise.all([h.e.unstash('ros'), h.e.remove('nav2')]);
    },
  },
  checkpoints: {
    description: 'checkpoints every 7 records: start-up folds the latest checkpoint and the tail',
    checkpointEvery: 7,
    run: async (h) => {
      await h.e.launch(V1);
      await h.e.refresh(V2);
      await h.e.close();
      await h.open();
      await h.e.stash('nav2');
      await h.e.unstash('nav2');
      await h.e.launch(ROS);
    },
  },
  'torn-tail': {
    description: 'the last record torn by a crash mid-write: everything before it folds, the tear is cut',
    run: async (h) => void (await h.e.launch(V1), await h.e.stash('nav2')),
    after: (stateDir) => {
      const dir = join(stateDir, 'journal');
      const last = readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort().at(-1)!;
      const line = encodeRecord({ seq: 28, v: 1, type: 'op.started', key: 'nav2', data: { op: 'op-torn', kind: 'unstash', workshop: 'nav2', at: '2026-12-05T13:00:00.000Z' } });
      appendFileSync(join(dir, last), line.slice(0, Math.floor(line.length / 2)));
    },
  },
  'crash-create': { description: 'crash right after the launch created the instance', run: (h) => h.crashAt({ call: 'create', when: 'after' }, () => h.e.launch(V1)) },
  'crash-create-before': { description: 'crash just before the launch created the instance', run: (h) => h.crashAt({ call: 'create', when: 'before' }, () => h.e.launch(V1)) },
  'crash-copy': { description: "crash right after a launch's snapshot copy", run: (h) => h.crashAt({ call: 'copy', nth: 2, when: 'after' }, () => h.e.launch(V1)) },
  'crash-copy-stash': { description: "crash right after a refresh copied the workshop to its stash (Workshop's bug)", run: async (h) => (await h.e.launch(V1), h.crashAt({ call: 'copy', target: 'layers/stash-nav2', when: 'after' }, () => h.e.refresh(V2))) },
  'crash-refresh-copy': { description: "crash right after a refresh's rebuild (a refresh-copy)", run: async (h) => (await h.e.launch(V1), h.crashAt({ call: 'copy', target: 'workshops/', when: 'after' }, () => h.e.refresh(V2))) },
  'crash-refresh-create': { description: "crash right after a refresh's rebuild from the base (a refresh-create)", run: async (h) => (await h.e.launch(V1), h.crashAt({ call: 'create', when: 'after' }, () => h.e.refresh(V3))) },
  'crash-exec': { description: "crash while an SDK's hook ran", run: async (h) => (await h.e.launch(V1), h.crashAt({ call: 'exec', when: 'after' }, () => h.e.refresh(V2))) },
  'crash-remove': { description: "crash right after remove deleted the instance (past remove's pivot)", run: async (h) => (await h.e.launch(V1), h.crashAt({ call: 'remove', when: 'after' }, () => h.e.remove('nav2'))) },
  'crash-start': { description: "crash right after launch started the instance", run: (h) => h.crashAt({ call: 'start', when: 'after' }, () => h.e.launch(V1)) },
  'crash-stop': { description: 'crash right after a stash stopped the workshop', run: async (h) => (await h.e.launch(V1), h.crashAt({ call: 'stop', when: 'after' }, () => h.e.stash('nav2'))) },
  'crash-unstash': { description: "crash in unstash past its pivot: rolled forward", run: async (h) => (await h.e.launch(V1), await h.e.stash('nav2'), h.crashAt({ call: 'copy', target: 'workshops/', when: 'after' }, () => h.e.unstash('nav2'))) },
  'crash-in-undo': {
    description: "crash in the undo of a failed refresh, right after the unstash copy",
    run: async (h) => {
      await h.e.launch(V1);
      await h.crashAt({ call: 'copy', target: 'workshops/', nth: 2, when: 'after' }, () => {
        h.backend.setFaultPlan({ rules: [fail('exec', 'before', 'EXEC_FAILED'), { call: 'copy', target: 'workshops/', nth: 2, when: 'after', action: 'crash' }] });
        return h.e.refresh(V2);
      });
    },
  },
  'crash-in-cleanup': { description: "crash in a refresh's clean-up, right after the stash was dropped", run: async (h) => (await h.e.launch(V1), h.crashAt({ call: 'remove', target: 'layers/stash-nav2', when: 'after' }, () => h.e.refresh(V2))) },
  'crash-run': { description: 'crash while a transient container ran its script', run: async (h) => (await h.e.launch(V1), h.crashAt({ call: 'exec', when: 'after' }, () => h.e.run({ from: 'nav2', script: 'echo x' }))) },
  reboot: {
    description: 'a host reboot: running instances stopped, the run directory (volatile journal) emptied, a kept container left on the backend',
    run: async (h) => {
      await h.e.launch(V1);
      await h.e.run({ from: 'nav2', script: 'echo kept', keep: true });
      await h.crash();
      h.backend.reboot();
      rmSync(h.runDir, { recursive: true, force: true });
      h.keepImage();
      await h.open();
    },
  },
  'random-1': { description: 'a random walk (seed 1): commands, failures, crashes, reboots on two workshops', run: (h) => randomWalk(h, 1, 120) },
  'random-2': { description: 'a random walk (seed 2)', run: (h) => randomWalk(h, 2, 120) },
  'random-3': { description: 'a random walk (seed 3)', run: (h) => randomWalk(h, 3, 120) },
  'random-4': { description: 'a random walk (seed 4), checkpoints every 50 records', checkpointEvery: 50, run: (h) => randomWalk(h, 4, 160) },
  // The SDK cache (generation v3).
  'cache-share': {
    description: 'the SDK cache: a second workshop in another project made from the cached layers (no hook), a refresh onto a partly cached chain, a remove leaving cache entries, gc --cache',
    run: async (h) => {
      await h.e.launch(V1);
      await h.e.launch({ ...V1, ...OTHER });
      await h.e.refresh(V2);
      await h.e.stash('perception');
      await h.e.unstash('perception');
      await h.e.remove('perception');
      await h.e.gc({ cache: true, dryRun: true });
      await h.e.remove('nav2');
      await h.e.gc({ cache: true });
    },
  },
  'cache-evict': {
    description: 'the SDK cache policy (--cache-keep 1): held layers kept, unheld ones evicted least recently used first, children before parents',
    run: async (h) => {
      h.opts = { cacheKeep: { count: 1 } };
      await h.e.close();
      await h.open();
      await h.e.launch(V1);
      await h.e.launch(spec([sdk('gazebo', 'harmonic')], OTHER));
      await h.e.remove('nav2');
      await h.e.remove('perception');
    },
  },
  'cache-concurrent': {
    description: 'the SDK cache: three launches at once needing the same layers build each once (one flight per layer), a failed build is not reused',
    run: async (h) => {
      await Promise.all(['alpha', 'bravo', 'charlie'].map((name, i) => h.e.launch({ ...V1, name, projectId: `0000000${i}` })));
      h.backend.setFaultPlan({ rules: [fail('exec', 'before', 'EXEC_FAILED', { nth: 2 })] });
      await swallow(h.e.launch({ ...V3, name: 'delta', projectId: '00000009' }));
      h.backend.setFaultPlan(null);
      await h.e.launch({ ...V3, name: 'delta', projectId: '00000009' });
    },
  },
  'cache-crash-build': {
    description: "the SDK cache: crash right after a shared layer's snapshot copy, before its success was journaled; the next start settles it",
    run: (h) => h.crashAt({ call: 'copy', nth: 1, when: 'after' }, () => h.e.launch(V1)),
  },
  'cache-upgrade': {
    description: 'the SDK cache: a workshop with its own layers (written without the cache) keeps working, then moves onto shared layers at its next refresh',
    run: async (h) => {
      h.opts = { sdkCache: false };
      await h.e.close();
      await h.open();
      await h.e.launch(V1);
      await h.e.close();
      h.opts = {};
      await h.open();
      await h.e.stash('nav2');
      await h.e.unstash('nav2');
      await h.e.refresh(V1);
      await h.e.launch({ ...V1, ...OTHER });
    },
  },
};

/** The generation this code writes, and how its cases are named. */
export const GENERATION = { name: 'v3', prefix: 'v3-', by: 'atelier 0.1.0 (event schema v2 with the SDK cache: shared layers, cache.evicting/evicted)' } as const;

async function writeCase(name: string, c: Case): Promise<void> {
  const out = join(GOLDEN_DIR, name);
  if (existsSync(out)) {
    console.log(`${name}: exists, kept (golden journals are never rewritten)`);
    return;
  }
  const h = new Harness(c.checkpointEvery);
  try {
    await h.open();
    await c.run(h);
    await h.e.close();
    c.after?.(h.stateDir);
    const tmp = `${out}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    copyState(h.stateDir, join(tmp, 'state'));
    copyRun(h.runDir, join(tmp, 'run'));
    writeFileSync(join(tmp, 'backend.json'), `${JSON.stringify(h.backend.dump())}\n`);
    writeFileSync(join(tmp, 'folded.json'), await foldCase(tmp));
    writeFileSync(join(tmp, 'opened.json'), await openCase(tmp));
    if (h.image) {
      cpSync(join(h.dir, 'image'), join(tmp, 'image'), { recursive: true });
      writeFileSync(join(tmp, 'image', 'folded.json'), await foldCase(join(tmp, 'image')));
      writeFileSync(join(tmp, 'image', 'opened.json'), await openCase(join(tmp, 'image')));
    }
    writeFileSync(join(tmp, 'case.json'), `${JSON.stringify({ case: name, description: c.description, written: new Date().toISOString().slice(0, 10), by: GENERATION.by }, null, 2)}\n`);
    cpSync(tmp, out, { recursive: true });
    rmSync(tmp, { recursive: true, force: true });
    const bytes = readdirSync(join(out, 'state', 'journal')).reduce((n, f) => n + statSync(join(out, 'state', 'journal', f)).size, 0);
    console.log(`${name}: written (${bytes} journal bytes)`);
  } finally {
    h.cleanup();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const names = process.argv.slice(2);
  for (const n of names) if (!CASES[n]) throw new Error(`no golden case "${n}"`);
  for (const [name, c] of Object.entries(CASES)) if (names.length === 0 || names.includes(name)) await writeCase(`${GENERATION.prefix}${name}`, c);
}

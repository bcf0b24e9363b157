/**
 * Overlay backend figures (see bench/README.md, "Overlay backend").
 *
 * - `overlay.stash.time` / `overlay.stash.extra_bytes`: stashing a stopped workshop whose writable
 *   layer holds 300 MB in 3,000 files (`copy` workshop -> `stash-<instance>`), for the overlayfs
 *   driver, the copy driver, and a `cp -a` of the same tree (the baseline every line compares
 *   with). Extra bytes are measured with `du` over the whole store (hardlinks counted once).
 *   Targets: overlayfs time ratio <= 0.05, extra bytes <= 1% of the workshop.
 * - `overlay.refresh.last_sdk_changed` vs `overlay.refresh.full_rebuild`: the port calls of a
 *   refresh of a workshop with three SDKs (each hook writes 50 MB), the way the engine makes them:
 *   with only the last SDK changed (stash, refresh-copy from SDK 2's layer, one hook, snapshot,
 *   drop the stash) and from scratch (refresh-create from the base, three hooks). `hook_ms` is what
 *   the last SDK's hook alone costs: the difference is the O(1) metadata work.
 *
 * Files go to `$ATELIER_BENCH_DIR` or the system temp directory. Needs root for the overlayfs
 * driver (skipped otherwise).
 *
 * @example
 * ```sh
 * npm run bench -- overlay.
 * ```
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOverlayBackend } from '../backends/overlay/index.ts';
import type { OverlayBackend } from '../backends/overlay/index.ts';
import { mountsUnder, unmount } from '../backends/overlay/mounts.ts';
import type { ObjectRef, Tags } from '../backends/types.ts';
import type { BenchEntry, Figure } from './run.ts';

const FILES = 3000;
const FILE_BYTES = 100 * 1024;
const WS: ObjectRef = { space: 'workshops', name: 'bench-1a2b3c4d' };
const tags = (kind: Tags['kind'], op = 'bench'): Tags => ({ owner: 'bench', op, kind });
const P = (path: string) => `"\${ATELIER_ROOTFS%/}${path}"`;

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;
const now = () => performance.now();

async function scratchDir(label: string): Promise<string> {
  return mkdtemp(join(process.env.ATELIER_BENCH_DIR ?? tmpdir(), `atelier-bench-${label}-`));
}

async function dispose(dir: string): Promise<void> {
  for (const m of await mountsUnder(dir)) await unmount(m);
  await rm(dir, { recursive: true, force: true });
}

/** Bytes a tree uses on disk (each inode once). */
function du(path: string): number {
  return Number(execFileSync('du', ['-s', '--block-size=1', path], { encoding: 'utf8' }).split('\t')[0]);
}

/** 300 MB in 3,000 files, written straight into a running workshop's root. */
async function fill(root: string): Promise<void> {
  const data = Buffer.alloc(FILE_BYTES);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
  for (let d = 0; d < 30; d++) {
    const dir = join(root, 'opt', 'big', `d${d}`);
    await mkdir(dir, { recursive: true });
    for (let i = 0; i < FILES / 30; i++) {
      data.writeUInt32LE(d * 1000 + i, 0); // distinct content per file
      await writeFile(join(dir, `f${i}`), data);
    }
  }
  execFileSync('sync');
}

async function stashFigures(driver: 'overlayfs' | 'copy', dir: string): Promise<{ ms: number; extra: number; rootfs: string; b: OverlayBackend }> {
  const b = await createOverlayBackend({ root: join(dir, driver), runDir: join(dir, `run-${driver}`), driver });
  await b.create({ target: WS, source: { base: b.defaultBase }, tags: tags('workshop') });
  await b.start(WS);
  const rootfs = driver === 'overlayfs' ? join(b.root, 'objects', WS.space, WS.name, 'merged') : '';
  const meta = JSON.parse(execFileSync('cat', [join(b.root, 'objects', WS.space, WS.name, 'meta.json')], { encoding: 'utf8' })) as { upper: string };
  await fill(driver === 'overlayfs' ? rootfs : join(b.root, 'blobs', meta.upper));
  await b.stop(WS);
  const before = du(b.root);
  const t0 = now();
  await b.copy({ source: WS, target: { space: 'layers', name: `stash-${WS.name}` }, tags: tags('stash') });
  const ms = now() - t0;
  execFileSync('sync');
  return { ms, extra: Math.max(0, du(b.root) - before), rootfs, b };
}

const stash: BenchEntry = {
  name: 'overlay.stash',
  async run() {
    if (!isRoot()) return { skipped: 'the overlayfs driver needs root' };
    const dir = await scratchDir('ovl-stash');
    try {
      const ovl = await stashFigures('overlayfs', dir);
      // Baseline: cp -a of the workshop's tree (read through a view, so it is the same tree).
      const view = await ovl.b.mountView(WS);
      const dest = join(dir, 'cp-a');
      const t0 = now();
      execFileSync('cp', ['-a', view.path, dest]);
      const cpMs = now() - t0;
      await view.release();
      execFileSync('sync');
      const cpBytes = du(dest);
      await rm(dest, { recursive: true, force: true });
      const copy = await stashFigures('copy', dir);
      const common = { files: FILES, workshop_bytes: cpBytes };
      const out: Figure[] = [
        { name: 'overlay.stash.time', driver: 'overlayfs', value: ovl.ms, unit: 'ms', baseline: cpMs, target_ratio: '<= 0.05', ...common },
        { name: 'overlay.stash.time', driver: 'copy', value: copy.ms, unit: 'ms', baseline: cpMs, ...common },
        { name: 'overlay.stash.time', driver: 'cp -a', value: cpMs, unit: 'ms', baseline: cpMs, ...common },
        { name: 'overlay.stash.extra_bytes', driver: 'overlayfs', value: ovl.extra, unit: 'bytes', baseline: cpBytes, target_ratio: '<= 0.01', ...common },
        { name: 'overlay.stash.extra_bytes', driver: 'copy', value: copy.extra, unit: 'bytes', baseline: cpBytes, ...common },
        { name: 'overlay.stash.extra_bytes', driver: 'cp -a', value: cpBytes, unit: 'bytes', baseline: cpBytes, ...common },
      ];
      return out;
    } finally {
      await dispose(dir);
    }
  },
};

const SDK_HOOK = (i: number, version = 1) =>
  [`mkdir -p ${P(`/opt/sdk${i}`)}`, `dd if=/dev/zero of=${P(`/opt/sdk${i}/blob`)} bs=1M count=50 2>/dev/null`, `echo v${version} > ${P(`/opt/sdk${i}/VERSION`)}`].join('\n');

const refresh: BenchEntry = {
  name: 'overlay.refresh',
  async run() {
    if (!isRoot()) return { skipped: 'the overlayfs driver needs root' };
    const dir = await scratchDir('ovl-refresh');
    try {
      const b = await createOverlayBackend({ root: join(dir, 'root'), runDir: join(dir, 'run'), driver: 'overlayfs' });
      const layer = (i: number, v = 1): ObjectRef => ({ space: 'layers', name: `sdk${i}-v${v}` });
      // Launch: base, then each SDK's hook and snapshot.
      await b.create({ target: WS, source: { base: b.defaultBase }, tags: tags('workshop') });
      await b.start(WS);
      for (let i = 1; i <= 3; i++) {
        await b.exec(WS, { script: SDK_HOOK(i) });
        await b.copy({ source: WS, target: layer(i), tags: tags('sdk') });
      }
      // Refresh with only SDK 3 changed.
      const t0 = now();
      await b.stop(WS);
      const stashes: ObjectRef[] = [];
      for (let i = 1; i <= 3; i++) {
        const s: ObjectRef = { space: 'layers', name: `stash-${layer(i).name}` };
        await b.copy({ source: layer(i), target: s, tags: tags('stash-sdk') });
        stashes.push(s);
      }
      const st: ObjectRef = { space: 'layers', name: `stash-${WS.name}` };
      await b.copy({ source: WS, target: st, tags: tags('stash') });
      stashes.push(st);
      await b.copy({ source: layer(2), target: WS, tags: tags('workshop', 'refresh'), refresh: true });
      await b.remove(layer(3));
      await b.start(WS);
      const h0 = now();
      await b.exec(WS, { script: SDK_HOOK(3, 2) });
      const hookMs = now() - h0;
      await b.copy({ source: WS, target: layer(3, 2), tags: tags('sdk') });
      for (const s of stashes) await b.remove(s);
      const lastMs = now() - t0;
      // Full rebuild: from the base, every hook again.
      const t1 = now();
      await b.stop(WS);
      await b.create({ target: WS, source: { base: b.defaultBase }, tags: tags('workshop', 'rebuild'), refresh: true });
      await b.start(WS);
      for (let i = 1; i <= 3; i++) {
        await b.exec(WS, { script: SDK_HOOK(i, 3) });
        await b.copy({ source: WS, target: layer(i, 3), tags: tags('sdk') });
      }
      const fullMs = now() - t1;
      return [
        { name: 'overlay.refresh.last_sdk_changed', value: lastMs, unit: 'ms', baseline: fullMs, hook_ms: Number(hookMs.toFixed(1)), overhead_ms: Number((lastMs - hookMs).toFixed(1)), sdks: 3 },
        { name: 'overlay.refresh.full_rebuild', value: fullMs, unit: 'ms', sdks: 3 },
      ];
    } finally {
      await dispose(dir);
    }
  },
};

export const figures: BenchEntry[] = [stash, refresh];

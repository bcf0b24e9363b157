/**
 * LXD figures (see bench/README.md, "LXD"). They need a daemon with the busybox image
 * (`bash scripts/lxd-setup.sh`); without one every entry is skipped with the reason.
 *
 * - `lxd.stash.extra_bytes.dir` / `.btrfs`: the bytes a stash (an instance-only copy of a workshop
 *   into the layers project) adds on disk, for a workshop holding 64 MiB of data; baseline: the
 *   workshop's own bytes. dir copies everything; btrfs shares extents (exclusive bytes only).
 * - `lxd.refresh.last_sdk_changed` vs `lxd.refresh.full_rebuild`: seconds for `engine.refresh` of a
 *   workshop with three SDKs when only the last SDK changed (two layers reused) and when the first
 *   changed (everything rebuilt from the base). Each SDK's hook writes 16 MiB (an SDK install costs
 *   something); `ATELIER_LXD_BENCH_RUNS` refreshes of each kind (default 1) are averaged.
 *   The workshop lives on the default (dir) pool.
 *
 * @example
 * ```sh
 * npm run bench -- lxd. | jq -c '{name, value, unit, ratio}'
 * ```
 */
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLxdBackend } from '../backends/lxd/index.ts';
import { LxdClient } from '../backends/lxd/client.ts';
import type { Backend, ObjectRef } from '../backends/types.ts';
import { lxdAvailable, purgeOwner, uniqueOwner, LXD_BASE, LXD_SOCKET } from '../test/backends/lxd-env.ts';
import type { BenchEntry, Figure, Skip } from './run.ts';

const run = promisify(execFile);
const BTRFS_POOL = process.env.ATELIER_LXD_BTRFS_POOL ?? 'atelier-btrfs';
const DATA_MIB = 64;
const SDK_MIB = 16;
/** Refreshes timed per figure (each takes a few seconds on LXD). */
const RUNS = Number(process.env.ATELIER_LXD_BENCH_RUNS ?? 1);

async function skipReason(): Promise<string | null> {
  const a = await lxdAvailable();
  return a.ok ? null : `${a.reason} (run scripts/lxd-setup.sh)`;
}

async function poolExists(pool: string): Promise<boolean> {
  const c = new LxdClient(LXD_SOCKET);
  try {
    await c.get(`/1.0/storage-pools/${pool}`);
    return true;
  } catch {
    return false;
  } finally {
    c.close();
  }
}

/** Bytes an instance's root takes on disk: all of it on dir, its exclusive extents on btrfs. */
async function bytesOf(pool: string, driver: 'dir' | 'btrfs', project: string, name: string): Promise<{ total: number; exclusive: number }> {
  const path = `/var/lib/lxd/storage-pools/${pool}/containers/${project}_${name}`;
  await run('sync');
  if (driver === 'dir') {
    const { stdout } = await run('du', ['-sb', path]);
    const n = Number(stdout.split(/\s+/)[0]);
    return { total: n, exclusive: n };
  }
  const { stdout } = await run('btrfs', ['filesystem', 'du', '-s', '--raw', path]);
  const cols = stdout.trim().split('\n').pop()!.trim().split(/\s+/);
  return { total: Number(cols[0]), exclusive: Number(cols[1]) };
}

async function stashExtra(driver: 'dir' | 'btrfs'): Promise<Figure | Skip> {
  const why = await skipReason();
  if (why) return { skipped: why };
  const pool = driver === 'dir' ? 'default' : BTRFS_POOL;
  if (!(await poolExists(pool))) return { skipped: `no LXD storage pool ${pool} (scripts/lxd-setup.sh creates it)` };
  const owner = uniqueOwner('atl-bs');
  const b = createLxdBackend({ owner, socket: LXD_SOCKET, stopTimeoutS: 0, pool });
  try {
    const ws: ObjectRef = { space: 'workshops', name: 'bench-ws' };
    const st: ObjectRef = { space: 'layers', name: 'stash-bench-ws' };
    await b.create({ target: ws, source: { base: LXD_BASE }, tags: { owner, op: 'b1', kind: 'workshop' } });
    await b.start(ws);
    await b.exec(ws, { script: `dd if=/dev/urandom of=/root/data bs=1048576 count=${DATA_MIB} 2>/dev/null; sync` });
    await b.stop(ws);
    const t0 = performance.now();
    await b.copy({ source: ws, target: st, tags: { owner, op: 'b2', kind: 'stash' } });
    const copyS = (performance.now() - t0) / 1000;
    const w = await bytesOf(pool, driver, `workshop.${owner}`, ws.name);
    const s = await bytesOf(pool, driver, `workshop-layers.${owner}`, st.name);
    return { name: `lxd.stash.extra_bytes.${driver}`, value: s.exclusive, unit: 'bytes', baseline: w.total, pool, driver, dataMiB: DATA_MIB, copySeconds: Number(copyS.toFixed(3)) };
  } finally {
    await b.close();
    await purgeOwner(owner);
  }
}

/** Write a project with three SDKs; `gen` changes the hooks' contents. */
async function writeProject(dir: string, gens: [number, number, number]): Promise<void> {
  await writeFile(join(dir, 'workshop.yaml'), `name: bench\nbase: ${LXD_BASE}\nsdks:\n  - name: alpha\n  - name: beta\n  - name: gamma\n`);
  const sdks = ['alpha', 'beta', 'gamma'];
  for (const [i, sdk] of sdks.entries()) {
    await mkdir(join(dir, '.workshop', sdk, 'hooks'), { recursive: true });
    await writeFile(join(dir, '.workshop', sdk, 'sdk.yaml'), `name: ${sdk}\n`);
    await writeFile(
      join(dir, '.workshop', sdk, 'hooks', 'setup-base'),
      `#!/bin/sh\nmkdir -p /opt/${sdk}\ndd if=/dev/urandom of=/opt/${sdk}/blob bs=1048576 count=${SDK_MIB} 2>/dev/null\necho ${gens[i]} > /opt/${sdk}/gen\n`,
      { mode: 0o755 },
    );
  }
}

async function refreshFigures(): Promise<Figure[] | Skip> {
  const why = await skipReason();
  if (why) return { skipped: why };
  let engineMod: { openEngine: (o: Record<string, unknown>) => Promise<any> };
  let fileMod: { loadWorkshopFile: (p: string, o: { defaultBase: string }) => Promise<any> };
  try {
    const spec = '../engine/index.ts';
    engineMod = await import(spec);
    fileMod = await import('../engine/workshop-file.ts');
  } catch (e) {
    return { skipped: `the engine is not available: ${(e as Error).message.split('\n')[0]}` };
  }
  const owner = uniqueOwner('atl-br');
  const root = await mkdtemp(join(tmpdir(), 'atelier-lxd-bench-'));
  const backend: Backend = createLxdBackend({ owner, socket: LXD_SOCKET, stopTimeoutS: 0 });
  const engine = await engineMod.openEngine({ stateDir: join(root, 'state'), runDir: join(root, 'run'), backend, owner });
  try {
    const proj = join(root, 'project');
    await mkdir(proj, { recursive: true });
    const load = () => fileMod.loadWorkshopFile(join(proj, 'workshop.yaml'), { defaultBase: backend.defaultBase });
    await writeProject(proj, [1, 1, 1]);
    await engine.launch(await load());
    const timed = async (gens: [number, number, number]) => {
      await writeProject(proj, gens);
      const spec = await load();
      const t0 = performance.now();
      await engine.refresh(spec);
      return (performance.now() - t0) / 1000;
    };
    const last: number[] = [];
    const full: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      last.push(await timed([1 + 2 * i, 1, 2 + 2 * i])); // only gamma changes: alpha and beta reused
      full.push(await timed([2 + 2 * i, 1, 3 + 2 * i])); // alpha changes: everything rebuilt from the base
    }
    const med = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    return [
      { name: 'lxd.refresh.last_sdk_changed', value: med(last), unit: 's', baseline: med(full), runs: last.map((x) => Number(x.toFixed(3))), sdks: 3, sdkMiB: SDK_MIB },
      { name: 'lxd.refresh.full_rebuild', value: med(full), unit: 's', runs: full.map((x) => Number(x.toFixed(3))), sdks: 3, sdkMiB: SDK_MIB },
    ];
  } finally {
    await engine.close().catch(() => undefined);
    await backend.close();
    await purgeOwner(owner);
    await rm(root, { recursive: true, force: true });
  }
}

export const figures: BenchEntry[] = [
  { name: 'lxd.refresh', run: refreshFigures },
  { name: 'lxd.stash.extra_bytes.dir', run: () => stashExtra('dir') },
  { name: 'lxd.stash.extra_bytes.btrfs', run: () => stashExtra('btrfs') },
];

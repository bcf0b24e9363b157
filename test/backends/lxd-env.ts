/**
 * Shared by the LXD tests: is a daemon there (and a storage pool), a unique owner per run, clean-up
 * of that owner's projects (every instance, then the projects themselves), and the conformance
 * suite's factory (`lxdConformance`, on a given pool).
 *
 * When the socket is absent, tests call `lxdUnavailable(test)`: in CI (`process.env.CI`) that is a
 * failing test naming the fix; elsewhere a skipped test with the reason printed.
 */
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'uvu';
import { LxdClient, resolveSocket } from '../../backends/lxd/client.ts';
import type { LxdInstance } from '../../backends/lxd/client.ts';
import { createLxdBackend } from '../../backends/lxd/index.ts';
import { isBackendError, type ObjectRef } from '../../backends/types.ts';
import * as assert from 'uvu/assert';
import type { Make } from './cases/types.ts';

export const LXD_SOCKET = resolveSocket(process.env.ATELIER_LXD_SOCKET);
export const LXD_BASE = process.env.ATELIER_LXD_BASE ?? 'busybox';
/** The btrfs pool `scripts/lxd-setup.sh` makes (`ATELIER_LXD_BTRFS_POOL`). */
export const LXD_BTRFS_POOL = process.env.ATELIER_LXD_BTRFS_POOL ?? 'atelier-btrfs';

/** Whether the daemon has storage pool `pool`, and if not why. */
export async function lxdPool(pool: string): Promise<{ ok: true } | { ok: false; reason: string }> {
  const c = new LxdClient(LXD_SOCKET);
  try {
    await c.get(`/1.0/storage-pools/${encodeURIComponent(pool)}`);
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: `LXD has no storage pool ${pool} (${(e as Error).message}); scripts/lxd-setup.sh makes it unless ATELIER_LXD_BTRFS=0` };
  } finally {
    c.close();
  }
}

/**
 * The conformance suite's factory: each test gets a fresh owner (so fresh projects), purged
 * afterwards, and new workshops on `pool` (default: the profile's). `plant` makes an object atelier
 * does not own, through the raw API, without the owner tag. `registerBase` imports a tiny root (a
 * static busybox as `/bin/sh`, an os-release of its own) as an image under the alias, replacing
 * the alias's image when it has one; the clean-up deletes those aliases and images (they live in
 * the default project, outside the owner's).
 */
export function lxdConformance(prefix: string, pool?: string): Make {
  return async () => {
    const owner = uniqueOwner(prefix);
    const backend = createLxdBackend({ owner, socket: LXD_SOCKET, stopTimeoutS: 0, ...(pool ? { pool } : {}) });
    await backend.ensureProjects(owner);
    const aliases = new Set<string>();
    return {
      backend,
      owner,
      cleanup: async () => {
        await backend.close();
        for (const alias of aliases) await dropAlias(alias);
        await purgeOwner(owner);
      },
      registerBase: async (name: string) => {
        const root = await mkdtemp(join(tmpdir(), 'atelier-lxd-base-'));
        try {
          await mkdir(join(root, 'bin'));
          await mkdir(join(root, 'etc'));
          await copyFile('/bin/busybox', join(root, 'bin/sh'));
          await chmod(join(root, 'bin/sh'), 0o755);
          await writeFile(join(root, 'etc/os-release'), `ID=${name}\nBUILD_ID=${randomBytes(4).toString('hex')}\n`);
          aliases.add(name);
          await dropAlias(name);
          await backend.addBase(name, root);
        } finally {
          await rm(root, { recursive: true, force: true });
        }
      },
      plant: async (ref: ObjectRef, tags: Record<string, string> = {}) => {
        const raw = rawClient();
        try {
          const config: Record<string, string> = { 'boot.autostart': 'false' };
          for (const [k, v] of Object.entries(tags)) if (k !== 'owner') config[`user.atelier.${k}`] = v;
          const project = ref.space === 'workshops' ? `workshop.${owner}` : `workshop-layers.${owner}`;
          const devices = pool ? { root: { type: 'disk', path: '/', pool } } : {};
          await raw.async('POST', '/1.0/instances', { name: ref.name, type: 'container', profiles: ['default'], source: { type: 'image', alias: LXD_BASE }, config, devices }, { project });
        } finally {
          raw.close();
        }
      },
    };
  };
}

export async function lxdAvailable(): Promise<{ ok: true } | { ok: false; reason: string }> {
  if (!existsSync(LXD_SOCKET)) return { ok: false, reason: `LXD socket ${LXD_SOCKET} is absent` };
  const c = new LxdClient(LXD_SOCKET);
  try {
    const aliases = await c.get<Array<{ name: string }>>('/1.0/images/aliases', { recursion: 1 });
    if (!aliases.some((a) => a.name === LXD_BASE)) return { ok: false, reason: `LXD has no image alias "${LXD_BASE}"` };
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: `LXD is not answering at ${LXD_SOCKET}: ${(e as Error).message}` };
  } finally {
    c.close();
  }
}

/** Register the "no LXD" outcome: fail loudly in CI, skip with a reason elsewhere. */
export function lxdUnavailable(test: Test, what: string, reason: string): void {
  const fix = 'run `sudo bash scripts/lxd-setup.sh` (Debian, root) to install and start LXD with the busybox image';
  if (process.env.CI) {
    test(`${what}: LXD must be available in CI`, () => {
      throw new Error(`${reason}; ${fix}`);
    });
  } else {
    console.log(`SKIP ${what}: ${reason}; ${fix}`);
    test.skip(`${what} (LXD unavailable: ${reason})`, () => undefined);
  }
}

/** A fresh owner for one run: its projects exist only for this run. */
export function uniqueOwner(prefix = 'atl'): string {
  return `${prefix}-${process.pid.toString(36)}${randomBytes(3).toString('hex')}`;
}

/** Delete every instance in the owner's two projects, then the projects. Never throws. */
export async function purgeOwner(owner: string): Promise<void> {
  const c = new LxdClient(LXD_SOCKET);
  try {
    for (const project of [`workshop.${owner}`, `workshop-layers.${owner}`]) {
      let insts: LxdInstance[] = [];
      try {
        insts = await c.get<LxdInstance[]>('/1.0/instances', { project, recursion: 1 });
      } catch {
        continue;
      }
      await Promise.all(
        insts.map(async (i) => {
          const q = { project };
          if (i.status !== 'Stopped') await c.async('PUT', `/1.0/instances/${i.name}/state`, { action: 'stop', force: true, timeout: -1 }, q).catch(() => undefined);
          await c.async('DELETE', `/1.0/instances/${i.name}`, undefined, q).catch(() => undefined);
        }),
      );
      try {
        const pools = await c.get<string[]>('/1.0/storage-pools');
        for (const p of pools) {
          const pool = p.split('/').pop()!;
          const vols = await c.get<Array<{ name: string; type: string }>>(`/1.0/storage-pools/${pool}/volumes/custom`, { project, recursion: 1 }).catch(() => []);
          for (const v of vols) await c.sync('DELETE', `/1.0/storage-pools/${pool}/volumes/custom/${v.name}`, undefined, { project }).catch(() => undefined);
        }
      } catch {
        /* no pools listed */
      }
      await c.sync('DELETE', `/1.0/projects/${encodeURIComponent(project)}`).catch(() => undefined);
    }
  } finally {
    c.close();
  }
}

/** Delete image alias `alias` and the image it points at, when there is one. Never throws. */
async function dropAlias(alias: string): Promise<void> {
  const c = new LxdClient(LXD_SOCKET);
  try {
    const { target } = await c.get<{ target: string }>(`/1.0/images/aliases/${encodeURIComponent(alias)}`);
    await c.sync('DELETE', `/1.0/images/aliases/${encodeURIComponent(alias)}`).catch(() => undefined);
    await c.async('DELETE', `/1.0/images/${target}`).catch(() => undefined);
  } catch {
    /* no such alias */
  } finally {
    c.close();
  }
}

/** Raw client for assertions on what LXD really holds. */
export function rawClient(): LxdClient {
  return new LxdClient(LXD_SOCKET);
}

/**
 * Purge the projects of test owners (`uniqueOwner`) whose process is gone: leftovers of a run that
 * was killed before its clean-up. Owners of live processes (a concurrent run) are left alone.
 */
export async function sweepStale(): Promise<string[]> {
  const c = new LxdClient(LXD_SOCKET);
  let names: string[];
  try {
    names = (await c.get<string[]>('/1.0/projects')).map((p) => decodeURIComponent(p.split('/').pop()!));
  } catch {
    return [];
  } finally {
    c.close();
  }
  const owners = new Set<string>();
  for (const n of names) {
    const m = /^workshop(?:-layers)?\.(atl-[a-z]+-([0-9a-z]+)[0-9a-f]{6})$/.exec(n);
    if (!m) continue;
    const pid = parseInt(m[2]!, 36);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (e) {
      alive = (e as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) owners.add(m[1]!);
  }
  for (const o of owners) await purgeOwner(o);
  return [...owners];
}

/**
 * Rethrow port and engine errors as plain ones whose message carries the code and `info`, so a
 * failing LXD test says what the daemon answered.
 */
export function plainError(e: unknown): unknown {
  if (e instanceof Error && 'info' in e && typeof (e as { info: unknown }).info === 'object') {
    const code = (e as { code?: string }).code;
    const err = new Error(`${code ? `${code}: ` : ''}${e.message}\ninfo: ${JSON.stringify((e as { info: unknown }).info)}`);
    err.stack = `${err.message}\n${(e.stack ?? '').split('\n').slice(1).join('\n')}`;
    return err;
  }
  return e;
}

/** A uvu suite whose tests rethrow port and engine errors in a form uvu can print. */
export function guarded(t: Test): Test {
  const wrap = (fn?: (ctx: any) => unknown) =>
    fn &&
    (async (ctx: any) => {
      try {
        await fn(ctx);
      } catch (e) {
        throw plainError(e);
      }
    });
  const g = ((name: string, fn: (ctx: any) => unknown) => t(name, wrap(fn)!)) as Test;
  g.only = (name, fn) => t.only(name, wrap(fn)!);
  g.skip = (name, fn) => t.skip(name, wrap(fn));
  g.before = t.before;
  g.after = t.after;
  g.run = () => t.run();
  return g;
}

/** `p` fails with a `BackendError` of `code` (the LXD tests' refusals). */
export async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(isBackendError(e), `a BackendError, got ${String(e)}`);
    assert.is(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

/**
 * Fixtures for the overlay backend's tests: a fresh root (and run directory) per backend, a
 * `plant` for unowned objects, and a cleanup that releases every mount before deleting.
 *
 * The tests need root (mounts and chroot); CI runs as root, so the overlayfs driver is never
 * skipped: without root the overlayfs tests fail loudly rather than pass vacuously. As root with
 * runc installed, started workshops are containers: the cleanup stops them (`stopAll`, then
 * whatever runc state is left under the directory) before it unmounts and deletes.
 *
 * @example
 * ```ts
 * const f = await overlayFixture('overlayfs');
 * await f.backend.create(...);
 * await f.cleanup();
 * ```
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOverlayBackend } from '../../backends/overlay/index.ts';
import type { OverlayBackend, OverlayBackendOptions } from '../../backends/overlay/index.ts';
import { mountsUnder, unmount } from '../../backends/overlay/mounts.ts';
import type { ObjectRef } from '../../backends/types.ts';
import type { Fixture } from './cases/types.ts';

export interface OverlayFixture extends Fixture {
  readonly backend: OverlayBackend;
  readonly dir: string;
  /** Open another backend on the same root (a restart of the process). */
  reopen(extra?: Partial<OverlayBackendOptions>): Promise<OverlayBackend>;
}

/**
 * Stop every runc container whose state lives under `dir` (a store's run directory there holds
 * `runc/<id>/state.json`): a started overlay workshop is a detached container, which outlives its
 * backend object and the test that made it unless someone deletes it.
 */
export async function stopContainersUnder(dir: string, depth = 4): Promise<void> {
  const walk = async (d: string, left: number): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = join(d, e.name);
      if (e.name === 'runc') {
        for (const id of await readdir(p).catch(() => [] as string[])) {
          await new Promise<void>((r) => execFile('runc', ['--root', p, 'delete', '--force', id], () => r()));
        }
      } else if (left > 0 && e.name !== 'root' && e.name !== 'blobs' && e.name !== 'merged') {
        await walk(p, left - 1);
      }
    }
  };
  await walk(dir, depth);
}

/** Stop the containers under `dir`, then unmount everything under it, deepest first. */
export async function releaseMounts(dir: string): Promise<void> {
  await stopContainersUnder(dir);
  for (const m of await mountsUnder(dir)) await unmount(m);
}

export async function overlayFixture(driver: 'overlayfs' | 'copy', extra: Partial<OverlayBackendOptions> = {}): Promise<OverlayFixture> {
  const dir = await mkdtemp(join(tmpdir(), `atelier-ovl-${driver}-`));
  const opts: OverlayBackendOptions = { root: join(dir, 'root'), runDir: join(dir, 'run'), driver, ...extra };
  const backend = await createOverlayBackend(opts);
  const owner = 'alice';
  const registered = new Set<string>();
  return {
    backend,
    owner,
    dir,
    reopen: (more = {}) => createOverlayBackend({ ...opts, ...more }),
    cleanup: async () => {
      // Containers first: a started workshop's container would run on after the test.
      await backend.stopAll().catch(() => undefined);
      for (const name of registered) await backend.removeBase(name).catch(() => undefined);
      await backend.close();
      await releaseMounts(dir);
      await rm(dir, { recursive: true, force: true });
    },
    // An unowned object: made through the port, then its meta loses the owner tag (an object some
    // other tool put in the store).
    plant: async (ref: ObjectRef, tags: Record<string, string> = {}) => {
      const tmp: ObjectRef = { space: 'workshops', name: `plant-${ref.name}`.slice(0, 60) };
      await backend.create({ target: tmp, source: { base: backend.defaultBase }, tags: { owner, op: 'plant', kind: 'workshop' } });
      if (ref.space === 'layers') await backend.copy({ source: tmp, target: ref, tags: { owner, op: 'plant', kind: 'sdk' } });
      else await backend.copy({ source: tmp, target: ref, tags: { owner, op: 'plant', kind: 'workshop' } });
      await backend.remove(tmp);
      const metaPath = join(opts.root, 'objects', ref.space, ref.name, 'meta.json');
      const meta = JSON.parse(await readFile(metaPath, 'utf8')) as { tags: Record<string, string> };
      meta.tags = { ...tags };
      await writeFile(metaPath, JSON.stringify(meta));
    },
    // A small tree of its own each time (its os-release says which), registered anew under `name`.
    registerBase: async (name: string) => {
      const tree = await mkdtemp(join(dir, 'base-'));
      await mkdir(join(tree, 'etc'));
      await writeFile(join(tree, 'etc/os-release'), `ID=${name}\nBUILD_ID=${randomBytes(4).toString('hex')}\n`);
      await backend.removeBase(name);
      await backend.addBase(name, tree);
      registered.add(name);
    },
  };
}

/**
 * runc, the OCI runtime a started overlay instance runs in: finding it, running a container from a
 * bundle (`bundle.ts`), reading whether it runs, stopping and deleting it, and sweeping what a
 * crash or a fake reboot left behind.
 *
 * One runc state directory per store, `<runDir>/runc` (`runc --root`), and one bundle per
 * container, `<runDir>/bundles/<id>`: both on the volatile run directory, so a reboot clears them
 * with the containers they described. A container's id is the instance's name (`containerId`);
 * its cgroup is `/atelier/<store tag>-<id>`, unique across stores on one host.
 *
 * **Status** is read the way runc's own `runc state` decides it (libcontainer's `runType`): the
 * init's pid from `state.json`, alive with the same start time (`/proc/<pid>/stat` field 22) and
 * not a zombie, else stopped; `created` while runc's `exec.fifo` is there. Reading it in-process
 * costs a fraction of a millisecond where `runc state` costs ~30 ms, and `inspect`/`list` ask for
 * every instance. A state whose bundle label is not this store's (a run directory copied from
 * elsewhere, as crash images are) is `foreign`: never signalled, only dropped.
 *
 * @example
 * ```ts
 * const found = await findRuntime();
 * if ('tools' in found) {
 *   const runc = new Runc(found.tools, layout.runDir);
 *   await runc.run('nav2', { rootfs: '/store/objects/workshops/nav2/merged', hostname: 'nav2' });
 *   await runc.status('nav2'); // 'running'
 *   await runc.stop('nav2');
 * }
 * ```
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, readdir, readlink, rename, rm, rmdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BackendError } from '../types.ts';
import { ociConfig, planMounts, writeBundle } from './bundle.ts';
import { DISK_FULL, exists, listDir, run, tail } from './fsutil.ts';

/** The host programs a container needs. */
export interface RuntimeTools {
  /** Absolute path of `runc`. */
  readonly runc: string;
  /** Absolute path of a statically linked `catatonit` (PID 1 of every container). */
  readonly init: string;
}

export type ContainerStatus = 'running' | 'created' | 'stopped' | 'absent';

/**
 * What a started overlay instance is isolated by, as `atelier show` reports it:
 * - `runc`: a container (its own mount, pid, uts, ipc and cgroup namespaces; the host's network);
 *   hooks and `spawn` run inside it.
 * - `chroot`: only mounted; hooks run under `chroot` in the host's namespaces (root without runc or
 *   catatonit, or `runtime: 'none'`); `spawn` is `UNAVAILABLE`.
 * - `host`: only mounted; hooks run as this (unprivileged) user on the host with `ATELIER_ROOTFS`
 *   at the root's host path; `spawn` is `UNAVAILABLE`.
 * A root without `/bin/sh` runs its hooks on the host whatever the isolation (`exec.ts`).
 */
export type Isolation = 'runc' | 'chroot' | 'host';

/** How long `stop` waits for the init to end after SIGTERM before forcing (SIGKILL, delete). */
export const STOP_GRACE_MS = 3000;

const SEARCH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
const INIT_CANDIDATES = ['/usr/bin/catatonit', '/usr/libexec/catatonit/catatonit', '/usr/libexec/podman/catatonit', '/usr/local/bin/catatonit'];

/** Whether an ELF file has no program interpreter (PT_INTERP): it runs in any root. */
async function isStaticElf(path: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'r');
    const head = Buffer.alloc(64);
    await fh.read(head, 0, 64, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2 || head[5] !== 1) return false; // ELF64, little-endian
    const phoff = Number(head.readBigUInt64LE(32));
    const phentsize = head.readUInt16LE(54);
    const phnum = head.readUInt16LE(56);
    const ph = Buffer.alloc(phentsize * phnum);
    await fh.read(ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3) return false; // PT_INTERP
    return true;
  } catch {
    return false;
  } finally {
    await fh?.close();
  }
}

/**
 * Find runc and a static catatonit for this process: `{ tools }`, or `{ reason }` saying what is
 * missing (not root, no runc, no static catatonit). Containers need root: there is no rootless mode.
 */
export async function findRuntime(): Promise<{ tools: RuntimeTools } | { reason: string }> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return { reason: 'containers need root (runc is run without a user namespace)' };
  const dirs = [...new Set([...(process.env.PATH ?? '').split(':').filter((d) => d.startsWith('/')), ...SEARCH])];
  let runc: string | undefined;
  for (const d of dirs) if (!runc && (await exists(join(d, 'runc')))) runc = join(d, 'runc');
  if (!runc) return { reason: 'runc is not installed (Debian: apt-get install runc)' };
  let init: string | undefined;
  for (const c of INIT_CANDIDATES) if (!init && (await isStaticElf(c))) init = c;
  if (!init) return { reason: 'no statically linked catatonit (Debian: apt-get install catatonit)' };
  return { tools: { runc, init } };
}

/** The runc id of an instance: its name, unless the name holds a character runc refuses (`@`). */
export function containerId(name: string): string {
  if (/^[\w.-]+$/.test(name)) return name;
  return `${name.replace(/[^\w.-]/g, '_')}-${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Runc {
  /** `runc --root`: runc's state for this store's containers. */
  readonly stateRoot: string;
  readonly bundles: string;
  /** Distinguishes this store's cgroups from other stores' on the same host. */
  readonly tag: string;

  constructor(
    readonly tools: RuntimeTools,
    runDir: string,
  ) {
    this.stateRoot = join(runDir, 'runc');
    this.bundles = join(runDir, 'bundles');
    this.tag = createHash('sha256').update(this.stateRoot).digest('hex').slice(0, 12);
  }

  bundleOf(id: string): string {
    return join(this.bundles, id);
  }

  cgroupOf(id: string): string {
    return `/atelier/${this.tag}-${id}`;
  }

  private runc(args: readonly string[]) {
    return run(this.tools.runc, ['--root', this.stateRoot, ...args], { allowFailure: true });
  }

  private async readState(id: string): Promise<{ pid: number; start: string; bundle: string | undefined } | null> {
    let text: string;
    try {
      text = await readFile(join(this.stateRoot, id, 'state.json'), 'utf8');
    } catch {
      return null;
    }
    try {
      const s = JSON.parse(text) as { init_process_pid?: number; init_process_start?: number | string; config?: { labels?: string[] } };
      const bundle = s.config?.labels?.find((l) => l.startsWith('bundle='))?.slice('bundle='.length);
      return { pid: Number(s.init_process_pid ?? 0), start: String(s.init_process_start ?? ''), bundle };
    } catch {
      return { pid: 0, start: '', bundle: undefined }; // torn by a crash mid-write: runc calls it stopped too
    }
  }

  /** runc's `runType`, in-process (see the header); `foreign` for a state that is not this store's. */
  private async statusOf(id: string): Promise<ContainerStatus | 'foreign'> {
    const st = await this.readState(id);
    if (!st) return (await exists(join(this.stateRoot, id))) ? 'stopped' : 'absent';
    if (st.bundle !== undefined && st.bundle !== this.bundleOf(id)) return 'foreign';
    if (!st.pid) return 'stopped';
    let stat: string;
    try {
      stat = await readFile(`/proc/${st.pid}/stat`, 'utf8');
    } catch {
      return 'stopped';
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[19] !== st.start || fields[0] === 'Z' || fields[0] === 'X') return 'stopped';
    if (await exists(join(this.stateRoot, id, 'exec.fifo'))) return 'created';
    return 'running';
  }

  /** Whether `name`'s container runs (`absent`: there is none). */
  async status(name: string): Promise<ContainerStatus> {
    const s = await this.statusOf(containerId(name));
    return s === 'foreign' ? 'absent' : s;
  }

  /**
   * Run `name`'s container detached on `rootfs` (mounted by the caller), clearing a leftover of the
   * same id first. Fails `INVALID` for a root without `/dev`, `NO_SPACE` when the run directory's
   * disk is full, `INTERNAL` with runc's message otherwise; a failed start leaves no container.
   */
  async run(name: string, input: { rootfs: string; hostname: string }): Promise<void> {
    const id = containerId(name);
    if ((await this.statusOf(id)) !== 'absent') await this.remove(id);
    const bundle = this.bundleOf(id);
    await rm(bundle, { recursive: true, force: true });
    const plan = await planMounts(input.rootfs, this.tools.init);
    await writeBundle(bundle, ociConfig({ ...input, plan, cgroupsPath: this.cgroupOf(id), annotations: { 'org.atelier.instance': name } }));
    // runc's errors go to a file: a pipe would be inherited by the init and never reach EOF.
    const errPath = join(bundle, 'runc.err');
    const err = await open(errPath, 'w');
    let code: number;
    try {
      code = await new Promise<number>((resolve, reject) => {
        const child = spawn(this.tools.runc, ['--root', this.stateRoot, 'run', '--detach', '--bundle', bundle, id], { stdio: ['ignore', 'ignore', err.fd] });
        child.on('error', (e) => reject(new BackendError('UNAVAILABLE', `cannot run ${this.tools.runc}: ${e.message}`)));
        child.on('close', (c, sig) => resolve(c ?? 128 + (sig ? 9 : 0)));
      });
    } finally {
      await err.close();
    }
    if (code === 0) return;
    const msg = await readFile(errPath, 'utf8').catch(() => '');
    await this.remove(id).catch(() => undefined);
    const kind = DISK_FULL.test(msg) ? 'NO_SPACE' : 'INTERNAL';
    throw new BackendError(kind, `runc could not start ${name}'s container: ${tail(msg, 1000)}`, { id, exitCode: code });
  }

  /**
   * Stop and delete `name`'s container: SIGTERM to its init, up to `graceMs` for it to end, then
   * `runc delete --force` (SIGKILL). When the init ends the kernel kills every other process of the
   * container's pid namespace. Absent: nothing to do.
   */
  stop(name: string, graceMs = STOP_GRACE_MS): Promise<void> {
    return this.remove(containerId(name), graceMs);
  }

  private async remove(id: string, graceMs = STOP_GRACE_MS): Promise<void> {
    const status = await this.statusOf(id);
    if (status === 'foreign') {
      // Copied from another store's run directory: its pid is not ours to signal.
      await rm(join(this.stateRoot, id), { recursive: true, force: true });
    } else if (status !== 'absent') {
      if (status === 'running') {
        await this.runc(['kill', id, 'TERM']);
        for (let waited = 0, pause = 5; waited < graceMs && (await this.statusOf(id)) === 'running'; waited += pause, pause = Math.min(pause * 2, 50)) await sleep(pause);
      }
      const r = await this.runc(['delete', '--force', id]);
      // A state directory without its state.json (runc died creating it) is not runc's to delete.
      if (r.code !== 0 && !(await this.readState(id))) await rm(join(this.stateRoot, id), { recursive: true, force: true });
      if (r.code !== 0 && (await this.statusOf(id)) !== 'absent') {
        throw new BackendError('BUSY', `runc could not delete container ${id}: ${tail(r.stderr, 1000)}`, { id });
      }
    }
    await rm(this.bundleOf(id), { recursive: true, force: true });
  }

  /** Ids with a runc state in this store. */
  async ids(): Promise<string[]> {
    return listDir(this.stateRoot);
  }

  /**
   * Start-up sweep: delete every container, bundle and cgroup of this store whose id `keep` does
   * not accept. Cgroups outlive a wiped run directory (a reboot that was not one, as tests and the
   * simulation make): their processes are killed. Returns the ids removed.
   */
  async sweep(keep: (id: string) => boolean): Promise<string[]> {
    const removed = new Set<string>();
    for (const id of await this.ids()) {
      if (keep(id)) continue;
      await this.remove(id, 0);
      removed.add(id);
    }
    for (const id of await listDir(this.bundles)) {
      if (!keep(id)) await rm(this.bundleOf(id), { recursive: true, force: true });
    }
    for (const dir of await cgroupParents()) {
      for (const leaf of await listDir(dir)) {
        if (!leaf.startsWith(`${this.tag}-`) || keep(leaf.slice(this.tag.length + 1))) continue;
        await killCgroup(join(dir, leaf));
        removed.add(leaf.slice(this.tag.length + 1));
      }
    }
    return [...removed];
  }
}

/**
 * Host-wide: which runc state directory each store tag stands for (a symlink per tag), so that a
 * store can tell the containers of a store whose run directory was deleted (its containers can no
 * longer be reached by anyone) from those of a store that merely is not open.
 */
export const TAG_REGISTRY = '/run/atelier/runc-roots';

/**
 * Record this store's tag (`TAG_REGISTRY`); called before it makes any container. Best effort: a
 * host without a writable `/run` only loses the sweep of abandoned stores.
 */
export async function registerTag(runc: Runc): Promise<void> {
  const link = join(TAG_REGISTRY, runc.tag);
  try {
    if ((await readlink(link).catch(() => null)) === runc.stateRoot) return;
    await mkdir(TAG_REGISTRY, { recursive: true, mode: 0o700 });
    const tmp = `${link}.${process.pid}`;
    await rm(tmp, { force: true });
    await symlink(runc.stateRoot, tmp);
    await rename(tmp, link);
  } catch {
    /* see above */
  }
}

/**
 * Kill the containers of abandoned stores: cgroups of a tag whose registered state directory no
 * longer exists (deleted with its store, as tests' temporary stores are) or that was never
 * registered. Returns the cgroups removed.
 */
export async function sweepAbandoned(own: Runc): Promise<string[]> {
  const removed: string[] = [];
  const alive = new Map<string, boolean>([[own.tag, true]]);
  for (const dir of await cgroupParents()) {
    for (const leaf of await listDir(dir)) {
      const m = /^([0-9a-f]{12})-(.+)$/.exec(leaf);
      if (!m) continue;
      const tag = m[1]!;
      if (!alive.has(tag)) {
        const root = await readlink(join(TAG_REGISTRY, tag)).catch(() => null);
        alive.set(tag, root !== null && (await exists(root)));
        if (root !== null && !alive.get(tag)) await rm(join(TAG_REGISTRY, tag), { force: true });
      }
      if (alive.get(tag)) continue;
      await killCgroup(join(dir, leaf));
      removed.push(leaf);
    }
  }
  return removed;
}

/** `/sys/fs/cgroup[/<controller>]/atelier`: where containers' cgroups are, v1, hybrid or v2. */
async function cgroupParents(): Promise<string[]> {
  const out: string[] = [];
  if (await exists('/sys/fs/cgroup/atelier')) out.push('/sys/fs/cgroup/atelier');
  for (const c of await listDir('/sys/fs/cgroup')) {
    const p = join('/sys/fs/cgroup', c, 'atelier');
    if (await exists(p)) out.push(p);
  }
  return out;
}

/** SIGKILL every process of a leaf cgroup and remove it (best effort: a stuck process stays). */
async function killCgroup(dir: string): Promise<void> {
  for (let round = 0; round < 20; round++) {
    const pids = (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map(Number);
    if (!pids.length) break;
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone already */
      }
    }
    await sleep(10 * (round + 1));
  }
  // Child cgroups first (runc makes none, but a process inside may have).
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await rmdir(join(dir, e.name)).catch(() => undefined);
  await rmdir(dir).catch(() => undefined);
}

/**
 * The OCI bundle a started overlay instance runs from: `config.json` for runc, written per container
 * under the run directory (a tmpfs, so a reboot clears it) with `root.path` at the mounted root.
 *
 * What the container gets, and why:
 * - **Namespaces**: mount, pid, uts (hostname = the workshop's name), ipc and cgroup. **No network
 *   namespace**: a workshop shares the host's network (interfaces, ports, DNS), the way a developer's
 *   tools expect (`apt-get`, `pip`, a dev server on localhost) without bridges or NAT to set up.
 *   **No user namespace**: as root the container's root is the host's root, less capabilities.
 * - **Capabilities**: Podman's default set (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL,
 *   NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT): enough to install packages
 *   and run builds, not to mount, load modules or change the host's network.
 * - **Mounts**: `/proc`; a `/dev` tmpfs (runc adds null, zero, full, random, urandom, tty and
 *   `ptmx`) with `/dev/pts` (devpts `newinstance`, `ptmxmode=0666`) and `/dev/shm`; `/sys`
 *   read-only; `/tmp` and `/run` as tmpfs; the host's `/etc/resolv.conf` and `/etc/hosts` bound
 *   read-only, so package managers resolve names as the host does.
 * - **PID 1**: the host's static `catatonit`, bound read-only at `/run/.atelier/init` and run as
 *   `catatonit -P` (pause): it only reaps; processes come in with `runc exec`.
 *
 * **Nothing is ever created in the workshop's root.** runc creates a missing mount destination
 * inside the rootfs, which on overlayfs would land in the instance's upper layer and then in every
 * snapshot of it. So every destination is checked first (`planMounts`): what we bind goes under a
 * tmpfs we mount first (`/run`, or `/dev` for a root without `/run`), and a mount whose destination
 * the root lacks is left out (a base without `/sys` gets no `/sys`; without `/etc/resolv.conf`, no
 * DNS configuration). Only `/dev` is required. The bases atelier builds or imports have them all
 * (`bases.ts`).
 *
 * @example
 * ```ts
 * const plan = await planMounts(rootfs, '/usr/bin/catatonit');
 * await writeBundle(dir, ociConfig({ rootfs, hostname: 'nav2', plan, cgroupsPath: '/atelier/ab12-nav2' }));
 * ```
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BackendError } from '../types.ts';
import { resolveInRoot } from './inroot.ts';

/** One entry of the OCI `mounts` array. */
export interface OciMount {
  readonly destination: string;
  readonly type: string;
  readonly source: string;
  readonly options: readonly string[];
}

/** What a container's mounts and init path came to for one root (`planMounts`). */
export interface MountPlan {
  readonly mounts: readonly OciMount[];
  /** Where PID 1's binary is inside the container. */
  readonly init: string;
  /** Destinations left out because the root lacks them (for messages and tests). */
  readonly skipped: readonly string[];
}

/** Podman's default capability set (containers.conf `default_capabilities`). */
export const CAPABILITIES = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT'].map((c) => `CAP_${c}`);

/** The environment of the init, which `runc exec` processes start from (their `--env` is added). */
export const BASE_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', 'LANG=C.UTF-8'];

const RO_BIND = ['bind', 'ro', 'nosuid', 'nodev'];

/** The host files bound read-only into every container (when the root has a place for them). */
export const HOST_FILES = ['/etc/resolv.conf', '/etc/hosts'];

/**
 * Decide the mounts for `rootfs`, checking each destination inside the root (symlinks followed
 * within it) so runc never has to create one there. `init` is the host path of the static init.
 * A root without `/dev` cannot run: `INVALID`.
 */
export async function planMounts(rootfs: string, init: string): Promise<MountPlan> {
  const mounts: OciMount[] = [];
  const skipped: string[] = [];
  /** Destinations of tmpfs mounts made so far: a missing path below one is created there, harmlessly. */
  const tmpfs: string[] = [];
  const under = (p: string) => tmpfs.some((t) => p === t || p.startsWith(`${t}/`));

  const add = async (dest: string, kind: 'dir' | 'file', m: Omit<OciMount, 'destination'>): Promise<boolean> => {
    const at = await resolveInRoot(rootfs, dest);
    const ok = at.type === kind || (at.type === null && under(at.path));
    if (!ok) {
      skipped.push(dest);
      return false;
    }
    mounts.push({ destination: at.path, ...m });
    if (m.type === 'tmpfs') tmpfs.push(at.path);
    return true;
  };

  await add('/proc', 'dir', { type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] });
  if (!(await add('/dev', 'dir', { type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] }))) {
    throw new BackendError('INVALID', `the instance's root has no /dev directory: it cannot run as a container (add /dev to its base)`, { rootfs });
  }
  await add('/dev/pts', 'dir', { type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] });
  await add('/dev/shm', 'dir', { type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] });
  await add('/sys', 'dir', { type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] });
  await add('/tmp', 'dir', { type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] });
  const run = await add('/run', 'dir', { type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=755'] });
  // The init lives on a tmpfs we mounted: /run normally, /dev for a root without /run.
  const initDir = run ? mounts[mounts.length - 1]!.destination : '/dev';
  const initPath = `${initDir}/.atelier/init`.replace(/^\/\//, '/');
  mounts.push({ destination: initPath, type: 'bind', source: init, options: RO_BIND });
  for (const f of HOST_FILES) {
    if (!(await stat(f).then((st) => st.isFile(), () => false))) skipped.push(f); // a host without it (rare): nothing to bind
    else await add(f, 'file', { type: 'bind', source: f, options: [...RO_BIND, 'noexec'] });
  }
  return { mounts, init: initPath, skipped };
}

/** What `ociConfig` needs. */
export interface BundleInput {
  readonly rootfs: string;
  readonly hostname: string;
  readonly plan: MountPlan;
  /** The container's cgroup, unique per store and container (`runtime.ts`). */
  readonly cgroupsPath: string;
  /** Recorded as annotations, for people reading `runc list` or the state directory. */
  readonly annotations?: Readonly<Record<string, string>>;
}

/** The OCI runtime spec (1.0.2) for one container: see this file's header for what is in it. */
export function ociConfig(input: BundleInput): Record<string, unknown> {
  const caps = CAPABILITIES;
  return {
    ociVersion: '1.0.2',
    root: { path: input.rootfs, readonly: false },
    hostname: input.hostname,
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: [input.plan.init, '-P'],
      env: BASE_ENV,
      cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      // setuid programs (sudo, su) keep working inside, as in Podman's default.
      noNewPrivileges: false,
    },
    mounts: input.plan.mounts,
    annotations: { ...input.annotations },
    linux: {
      // No "network" and no "user": the host's network and ids (see the header).
      namespaces: ['pid', 'ipc', 'uts', 'mount', 'cgroup'].map((type) => ({ type })),
      cgroupsPath: input.cgroupsPath,
      // Deny every device but the ones runc always allows (null, zero, full, tty, urandom, random, ptys).
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      maskedPaths: ['/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/fs/selinux', '/sys/dev/block'],
      readonlyPaths: ['/proc/asound', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** Write `config.json` into a fresh bundle directory. */
export async function writeBundle(dir: string, config: Record<string, unknown>): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
}

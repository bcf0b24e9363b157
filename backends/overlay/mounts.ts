/**
 * Kernel overlayfs mounts: building the option string, mounting, unmounting, finding mounts.
 *
 * Lower directories are passed as blob ids relative to `<root>/blobs`, with `mount` run from that
 * directory (containerd's trick), so a lowerdir costs 17 bytes of the one page the kernel accepts
 * for mount data instead of a full path. Chains whose options would not fit are flattened first
 * (`flatten.ts`). `redirect_dir`, `index` and `metacopy` are forced off: with them a layer's files
 * may live at other paths or depend on xattrs that a hardlink merge or an offline copy would miss.
 *
 * @example
 * ```ts
 * await mountOverlay(layout, { target: '/root/objects/workshops/w/merged', lowers: ['b2', 'b1'], upper: 'u1' });
 * await unmount('/root/objects/workshops/w/merged');
 * ```
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { BackendError } from '../types.ts';
import { EMPTY_BLOB } from './layout.ts';
import type { Layout } from './layout.ts';
import { DISK_FULL, removeTree, run, tail } from './fsutil.ts';

/** Mount data must fit in one page; keep a margin for the fixed options the kernel appends. */
export const MOUNT_DATA_LIMIT = 3800;

const FIXED_OPTIONS = 'redirect_dir=off,index=off,metacopy=off';

export interface OverlaySpec {
  readonly target: string;
  /** Blob ids, TOP FIRST (overlayfs order). */
  readonly lowers: readonly string[];
  /** A writable upper blob; its work directory is `work/<upper>`. Absent: a read-only view. */
  readonly upper?: string;
}

/** The `-o` string for a spec, with paths relative to `<root>/blobs`. */
export function overlayOptions(spec: Omit<OverlaySpec, 'target'>): string {
  // overlayfs refuses a single lower without an upper; an empty second lower changes nothing.
  const lowers = !spec.upper && spec.lowers.length < 2 ? [...spec.lowers, EMPTY_BLOB] : spec.lowers;
  const parts = [`lowerdir=${lowers.join(':')}`];
  if (spec.upper) parts.push(`upperdir=${spec.upper}`, `workdir=../work/${spec.upper}`);
  parts.push(FIXED_OPTIONS);
  return parts.join(',');
}

/** Whether a chain (top first) plus an upper can be mounted without flattening. */
export function fitsOneMount(lowers: readonly string[], upper?: string): boolean {
  return lowers.length < 500 && overlayOptions({ lowers, upper: upper ?? 'x'.repeat(16) }).length <= MOUNT_DATA_LIMIT;
}

export async function mountOverlay(layout: Layout, spec: OverlaySpec): Promise<void> {
  const opts = overlayOptions(spec);
  const r = await run('mount', ['-t', 'overlay', 'overlay', '-o', opts, spec.target], { cwd: layout.blobs, allowFailure: true });
  if (r.code !== 0) {
    // The kernel creates the work directory's `work/` at mount time: on a full disk that fails.
    const code = DISK_FULL.test(r.stderr) ? 'NO_SPACE' : 'INTERNAL';
    throw new BackendError(code, `overlay mount on ${spec.target} failed: ${tail(r.stderr)}`, { options: opts });
  }
}

/** Unmount; a path that is not mounted is fine. A mount still in use is `BUSY`. */
export async function unmount(target: string): Promise<void> {
  if (!(await isMounted(target))) return;
  const r = await run('umount', [target], { allowFailure: true });
  if (r.code !== 0 && (await isMounted(target))) {
    throw new BackendError('BUSY', `cannot unmount ${target}: ${tail(r.stderr)}`, { target });
  }
}

/** Decode mountinfo's octal escapes (`\040` for a space). */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points of this process's namespace, in mount order. */
export async function mountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => unescape(line.split(' ')[4] ?? ''));
}

export async function isMounted(path: string): Promise<boolean> {
  return (await mountPoints()).includes(path);
}

/** Mount points at or under `prefix`, deepest first (the order to unmount them in). */
export async function mountsUnder(prefix: string): Promise<string[]> {
  const p = prefix.endsWith('/') ? prefix : `${prefix}/`;
  return (await mountPoints()).filter((m) => m.startsWith(p)).reverse();
}

/**
 * Can this process mount overlayfs here? Tries a real mount of the empty blob (two lowers) on a
 * temp directory: the only reliable test (root in a container without CAP_SYS_ADMIN cannot).
 */
export async function canMountOverlay(layout: Layout): Promise<boolean> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return false;
  const dir = await layout.tempDir('probe');
  const target = join(dir, 'm');
  try {
    await mkdir(target);
    await mkdir(join(dir, 'l'));
    // Two distinct lowers: overlayfs rejects the same directory twice.
    await mountOverlay(layout, { target, lowers: [EMPTY_BLOB, relative(layout.blobs, join(dir, 'l'))] });
    await unmount(target);
    return true;
  } catch {
    return false;
  } finally {
    await removeTree(dir).catch(() => {});
  }
}

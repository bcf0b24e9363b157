/**
 * Shared by the SDK cache's tests on real backends (`test/cache/*.test.ts`): an engine on a fresh
 * overlay store (either driver), a base tree with identity files (a filled `/etc/machine-id`, SSH
 * host keys made by `ssh-keygen`), inline specs, progress collectors, and two views of a workshop's
 * root filesystem to compare: walked from the host (`OverlayBackend.mountView`) and listed from
 * inside the running workshop (`Backend.exec`).
 *
 * Containers must run here (root, runc, a static catatonit, busybox-static, ssh-keygen): without
 * them `overlayMissing` registers a skip with the reason elsewhere, and a failure in CI.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Test } from 'uvu';
import type { Backend, ObjectRef } from '../../backends/types.ts';
import type { OverlayBackend } from '../../backends/overlay/index.ts';
import { buildDefaultBase, busyboxStaticInstalled } from '../../backends/overlay/bases.ts';
import { findRuntime } from '../../backends/overlay/runtime.ts';
import { openEngineImpl, type EngineImpl } from '../../engine/engine.ts';
import type { Progress } from '../../engine/api.ts';
import { specFromInline } from '../../engine/workshop-file.ts';
import type { WorkshopSpec } from '../../machines/index.ts';
import { overlayFixture, type OverlayFixture } from '../backends/overlay-env.ts';

export type Driver = 'overlayfs' | 'copy';
export const OWNER = 'alice';

/** What the overlay tests here need, or why they cannot run (null: everything is there). */
export async function overlayBlocker(): Promise<string | null> {
  const rt = await findRuntime();
  if ('reason' in rt) return `${rt.reason} (run as root with runc and catatonit installed: apt-get install runc catatonit)`;
  if (!(await busyboxStaticInstalled())) return 'busybox-static is not installed (apt-get install busybox-static): hooks need a shell in the root';
  try {
    execFileSync('ssh-keygen', ['-?'], { stdio: 'ignore' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'ssh-keygen is not installed (apt-get install openssh-client)';
  }
  return null;
}

/** Register the "cannot run here" outcome: a failing test in CI, a skip with the reason elsewhere. True: register nothing else. */
export async function overlayMissing(test: Test, what: string): Promise<boolean> {
  const why = await overlayBlocker();
  if (why === null) return false;
  if (process.env.CI) {
    test(`${what}: must run in CI`, () => {
      throw new Error(why);
    });
  } else {
    console.log(`SKIP ${what}: ${why}`);
    test.skip(`${what} (${why})`, () => undefined);
  }
  return true;
}

/** An engine on a fresh overlay store (containers under runc), its state next to the store. */
export interface OverlayWorld {
  readonly f: OverlayFixture;
  readonly backend: OverlayBackend;
  readonly stateDir: string;
  engine: EngineImpl;
  cleanup(): Promise<void>;
}

export async function overlayWorld(driver: Driver, opts: { sdkCache?: boolean } = {}): Promise<OverlayWorld> {
  const f = await overlayFixture(driver, { runtime: 'runc' });
  const stateDir = join(f.dir, 'state');
  const open = () => openEngineImpl({ stateDir, runDir: join(f.dir, 'engine-run'), backend: f.backend, owner: OWNER, ...(opts.sdkCache === false ? { sdkCache: false } : {}) });
  const w: OverlayWorld = {
    f,
    backend: f.backend,
    stateDir,
    engine: await open(),
    async cleanup() {
      await w.engine.close().catch(() => undefined);
      await f.cleanup();
    },
  };
  return w;
}

/** The machine-id and SSH host key types the identity base carries. */
export const BASE_MACHINE_ID = '0123456789abcdef0123456789abcdef\n';
export const KEY_TYPES = ['ecdsa', 'ed25519'] as const;

/**
 * A base tree in `dir`: the overlay's default (busybox and its applets), plus identity files (a
 * filled machine-id, SSH host keys) and what the hooks of `SDKS` delete, change or replace.
 */
export async function makeBaseTree(dir: string): Promise<void> {
  await buildDefaultBase(dir, true);
  await writeFile(join(dir, 'etc/machine-id'), BASE_MACHINE_ID, { mode: 0o444 });
  await mkdir(join(dir, 'etc/ssh'), { mode: 0o755 });
  for (const t of KEY_TYPES) execFileSync('ssh-keygen', ['-q', '-t', t, '-N', '', '-C', 'root@base', '-f', join(dir, `etc/ssh/ssh_host_${t}_key`)]);
  await writeFile(join(dir, 'etc/delete-me'), 'a base file the first hook deletes\n');
  await writeFile(join(dir, 'etc/append-me'), 'base line\n');
  await writeFile(join(dir, 'etc/chmod-me'), 'mode changed by a hook\n', { mode: 0o644 });
  await mkdir(join(dir, 'srv/gone/deep'), { recursive: true });
  await writeFile(join(dir, 'srv/gone/deep/file'), 'a base directory the first hook deletes\n');
  await mkdir(join(dir, 'srv/opaque'), { recursive: true });
  await writeFile(join(dir, 'srv/opaque/old'), 'replaced by a new directory of the same name\n');
  await writeFile(join(dir, 'srv/becomes-dir'), 'a file a hook replaces by a directory\n');
  await mkdir(join(dir, 'srv/becomes-file'));
  await writeFile(join(dir, 'srv/becomes-file/x'), 'a directory a hook replaces by a file\n');
}

/** `$R`: the root as the hook sees it (`/` in a container). */
const R = 'R="${ATELIER_ROOTFS%/}"';

/**
 * Three SDKs whose hooks write files, directories, symlinks, hard links, a FIFO, modes and owners,
 * and delete or replace what the base or an earlier layer has (whiteouts, opaque directories,
 * copy-ups of metadata only). Each appends its name to `/var/log/hooks` (one line per hook run).
 */
export const SDKS: ReadonlyArray<{ name: string; 'setup-base': string }> = [
  {
    name: 'alpha',
    'setup-base': [
      R,
      'mkdir -p "$R/var/log"',
      'echo alpha >> "$R/var/log/hooks"',
      'mkdir -p "$R/opt/alpha/bin" "$R/opt/alpha/share/doc" "$R/usr/local/bin"',
      "printf '#!/bin/sh\\necho alpha tool\\n' > \"$R/opt/alpha/bin/tool\"",
      'chmod 0755 "$R/opt/alpha/bin/tool"',
      'seq 1 20000 > "$R/opt/alpha/share/numbers"',
      'echo "later deleted by beta" > "$R/opt/alpha/share/doomed"',
      'mkdir -p "$R/opt/alpha/replaced" && echo one > "$R/opt/alpha/replaced/a" && echo two > "$R/opt/alpha/replaced/b"',
      'mkdir -p "$R/opt/alpha/moving/sub" && echo m > "$R/opt/alpha/moving/sub/file"',
      'ln -s /opt/alpha/bin/tool "$R/usr/local/bin/alpha"',
      'ln -s ../share "$R/opt/alpha/bin/share-link"',
      'echo "owned by 1000" > "$R/opt/alpha/owned" && chown 1000:1001 "$R/opt/alpha/owned"',
      'echo suid > "$R/opt/alpha/suid" && chmod 4755 "$R/opt/alpha/suid"',
      ': > "$R/opt/alpha/empty"',
      'rm "$R/etc/delete-me"',
      'rm -r "$R/srv/gone"',
      'echo "alpha line" >> "$R/etc/append-me"',
      'chmod 0600 "$R/etc/chmod-me"',
      'chmod 0700 "$R/srv"',
    ].join('\n'),
  },
  {
    name: 'beta',
    'setup-base': [
      R,
      'echo beta >> "$R/var/log/hooks"',
      'mkdir -p "$R/opt/beta"',
      'rm "$R/opt/alpha/share/doomed"',
      'rm -r "$R/opt/alpha/replaced" && mkdir "$R/opt/alpha/replaced" && echo three > "$R/opt/alpha/replaced/c"',
      'rm -r "$R/srv/opaque" && mkdir "$R/srv/opaque" && echo new > "$R/srv/opaque/new"',
      'mv "$R/opt/alpha/moving" "$R/opt/beta/moved"',
      'ln "$R/opt/alpha/bin/tool" "$R/opt/beta/tool-hardlink"',
      'ln -s /nowhere/at/all "$R/opt/beta/dangling"',
      'mkfifo -m 0640 "$R/opt/beta/fifo"',
      'chmod 0750 "$R/opt/alpha/bin"',
      'chown 2000:2000 "$R/opt/alpha/share"',
      'echo "beta line" >> "$R/etc/append-me"',
      'rm "$R/srv/becomes-dir" && mkdir "$R/srv/becomes-dir" && echo inside > "$R/srv/becomes-dir/inside"',
      'rm -r "$R/srv/becomes-file" && echo "now a file" > "$R/srv/becomes-file"',
    ].join('\n'),
  },
  {
    name: 'gamma',
    'setup-base': [
      R,
      'echo gamma >> "$R/var/log/hooks"',
      'mkdir -p "$R/opt/gamma/sticky" "$R/opt/gamma/setgid"',
      'chmod 1777 "$R/opt/gamma/sticky" && chmod 2775 "$R/opt/gamma/setgid"',
      'echo "with spaces" > "$R/opt/gamma/a file with spaces"',
      'rm "$R/usr/local/bin/alpha" && echo "a symlink replaced by a file" > "$R/usr/local/bin/alpha"',
      'rm "$R/opt/beta/fifo"',
      'touch "$R/opt/alpha/empty"',
      'chmod 0644 "$R/opt/alpha/suid"',
      'dd if=/dev/zero of="$R/opt/gamma/zeros" bs=4096 count=64 2>/dev/null',
      'echo "gamma line" >> "$R/etc/append-me"',
    ].join('\n'),
  },
];

/** An inline spec (hashes chained as a workshop file's), on `base`. */
export function inlineSpec(name: string, base: string, sdks: ReadonlyArray<{ name: string; 'setup-base': string }> = SDKS): WorkshopSpec {
  return specFromInline({ name, base, project: `/srv/projects/${name}`, sdks }, { defaultBase: base });
}

/** Collects a command's progress events. */
export class ProgressLog {
  readonly events: Progress[] = [];
  readonly on = (p: Progress): void => void this.events.push(p);
  /** Labels of the steps that started (`setup-base alpha`, `create from gamma`, ...). */
  started(workshop?: string): string[] {
    return this.events.filter((e) => e.status === 'started' && (workshop === undefined || e.workshop === workshop)).map((e) => e.label);
  }
  hooks(workshop?: string): string[] {
    return this.started(workshop).filter((l) => l.startsWith('setup-base '));
  }
}

/** Files that are a workshop's identity: compared by type, mode and owner only, never by content. */
export function isIdentityPath(p: string): boolean {
  return p === '/etc/machine-id' || /^\/etc\/ssh\/ssh_host_[^/]+_key(\.pub)?$/.test(p);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Every entry of the root at host path `root`, as `/path` → a line of its type, mode, owner and
 * (files) link count, size and sha256 / (symlinks) target. Identity files keep type, mode and owner.
 * Directory sizes and times are left out (they say how, not what).
 */
export async function walkTree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (rel: string): Promise<void> => {
    const host = rel === '/' ? root : join(root, rel);
    const st = await lstat(host);
    const head = `${(st.mode & 0o7777).toString(8).padStart(4, '0')} ${st.uid}:${st.gid}`;
    let line: string;
    if (st.isDirectory()) line = `dir ${head}`;
    else if (st.isSymbolicLink()) line = `symlink ${head} -> ${await readlink(host)}`;
    else if (st.isFile()) line = isIdentityPath(rel) ? `file ${head}` : `file ${head} nlink=${st.nlink} ${st.size} ${sha256(await readFile(host))}`;
    else if (st.isFIFO()) line = `fifo ${head}`;
    else if (st.isCharacterDevice() || st.isBlockDevice()) line = `${st.isCharacterDevice() ? 'chr' : 'blk'} ${head} ${st.rdev}`;
    else line = `other ${head}`;
    out.set(rel, line);
    if (st.isDirectory()) for (const name of (await readdir(host)).sort()) await visit(rel === '/' ? `/${name}` : `${rel}/${name}`);
  };
  await visit('/');
  return out;
}

/** `walkTree` of an object's root as the overlay backend exposes it (`mountView`). */
export async function hostTree(backend: OverlayBackend, ref: ObjectRef): Promise<Map<string, string>> {
  const view = await backend.mountView(ref);
  try {
    return await walkTree(view.path);
  } finally {
    await view.release();
  }
}

/**
 * The root as the running workshop sees it, listed from inside (busybox `find -xdev`, `stat`,
 * `sha256sum`): the runtime's mounts (`/proc /sys /dev /run /tmp`) pruned, the host's bound
 * `/etc/hosts` and `/etc/resolv.conf` left out. Path → line, identity files without content.
 */
export async function insideTree(backend: Backend, ref: ObjectRef): Promise<Map<string, string>> {
  const script = [
    'find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \\) -prune -o -print | sort | while IFS= read -r p; do',
    '  case "$p" in /etc/hosts|/etc/resolv.conf) continue;; esac',
    '  if [ -h "$p" ]; then echo "$p|$(stat -c \'%F|%a|%u|%g\' "$p")|$(readlink "$p")"',
    '  elif [ -f "$p" ]; then echo "$p|$(stat -c \'%F|%a|%u|%g|%h|%s\' "$p")|$(sha256sum < "$p" | cut -d" " -f1)"',
    '  else echo "$p|$(stat -c \'%F|%a|%u|%g\' "$p")"; fi',
    'done',
  ].join('\n');
  const r = await backend.exec(ref, { script });
  const out = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    if (!line) continue;
    const [p, ...rest] = line.split('|');
    if (rest[0] === 'regular empty file') rest[0] = 'regular file'; // busybox's %F says so; the size says it too
    out.set(p!, isIdentityPath(p!) ? rest.slice(0, 4).join('|') : rest.join('|'));
  }
  return out;
}

/** The differences between two trees, as readable lines (empty: the same). */
export function treeDiff(a: Map<string, string>, b: Map<string, string>, names: [string, string]): string[] {
  const out: string[] = [];
  for (const p of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(p);
    const y = b.get(p);
    if (x !== y) out.push(`${p}: ${names[0]}=${x ?? '(absent)'} ${names[1]}=${y ?? '(absent)'}`);
  }
  return out;
}

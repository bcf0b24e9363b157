/**
 * `addBase(name, path)` on LXD: a root filesystem (a directory, or a tarball of one) imported as an
 * image of the default project with the alias `name`. Atelier's projects are made with
 * `features.images=false`, so they see the default project's images and aliases, where
 * `scripts/lxd-setup.sh` puts `busybox` too.
 *
 * - **Format**: a split image (`POST /1.0/images`, multipart `metadata` then `rootfs`), not a
 *   unified tarball: a unified one holds the root under `rootfs/`, so every member of a given
 *   tarball would have to be renamed (long names, pax headers, hard links: GNU tar cannot rename an
 *   archive's members without extracting them, and extracting needs root for device nodes and
 *   owners). The `rootfs` part is the root's own tar stream, passed through unchanged
 *   (`rootfs-tar.ts` reads its headers on the way); a directory is tarred by GNU tar
 *   (`--numeric-owner`), a tarball decompressed as `tar` would (gzip in process; xz, zstd, bzip2
 *   by their tools).
 * - **metadata.yaml**: the server's architecture, `creation_date`, `properties` (`description`,
 *   `os`); once the root has been read, the image's properties get `os` and `release` from its
 *   `os-release`.
 * - **init**: LXD starts a container by running `/sbin/init`, and the container stops when that
 *   ends. A root without a usable one (Debian's minbase has no init at all) gets a small POSIX-sh
 *   `/sbin/init` added at the end of its `rootfs` part (`ATELIER_INIT`): it keeps the container up,
 *   reaps orphans, and ends on LXD's stop signal. The image's property `atelier.init` says
 *   `added` or `own`. A root that has neither an init nor `/bin/sh` is refused (`INVALID`): no hook
 *   could run in it either.
 * - **Errors**: a bad name `INVALID`; a missing path `NOT_FOUND`; an existing alias
 *   `ALREADY_EXISTS` (checked before anything is read, and again when the alias is made: the image
 *   is then deleted); something that is not a tar archive `INVALID`. Each import is an image of
 *   its own (its metadata names it and carries its date), even of a root imported before.
 *
 * @example
 * ```ts
 * await importBase(client, 'bookworm', '/var/cache/atelier/debian/bookworm-amd64-minbase-0123.tar');
 * ```
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { BackendError } from '../types.ts';
import type { LxdClient, LxdOperation } from './client.ts';
import { END_OF_ARCHIVE, TarWalk, fileEntry } from './rootfs-tar.ts';

/** Alias names: one safe word (the overlay backend's rule for base names, so a name works on both). */
const ALIAS_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$/;

/**
 * The `/sbin/init` a root without one gets. POSIX sh (dash, busybox ash): `wait` reaps every
 * child, so orphaned processes do not pile up as zombies; LXD's graceful stop sends SIGPWR.
 */
const ATELIER_INIT = `#!/bin/sh
# Added by atelier when this root was imported as an LXD image: it had no usable /sbin/init,
# which LXD runs as the container's first process (the container stops when it ends).
# It keeps the container up, reaps orphaned processes, and ends on LXD's stop signal (SIGPWR).
trap 'exit 0' PWR TERM INT HUP
command -v sleep >/dev/null 2>&1 || { echo 'atelier init: no sleep(1) in this root' >&2; exit 1; }
while :; do
  sleep 2147483647 &
  wait $!
done
`;

/** Import the root at `path` (directory or tarball) as an image aliased `name`. */
export async function importBase(client: LxdClient, name: string, path: string): Promise<void> {
  if (!ALIAS_RE.test(name) || name.includes('..')) {
    throw new BackendError('INVALID', `invalid base name ${JSON.stringify(name)}: use letters, digits, '.', '_', '@' and '-' (at most 63)`, { base: name });
  }
  const st = await stat(path).catch(() => null);
  if (!st) throw new BackendError('NOT_FOUND', `no root filesystem at ${path}`, { path });
  if (!st.isDirectory() && !st.isFile()) throw new BackendError('INVALID', `${path} is neither a directory nor a tarball`, { path });
  if (await aliasTarget(client, name)) throw new BackendError('ALREADY_EXISTS', `LXD already has an image alias "${name}" (\`atelier base list\`)`, { base: name });

  const server = await client.get<{ environment?: { architectures?: string[] } }>('/1.0');
  const architecture = server.environment?.architectures?.[0] ?? process.arch;
  const source = st.isDirectory() ? tarOfDirectory(path) : await tarOfFile(path);
  const walk = new TarWalk();
  const hash = createHash('sha256');
  const boundary = `atelier-${randomBytes(12).toString('hex')}`;
  const metadata = fileEntry(
    'metadata.yaml',
    `architecture: ${architecture}\ncreation_date: ${Math.floor(Date.now() / 1000)}\nproperties:\n  description: ${JSON.stringify(`atelier base ${name}`)}\n  os: linux\n`,
    0o644,
  );
  let initAdded = false;
  async function* body(): AsyncGenerator<Buffer> {
    yield part(boundary, 'metadata', 'metadata.tar', true);
    yield* hashed(hash, [metadata, END_OF_ARCHIVE]);
    yield part(boundary, 'rootfs', 'rootfs.tar', false);
    try {
      for await (const chunk of source.stream.pipe(walk)) yield* hashed(hash, [chunk as Buffer]);
    } catch (e) {
      await source.done; // the producer's failure (no such tool, tar's error) says more
      throw e instanceof BackendError && e.code === 'INVALID' ? new BackendError('INVALID', `${path}: ${e.message}`, { path }) : e;
    }
    await source.done;
    if (!walk.isExecutable('/sbin/init')) {
      if (!walk.isExecutable('/bin/sh')) throw new BackendError('INVALID', `${path} has neither /sbin/init nor /bin/sh: not a root filesystem atelier can run`, { path });
      initAdded = true;
      yield* hashed(hash, [fileEntry(`${walk.resolve('/sbin') ?? 'sbin'}/init`, ATELIER_INIT, 0o755)]);
    }
    yield* hashed(hash, [END_OF_ARCHIVE]);
    yield Buffer.from(`\r\n--${boundary}--\r\n`);
  }
  const stream = Readable.from(body());
  let op: LxdOperation;
  try {
    const env = await client.upload('/1.0/images', { 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'X-LXD-public': 'false' }, stream);
    op = env.operation ? await client.wait(env.operation) : { id: '', status: 'Success', status_code: 200, err: '', metadata: (env.metadata ?? null) as Record<string, unknown> | null };
  } finally {
    source.kill();
    stream.destroy();
  }
  const fingerprint = hash.digest('hex');
  const fresh = op.status === 'Success';
  if (!fresh && !/already exists/i.test(op.err)) throw new BackendError('INTERNAL', `LXD could not import ${path} as an image: ${op.err || op.status}`, { path, operation: op.id });

  const image = `/1.0/images/${fingerprint}`;
  const os = osRelease(walk.kept.get('etc/os-release') ?? walk.kept.get('usr/lib/os-release'));
  try {
    if (fresh) {
      const current = await client.get<{ properties?: Record<string, string>; public?: boolean; auto_update?: boolean }>(image);
      const properties = { ...(current.properties ?? {}), ...os, 'atelier.init': initAdded ? 'added' : 'own' };
      await client.sync('PATCH', image, { properties });
    }
    await client.sync('POST', '/1.0/images/aliases', { name, target: fingerprint, description: `atelier base ${name}` });
  } catch (e) {
    // A fresh image nobody names would only take room: it goes.
    if (fresh) await client.async('DELETE', image).catch(() => undefined);
    if (e instanceof BackendError && e.code === 'ALREADY_EXISTS') throw new BackendError('ALREADY_EXISTS', `LXD already has an image alias "${name}"`, { base: name });
    throw e;
  }
}

/**
 * `baseFingerprint` on LXD: the fingerprint of the image alias `name` points at (the default
 * project's, which atelier's projects use). Unknown alias: `NOT_FOUND`.
 */
export async function baseFingerprint(client: LxdClient, name: string): Promise<string> {
  const fingerprint = ALIAS_RE.test(name) ? await aliasTarget(client, name) : null;
  if (!fingerprint) throw new BackendError('NOT_FOUND', `base "${name}" is not an image alias of this LXD (see \`atelier base list\`)`, { base: name });
  return fingerprint;
}

/** The fingerprint an alias points at, or null when there is no such alias. */
async function aliasTarget(client: LxdClient, name: string): Promise<string | null> {
  try {
    return (await client.get<{ target: string }>(`/1.0/images/aliases/${encodeURIComponent(name)}`)).target;
  } catch (e) {
    if (e instanceof BackendError && e.code === 'NOT_FOUND') return null;
    throw e;
  }
}

/** A multipart part's head (the first without the CRLF that ends the previous part). */
function part(boundary: string, field: string, filename: string, first: boolean): Buffer {
  return Buffer.from(`${first ? '' : '\r\n'}--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`);
}

function* hashed(hash: ReturnType<typeof createHash>, chunks: Buffer[]): Generator<Buffer> {
  for (const c of chunks) {
    hash.update(c);
    yield c;
  }
}

/** `os` and `release` image properties from an `os-release` file. */
function osRelease(text: Buffer | undefined): Record<string, string> {
  if (!text) return {};
  const vars = new Map<string, string>();
  for (const line of text.toString('utf8').split('\n')) {
    const m = /^([A-Z_]+)=(?:"([^"]*)"|'([^']*)'|(.*))$/.exec(line.trim());
    if (m) vars.set(m[1]!, m[2] ?? m[3] ?? m[4] ?? '');
  }
  const os = vars.get('ID');
  const release = vars.get('VERSION_CODENAME') || vars.get('VERSION_ID');
  return { ...(os ? { os } : {}), ...(release ? { release } : {}) };
}

/** A tar stream and how its making ended. */
interface TarSource {
  readonly stream: Readable;
  /** Settles once the producer has exited (rejects when it failed). */
  readonly done: Promise<void>;
  kill(): void;
}

/** GNU tar of a directory: owners by number (the root's own ids, whoever runs this). */
function tarOfDirectory(dir: string): TarSource {
  return tool('tar', ['--numeric-owner', '-C', dir, '-cf', '-', '.'], `tarring ${dir}`, 1);
}

/** A tarball, decompressed by its magic number as `tar` would. */
async function tarOfFile(file: string): Promise<TarSource> {
  const head = Buffer.alloc(6);
  const fh = await open(file, 'r');
  try {
    await fh.read(head, 0, 6, 0);
  } finally {
    await fh.close();
  }
  if (head[0] === 0x1f && head[1] === 0x8b) {
    const stream = createReadStream(file).pipe(createGunzip());
    return { stream, done: Promise.resolve(), kill: () => stream.destroy() };
  }
  const xz = head.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]));
  const zstd = head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
  const bzip2 = head.subarray(0, 3).toString('latin1') === 'BZh';
  if (xz || zstd || bzip2) {
    const cmd = xz ? 'xz' : zstd ? 'zstd' : 'bzip2';
    return tool(cmd, ['-dc', '--', file], `decompressing ${file}`, 0);
  }
  const stream = createReadStream(file);
  return { stream, done: Promise.resolve(), kill: () => stream.destroy() };
}

/** A host tool's stdout as the stream; an exit status above `okUpTo` (or no such tool) fails `done`. */
function tool(cmd: string, args: string[], what: string, okUpTo: number): TarSource {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-2000)));
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'ENOENT' ? new BackendError('UNAVAILABLE', `${cmd} is not installed (needed for ${what})`, { tool: cmd }) : new BackendError('INTERNAL', `${what}: ${e.message}`)),
    );
    child.on('close', (code, signal) => {
      if (code !== null && code <= okUpTo) resolve();
      else reject(new BackendError('INVALID', `${what} failed (${signal ?? `status ${code}`}): ${stderr.trim().split('\n').pop() ?? ''}`, { stderr }));
    });
  });
  done.catch(() => undefined); // awaited by the reader; a failure it never reaches is not unhandled
  return { stream: child.stdout, done, kill: () => child.kill('SIGKILL') };
}

/**
 * Debian bases: `atelier base add NAME --debian SUITE` builds a Debian `minbase` root with
 * `mmdebstrap --variant=minbase SUITE TARGET [MIRROR]` (Debian package `mmdebstrap`) and hands it
 * to the backend's `addBase(name, path)` as a tarball (or a directory). Not an adapter: a helper
 * the CLI uses, importing no adapter, so every backend can take what it builds.
 *
 * - **Cache**: a build is kept as `<cacheDir>/<suite>-<arch>-minbase-<12 hex>.tar` (plus a
 *   `.json` beside it), keyed by suite, architecture, mirror (and the apt options copied from the
 *   host) and variant, so a second `base add --debian SUITE` takes seconds. `cacheDir`:
 *   `$ATELIER_DEBIAN_CACHE`, else `/var/cache/atelier/debian` for root, else
 *   `$XDG_CACHE_HOME/atelier/debian` (`~/.cache/atelier/debian`). A build older than `maxAgeMs` (7 days) is
 *   made again, so a cached root does not miss security updates for long.
 * - **Mirror**: the host's. Unless `mirror` is given, the Debian entries of the host's apt sources
 *   (`/etc/apt/sources.list`, `/etc/apt/sources.list.d/*.{list,sources}`) decide: mmdebstrap writes
 *   its default lines (for a stable release: SUITE, SUITE-updates on http://deb.debian.org/debian
 *   and SUITE-security on http://security.debian.org/debian-security), and a setup hook rewrites
 *   those URIs to the host's before anything is downloaded. The host's proxy and validity options
 *   (`Acquire::http(s)::Proxy`, `http_proxy` in the environment, `Acquire::Check-Valid-Until`,
 *   `Acquire::Check-Date`) go to `--aptopt`, which mmdebstrap both uses and writes into the root
 *   (`/etc/apt/apt.conf.d/99mmdebstrap`): apt inside the workshop reaches the mirror as the host
 *   does. A given `mirror` (a URI) is used alone: `deb MIRROR SUITE main`.
 * - **Files a container runtime expects**: `/etc/hostname` (`atelier`), `/etc/hosts` (localhost),
 *   `/etc/resolv.conf` (a regular file with the host's servers: a chroot resolves through it, and a
 *   runtime can bind the host's over it), an empty `/etc/machine-id`.
 * - **Errors** (`AtelierError`, which the CLI maps to exit codes): a suite name that is not
 *   `^[a-z][a-z0-9-]*$` is `INVALID_ARGUMENT`; a suite the mirror does not have is `NOT_FOUND`; a
 *   mirror that cannot be reached, or mmdebstrap missing, is `UNAVAILABLE`; any other failure
 *   `OP_FAILED` with the tail of mmdebstrap's output. A failed build leaves no file behind.
 *
 * @example
 * ```ts
 * const root = await buildDebianRoot({ suite: 'bookworm', onProgress: (p) => console.error(p.line) });
 * await backend.addBase('bookworm', root.path); // root.path: the cached tarball
 * ```
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AtelierError } from '../machines/errors.ts';

/** The variant built: Essential packages and apt, nothing else. */
export const DEBIAN_VARIANT = 'minbase';
/** Suite names accepted (`bookworm`, `trixie`, `stable`, `bookworm-backports`, `sid`). */
export const SUITE_RE = /^[a-z][a-z0-9-]*$/;
/** A cached root is made again after this long. */
export const DEFAULT_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
/** Bumped whenever what goes into a root changes, so older cache entries are not reused. */
const RECIPE_VERSION = 1;

/** mmdebstrap's defaults, which the host's mirrors replace. */
const DEFAULT_MAIN = 'http://deb.debian.org/debian';
const DEFAULT_SECURITY = 'http://security.debian.org/debian-security';

/** The phases of a build, in order, as progress reports them. */
export const DEBIAN_STEPS = ['cache', 'update', 'download', 'extract', 'install', 'configure', 'pack', 'done'] as const;
export type DebianStep = (typeof DEBIAN_STEPS)[number];

/** One progress line: `debian bookworm: downloading packages`. */
export interface DebianProgress {
  readonly suite: string;
  readonly step: DebianStep;
  readonly line: string;
}

export interface BuildDebianRootOptions {
  /** A Debian suite or codename: `bookworm`, `trixie`, `stable`, `sid`. */
  readonly suite: string;
  /** Also extract the root into this directory (must be absent or empty); `path` is then this directory. */
  readonly dir?: string;
  /** Where builds are kept (see `defaultDebianCacheDir`). */
  readonly cacheDir?: string;
  /** A mirror URI used alone (`deb MIRROR SUITE main`), instead of the host's mirrors. */
  readonly mirror?: string;
  /** Called for each phase. */
  readonly onProgress?: (p: DebianProgress) => void;
  /** Stops mmdebstrap; the build fails with `ABORTED` and leaves nothing. */
  readonly signal?: AbortSignal;
  /** The environment: PATH (to find mmdebstrap), proxies, cache variables. Default: `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** Rebuild a cached root older than this (default 7 days). */
  readonly maxAgeMs?: number;
  /** Ignore the cache (the new build still replaces the cached one). */
  readonly rebuild?: boolean;
  /** Where the host's apt configuration lives (tests). Default `/etc/apt`. */
  readonly aptDir?: string;
}

export interface DebianRoot {
  /** The root: the cached tarball, or `dir` when given. */
  readonly path: string;
  readonly format: 'tar' | 'dir';
  /** The cached tarball (also when `dir` was given). */
  readonly tarball: string;
  readonly suite: string;
  readonly arch: string;
  readonly variant: string;
  /** The sources the root's apt uses, as `deb` lines. */
  readonly sources: readonly string[];
  /** Whether the tarball came from the cache. */
  readonly cached: boolean;
  /** The tarball's size. */
  readonly bytes: number;
  /** How long this call took. */
  readonly seconds: number;
  /** When the tarball was built. */
  readonly builtAt: string;
}

/** What `<key>.json` holds beside a cached tarball. */
interface CacheEntry {
  readonly recipe: number;
  readonly suite: string;
  readonly arch: string;
  readonly variant: string;
  readonly mirror: MirrorPlan;
  readonly bytes: number;
  readonly builtAt: string;
  readonly buildSeconds: number;
  readonly sources: readonly string[];
}

/** Where the built root's apt fetches from, and the apt options it carries. */
export interface MirrorPlan {
  /** A mirror given by the caller: `deb MIRROR SUITE main`, alone. */
  readonly explicit?: string;
  /** The host's Debian mirror, replacing http://deb.debian.org/debian. */
  readonly main: string;
  /** The host's security mirror, replacing http://security.debian.org/debian-security. */
  readonly security: string;
  /** `--aptopt` values copied from the host. */
  readonly aptopts: readonly string[];
}

/** The cache directory when none is given. */
export function defaultDebianCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ATELIER_DEBIAN_CACHE) return path.resolve(env.ATELIER_DEBIAN_CACHE);
  if (typeof process.getuid === 'function' && process.getuid() === 0) return '/var/cache/atelier/debian';
  return path.join(env.XDG_CACHE_HOME || path.join(env.HOME ?? os.homedir(), '.cache'), 'atelier', 'debian');
}

/** `INVALID_ARGUMENT` unless `suite` is a plausible suite name. */
export function validateSuite(suite: string): void {
  if (suite.length > 64 || !SUITE_RE.test(suite)) {
    throw new AtelierError('INVALID_ARGUMENT', `${JSON.stringify(suite)} is not a Debian suite name: use lowercase letters, digits and "-", starting with a letter (e.g. bookworm, trixie, stable, sid)`, {
      option: 'debian',
      suite,
    });
  }
}

/** A URI safe to put in a sources line and a shell/sed command (no quotes, spaces, `#`, `&`, `\`). */
const URI_RE = /^(https?|ftp|file):\/\/[A-Za-z0-9._~:/@%+=,;!$*()-]+$/;

function trimSlash(uri: string): string {
  return uri.replace(/\/+$/, '');
}

interface SourceEntry {
  readonly uri: string;
  readonly suites: readonly string[];
}

/** The `deb` entries of the host's apt sources (one-line and deb822 formats). */
export async function hostSourceEntries(aptDir = '/etc/apt'): Promise<SourceEntry[]> {
  const out: SourceEntry[] = [];
  const files: string[] = [path.join(aptDir, 'sources.list')];
  const dir = path.join(aptDir, 'sources.list.d');
  for (const f of (await readdir(dir).catch(() => [] as string[])).sort()) {
    if (f.endsWith('.list') || f.endsWith('.sources')) files.push(path.join(dir, f));
  }
  for (const file of files) {
    const text = await readFile(file, 'utf8').catch(() => '');
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const fields = new Map<string, string>();
        for (const line of stanza.split('\n')) {
          const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line.trim());
          if (m && !line.startsWith('#')) fields.set(m[1].toLowerCase(), m[2].trim());
        }
        if (!(fields.get('types') ?? '').split(/\s+/).includes('deb')) continue;
        if ((fields.get('enabled') ?? 'yes').toLowerCase() === 'no') continue;
        const suites = (fields.get('suites') ?? '').split(/\s+/).filter(Boolean);
        for (const uri of (fields.get('uris') ?? '').split(/\s+/).filter(Boolean)) out.push({ uri: trimSlash(uri), suites });
      }
    } else {
      for (const raw of text.split('\n')) {
        const line = raw.replace(/#.*/, '').trim();
        const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
        if (m) out.push({ uri: trimSlash(m[1]), suites: [m[2]] });
      }
    }
  }
  return out;
}

/** `Acquire::Check-Valid-Until "false";`-style options from `apt-config dump` worth copying. */
const COPIED_APT_OPTIONS = /^Acquire::(?:(?:https?|ftp)::Proxy(?:::[^ ]+)?|Check-Valid-Until|Check-Date) /;

async function hostAptOptions(env: NodeJS.ProcessEnv): Promise<string[]> {
  const dump = await new Promise<string>((resolve) => {
    execFile('apt-config', ['dump'], { env, encoding: 'utf8', timeout: 10_000 }, (err, stdout) => resolve(err ? '' : stdout));
  });
  const opts = dump
    .split('\n')
    .filter((l) => COPIED_APT_OPTIONS.test(l))
    .map((l) => l.trim().replace(/;$/, ''));
  // A proxy only the environment names (http_proxy) would be lost inside the workshop: say it to apt.
  for (const scheme of ['http', 'https'] as const) {
    const proxy = env[`${scheme}_proxy`] ?? env[`${scheme.toUpperCase()}_PROXY`];
    if (proxy && URI_RE.test(proxy) && !opts.some((o) => o.startsWith(`Acquire::${scheme}::Proxy `))) opts.push(`Acquire::${scheme}::Proxy "${proxy}"`);
  }
  return opts.sort();
}

/**
 * The mirrors and apt options a root gets on this host: the host's Debian mirror (an entry whose
 * URI ends in `/debian`) and its security mirror (ending in `/debian-security`), else mmdebstrap's
 * defaults.
 */
export async function planMirror(opts: { mirror?: string; env?: NodeJS.ProcessEnv; aptDir?: string } = {}): Promise<MirrorPlan> {
  const env = opts.env ?? process.env;
  const aptopts = await hostAptOptions(env);
  if (opts.mirror !== undefined) {
    if (!URI_RE.test(opts.mirror)) {
      throw new AtelierError('INVALID_ARGUMENT', `mirror ${JSON.stringify(opts.mirror)} is not a URI (http://, https://, ftp:// or file://)`, { mirror: opts.mirror });
    }
    return { explicit: trimSlash(opts.mirror), main: trimSlash(opts.mirror), security: DEFAULT_SECURITY, aptopts };
  }
  const entries = (await hostSourceEntries(opts.aptDir)).filter((e) => URI_RE.test(e.uri));
  const main = entries.find((e) => /\/debian$/.test(e.uri) && e.suites.some((s) => !s.includes('-') && !s.includes('/')))?.uri ?? DEFAULT_MAIN;
  const security = entries.find((e) => /\/debian-security$/.test(e.uri))?.uri ?? DEFAULT_SECURITY;
  return { main, security, aptopts };
}

/** The host's dpkg architecture (`amd64`), else Node's name for it. */
async function hostArch(env: NodeJS.ProcessEnv): Promise<string> {
  const out = await new Promise<string>((resolve) => {
    execFile('dpkg', ['--print-architecture'], { env, encoding: 'utf8', timeout: 10_000 }, (err, stdout) => resolve(err ? '' : stdout.trim()));
  });
  if (/^[a-z0-9-]+$/.test(out)) return out;
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'armhf', ia32: 'i386', ppc64: 'ppc64el', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch] ?? process.arch;
}

/** The first executable `name` on `PATH`, or null. */
async function which(name: string, env: NodeJS.ProcessEnv): Promise<string | null> {
  for (const dir of (env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':').filter(Boolean)) {
    const p = path.join(dir, name);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

function cacheKey(suite: string, arch: string, plan: MirrorPlan): string {
  const key = JSON.stringify({ recipe: RECIPE_VERSION, suite, arch, variant: DEBIAN_VARIANT, mirror: plan });
  return `${suite}-${arch}-${DEBIAN_VARIANT}-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
}

async function readEntry(tarball: string, maxAgeMs: number): Promise<CacheEntry | null> {
  try {
    const entry = JSON.parse(await readFile(tarball.replace(/\.tar$/, '.json'), 'utf8')) as CacheEntry;
    const st = await stat(tarball);
    if (entry.recipe !== RECIPE_VERSION || st.size !== entry.bytes) return null;
    if (Date.now() - Date.parse(entry.builtAt) > maxAgeMs) return null;
    return entry;
  } catch {
    return null;
  }
}

/** Temp files of builds that died (older than a day): the cache must not fill up with them. */
async function sweepStale(cacheDir: string): Promise<void> {
  for (const f of await readdir(cacheDir).catch(() => [] as string[])) {
    if (!f.startsWith('.tmp-')) continue;
    const p = path.join(cacheDir, f);
    const st = await stat(p).catch(() => null);
    if (st && Date.now() - st.mtimeMs > 24 * 3600 * 1000) await rm(p, { recursive: true, force: true });
  }
}

/** Single-quote for sh. */
function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Phases as mmdebstrap announces them on stderr (`I: downloading packages with apt...`). */
const PHASES: readonly [RegExp, DebianStep, string][] = [
  [/^I: running apt-get update/, 'update', 'updating package lists'],
  [/^I: downloading packages/, 'download', 'downloading packages'],
  [/^I: extracting archives/, 'extract', 'extracting'],
  [/^I: installing (essential|remaining) packages/, 'install', 'installing'],
  [/^I: (running --customize-hook|cleaning package lists)/, 'configure', 'configuring'],
  [/^I: creating tarball/, 'pack', 'packing'],
];

/** What mmdebstrap's output says went wrong, as an error with a code. */
function buildError(suite: string, plan: MirrorPlan, code: number | null, output: string[]): AtelierError {
  const text = output.join('\n');
  const last = output.slice(-12).join('\n');
  const where = plan.explicit ?? plan.main;
  if (/does not have a Release file|404\s+Not Found/.test(text) && new RegExp(`\\b${suite}\\b`).test(text)) {
    return new AtelierError('NOT_FOUND', `Debian suite "${suite}" not found on ${where}: use a codename or suite the mirror has (e.g. bookworm, trixie, stable, testing, sid)`, { suite, mirror: where });
  }
  if (/Temporary failure resolving|Could not resolve|Could not connect|Connection (refused|timed out)|Unable to connect|Network is unreachable|Failed to fetch/.test(text)) {
    return new AtelierError('UNAVAILABLE', `cannot reach the Debian mirror ${where} to build ${suite}: ${last}`, { suite, mirror: where });
  }
  if (/No space left on device/.test(text)) return new AtelierError('NO_SPACE', `no space left while building Debian ${suite}: ${last}`, { suite });
  return new AtelierError('OP_FAILED', `mmdebstrap failed to build Debian ${suite} (exit ${code ?? 'signal'}): ${last}`, { suite, exitCode: code });
}

/**
 * Build (or take from the cache) a Debian `minbase` root for `suite`.
 *
 * @example
 * const r = await buildDebianRoot({ suite: 'bookworm', onProgress: (p) => process.stderr.write(`${p.line}\n`) });
 * r.path; // /var/cache/atelier/debian/bookworm-amd64-minbase-1a2b3c4d5e6f.tar
 */
export async function buildDebianRoot(opts: BuildDebianRootOptions): Promise<DebianRoot> {
  const started = performance.now();
  const env = opts.env ?? process.env;
  const { suite } = opts;
  validateSuite(suite);
  const say = (step: DebianStep, what: string): void => opts.onProgress?.({ suite, step, line: `debian ${suite}: ${what}` });
  const seconds = (): number => Math.round((performance.now() - started) / 100) / 10;
  const mb = (bytes: number): string => `${Math.round(bytes / 1e6)} MB`;

  if (opts.dir !== undefined) {
    const entries = await readdir(opts.dir).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? [] : Promise.reject(e)));
    if (entries.length > 0) throw new AtelierError('ALREADY_EXISTS', `cannot build Debian ${suite} into ${opts.dir}: the directory is not empty`, { dir: opts.dir });
  }

  const cacheDir = path.resolve(opts.cacheDir ?? defaultDebianCacheDir(env));
  const [arch, plan] = await Promise.all([hostArch(env), planMirror({ ...(opts.mirror === undefined ? {} : { mirror: opts.mirror }), env, ...(opts.aptDir === undefined ? {} : { aptDir: opts.aptDir }) })]);
  const key = cacheKey(suite, arch, plan);
  const tarball = path.join(cacheDir, `${key}.tar`);

  let entry = opts.rebuild ? null : await readEntry(tarball, opts.maxAgeMs ?? DEFAULT_MAX_AGE_MS);
  const cached = entry !== null;
  if (entry) {
    say('cache', `cached (built ${entry.builtAt}, ${mb(entry.bytes)}, ${tarball})`);
  } else {
    const mmdebstrap = await which('mmdebstrap', env);
    if (!mmdebstrap) {
      throw new AtelierError('UNAVAILABLE', 'mmdebstrap is not installed: install the Debian package with `apt-get install mmdebstrap` to build Debian bases', { package: 'mmdebstrap', suite });
    }
    try {
      await mkdir(cacheDir, { recursive: true });
    } catch (e) {
      throw new AtelierError('INVALID_ARGUMENT', `cannot create the Debian cache directory ${cacheDir} (${(e as Error).message}): set ATELIER_DEBIAN_CACHE to a writable directory`, { cacheDir }, { cause: e });
    }
    await sweepStale(cacheDir);
    entry = await runMmdebstrap({ mmdebstrap, suite, arch, plan, tarball, env, say, ...(opts.signal === undefined ? {} : { signal: opts.signal }) });
  }

  let result = tarball;
  if (opts.dir !== undefined) {
    say('extract', `extracting into ${opts.dir}`);
    await mkdir(opts.dir, { recursive: true });
    try {
      await new Promise<void>((resolve, reject) => {
        execFile('tar', ['-xf', tarball, '-C', opts.dir as string, '--numeric-owner', '--same-permissions'], { env, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, _o, stderr) =>
          err ? reject(new AtelierError(/No space left/.test(stderr) ? 'NO_SPACE' : 'OP_FAILED', `cannot extract ${tarball} into ${opts.dir}: ${stderr.trim() || err.message}`, { dir: opts.dir })) : resolve(),
        );
      });
    } catch (e) {
      await rm(opts.dir, { recursive: true, force: true });
      throw e;
    }
    result = opts.dir;
  }
  say('done', `done (${mb(entry.bytes)}, ${seconds()} s${cached ? ', cached' : ''})`);
  return {
    path: result,
    format: opts.dir === undefined ? 'tar' : 'dir',
    tarball,
    suite,
    arch,
    variant: DEBIAN_VARIANT,
    sources: entry.sources,
    cached,
    bytes: entry.bytes,
    seconds: seconds(),
    builtAt: entry.builtAt,
  };
}

/** Run mmdebstrap into a temp file beside `tarball`, then rename it into place with its entry. */
async function runMmdebstrap(a: {
  mmdebstrap: string;
  suite: string;
  arch: string;
  plan: MirrorPlan;
  tarball: string;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  say: (step: DebianStep, what: string) => void;
}): Promise<CacheEntry> {
  const { suite, plan } = a;
  const started = performance.now();
  const tmp = path.join(path.dirname(a.tarball), `.tmp-${path.basename(a.tarball, '.tar')}-${process.pid}-${randomBytes(4).toString('hex')}.tar`);
  const args = [`--variant=${DEBIAN_VARIANT}`, '--format=tar', `--architectures=${a.arch}`];
  for (const o of plan.aptopts) args.push(`--aptopt=${o}`);
  // https mirrors need the CA certificates inside the root too, or apt there cannot verify them.
  if (/^https:/.test(plan.main) || /^https:/.test(plan.security)) args.push('--include=ca-certificates');
  if (plan.explicit === undefined && (plan.main !== DEFAULT_MAIN || plan.security !== DEFAULT_SECURITY)) {
    // mmdebstrap has written its default lines (with -updates and -security for a stable
    // release); point them at the host's mirrors before apt-get update reads them.
    const sed = [`s#${DEFAULT_MAIN} #${plan.main} #`, `s#${DEFAULT_SECURITY} #${plan.security} #`].map((e) => `-e ${shq(e)}`).join(' ');
    args.push(`--setup-hook=sed -i ${sed} "$1/etc/apt/sources.list"`);
  }
  // What a container runtime and apt inside it expect of /etc.
  args.push(
    `--customize-hook=printf 'atelier\\n' > "$1/etc/hostname" && chmod 644 "$1/etc/hostname"`,
    `--customize-hook=printf '127.0.0.1\\tlocalhost\\n127.0.1.1\\tatelier\\n::1\\tlocalhost ip6-localhost ip6-loopback\\nff02::1\\tip6-allnodes\\nff02::2\\tip6-allrouters\\n' > "$1/etc/hosts" && chmod 644 "$1/etc/hosts"`,
    // A regular file (not a link into /run): a runtime binds the host's over it; under chroot it is what resolves.
    `--customize-hook=rm -f "$1/etc/resolv.conf" && { grep -E '^(nameserver|search|options) ' /etc/resolv.conf || true; } > "$1/etc/resolv.conf" && chmod 644 "$1/etc/resolv.conf"`,
    `--customize-hook=: > "$1/etc/machine-id" && chmod 444 "$1/etc/machine-id"`,
  );
  args.push(suite, tmp);
  if (plan.explicit !== undefined) args.push(plan.explicit);

  const output: string[] = [];
  let current: DebianStep | null = null;
  const code = await new Promise<number | null>((resolve, reject) => {
    if (a.signal?.aborted) {
      reject(new AtelierError('ABORTED', `building Debian ${suite} was aborted`, { suite }));
      return;
    }
    const child = spawn(a.mmdebstrap, args, { env: { ...a.env, LC_ALL: 'C.UTF-8' }, stdio: ['ignore', 'ignore', 'pipe'] });
    const onAbort = (): void => void child.kill('SIGTERM');
    a.signal?.addEventListener('abort', onAbort, { once: true });
    let partial = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      const lines = (partial + d).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        output.push(line);
        if (output.length > 400) output.shift();
        const phase = PHASES.find(([re]) => re.test(line));
        if (phase && phase[1] !== current) {
          current = phase[1];
          a.say(phase[1], phase[2]);
        }
      }
    });
    child.on('error', (e) => {
      a.signal?.removeEventListener('abort', onAbort);
      reject(new AtelierError('UNAVAILABLE', `cannot run mmdebstrap: ${e.message} (install it with \`apt-get install mmdebstrap\`)`, { package: 'mmdebstrap' }));
    });
    child.on('close', (c) => {
      a.signal?.removeEventListener('abort', onAbort);
      if (partial) output.push(partial);
      resolve(c);
    });
  }).catch(async (e: unknown) => {
    await rm(tmp, { force: true });
    throw e;
  });

  if (code !== 0 || a.signal?.aborted) {
    await rm(tmp, { force: true });
    if (a.signal?.aborted) throw new AtelierError('ABORTED', `building Debian ${suite} was aborted`, { suite });
    throw buildError(suite, plan, code, output);
  }
  try {
    const sources = (await tarMember(tmp, './etc/apt/sources.list', a.env)).split('\n').filter((l) => l.startsWith('deb'));
    const bytes = (await stat(tmp)).size;
    const entry: CacheEntry = {
      recipe: RECIPE_VERSION,
      suite,
      arch: a.arch,
      variant: DEBIAN_VARIANT,
      mirror: plan,
      bytes,
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round((performance.now() - started) / 100) / 10,
      sources,
    };
    await rename(tmp, a.tarball);
    await writeFile(a.tarball.replace(/\.tar$/, '.json'), `${JSON.stringify(entry, null, 2)}\n`);
    return entry;
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** One file of a tarball, as text ('' when absent). */
function tarMember(tarball: string, member: string, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve) => {
    execFile('tar', ['-xOf', tarball, member], { env, encoding: 'utf8', maxBuffer: 1024 * 1024 }, (err, stdout) => resolve(err ? '' : stdout));
  });
}

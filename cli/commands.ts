/**
 * The CLI's commands. Each validates its input first (names, the workshop file, paths), so bad
 * input fails with exit 2 before anything is opened; then it runs on its host (atelierd, or this
 * process: `connect.ts`), which checks it against the state before writing anything, and prints
 * one result. Each returns its exit code.
 *
 * @example
 * ```ts
 * const code = await launch(ctx, 'fixtures/quickstart/workshop.yaml');
 * ```
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { AtelierError } from '../machines/errors.ts';
import type { WorkshopView } from '../engine/api.ts';
import { LAYER_SUFFIX_RE, validateSdkName, validateWorkshopName } from '../machines/names.ts';
import { hostFor } from './connect.ts';
import { type Context, withCommandOptions } from './context.ts';
import { formatBases, formatDf, formatDone, formatGc, formatList, formatReconcile, formatWorkshop } from './output.ts';

function printWorkshop(ctx: Context, verb: string, w: WorkshopView): number {
  ctx.out.result({ workshop: w }, () => formatDone(verb, w));
  return 0;
}

/** `atelier launch FILE` and `atelier refresh FILE`. */
export async function launchOrRefresh(ctx: Context, kind: 'launch' | 'refresh', file: string): Promise<number> {
  // The file is read (and refused, when it is bad) before anything is opened or asked.
  // (yaml is loaded here, not at start: `list` and `show` never need it.)
  const { loadWorkshopFile } = await import('../engine/workshop-file.ts');
  await loadWorkshopFile(file, { defaultBase: '' });
  const host = await hostFor(ctx);
  const w = await withCommandOptions(ctx, (opts) => (kind === 'launch' ? host.launch(file, opts) : host.refresh(file, opts)));
  return printWorkshop(ctx, kind === 'launch' ? 'launched' : 'refreshed', w);
}

/** `atelier stash NAME`, `atelier unstash NAME`. */
export async function stashOrUnstash(ctx: Context, kind: 'stash' | 'unstash', name: string): Promise<number> {
  validateWorkshopName(name);
  const host = await hostFor(ctx);
  const w = await withCommandOptions(ctx, (opts) => (kind === 'stash' ? host.stash(name, opts) : host.unstash(name, opts)));
  return printWorkshop(ctx, kind === 'stash' ? 'stashed' : 'unstashed', w);
}

/** `atelier start NAME`, `atelier stop NAME`: ops of one step the workshop chart decides. */
export async function startOrStop(ctx: Context, kind: 'start' | 'stop', name: string): Promise<number> {
  validateWorkshopName(name);
  const host = await hostFor(ctx);
  const w = await withCommandOptions(ctx, (opts) => (kind === 'start' ? host.start(name, opts) : host.stop(name, opts)));
  return printWorkshop(ctx, kind === 'start' ? 'started' : 'stopped', w);
}

/** `atelier restore NAME SDK`. */
export async function restore(ctx: Context, name: string, sdk: string): Promise<number> {
  validateWorkshopName(name);
  validateSdkName(sdk);
  const host = await hostFor(ctx);
  const w = await withCommandOptions(ctx, (opts) => host.restore(name, sdk, opts));
  return printWorkshop(ctx, `restored SDK "${sdk}" of`, w);
}

/** `atelier remove NAME`. */
export async function remove(ctx: Context, name: string): Promise<number> {
  validateWorkshopName(name);
  const host = await hostFor(ctx);
  await withCommandOptions(ctx, (opts) => host.remove(name, opts));
  ctx.out.result({ removed: name }, () => `removed workshop "${name}"`);
  return 0;
}

/** `atelier list`: reads only (no lock, no write). */
export async function list(ctx: Context): Promise<number> {
  const ws = await (await hostFor(ctx)).list();
  ctx.out.result({ workshops: ws }, () => formatList(ws));
  return 0;
}

/** `atelier show NAME`: reads only (no lock, no write). */
export async function show(ctx: Context, name: string): Promise<number> {
  validateWorkshopName(name);
  const host = await hostFor(ctx);
  const w = await host.show(name);
  const isolation = await host.isolation();
  ctx.out.result({ workshop: w, isolation }, () => formatWorkshop(w, isolation.detail));
  return 0;
}

/** `atelier gc [--dry-run] [--cache]`. */
export async function gc(ctx: Context, dryRun: boolean, cache = false): Promise<number> {
  const report = await (await hostFor(ctx)).gc(dryRun, cache);
  ctx.out.result({ gc: report }, () => formatGc(report));
  return 0;
}

/** `atelier df`. */
export async function df(ctx: Context): Promise<number> {
  const report = await (await hostFor(ctx)).df();
  ctx.out.result({ df: report }, () => formatDf(report));
  return 0;
}

/** `atelier reconcile`. */
export async function reconcile(ctx: Context): Promise<number> {
  const report = await (await hostFor(ctx)).reconcile();
  ctx.out.result({ reconcile: report }, () => formatReconcile(report));
  return 0;
}

const LAYER_NAME_RE = /^(.+)-([0-9a-f]{16})$/;
const SCRATCH_RE = /^[a-z0-9](?:[-a-z0-9._]*[a-z0-9])?$/;

/** `run FROM`: a workshop name or an SDK layer name (`<sdk>-<16 hex>`). */
function validateRunSource(from: string): void {
  const m = LAYER_NAME_RE.exec(from);
  if (m && LAYER_SUFFIX_RE.test(m[2] ?? '')) {
    try {
      validateSdkName(m[1]);
      return;
    } catch {
      // Not a layer name after all: judge it as a workshop name below.
    }
  }
  try {
    validateWorkshopName(from);
  } catch (e) {
    throw new AtelierError('INVALID_NAME', `cannot run from ${JSON.stringify(from)}: give a workshop name or an SDK layer name (<sdk>-<16 hex>); ${(e as Error).message}`, {
      name: from,
    });
  }
}

/** `atelier run FROM [--script S] [--scratch KEY]`: a transient container, removed afterwards. */
export async function run(ctx: Context, from: string, opts: { script?: string; scratch?: string }): Promise<number> {
  validateRunSource(from);
  if (opts.scratch !== undefined && (opts.scratch.length > 63 || !SCRATCH_RE.test(opts.scratch))) {
    throw new AtelierError('INVALID_ARGUMENT', `--scratch ${JSON.stringify(opts.scratch)} is not a valid key: use lowercase letters, digits, "-", "." and "_", at most 63 characters`, {
      option: 'scratch',
    });
  }
  const host = await hostFor(ctx);
  const result = await withCommandOptions(ctx, (o) => host.run({ from, ...(opts.script === undefined ? {} : { script: opts.script }), ...(opts.scratch === undefined ? {} : { scratch: opts.scratch }) }, o));
  if (result.exitCode === 0) {
    ctx.out.result({ run: result }, () => result.stdout);
    if (!ctx.out.json && result.stderr) ctx.io.stderr.write(result.stderr);
    return 0;
  }
  // The container is gone either way (--rm); a failing script is a failed operation: exit 1.
  if (!ctx.out.json) {
    ctx.io.stdout.write(result.stdout);
    ctx.io.stderr.write(result.stderr);
  }
  return ctx.out.error(new AtelierError('OP_FAILED', `the script run from "${from}" exited with status ${result.exitCode} (container ${result.id} removed)`), { run: result });
}

const BASE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@:+-]*$/;

/**
 * `atelier base add NAME PATH` and `atelier base add NAME --debian SUITE`: exactly one of the two.
 * A Debian root is built with mmdebstrap (cached: `backends/debian.ts`), its phases on stderr as
 * `debian SUITE: ...` lines, then imported like a tarball; on LXD the adapter makes it an image.
 */
export async function baseAdd(ctx: Context, name: string, basePath: string | undefined, opts: { debian?: string } = {}): Promise<number> {
  if (name.length > 100 || !BASE_NAME_RE.test(name)) {
    throw new AtelierError('INVALID_NAME', `base name ${JSON.stringify(name)} is not valid: use letters, digits and . _ @ : + -, starting with a letter or digit (e.g. "ubuntu@24.04")`, {
      what: 'base',
      name,
    });
  }
  if ((basePath === undefined) === (opts.debian === undefined)) {
    throw new AtelierError('INVALID_ARGUMENT', `cannot add base "${name}": give either a PATH (a root filesystem directory or tarball) or --debian SUITE, ${basePath === undefined ? 'not neither' : 'not both'}`, { base: name });
  }
  const { LocalHost } = await import('./local-host.ts');
  if (opts.debian !== undefined) {
    const suite = opts.debian;
    const { buildDebianRoot, validateSuite } = await import('../backends/debian.ts');
    validateSuite(suite);
    const say = (line: string): void => void (ctx.progressMode === 'off' ? undefined : ctx.io.stderr.write(`${line}\n`));
    const built = await withCommandOptions(ctx, async (o) => {
      let root: Awaited<ReturnType<typeof buildDebianRoot>> | undefined;
      await new LocalHost(ctx).addBase(name, async () => {
        root = await buildDebianRoot({ suite, env: ctx.io.env, onProgress: (p) => say(p.line), ...(o.signal === undefined ? {} : { signal: o.signal }) });
        say(`debian ${suite}: importing as base "${name}" (${ctx.backendConfig.kind} backend)`);
        return root.path;
      });
      return root as NonNullable<typeof root>;
    });
    const { path: p, tarball: _t, ...debian } = built;
    ctx.out.result({ base: { name, path: p, debian } }, () => `added base "${name}": Debian ${suite} ${debian.variant} (${debian.arch}, ${Math.round(debian.bytes / 1e6)} MB${debian.cached ? ', from the cache' : ''}) from ${p}`);
    return 0;
  }
  const given = basePath as string;
  try {
    await stat(given);
  } catch {
    throw new AtelierError('INVALID_ARGUMENT', `cannot add base "${name}": ${given} does not exist (give a root filesystem directory or tarball)`, { path: given });
  }
  await new LocalHost(ctx).addBase(name, given);
  ctx.out.result({ base: { name, path: path.resolve(given) } }, () => `added base "${name}" from ${path.resolve(given)}`);
  return 0;
}

/** `atelier base list`. */
export async function baseList(ctx: Context): Promise<number> {
  const { bases, defaultBase } = await (await hostFor(ctx)).bases();
  ctx.out.result({ bases, defaultBase }, () => formatBases(bases, defaultBase));
  return 0;
}

/**
 * Reading a workshop file (`workshop.yaml`, docs/design.md §1 "Workshop file") into a `WorkshopSpec`.
 *
 * This runs before the engine is involved: it journals nothing, so every problem with the file
 * (missing, empty, malformed, wrong types, unknown or duplicate SDK, bad names) is an
 * `INVALID_SPEC` or `INVALID_NAME` error and no state changes.
 *
 * Layout next to the file:
 * ```
 * workshop.yaml
 * .workshop/<sdk>/hooks/setup-base   # required: the SDK's install script
 * .workshop/<sdk>/sdk.yaml           # optional: metadata (a mapping; `name` must match if given)
 * ```
 *
 * @example
 * ```ts
 * const spec = await loadWorkshopFile('fixtures/quickstart/workshop.yaml', { defaultBase: backend.defaultBase });
 * spec.sdks.map((s) => `${s.name}@${s.hash}`); // ['ros2@…', 'nav2@…']
 * ```
 */
import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { parse, YAMLParseError } from 'yaml';
import { AtelierError } from '../machines/errors.ts';
import type { SdkSpec, WorkshopSpec } from '../events/catalogue.ts';
import { didYouMean, didYouMeanHint } from './hints.ts';
import { validateProjectId, validateSdkName, validateWorkshopName } from '../machines/names.ts';

export interface LoadWorkshopOptions {
  /** The base used when the file names none (the backend's `defaultBase`). */
  readonly defaultBase: string;
}

/** The file name looked for when `loadWorkshopFile` is given a directory. */
export const WORKSHOP_FILE = 'workshop.yaml';
/** The folder next to the workshop file that holds the SDKs. */
export const SDK_DIR = '.workshop';

const TOP_KEYS = ['name', 'base', 'sdks'] as const;
const SDK_KEYS = ['name'] as const;

function q(s: string): string {
  return JSON.stringify(s);
}

function bad(file: string, message: string, details: Record<string, unknown> = {}, cause?: unknown): never {
  throw new AtelierError('INVALID_SPEC', `${file}: ${message}`, { file, ...details }, cause === undefined ? undefined : { cause });
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `a ${typeof v}`;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Prefix name errors with the file and field, keeping the `INVALID_NAME` code. */
function withField<T>(file: string, field: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof AtelierError) throw new AtelierError(e.code, `${file}: ${field}: ${e.message}`, { file, field, ...e.info });
    throw e;
  }
}

function rejectUnknownKeys(file: string, where: string, obj: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) {
      bad(file, `${where}unknown field ${q(key)}${didYouMeanHint(key, known)}; allowed fields: ${known.join(', ')}`, { field: key });
    }
  }
}

/**
 * An SDK's content hash: sha256 over its name, its `setup-base` bytes and its parent's hash, each
 * length-prefixed so that no two different triples can produce the same input. First 16 hex.
 * Chaining the parent's hash is what makes a change invalidate an SDK and everything after it.
 *
 * @example
 * sdkHash('ros2', Buffer.from('echo hi\n'), null); // '…16 hex…'
 */
export function sdkHash(name: string, setupBase: Uint8Array, parentHash: string | null): string {
  const h = createHash('sha256');
  for (const part of [Buffer.from(name, 'utf8'), Buffer.from(setupBase), Buffer.from(parentHash ?? '', 'utf8')]) {
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(part.length));
    h.update(len);
    h.update(part);
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * The project id of a project directory: the first 8 hex characters of the sha256 of its absolute
 * path. The same directory always gives the same id, so relaunching from it finds its workshop.
 *
 * @example
 * projectIdFor('/home/alice/nav2'); // e.g. '1a2b3c4d'
 */
export function projectIdFor(projectDir: string): string {
  return validateProjectId(createHash('sha256').update(path.resolve(projectDir), 'utf8').digest('hex').slice(0, 8));
}

/** SDK names that have a `hooks/setup-base` under `.workshop/`, for did-you-mean hints. */
async function availableSdks(sdkRoot: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(sdkRoot);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries.sort()) {
    try {
      if ((await stat(path.join(sdkRoot, e, 'hooks', 'setup-base'))).isFile()) out.push(e);
    } catch {
      // Not an SDK folder: ignore it.
    }
  }
  return out;
}

async function readOptionalSdkYaml(file: string, sdkDir: string, sdk: string): Promise<void> {
  const metaPath = path.join(sdkDir, 'sdk.yaml');
  let text: string;
  try {
    text = await readFile(metaPath, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    bad(file, `SDK ${q(sdk)}: cannot read ${metaPath}: ${(e as Error).message}`, { sdk }, e);
  }
  let meta: unknown;
  try {
    meta = parse(text);
  } catch (e) {
    bad(file, `SDK ${q(sdk)}: ${metaPath} is not valid YAML: ${(e as Error).message.split('\n')[0]}`, { sdk }, e);
  }
  if (meta === null || meta === undefined) return; // an empty sdk.yaml is fine: it is optional metadata
  if (!isMapping(meta)) bad(file, `SDK ${q(sdk)}: ${metaPath} must be a mapping, got ${typeName(meta)}`, { sdk });
  if (meta.name !== undefined && meta.name !== sdk) {
    bad(file, `SDK ${q(sdk)}: ${metaPath} names it ${q(String(meta.name))}: make the name match its folder`, { sdk });
  }
}

async function resolveSdk(file: string, sdkRoot: string, sdk: string, index: number, parent: string | null): Promise<SdkSpec> {
  const sdkDir = path.join(sdkRoot, sdk);
  const hookPath = path.join(sdkDir, 'hooks', 'setup-base');
  let script: Buffer;
  try {
    script = await readFile(hookPath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      let dirExists = false;
      try {
        dirExists = (await stat(sdkDir)).isDirectory();
      } catch {
        dirExists = false;
      }
      if (dirExists) {
        bad(file, `sdks[${index}]: SDK ${q(sdk)} has no hooks/setup-base: create ${hookPath}`, { sdk, field: `sdks[${index}]` });
      }
      const known = await availableSdks(sdkRoot);
      const hint = didYouMean(sdk, known);
      const where = known.length ? `available: ${known.join(', ')}` : `${sdkRoot} holds no SDK`;
      bad(
        file,
        `sdks[${index}]: SDK ${q(sdk)} not found in ${SDK_DIR}/${hint === undefined ? '' : ` (did you mean ${q(hint)}?)`}; ${where}`,
        { sdk, field: `sdks[${index}]`, suggestion: hint },
      );
    }
    if (code === 'EISDIR') bad(file, `sdks[${index}]: ${hookPath} is a directory: it must be a shell script`, { sdk });
    bad(file, `sdks[${index}]: cannot read ${hookPath}: ${(e as Error).message}`, { sdk }, e);
  }
  await readOptionalSdkYaml(file, sdkDir, sdk);
  return { name: sdk, hash: sdkHash(sdk, script, parent), script: script.toString('utf8') };
}

/**
 * Read and validate a workshop file and resolve its SDKs. `filePath` may also name the project
 * directory, in which case its `workshop.yaml` is read.
 *
 * Throws `INVALID_SPEC` (file missing, empty, malformed, wrong types, unknown or duplicate SDK,
 * missing hook) or `INVALID_NAME` (bad workshop or SDK name); every message names the file and
 * the field or SDK at fault.
 *
 * @example
 * ```ts
 * const spec = await loadWorkshopFile('fixtures/quickstart/workshop.yaml', { defaultBase: 'busybox' });
 * // { name: 'quickstart', base: 'busybox', defaultBase: true, projectId: '…', sdks: [...] }
 * ```
 */
export async function loadWorkshopFile(filePath: string, opts: LoadWorkshopOptions): Promise<WorkshopSpec> {
  if (typeof filePath !== 'string' || filePath === '') {
    throw new AtelierError('INVALID_SPEC', 'no workshop file given: pass the path of a workshop.yaml', { file: filePath });
  }
  let file = filePath;
  let text: string;
  try {
    if ((await stat(file)).isDirectory()) file = path.join(file, WORKSHOP_FILE);
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') bad(file, 'workshop file not found: check the path (it is usually a workshop.yaml in your project)', { reason: 'missing' }, e);
    bad(file, `cannot read workshop file: ${(e as Error).message}`, { reason: 'unreadable' }, e);
  }

  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
    // yaml's message ends with its own position and a code frame: keep the sentence only.
    const first = ((e as Error).message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
    bad(file, `malformed YAML${where}: ${first}`, { reason: 'malformed' }, e);
  }
  if (doc === null || doc === undefined) bad(file, 'workshop file is empty: it needs at least `name:` and `sdks:`', { reason: 'empty' });
  if (!isMapping(doc)) bad(file, `the workshop file must be a mapping with name, base and sdks, got ${typeName(doc)}`, { reason: 'type' });
  rejectUnknownKeys(file, '', doc, TOP_KEYS);

  if (doc.name === undefined) bad(file, 'missing field "name": give the workshop a name (e.g. `name: nav2`)', { field: 'name' });
  if (typeof doc.name !== 'string') bad(file, `field "name" must be a string, got ${typeName(doc.name)}`, { field: 'name' });
  const name = withField(file, 'name', () => validateWorkshopName(doc.name));

  let base = opts.defaultBase;
  let defaultBase = true;
  if (doc.base !== undefined && doc.base !== null) {
    if (typeof doc.base !== 'string') bad(file, `field "base" must be a string, got ${typeName(doc.base)}`, { field: 'base' });
    if (doc.base.trim() === '' || /[\s\x00-\x1f]/.test(doc.base)) {
      bad(file, `field "base" ${q(doc.base)} is not a valid base: give a base the backend knows, without spaces (e.g. \`base: ubuntu@24.04\`)`, { field: 'base' });
    }
    base = doc.base;
    defaultBase = false;
  }

  const rawSdks = doc.sdks ?? [];
  if (!Array.isArray(rawSdks)) bad(file, `field "sdks" must be a list of \`- name: SDK\` entries, got ${typeName(rawSdks)}`, { field: 'sdks' });
  const names: string[] = [];
  rawSdks.forEach((entry: unknown, i: number) => {
    const field = `sdks[${i}]`;
    if (!isMapping(entry)) bad(file, `${field} must be a mapping like \`- name: ros2\`, got ${typeName(entry)}`, { field });
    rejectUnknownKeys(file, `${field}: `, entry, SDK_KEYS);
    if (typeof entry.name !== 'string') bad(file, `${field}.name must be a string, got ${typeName(entry.name)}`, { field: `${field}.name` });
    const sdk = withField(file, `${field}.name`, () => validateSdkName(entry.name));
    const prev = names.indexOf(sdk);
    if (prev >= 0) bad(file, `${field}: SDK ${q(sdk)} is listed twice (also sdks[${prev}]): list each SDK once`, { field, sdk });
    names.push(sdk);
  });

  const projectDir = path.resolve(path.dirname(file));
  const sdkRoot = path.join(projectDir, SDK_DIR);
  const sdks: SdkSpec[] = [];
  let parent: string | null = null;
  for (const [i, sdk] of names.entries()) {
    const spec = await resolveSdk(file, sdkRoot, sdk, i, parent);
    sdks.push(spec);
    parent = spec.hash;
  }

  return { name, base, defaultBase, projectId: projectIdFor(projectDir), sdks };
}

/** A workshop given inline (atelierd's `"spec"`): the fields of a workshop file, with each SDK's hook. */
export interface InlineWorkshop {
  readonly name: string;
  readonly base?: string;
  /** The project directory it stands for: its id ties the workshop to it, as a file's directory does. */
  readonly project: string;
  readonly sdks: readonly { readonly name: string; readonly 'setup-base': string }[];
}

/**
 * A workshop spec from an inline description, by the same rules as a file (names, duplicates,
 * reserved SDKs, a base without spaces; hashes chained the same way, so the same hooks give the
 * same layers whether they came from a file or inline).
 *
 * @throws `INVALID_SPEC`, `INVALID_NAME`, naming the field.
 * @example
 * ```ts
 * specFromInline({ name: 'nav2', project: '/srv/nav2', sdks: [{ name: 'ros2', 'setup-base': 'echo hi' }] }, { defaultBase: 'busybox' });
 * ```
 */
export function specFromInline(w: InlineWorkshop, opts: LoadWorkshopOptions): WorkshopSpec {
  const where = 'spec';
  const name = withField(where, 'name', () => validateWorkshopName(w.name));
  let base = opts.defaultBase;
  let defaultBase = true;
  if (w.base !== undefined) {
    if (w.base.trim() === '' || /[\s\x00-\x1f]/.test(w.base)) bad(where, `field "base" ${q(w.base)} is not a valid base: give a base the backend knows, without spaces`, { field: 'base' });
    base = w.base;
    defaultBase = false;
  }
  if (!path.isAbsolute(w.project)) bad(where, `field "project" ${q(w.project)} must be an absolute path (the project directory the workshop belongs to)`, { field: 'project' });
  const sdks: SdkSpec[] = [];
  const seen: string[] = [];
  let parent: string | null = null;
  w.sdks.forEach((entry, i) => {
    const field = `sdks[${i}]`;
    const sdk = withField(where, `${field}.name`, () => validateSdkName(entry.name));
    const prev = seen.indexOf(sdk);
    if (prev >= 0) bad(where, `${field}: SDK ${q(sdk)} is listed twice (also sdks[${prev}]): list each SDK once`, { field, sdk });
    seen.push(sdk);
    const script = Buffer.from(entry['setup-base'], 'utf8');
    const hash = sdkHash(sdk, script, parent);
    sdks.push({ name: sdk, hash, script: entry['setup-base'] });
    parent = hash;
  });
  return { name, base, defaultBase, projectId: projectIdFor(w.project), sdks };
}

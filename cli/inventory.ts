/**
 * `atelier inventory`: what the backend holds for this user, read-only, in a file another host can
 * replay reconciliation against (`atelier replay reconcile --inventory FILE`).
 *
 * The file (`atelier inventory --json > FILE`) is the CLI's usual one JSON object (`ok: true`, as
 * every `--json` result carries) with these fields:
 *
 * ```json
 * { "ok": true, "atelier": "0.1.0", "kind": "atelier-inventory", "backend": "overlay", "owner": "alice",
 *   "at": "2026-12-05T12:00:00.000Z",
 *   "objects": [ { "ref": { "space": "layers", "name": "ros2-…" }, "tags": { "owner": "alice", "op": "op-1", "kind": "sdk", … },
 *                  "status": "stopped", "identity": { "mac": "…", "uuid": "…" }, "base": "busybox" } ] }
 * ```
 *
 * `objects` is exactly what the backend's `list(owner)` answers (`backends/types.ts`, `ObjectInfo`):
 * every object tagged with the owner, in both spaces, layers first. Reading takes no lock, opens no
 * engine, writes no journal record and creates nothing:
 *
 * - fake: its image file (`<state-dir>/fake-backend.json`) is loaded into memory, never saved.
 * - overlay: opening the store (`createOverlayBackend`) tidies it (start-up recovery: dead transient
 *   containers, stale mounts, half-made directories, unreferenced blobs) under the store's lock, so
 *   the inventory does not open it: it reads the objects' `meta.json` files and the run directory's
 *   `running/` marks directly, as `list` does (without the lock: metas are replaced atomically). A
 *   transient container whose boot is over (no `live/` mark) is what recovery removes the next time
 *   the store is opened, before any engine lists it: it is left out of `objects`, and named in
 *   `droppedAtOpen`.
 * - lxd: `list` is two GETs on the REST API; nothing is ensured (no project is created).
 *
 * It runs in this process even when atelierd serves the state directory: all three reads are safe
 * beside a running engine (no lock is needed to read, and nothing is written).
 *
 * @example
 * ```sh
 * atelier inventory                     # a table, for reading
 * atelier inventory --json > inv.json   # the file for atelier replay reconcile --inventory inv.json
 * ```
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createBackend, fakeStateFile, overlayRoot, overlayRunDir, type BackendConfig } from '../backends/select.ts';
import { isBackendError, LAYER_KINDS, type ObjectInfo, type ObjectRef, type Space } from '../backends/types.ts';
import { ATELIER_VERSION } from '../engine/version.ts';
import { AtelierError, isAtelierError } from '../machines/errors.ts';
import { validateOwnerName } from '../machines/names.ts';
import type { Context } from './context.ts';

export const INVENTORY_KIND = 'atelier-inventory';

/** What `atelier inventory --json` prints (without the `ok` every JSON result carries). */
export interface Inventory {
  /** The atelier version that took it. */
  readonly atelier: string;
  readonly kind: typeof INVENTORY_KIND;
  /** The backend it was taken from: `fake`, `overlay`, `lxd`. */
  readonly backend: string;
  /** Whose objects these are (the `owner` tag every one of them carries). */
  readonly owner: string;
  /** When it was taken (ISO 8601). */
  readonly at: string;
  /** Every object `list(owner)` answers, as it answers them. */
  readonly objects: ObjectInfo[];
  /** Overlay only: transient containers the store removes when it is next opened (their boot is over). */
  readonly droppedAtOpen?: ObjectRef[];
}

/**
 * Take the inventory of the configured backend for `cfg.owner`, read-only (see the header for how
 * each backend is read).
 *
 * @throws AtelierError `UNAVAILABLE` when the backend cannot be read.
 */
export async function takeInventory(cfg: BackendConfig, now: () => string = () => new Date().toISOString()): Promise<Inventory> {
  const head = { atelier: ATELIER_VERSION, kind: INVENTORY_KIND, backend: cfg.kind, owner: cfg.owner } as const;
  try {
    if (cfg.kind === 'overlay') {
      const { objects, dropped } = await readOverlay(cfg);
      return { ...head, at: now(), objects, ...(dropped.length ? { droppedAtOpen: dropped } : {}) };
    }
    // fake: read-only (its file loaded, never saved); lxd: opening it sends nothing.
    const backend = await createBackend(cfg, { readOnly: true });
    try {
      return { ...head, at: now(), objects: await backend.list(cfg.owner) };
    } finally {
      await backend.close().catch(() => undefined);
    }
  } catch (e) {
    if (isAtelierError(e)) throw e;
    const where = cfg.kind === 'fake' ? ` (${fakeStateFile(cfg.stateDir)})` : cfg.kind === 'overlay' ? ` (${overlayRoot(cfg.stateDir)})` : '';
    throw new AtelierError(
      'UNAVAILABLE',
      `cannot take the inventory of the ${cfg.kind} backend${where}: ${(e as Error)?.message ?? String(e)}; check --backend and --state-dir name the host's backend`,
      { backend: cfg.kind, ...(isBackendError(e) ? { cause: e.code } : {}) },
      { cause: e },
    );
  }
}

/**
 * The overlay store's objects as `list(owner)` reports them once the store is open, read without
 * opening it (opening recovers, which writes). A missing store holds nothing.
 */
async function readOverlay(cfg: BackendConfig): Promise<{ objects: ObjectInfo[]; dropped: ObjectRef[] }> {
  const { Layout } = await import('../backends/overlay/layout.ts');
  const { readMeta, toInfo } = await import('../backends/overlay/meta.ts');
  const { exists, listDir } = await import('../backends/overlay/fsutil.ts');
  const root = overlayRoot(cfg.stateDir);
  // The CLI always has a run directory; the overlay backend's own default is for embedders.
  const layout = new Layout(root, overlayRunDir(cfg.runDir ?? join(cfg.stateDir, 'run'), root));
  const objects: ObjectInfo[] = [];
  const dropped: ObjectRef[] = [];
  for (const space of ['layers', 'workshops'] as Space[]) {
    const names = (await listDir(join(layout.objects, space))).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const name of names) {
      const meta = await readMeta(layout, { space, name });
      if (!meta || meta.tags?.owner !== cfg.owner) continue;
      if (meta.volatile && !(await exists(layout.livePath(name)))) {
        dropped.push({ space, name });
        continue;
      }
      objects.push(toInfo(meta, (await exists(layout.runningPath(meta.ref))) ? 'running' : 'stopped'));
    }
  }
  return { objects, dropped };
}

/** `atelier inventory`: the table, or with `--json` the inventory file's object. */
export async function inventoryCommand(ctx: Context, opts: { owner?: string } = {}): Promise<number> {
  // `--owner`: another user's objects, as root (or an administrator) lists them on a host, like
  // `lxc list --all-projects`; the name is checked as owner names are before anything is read.
  const owner = opts.owner === undefined ? ctx.owner : validateOwnerName(opts.owner);
  const inv = await takeInventory({ ...ctx.backendConfig, owner });
  ctx.out.result({ ...inv }, () => formatInventory(inv));
  return 0;
}

/** The human form: one row per object, and how to save it as a file. */
export function formatInventory(inv: Inventory): string {
  const rows = [['SPACE', 'NAME', 'KIND', 'WORKSHOP', 'OP', 'STATUS']];
  for (const o of inv.objects) rows.push([o.ref.space, o.ref.name, o.tags.kind ?? '', o.tags.workshop ?? '', o.tags.op ?? '', o.status]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = inv.objects.length ? rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')) : [];
  const n = inv.objects.length;
  lines.push(`${n} object${n === 1 ? '' : 's'} of ${inv.owner} on the ${inv.backend} backend`);
  for (const d of inv.droppedAtOpen ?? []) lines.push(`left out: ${d.space}/${d.name} (a transient container whose boot is over: the store removes it when next opened)`);
  lines.push('to replay reconciliation elsewhere: atelier inventory --json > FILE, then atelier replay reconcile --inventory FILE --journal DIR');
  return lines.join('\n');
}

// ---- reading an inventory file ---------------------------------------------------------------

const KINDS: readonly string[] = ['workshop', 'container', ...LAYER_KINDS];

/**
 * Read and check an inventory file (what `atelier inventory --json` printed). Changes nothing.
 *
 * @throws AtelierError `NOT_FOUND` when the file does not exist; `INVALID_ARGUMENT` when it cannot
 *   be read, is not JSON, holds an error or something other than an inventory, or an object in it
 *   is malformed or not the inventory owner's. Each message names the file and what to do.
 */
export async function readInventory(file: string): Promise<Inventory> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new AtelierError('NOT_FOUND', `inventory file ${file} does not exist: take one on the host with \`atelier inventory --json > FILE\` and give its path to --inventory`, { inventory: file });
    }
    throw new AtelierError('INVALID_ARGUMENT', `cannot read inventory file ${file} (${(e as Error).message}): give --inventory a readable file written by \`atelier inventory --json > FILE\``, {
      inventory: file,
      ...(code ? { cause: code } : {}),
    });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw bad(file, `is not JSON (${(e as Error).message})`);
  }
  return checkInventory(data, file);
}

function bad(file: string, what: string, info: Record<string, unknown> = {}): AtelierError {
  return new AtelierError('INVALID_ARGUMENT', `inventory file ${file} ${what}: take it again on the host with \`atelier inventory --json > FILE\``, { inventory: file, ...info });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isText = (v: unknown): v is string => typeof v === 'string' && v !== '';

/** Check a parsed inventory (see `readInventory`); `file` names it in messages. */
export function checkInventory(data: unknown, file: string): Inventory {
  if (!isObject(data)) throw bad(file, 'does not hold a JSON object');
  if (data.ok === false) {
    const err = isObject(data.error) ? `${String(data.error.code)}: ${String(data.error.message)}` : 'an error';
    throw bad(file, `holds the error the command printed instead of an inventory (${err})`);
  }
  if (data.kind !== INVENTORY_KIND) throw bad(file, `is not an atelier inventory (its "kind" is ${JSON.stringify(data.kind)}, not "${INVENTORY_KIND}")`);
  if (!isText(data.owner)) throw bad(file, 'names no owner');
  if (!isText(data.backend)) throw bad(file, 'names no backend');
  if (!Array.isArray(data.objects)) throw bad(file, 'has no "objects" list');
  const owner = data.owner;
  const seen = new Set<string>();
  const objects = data.objects.map((o: unknown, i: number): ObjectInfo => {
    const at = `objects[${i}]`;
    if (!isObject(o) || !isObject(o.ref) || !isObject(o.tags) || !isObject(o.identity)) throw bad(file, `has a malformed ${at} (each object needs ref, tags, status and identity)`, { index: i });
    const { space, name } = o.ref;
    if ((space !== 'workshops' && space !== 'layers') || !isText(name)) throw bad(file, `has a malformed ${at}.ref (space "workshops" or "layers", and a name)`, { index: i });
    const key = `${space}/${name}`;
    if (seen.has(key)) throw bad(file, `lists ${key} twice`, { index: i });
    seen.add(key);
    const tags = o.tags;
    if (Object.values(tags).some((v) => typeof v !== 'string')) throw bad(file, `has non-text tags in ${at} (${key})`, { index: i });
    if (tags.owner !== owner) throw bad(file, `lists ${key}, whose owner is ${JSON.stringify(tags.owner)}, in an inventory of ${JSON.stringify(owner)}`, { index: i });
    if (!isText(tags.op) || !KINDS.includes(tags.kind as string)) throw bad(file, `has ${at} (${key}) without an op tag or a known kind (${KINDS.join(', ')})`, { index: i });
    if (o.status !== 'running' && o.status !== 'stopped') throw bad(file, `has ${at} (${key}) with status ${JSON.stringify(o.status)} (running or stopped)`, { index: i });
    if (typeof o.identity.mac !== 'string' || typeof o.identity.uuid !== 'string') throw bad(file, `has ${at} (${key}) without an identity (mac, uuid)`, { index: i });
    if (o.base !== undefined && typeof o.base !== 'string') throw bad(file, `has ${at} (${key}) with a base that is not text`, { index: i });
    return {
      ref: { space, name },
      tags: { ...(tags as Record<string, string>) } as unknown as ObjectInfo['tags'],
      status: o.status,
      identity: { mac: o.identity.mac, uuid: o.identity.uuid },
      ...(o.base !== undefined ? { base: o.base } : {}),
    };
  });
  const dropped = Array.isArray(data.droppedAtOpen)
    ? data.droppedAtOpen.filter((r): r is ObjectRef => isObject(r) && (r.space === 'workshops' || r.space === 'layers') && isText(r.name)).map((r) => ({ space: r.space, name: r.name }))
    : [];
  return {
    atelier: typeof data.atelier === 'string' ? data.atelier : 'unknown',
    kind: INVENTORY_KIND,
    backend: data.backend,
    owner,
    at: typeof data.at === 'string' ? data.at : '',
    objects,
    ...(dropped.length ? { droppedAtOpen: dropped } : {}),
  };
}

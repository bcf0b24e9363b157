/**
 * How atelier's tags and copy rules map onto LXD instance config.
 *
 * - Tags are `user.atelier.<key>` config keys, stored verbatim (`user.atelier.sdkHash`).
 * - Keys the adapter keeps for itself live under `user.atelier-internal.` (not tags: `list` and
 *   `inspect` never report them): the base an object descends from, the object a transient container
 *   was made from (for the `IN_USE` rule), its scratch key, and a layer's saved `boot.autostart`.
 * - A copy carries every non-`volatile.*` key plus `volatile.base_image` and
 *   `volatile.last_state.idmap` (what is on disk and how it is shifted), never identity (uuid, MAC).
 *   Layers get `boot.autostart=false`; the instance's own value is saved and given back when a layer
 *   is copied back to an instance.
 */
import type { Identity, ObjectKind, ObjectRef, Space, Tags } from '../types.ts';
import { LAYER_KINDS } from '../types.ts';

export const TAG_PREFIX = 'user.atelier.';
export const INTERNAL_PREFIX = 'user.atelier-internal.';
export const BASE_KEY = `${INTERNAL_PREFIX}base`;
export const SOURCE_KEY = `${INTERNAL_PREFIX}source`;
export const SCRATCH_KEY = `${INTERNAL_PREFIX}scratch`;
export const AUTOSTART_KEY = `${INTERNAL_PREFIX}boot.autostart`;
export const TEMP_KEY = `${INTERNAL_PREFIX}temp`;
export const OWNER_KEY = `${TAG_PREFIX}owner`;
export const OP_KEY = `${TAG_PREFIX}op`;

/** Volatile keys a copy keeps: the on-disk state, not the identity. */
export const CARRIED_VOLATILE = ['volatile.base_image', 'volatile.last_state.idmap'] as const;

export function isLayerKind(kind: ObjectKind | string | undefined): boolean {
  return kind !== undefined && (LAYER_KINDS as readonly string[]).includes(kind);
}

export function tagsToConfig(tags: Tags): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags)) if (v !== undefined) out[TAG_PREFIX + k] = v;
  return out;
}

export function tagsOf(config: Record<string, string>): Tags {
  const tags: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) if (k.startsWith(TAG_PREFIX)) tags[k.slice(TAG_PREFIX.length)] = v;
  return tags as unknown as Tags;
}

/** The MAC of the first NIC (by device name) and the uuid; empty strings until LXD assigns them. */
export function identityOf(config: Record<string, string>): Identity {
  const macs = Object.keys(config)
    .filter((k) => /^volatile\.[^.]+\.hwaddr$/.test(k))
    .sort();
  const eth0 = config['volatile.eth0.hwaddr'];
  return { mac: eth0 ?? (macs.length ? config[macs[0]!]! : ''), uuid: config['volatile.uuid'] ?? '' };
}

/** `space/name`, as the internal source key stores it. */
export function refKey(ref: ObjectRef): string {
  return `${ref.space}/${ref.name}`;
}

/**
 * The config a copy of `source` should carry, with `tags` as its tags and `targetKind` deciding the
 * autostart rule. Transient-container bookkeeping (source, scratch, temp) never carries.
 */
export function carriedConfig(source: Record<string, string>, tags: Tags, targetKind: ObjectKind): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(source)) {
    if (k.startsWith('volatile.') && !(CARRIED_VOLATILE as readonly string[]).includes(k)) continue;
    if (k.startsWith(TAG_PREFIX)) continue;
    if (k === SOURCE_KEY || k === SCRATCH_KEY || k === TEMP_KEY) continue;
    out[k] = v;
  }
  Object.assign(out, tagsToConfig(tags));
  if (isLayerKind(targetKind)) {
    // Save the instance's own autostart once (a layer copied from a layer already holds it).
    if (!(AUTOSTART_KEY in source)) out[AUTOSTART_KEY] = source['boot.autostart'] ?? '';
    out['boot.autostart'] = 'false';
    if (out[AUTOSTART_KEY] === '') delete out[AUTOSTART_KEY];
  } else {
    if (AUTOSTART_KEY in source || isLayerKind(source[`${TAG_PREFIX}kind`])) {
      const saved = source[AUTOSTART_KEY];
      if (saved === undefined) delete out['boot.autostart'];
      else out['boot.autostart'] = saved;
      delete out[AUTOSTART_KEY];
    }
    // A transient container never comes back after a reboot.
    if (targetKind === 'container') out['boot.autostart'] = 'false';
  }
  return out;
}

/**
 * The config for a copy request: LXD merges the source's config with the request's, and drops a key
 * given as "" — so every source key the copy must not carry is sent as "".
 */
export function copyRequestConfig(source: Record<string, string>, carried: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = { ...carried };
  for (const k of Object.keys(source)) if (!(k in out)) out[k] = '';
  return out;
}

/**
 * The whole config to PUT on a refresh-copy's target: the target keeps its own volatile keys (its
 * identity: uuid, MAC, idmap bookkeeping) except the carried ones, which describe the new root
 * filesystem and come from the source; everything else is the source's carried config.
 */
export function refreshConfig(source: Record<string, string>, target: Record<string, string>, carried: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(target)) {
    if (k.startsWith('volatile.') && !(CARRIED_VOLATILE as readonly string[]).includes(k)) out[k] = v;
  }
  for (const k of CARRIED_VOLATILE) {
    const v = source[k] ?? target[k];
    if (v !== undefined) out[k] = v;
  }
  // `volatile.apply_template` stays as LXD's refresh left it (`copy`): the image's templates are
  // applied again at the next start, as for any copy.
  Object.assign(out, carried);
  return out;
}

/** The devices a copy carries: the source's own, minus the transient scratch mount. */
export function carriedDevices(devices: Record<string, Record<string, string>>): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const [k, v] of Object.entries(devices)) if (k !== SCRATCH_DEVICE) out[k] = v;
  return out;
}

export const SCRATCH_DEVICE = 'atelier-scratch';
/** Where a transient container sees its shared scratch volume. */
export const SCRATCH_PATH = '/scratch';

export function projectName(space: Space, owner: string): string {
  return space === 'workshops' ? `workshop.${owner}` : `workshop-layers.${owner}`;
}

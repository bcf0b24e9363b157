/**
 * Object metadata: one `meta.json` per object (instance or layer), written atomically.
 *
 * A meta file holds the port-visible facts (tags, identity, base) and the storage facts: the chain
 * of immutable blobs (bottom first) and, for instances, the writable upper blob. Transient
 * containers also record what they depend on and the scratch they share.
 *
 * @example
 * ```ts
 * const meta = await readMeta(layout, { space: 'layers', name: 'ros2-0123456789abcdef' });
 * if (meta) console.log(meta.chain.length, meta.identity.mac);
 * ```
 */
import { readFile } from 'node:fs/promises';
import { randomBytes, randomUUID } from 'node:crypto';
import { BackendError, spaceOf } from '../types.ts';
import type { Identity, ObjectInfo, ObjectRef, Status, Tags } from '../types.ts';
import type { Layout } from './layout.ts';
import { writeFileAtomic } from './fsutil.ts';

export const META_VERSION = 1;

export interface ObjectMeta {
  readonly version: number;
  readonly ref: ObjectRef;
  readonly tags: Tags;
  readonly identity: Identity;
  readonly base?: string;
  /** Immutable blob ids, bottom first. */
  readonly chain: readonly string[];
  /** Instances: the writable upper blob. Absent for layers and for containers on a shared scratch. */
  readonly upper?: string;
  /** Transient container: removed at start-up once its boot is over. */
  readonly volatile?: boolean;
  /** Transient container: the object it was created from (which may not be removed meanwhile). */
  readonly dependsOn?: ObjectRef;
  /** Transient container: the shared scratch key, when it runs on one. */
  readonly scratch?: string;
}

/** Names become directory names: keep them to one safe path component (LXD's host-name rules). */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$/;

export function checkName(name: string, what = 'name'): void {
  if (!NAME_RE.test(name) || name.includes('..')) {
    throw new BackendError('INVALID', `invalid ${what} ${JSON.stringify(name)}: use letters, digits, '.', '_', '@' and '-' (at most 63)`, { name });
  }
}

/** Check a ref's name and that the tagged kind lives in the ref's space. */
export function checkRef(ref: ObjectRef, tags?: Tags): void {
  if (ref.space !== 'workshops' && ref.space !== 'layers') throw new BackendError('INVALID', `unknown space ${String(ref.space)}`);
  checkName(ref.name);
  if (tags && spaceOf(tags.kind) !== ref.space) {
    throw new BackendError('INVALID', `a ${tags.kind} belongs in space ${spaceOf(tags.kind)}, not ${ref.space}`, { ref, kind: tags.kind });
  }
}

/** A new identity. The MAC uses LXD's 00:16:3e prefix, like the instances LXD makes. */
export function newIdentity(): Identity {
  const b = randomBytes(3);
  const mac = ['00', '16', '3e', ...[...b].map((x) => x.toString(16).padStart(2, '0'))].join(':');
  return { mac, uuid: randomUUID() };
}

export async function readMeta(layout: Layout, ref: ObjectRef): Promise<ObjectMeta | null> {
  let text: string;
  try {
    text = await readFile(layout.metaPath(ref), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw e;
  }
  const meta = JSON.parse(text) as ObjectMeta;
  if (meta.version > META_VERSION) {
    throw new BackendError('INTERNAL', `${ref.space}/${ref.name} was written by a newer atelier (meta version ${meta.version})`);
  }
  return meta;
}

/** Replace an existing object's meta atomically. */
export async function writeMeta(layout: Layout, meta: ObjectMeta): Promise<void> {
  await writeFileAtomic(layout.metaPath(meta.ref), JSON.stringify(meta, null, 2) + '\n');
}

/** Tags stored verbatim, without `undefined` entries (JSON would drop them anyway). */
export function cleanTags(tags: Tags): Tags {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags)) if (v !== undefined) out[k] = v;
  return out as Tags;
}

export function toInfo(meta: ObjectMeta, status: Status): ObjectInfo {
  return { ref: { space: meta.ref.space, name: meta.ref.name }, tags: meta.tags, status, identity: meta.identity, ...(meta.base ? { base: meta.base } : {}) };
}

/** Port rule 2: an object without the owner tag (or another owner's, when one is given) is never touched. */
export function assertOwned(meta: ObjectMeta, owner?: string): void {
  if (!meta.tags?.owner || (owner !== undefined && meta.tags.owner !== owner)) {
    throw new BackendError('NOT_OWNED', `${meta.ref.space}/${meta.ref.name} is not owned by ${owner ?? 'atelier'}; atelier will not touch it`, { ref: meta.ref });
  }
}

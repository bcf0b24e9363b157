/**
 * The SDK cache, as the state sees it: shared SDK layers, who holds them, which are being built,
 * and which the cache policy lets go. Pure functions of the folded state; `decide` and the engine
 * ask them, `evolve` never does.
 *
 * ## Terms
 *
 * - **shared layer**: an SDK layer named by its content, `<sdk>-<key>`, where `key` hashes the
 *   base's fingerprint and the SDK's chain hash (`engine/cache.ts`). Every workshop, in any
 *   project, whose chain on that base has that prefix uses the same layer. Its record has
 *   `shared: true`, no `workshop`, its `parent` (the shared layer of the SDK before it, if any)
 *   and `usedAt` (the last op that used it began then).
 * - **holder**: what keeps a shared layer: a workshop whose SDKs name it, a stash that names it
 *   (a stash holds shared layers by reference: they never change, so it copies none), an op in
 *   progress whose plan names it, a transient container run from it.
 * - **in flight**: a shared layer an op in progress will snapshot and whose completion is not
 *   journaled yet. A layer is usable only once `present`: its snapshot's `effect.succeeded` (or
 *   reconciliation's `done`) is on disk, like the commit marker of Workshop's `TakeSnapshot`.
 * - **cache entry**: a present shared layer nobody holds. Kept for reuse within the policy
 *   (`--cache-keep COUNT|SIZE`), least recently used evicted first; `atelier gc --cache` evicts all.
 *
 * ## Lifecycle of a shared layer
 *
 * ```
 *  (absent) ──snapshot requested──► pending ──effect.succeeded──► present (held)
 *      ▲                              │ undo / given up                 │ last holder gone
 *      │                              ▼                                 ▼
 *      └───────── removed ◄──── remove requested          present (cache entry)
 *      └───── cache.evicted ◄── removing ◄──cache.evicting──────────────┘
 * ```
 *
 * @example
 * ```ts
 * holdersOf(world).get('ros2-3f9a0c1d2b4e5f60'); // ['workshop:nav2', 'workshop:perception']
 * evictable(world, { count: 2 }); // the refs the policy lets go, least recently used first
 * ```
 */
import type { DomainState, FoldState, ObjectRecord } from './state.ts';
import type { ObjectRef, Plan, WorkshopShape } from './types.ts';

/** How many unheld shared layers the cache keeps: at most `count` of them, at most `bytes` in all. */
export interface CachePolicy {
  readonly count?: number;
  readonly bytes?: number;
}

/** The default: ten unheld layers (`--cache-keep 10`). */
export const DEFAULT_CACHE_POLICY: CachePolicy = { count: 10 };

const layerKey = (name: string) => `layers/${name}`;

/** The shared layer record named `layer`, if the state has one. */
export function sharedRecord(s: FoldState, layer: string): ObjectRecord | undefined {
  const o = s.objects[layerKey(layer)];
  return o?.shared ? o : undefined;
}

/** A shared layer whose completion is journaled: reusable. */
export function isUsable(s: FoldState, layer: string): boolean {
  return sharedRecord(s, layer)?.state === 'present';
}

function shapeLayers(shape: WorkshopShape | null, out: Set<string>): void {
  if (!shape) return;
  for (const l of shape.sdks) out.add(l.layer);
  if (shape.stash) for (const l of shape.stash.sdkLayers) out.add(l.copy ?? l.layer);
}

/** Every layer a plan names: its shapes' and its steps' sources and targets. */
export function planLayers(plan: Plan): Set<string> {
  const out = new Set<string>();
  shapeLayers(plan.before, out);
  shapeLayers(plan.after, out);
  for (const step of [...plan.do, ...plan.cleanup]) {
    const e = step.effect;
    if (e.type === 'copy' && e.source.space === 'layers') out.add(e.source.name);
    if ((e.type === 'copy' || e.type === 'create' || e.type === 'remove') && e.target.space === 'layers') out.add(e.target.name);
  }
  return out;
}

/**
 * Who holds each shared layer: `workshop:<name>`, `stash:<name>`, `op:<id>`, `container:<id>`,
 * sorted. A layer nobody holds is absent from the map.
 */
export function holdersOf(st: DomainState): Map<string, string[]> {
  const s = st.durable;
  const out = new Map<string, string[]>();
  const add = (layer: string, who: string) => {
    if (!sharedRecord(s, layer)) return;
    const list = out.get(layer);
    if (list) {
      if (!list.includes(who)) list.push(who);
    } else out.set(layer, [who]);
  };
  for (const ws of Object.values(s.workshops)) {
    for (const l of ws.sdks) add(l.layer, `workshop:${ws.name}`);
    if (ws.stash) for (const l of ws.stash.sdkLayers) if (l.copy === null) add(l.layer, `stash:${ws.name}`);
  }
  for (const op of Object.values(s.ops)) for (const l of planLayers(op.plan)) add(l, `op:${op.id}`);
  for (const c of Object.values(st.volatile.containers)) if (c.source.space === 'layers') add(c.source.name, `container:${c.id}`);
  for (const list of out.values()) list.sort(byCodePoint);
  return out;
}

/**
 * Which of `layers` are busy: an op in progress will snapshot it and has not journaled it done,
 * its record is half-way for an op in progress, or it is being evicted (`evicting`: the engine's
 * evictions under way). A command that needs one waits until none is (one flight per layer), then
 * decides on what they left. A record left half-way by a given-up op is not busy: nobody will
 * finish it, and a new snapshot takes its place (the reconciliation table's `create-conflict`).
 */
export function busyLayers(s: FoldState, layers: readonly string[], evicting: ReadonlySet<string> = new Set()): string[] {
  const wanted = new Set(layers);
  const out = new Set<string>();
  for (const name of wanted) {
    const o = sharedRecord(s, name);
    if (o && (o.state === 'pending' || o.state === 'removing') && (s.ops[o.op] !== undefined || evicting.has(name))) out.add(name);
  }
  for (const op of Object.values(s.ops)) {
    for (const step of op.plan.do) {
      const e = step.effect;
      if (e.type === 'copy' && e.target.space === 'layers' && wanted.has(e.target.name) && !isUsable(s, e.target.name)) out.add(e.target.name);
    }
  }
  return [...out].sort(byCodePoint);
}

/**
 * The cache entries (present shared layers nobody holds), least recently used first; among layers
 * used at the same time (one chain), the deepest first, so that a parent outlives its children.
 */
export function cacheEntries(st: DomainState): ObjectRecord[] {
  const held = holdersOf(st);
  const objects = st.durable.objects;
  const depth = (o: ObjectRecord): number => {
    let d = 0;
    for (let p = o.parent; p !== undefined && d < 64; p = objects[`layers/${p}`]?.parent) d++;
    return d;
  };
  return Object.values(objects)
    .filter((o) => o.shared && o.state === 'present' && !held.has(o.ref.name))
    .map((o) => ({ o, d: depth(o) }))
    .sort((a, b) => byCodePoint(a.o.usedAt ?? '', b.o.usedAt ?? '') || b.d - a.d || byCodePoint(a.o.ref.name, b.o.ref.name))
    .map(({ o }) => o);
}

/**
 * The cache entries `policy` lets go, in the order to remove them: the least recently used beyond
 * the policy's count or bytes (`sizes`: bytes by layer name; a layer of unknown size counts as 0),
 * and with each, every entry that descends from it (a layer whose parent is gone is never reused:
 * reuse takes a chain's prefix).
 */
export function evictable(st: DomainState, policy: CachePolicy, sizes: Readonly<Record<string, number>> = {}): ObjectRef[] {
  const entries = cacheEntries(st);
  const keep = new Set<string>();
  let bytes = 0;
  // Most recently used first: keep while the policy allows.
  for (const o of [...entries].reverse()) {
    const size = sizes[o.ref.name] ?? 0;
    if (policy.count !== undefined && keep.size >= policy.count) break;
    if (policy.bytes !== undefined && bytes + size > policy.bytes) break;
    keep.add(o.ref.name);
    bytes += size;
  }
  const out = new Set(entries.filter((o) => !keep.has(o.ref.name)).map((o) => o.ref.name));
  // Descendants of an evicted entry go with it (children of children too).
  for (let grew = true; grew; ) {
    grew = false;
    for (const o of entries) {
      if (!out.has(o.ref.name) && o.parent !== undefined && out.has(o.parent)) {
        out.add(o.ref.name);
        grew = true;
      }
    }
  }
  return entries.filter((o) => out.has(o.ref.name)).map((o) => o.ref);
}

const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

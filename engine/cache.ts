/**
 * The SDK cache, as the engine runs it: names a spec's shared layers from its base's fingerprint,
 * holds a command back while a layer it needs is being built or evicted (one flight per layer),
 * and applies the cache policy once commands end (evictions journaled before the backend removes
 * anything). What is shared, held, busy or evictable is the state's to say (`machines/cache.ts`).
 *
 * @example
 * ```ts
 * parseCacheKeep('10');    // { count: 10 }: keep the ten most recently used unheld layers
 * parseCacheKeep('20GiB'); // { bytes: 21474836480 }
 * ```
 */
import { createHash } from 'node:crypto';
import { firstValueFrom, filter, type Observable } from 'rxjs';
import { isBackendError, type Backend } from '../backends/types.ts';
import { AtelierError } from '../machines/errors.ts';
import { sdkLayerName } from '../machines/names.ts';
import { busyLayers, evictable, type CachePolicy } from '../machines/cache.ts';
import type { DomainState, Input, KeyedEvent, ObjectDescriptor, ObjectRef, WorkshopSpec } from '../machines/index.ts';
import { Serialiser } from './serialise.ts';

export { DEFAULT_CACHE_POLICY, type CachePolicy } from '../machines/cache.ts';

/**
 * The content key of an SDK layer: sha256 over the base's fingerprint and the SDK's chain hash
 * (which already chains every SDK before it), length-prefixed; first 16 hex characters.
 */
export function layerKey(baseFingerprint: string, chainHash: string): string {
  const h = createHash('sha256');
  for (const part of [baseFingerprint, chainHash]) {
    const b = Buffer.from(part, 'utf8');
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(b.length));
    h.update(len).update(b);
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * `spec` with each SDK's shared layer named (`SdkSpec.layer`). A base the backend does not know
 * gets no names: the launch then fails at its create step as it always did, with the backend's words.
 */
export async function withSharedLayers(backend: Backend, spec: WorkshopSpec): Promise<WorkshopSpec> {
  let fingerprint: string;
  try {
    fingerprint = await backend.baseFingerprint(spec.base);
  } catch (e) {
    if (isBackendError(e, 'NOT_FOUND')) return spec;
    if (!isBackendError(e)) throw e;
    // Nothing is journaled yet: the command did nothing, and says so with the backend's reason.
    const code = e.code === 'UNAVAILABLE' || e.code === 'NO_SPACE' ? e.code : 'OP_FAILED';
    throw new AtelierError(code, `cannot read the fingerprint of base "${spec.base}" (the SDK cache's layer names): ${e.message}; nothing changed: try again`, { workshop: spec.name, base: spec.base, cause: e.code, fingerprint: true }, { cause: e });
  }
  return { ...spec, sdks: spec.sdks.map((s) => ({ ...s, layer: sdkLayerName(s.name, layerKey(fingerprint, s.hash)) })) };
}

const UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, KB: 1024, KIB: 1024, M: 1024 ** 2, MB: 1024 ** 2, MIB: 1024 ** 2, G: 1024 ** 3, GB: 1024 ** 3, GIB: 1024 ** 3, T: 1024 ** 4, TB: 1024 ** 4, TIB: 1024 ** 4 };

/**
 * `--cache-keep SIZE|COUNT`: a bare number is how many unheld layers to keep; a number with a unit
 * (`B`, `K`/`KiB`, `M`/`MiB`, `G`/`GiB`, `T`/`TiB`; powers of 1024) how many bytes.
 *
 * @throws AtelierError `INVALID_ARGUMENT` naming the value and the forms it takes.
 */
export function parseCacheKeep(text: string): CachePolicy {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m?.[2]?.toUpperCase() ?? '';
  if (!m || !(unit in UNITS) || (unit === '' && m[1]!.includes('.'))) {
    throw new AtelierError('INVALID_ARGUMENT', `--cache-keep ${JSON.stringify(text)} is not valid: give a count of layers (e.g. 10) or a size (e.g. 20GiB, 500M)`, { option: 'cache-keep', value: text });
  }
  return unit === '' ? { count: Number(m[1]) } : { bytes: Math.floor(Number(m[1]) * UNITS[unit]!) };
}

/** What the cache needs of the engine. */
export interface CacheHost {
  readonly world: DomainState;
  readonly backend: Backend;
  readonly owner: string;
  readonly clock: () => string;
  readonly changes$: Observable<unknown>;
  /** Told when a command starts waiting on another's layer; the function it returns, when it stops (simulation's interleavings). */
  readonly waitHook?: (() => () => void) | undefined;
  record(events: readonly KeyedEvent[]): Promise<void>;
  decide(input: Input): KeyedEvent[];
}

/**
 * The engine's side of the cache. `claim` and `trim` share one lock around deciding and journaling
 * (what a command reuses, what the policy evicts), so an eviction never crosses a reuse: a layer a
 * plan names is held, one being evicted is busy.
 */
export class SdkCache {
  private readonly lock = new Serialiser();
  /** Layers whose eviction is journaled and whose removal is under way. */
  private readonly evicting = new Set<string>();

  constructor(
    private readonly host: CacheHost,
    public policy: CachePolicy,
  ) {}

  /**
   * Wait until none of `spec`'s shared layers is busy, then hold the lock: the caller decides and
   * journals its op's first records, then calls the returned `release` (idempotent).
   */
  async claim(spec: WorkshopSpec | undefined): Promise<() => void> {
    const names = (spec?.sdks ?? []).flatMap((s) => (s.layer ? [s.layer] : []));
    const free = () => busyLayers(this.host.world.durable, names, this.evicting).length === 0;
    for (;;) {
      if (!free()) {
        const done = this.host.waitHook?.();
        // `done` runs in the emission that frees the layers, before the job that freed them goes on.
        await firstValueFrom(this.host.changes$.pipe(filter(() => free() && (done?.(), true))));
      }
      const release = await this.enter();
      if (free()) return release;
      release();
    }
  }

  private async enter(): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    await new Promise<void>((entered) => void this.lock.run('cache', () => (entered(), held)));
    let done = false;
    return () => {
      if (!done) (done = true), release();
    };
  }

  /**
   * Evict what the policy (or, `all`, `atelier gc --cache`) lets go: journaled first, then removed
   * from the backend one by one. The refs evicted; `dryRun` only says which.
   */
  async trim(opts: { all?: boolean; dryRun?: boolean } = {}): Promise<ObjectRef[]> {
    const h = this.host;
    const sizes = this.policy.bytes !== undefined && !opts.all ? await this.sizes() : undefined;
    if (opts.dryRun) return evictable(h.world, opts.all ? { count: 0 } : this.policy, sizes);
    const release = await this.enter();
    let events: KeyedEvent[] | undefined;
    let stale: ObjectDescriptor[] | undefined;
    try {
      // Evictions journaled but never finished (a removal that failed, a crash): finished now.
      stale = Object.values(h.world.durable.objects)
        .filter((o) => o.shared && o.state === 'removing' && !h.world.durable.ops[o.op] && !this.evicting.has(o.ref.name))
        .map((o) => ({ ref: o.ref, kind: o.kind, op: o.op }));
      events = h.decide({ type: 'cache.trim', at: h.clock(), policy: this.policy, ...(opts.all ? { all: true } : {}), ...(sizes ? { sizes } : {}) });
      for (const o of stale) this.evicting.add(o.ref.name);
      for (const e of events) if (e.type === 'cache.evicting') this.evicting.add(e.data.object.ref.name);
      if (events.length > 0) await h.record(events);
    } catch (e) {
      // Only this trim's: another trim's evictions under way stay busy.
      for (const o of stale ?? []) this.evicting.delete(o.ref.name);
      for (const ev of events ?? []) if (ev.type === 'cache.evicting') this.evicting.delete(ev.data.object.ref.name);
      throw e;
    } finally {
      release();
    }
    const objects = [...stale, ...events.flatMap((e) => (e.type === 'cache.evicting' ? [e.data.object] : []))];
    const evicted: ObjectRef[] = [];
    try {
      for (const object of objects) {
        if (await this.removeLayer(object.ref)) evicted.push(object.ref);
        else await h.record(h.decide({ type: 'cache.evicted', at: h.clock(), object, kept: true }));
        this.evicting.delete(object.ref.name);
      }
    } finally {
      // A removal whose outcome could not even be read leaves its layer `removing`: the next trim
      // (or reconciliation) finishes it.
      for (const o of objects) this.evicting.delete(o.ref.name);
    }
    return evicted;
  }

  /**
   * Remove an evicted layer and journal it gone; false when the backend still holds it after a
   * failed removal (in use: a cache entry again). A failure is judged by asking the backend again,
   * never by the error alone (a removal can fail after it took effect).
   */
  private async removeLayer(ref: ObjectRef): Promise<boolean> {
    const h = this.host;
    try {
      await h.backend.remove(ref);
    } catch (err) {
      if (!isBackendError(err)) throw err;
      if ((await h.backend.inspect(ref)) !== null) return false;
    }
    const object = h.world.durable.objects[`${ref.space}/${ref.name}`];
    await h.record(h.decide({ type: 'cache.evicted', at: h.clock(), object: { ref, kind: object?.kind ?? 'sdk', ...(object ? { op: object.op } : {}) } }));
    return true;
  }

  private async sizes(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const u of await this.host.backend.usage(this.host.owner)) if (u.ref.space === 'layers' && u.bytes !== null) out[u.ref.name] = u.bytes;
    return out;
  }
}

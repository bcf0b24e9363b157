/**
 * Plans: each command compiled, once, into the saga the workshop machine walks.
 *
 * A plan is decided when a command is accepted and recorded whole in `op.started`, with every
 * generated name in it, so replay never plans again. Planners are pure: the caller passes the ids.
 *
 * @example
 * ```ts
 * const spec = { name: 'nav2', base: 'busybox', defaultBase: false, projectId: '1a2b3c4d', sdks: [{ name: 'ros2', hash: 'h1', script: 'true' }] };
 * const plan = planLaunch({ ctx: { owner: 'alice', op: 'op-1' }, spec, suffixes: ['0123456789abcdef'] });
 * plan.do.map((s) => s.label); // ['create', 'start', 'setup-base ros2', 'snapshot ros2']
 * ```
 */
import type { Effect, ObjectRef, Plan, PlanStep, SdkLayer, Tags, WorkshopShape, WorkshopSpec } from './types.ts';

// The name builders validate as they build (INVALID_NAME), so a plan is never made of bad names.
import { instanceName, sdkLayerName, stashName, stashSdkName } from './names.ts';

export { stashName };
export const instanceRef = (instance: string): ObjectRef => ({ space: 'workshops', name: instance });
export const layerRef = (layer: string): ObjectRef => ({ space: 'layers', name: layer });

/** Everything a planner needs besides the command itself. */
export interface PlanContext {
  readonly owner: string;
  readonly op: string;
}

/**
 * What the state says of shared SDK layers (`cache.ts`), for planners: `shared`, a layer with a
 * shared record (never removed by a workshop's op, never copied into a stash: it never changes);
 * `usable`, a shared layer whose completion is journaled (a launch or refresh takes it instead of
 * running its hook again). Planners given none plan as before the cache.
 */
export interface CacheView {
  readonly shared: (layer: string) => boolean;
  readonly usable: (layer: string) => boolean;
}

const NO_CACHE: CacheView = { shared: () => false, usable: () => false };

const step = (label: string, effect: Effect, more: Partial<Pick<PlanStep, 'undo' | 'retry'>> = {}): PlanStep => ({ label, effect, ...more });

function wsTags(ctx: PlanContext, shape: { instance: string; projectId: string }, workshop: string): Tags {
  return { owner: ctx.owner, op: ctx.op, kind: 'workshop', workshop, project: shape.projectId };
}

/**
 * The tags of a refresh (a refresh-copy or refresh-create onto an existing target): the op's, plus
 * which of the op's refreshes of that target it is. One op can refresh the same target twice (a
 * refresh rebuilds the workshop, and its undo unstashes it), and reconciliation must tell whether
 * the refresh it finds pending is the one that last wrote the target: by the op tag alone, a
 * crash before the unstash looked like a finished unstash (`machines/layer.ts`).
 */
function refreshTags(tags: Tags, step: 'rebuild' | 'unstash' | 'restore'): Tags {
  return { ...tags, step };
}

function layerTags(ctx: PlanContext, workshop: string, projectId: string, kind: 'sdk' | 'stash' | 'stash-sdk', sdk?: SdkLayer): Tags {
  const t: Tags = { owner: ctx.owner, op: ctx.op, kind, workshop, project: projectId };
  if (sdk) {
    t.sdk = sdk.sdk;
    t.sdkHash = sdk.hash;
  }
  return t;
}

/** A shared layer's tags: no workshop (it is nobody's), its content key and its parent. */
function sharedTags(ctx: PlanContext, sdk: SdkLayer, key: string, parent: string | undefined): Tags {
  return { owner: ctx.owner, op: ctx.op, kind: 'sdk', sdk: sdk.sdk, sdkHash: sdk.hash, cache: key, ...(parent ? { parent } : {}) };
}

/** The key part of a shared layer's name `<sdk>-<key>`. */
const keyOf = (sdk: string, layer: string): string => layer.slice(sdk.length + 1);

/**
 * How many leading SDKs of `spec` have a usable shared layer: a launch or refresh starts from the
 * last of them and runs no hook for any of them.
 */
export function cachedPrefix(spec: WorkshopSpec, cache: CacheView): number {
  let k = 0;
  while (k < spec.sdks.length && spec.sdks[k]!.layer !== undefined && cache.usable(spec.sdks[k]!.layer!)) k++;
  return k;
}

/** How many layer suffixes a plan from SDK `from` on draws: one per SDK without a shared layer. */
export const suffixesNeeded = (spec: WorkshopSpec, from: number): number => spec.sdks.slice(from).filter((s) => s.layer === undefined).length;

/**
 * Run each SDK's hook and snapshot it, starting at SDK `from`. A shared layer's snapshot is
 * undone only while its completion is not journaled (`decide` drops the removal of a finished one:
 * it is a good cache entry); one already usable is not taken again (same content, same name).
 */
function buildSdkSteps(ctx: PlanContext, spec: WorkshopSpec, ws: ObjectRef, from: number, suffixes: readonly string[], cache: CacheView): { steps: PlanStep[]; layers: SdkLayer[] } {
  const steps: PlanStep[] = [];
  const layers: SdkLayer[] = [];
  let next = 0;
  spec.sdks.slice(from).forEach((sdk, j) => {
    const i = from + j;
    const name = sdk.layer ?? sdkLayerName(sdk.name, suffixes[next++]!);
    const layer: SdkLayer = { sdk: sdk.name, hash: sdk.hash, layer: name };
    layers.push(layer);
    steps.push(step(`setup-base ${sdk.name}`, { type: 'exec', target: ws, sdk: sdk.name, script: sdk.script }));
    if (sdk.layer !== undefined && cache.usable(name)) return;
    const tags = sdk.layer !== undefined ? sharedTags(ctx, layer, keyOf(sdk.name, name), spec.sdks[i - 1]?.layer) : layerTags(ctx, spec.name, spec.projectId, 'sdk', layer);
    steps.push(
      step(`snapshot ${sdk.name}`, { type: 'copy', source: ws, target: layerRef(name), tags }, {
        undo: [step(`remove ${name}`, { type: 'remove', target: layerRef(name) })],
      }),
    );
  });
  return { steps, layers };
}

/**
 * launch: create from base (or, when the SDK cache holds a prefix of the chain, copy the last
 * cached layer with an identity of its own), start, then each remaining SDK's hook and snapshot.
 * Undo removes the workshop and every layer not finished.
 */
export function planLaunch(args: { ctx: PlanContext; spec: WorkshopSpec; suffixes: readonly string[]; cache?: CacheView }): Plan {
  const { ctx, spec } = args;
  const cache = args.cache ?? NO_CACHE;
  const instance = instanceName(spec.name, spec.projectId);
  const ws = instanceRef(instance);
  const k = cachedPrefix(spec, cache);
  const sdk = buildSdkSteps(ctx, spec, ws, k, args.suffixes, cache);
  const tags = wsTags(ctx, { instance, projectId: spec.projectId }, spec.name);
  const seeded = spec.sdks.slice(0, k).map((l) => ({ sdk: l.name, hash: l.hash, layer: l.layer! }));
  const create =
    k > 0
      ? step(`create from ${seeded[k - 1]!.sdk}`, { type: 'copy', source: layerRef(seeded[k - 1]!.layer), target: ws, tags, resetIdentity: true }, { undo: [step('remove workshop', { type: 'remove', target: ws })] })
      : step('create', { type: 'create', target: ws, base: spec.base, tags }, { undo: [step('remove workshop', { type: 'remove', target: ws })] });
  return {
    do: [create, step('start', { type: 'start', target: ws }), ...sdk.steps],
    cleanup: [],
    before: null,
    after: { instance, projectId: spec.projectId, base: spec.base, defaultBase: spec.defaultBase, sdks: [...seeded, ...sdk.layers], stash: null },
    running: true,
  };
}

/** How many leading SDK layers a refresh can keep: hashes match, layer present, base unchanged. */
export function reusablePrefix(shape: WorkshopShape, spec: WorkshopSpec, isPresent: (layer: string) => boolean): number {
  if (shape.base !== spec.base) return 0;
  let k = 0;
  while (k < shape.sdks.length && k < spec.sdks.length && shape.sdks[k]!.hash === spec.sdks[k]!.hash && isPresent(shape.sdks[k]!.layer)) k++;
  return k;
}

/**
 * The stash steps shared by refresh and stash: stop, copy each SDK layer to its stash-sdk copy,
 * copy the workshop to its stash. Each copy's compensation removes it; the stop's restarts.
 */
function stashSteps(ctx: PlanContext, name: string, shape: WorkshopShape, isPresent: (layer: string) => boolean, cache: CacheView): PlanStep[] {
  const ws = instanceRef(shape.instance);
  return [
    step('stop', { type: 'stop', target: ws }, { undo: [step('start', { type: 'start', target: ws })] }),
    // A layer reconciliation found missing has nothing to copy; the stash records it as uncopied.
    // A shared layer never changes: the stash holds it by reference.
    ...shape.sdks.filter((l) => isPresent(l.layer) && !cache.shared(l.layer)).map((l) =>
      step(`stash ${l.sdk}`, { type: 'copy', source: layerRef(l.layer), target: layerRef(stashSdkName(l.layer)), tags: layerTags(ctx, name, shape.projectId, 'stash-sdk', l) }, {
        undo: [step(`drop stash ${l.sdk}`, { type: 'remove', target: layerRef(stashSdkName(l.layer)) })],
      }),
    ),
    step('stash', { type: 'copy', source: ws, target: layerRef(stashName(shape.instance)), tags: layerTags(ctx, name, shape.projectId, 'stash') }, {
      undo: [step('drop stash', { type: 'remove', target: layerRef(stashName(shape.instance)) })],
    }),
  ];
}

function dropStashSteps(shape: WorkshopShape, retry: boolean, isPresent: (layer: string) => boolean, cache: CacheView): PlanStep[] {
  return [
    step('drop stash', { type: 'remove', target: layerRef(stashName(shape.instance)) }, { retry }),
    ...shape.sdks.filter((l) => isPresent(l.layer) && !cache.shared(l.layer)).map((l) => step(`drop stash ${l.sdk}`, { type: 'remove', target: layerRef(stashSdkName(l.layer)) }, { retry })),
  ];
}

/**
 * refresh: stop, stash, rebuild in place from the last reusable layer (or the base), delete the
 * layers after it, start, run the remaining hooks with snapshots; clean-up drops the stash.
 * Undo (the compensations in reverse) is exactly an unstash followed by dropping the stash.
 */
export function planRefresh(args: { ctx: PlanContext; name: string; shape: WorkshopShape; spec: WorkshopSpec; reuse: number; suffixes: readonly string[]; isPresent: (layer: string) => boolean; cache?: CacheView }): Plan {
  const { ctx, name, shape, spec, reuse, isPresent } = args;
  const cache = args.cache ?? NO_CACHE;
  const ws = instanceRef(shape.instance);
  const stash = layerRef(stashName(shape.instance));
  const tags = wsTags(ctx, shape, name);
  const unstash = step('unstash', { type: 'copy', source: stash, target: ws, tags: refreshTags(tags, 'unstash'), refresh: true });
  // A spec with shared layers (`cachedPrefix`) keeps the cached prefix of its own chain; one
  // without (journaled before the cache) the workshop's own reusable layers (`reusablePrefix`).
  const kept: SdkLayer[] = spec.sdks.some((l) => l.layer !== undefined) ? spec.sdks.slice(0, reuse).map((l) => ({ sdk: l.name, hash: l.hash, layer: l.layer! })) : shape.sdks.slice(0, reuse);
  const from = kept[reuse - 1];
  const rebuild = from
    ? step(`rebuild from ${from.sdk}`, { type: 'copy', source: layerRef(from.layer), target: ws, tags: refreshTags(tags, 'rebuild'), refresh: true, ...(cache.shared(from.layer) ? { resetIdentity: true } : {}) }, { undo: [unstash] })
    : step('rebuild from base', { type: 'create', target: ws, base: spec.base, tags: refreshTags(tags, 'rebuild'), refresh: true }, { undo: [unstash] });
  const build = buildSdkSteps(ctx, { ...spec, name, projectId: shape.projectId }, ws, reuse, args.suffixes, cache);
  const afterNames = new Set([...kept, ...build.layers].map((l) => l.layer));
  // The workshop's own layers it no longer uses (a shared one stays for its other holders and the cache).
  const dropOld = shape.sdks.filter((l) => !afterNames.has(l.layer) && !cache.shared(l.layer)).map((l) =>
    step(`remove ${l.layer}`, { type: 'remove', target: layerRef(l.layer) }, {
      undo: !isPresent(l.layer) ? [] : [step(`restore ${l.sdk}`, { type: 'copy', source: layerRef(stashSdkName(l.layer)), target: layerRef(l.layer), tags: refreshTags(layerTags(ctx, name, shape.projectId, 'sdk', l), 'restore'), refresh: true })],
    }),
  );
  return {
    do: [...stashSteps(ctx, name, shape, isPresent, cache), rebuild, ...dropOld, step('start', { type: 'start', target: ws }, { undo: [step('stop', { type: 'stop', target: ws })] }), ...build.steps],
    cleanup: dropStashSteps(shape, false, isPresent, cache),
    before: shape,
    after: { ...shape, base: spec.base, defaultBase: spec.defaultBase, sdks: [...kept, ...build.layers], stash: null },
    running: true,
  };
}

/** stash: keep a copy of the workshop and its SDK layers that `unstash` can return to. */
export function planStash(args: { ctx: PlanContext; name: string; shape: WorkshopShape; isPresent: (layer: string) => boolean; cache?: CacheView }): Plan {
  const { ctx, name, shape, isPresent } = args;
  const cache = args.cache ?? NO_CACHE;
  const ws = instanceRef(shape.instance);
  return {
    do: [...stashSteps(ctx, name, shape, isPresent, cache), step('start', { type: 'start', target: ws })],
    cleanup: [],
    before: shape,
    after: { ...shape, stash: { layer: stashName(shape.instance), sdkLayers: shape.sdks.map((l) => ({ ...l, copy: isPresent(l.layer) && !cache.shared(l.layer) ? stashSdkName(l.layer) : null })), op: ctx.op } },
    running: true,
  };
}

/**
 * unstash: return the workshop to its stash. Past the stop (the pivot) nothing can be undone, so
 * every later step rolls forward: it is retried, and reconciliation resumes it after a crash.
 */
export function planUnstash(args: { ctx: PlanContext; name: string; shape: WorkshopShape; cache?: CacheView }): Plan {
  const { ctx, name, shape } = args;
  const cache = args.cache ?? NO_CACHE;
  const stash = shape.stash!;
  const ws = instanceRef(shape.instance);
  // Layers the stash holds no copy of (a restore's stash) are kept as they are.
  const kept = new Set([...stash.sdkLayers.map((l) => l.layer)]);
  const copied = stash.sdkLayers.filter((l): l is SdkLayer & { copy: string } => l.copy !== null);
  const retry = true;
  return {
    do: [
      step('stop', { type: 'stop', target: ws }, { undo: [step('start', { type: 'start', target: ws })] }),
      step('unstash', { type: 'copy', source: layerRef(stash.layer), target: ws, tags: refreshTags(wsTags(ctx, shape, name), 'unstash'), refresh: true }, { retry }),
      ...shape.sdks.filter((l) => !kept.has(l.layer) && !cache.shared(l.layer)).map((l) => step(`remove ${l.layer}`, { type: 'remove', target: layerRef(l.layer) }, { retry })),
      ...copied.map((l) =>
        step(`restore ${l.sdk}`, { type: 'copy', source: layerRef(l.copy), target: layerRef(l.layer), tags: refreshTags(layerTags(ctx, name, shape.projectId, 'sdk', l), 'restore'), refresh: true }, { retry }),
      ),
      step('start', { type: 'start', target: ws }, { retry }),
      step('drop stash', { type: 'remove', target: layerRef(stash.layer) }, { retry }),
      ...copied.map((l) => step(`drop stash ${l.sdk}`, { type: 'remove', target: layerRef(l.copy) }, { retry })),
    ],
    cleanup: [],
    before: shape,
    after: { ...shape, sdks: stash.sdkLayers.map(({ sdk, hash, layer }) => ({ sdk, hash, layer })), stash: null },
    running: true,
  };
}

/**
 * restore(sdk): return the workshop's root filesystem to the state right after `sdk`'s hook,
 * keeping its identity and every layer; a temporary stash makes it undoable.
 */
export function planRestore(args: { ctx: PlanContext; name: string; shape: WorkshopShape; sdk: string; cache?: CacheView }): Plan {
  const { ctx, name, shape } = args;
  const reset = (args.cache ?? NO_CACHE).shared(shape.sdks.find((l) => l.sdk === args.sdk)?.layer ?? '') ? { resetIdentity: true } : {};
  const ws = instanceRef(shape.instance);
  const stash = layerRef(stashName(shape.instance));
  const layer = shape.sdks.find((l) => l.sdk === args.sdk)!;
  const tags = wsTags(ctx, shape, name);
  return {
    do: [
      step('stop', { type: 'stop', target: ws }, { undo: [step('start', { type: 'start', target: ws })] }),
      step('stash', { type: 'copy', source: ws, target: stash, tags: layerTags(ctx, name, shape.projectId, 'stash') }, {
        undo: [step('drop stash', { type: 'remove', target: stash })],
      }),
      step(`restore ${layer.sdk}`, { type: 'copy', source: layerRef(layer.layer), target: ws, tags: refreshTags(tags, 'restore'), refresh: true, ...reset }, {
        undo: [step('unstash', { type: 'copy', source: stash, target: ws, tags: refreshTags(tags, 'unstash'), refresh: true })],
      }),
      step('start', { type: 'start', target: ws }, { undo: [step('stop', { type: 'stop', target: ws })] }),
    ],
    cleanup: [step('drop stash', { type: 'remove', target: stash })],
    before: shape,
    after: shape,
    running: true,
  };
}

/**
 * start and stop: one step each, nothing to compensate (a failed start or stop leaves the
 * workshop as it was; both are idempotent on every backend, so repeating one is safe). The plan
 * records the status the workshop is wanted in (`running`), which reconciliation keeps it in.
 */
export function planPower(args: { shape: WorkshopShape; running: boolean }): Plan {
  const ws = instanceRef(args.shape.instance);
  const effect: Effect = args.running ? { type: 'start', target: ws } : { type: 'stop', target: ws };
  return { do: [step(args.running ? 'start' : 'stop', effect)], cleanup: [], before: args.shape, after: args.shape, running: args.running };
}

/** remove: the workshop, its SDK layers and any stash. Rolls forward: every step is retried. */
export function planRemove(args: { ctx: PlanContext; shape: WorkshopShape; leftovers?: readonly ObjectRef[]; cache?: CacheView }): Plan {
  const { shape } = args;
  const cache = args.cache ?? NO_CACHE;
  const retry = true;
  return {
    do: [
      step('remove workshop', { type: 'remove', target: instanceRef(shape.instance) }, { retry }),
      // Shared layers stay: for their other holders, else for the cache.
      ...shape.sdks.filter((l) => !cache.shared(l.layer)).map((l) => step(`remove ${l.layer}`, { type: 'remove', target: layerRef(l.layer) }, { retry })),
      ...(shape.stash
        ? [
            step('drop stash', { type: 'remove', target: layerRef(shape.stash.layer) }, { retry }),
            ...shape.stash.sdkLayers.flatMap((l) => (l.copy ? [step(`drop stash ${l.sdk}`, { type: 'remove', target: layerRef(l.copy) }, { retry })] : [])),
          ]
        : []),
      // Objects of the workshop its shape no longer names (what an op that gave up half-way left,
      // e.g. the stash-sdk copies of a broken stash): removing a workshop removes all of it.
      ...(args.leftovers ?? []).map((ref) => step(`remove leftover ${ref.name}`, { type: 'remove', target: ref }, { retry })),
    ],
    cleanup: [],
    before: shape,
    after: null,
  };
}

/**
 * The undo phase after do step `from` failed (or was aborted): compensations of 0..from, reversed.
 * Decided when the op enters the undo phase and journaled with it (`op.phase`'s `steps`).
 */
export function undoSteps(plan: Plan, from: number): PlanStep[] {
  const out: PlanStep[] = [];
  for (let i = Math.min(from, plan.do.length - 1); i >= 0; i--) {
    const u = plan.do[i]!.undo;
    if (u) out.push(...u);
  }
  return out;
}

/** An effect in a few words, for failure messages and traces: `copy! layers/a -> workshops/b`. */
export function describeEffect(effect: Effect): string {
  switch (effect.type) {
    case 'copy':
      return `copy${effect.refresh ? '!' : ''} ${effect.source.space}/${effect.source.name} -> ${effect.target.space}/${effect.target.name}`;
    case 'create':
      return `create${effect.refresh ? '!' : ''} ${effect.target.space}/${effect.target.name}`;
    default:
      return `${effect.type} ${effect.target.space}/${effect.target.name}`;
  }
}

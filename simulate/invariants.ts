/**
 * The simulation's invariants, one named function each (numbered as in the issue). Each throws an
 * `InvariantViolation` naming itself and saying what differs. They read the backend's owned objects
 * as the world last observed them (`World.owned`: the fake's objects directly; a real backend's
 * through the port of the adapter underneath the fault wrapper), so checking never spends a fault
 * or counts as a call.
 *
 * Broken workshops (an op whose undo, clean-up or roll-forward failed three times) are exempt from
 * the content checks (3, 6, 8): their root filesystem is unknown until a refresh or an unstash
 * repairs them. They are still held to 1, 2, 4, 5 and 7, and to 9 but for the presence of the
 * layers they name.
 *
 * 9 and 10 are the SDK cache's: shared layers (held as the state says, never removed while held,
 * one per chain, never half-built) and what is left once every workshop is removed (the run's
 * closing phase, `closeRun` in `runner.ts`).
 *
 * @example
 * ```ts
 * statesAgree(world, model);          // 1
 * inventoryAccounted(world);          // 2
 * ```
 */
import type { Identity } from '../backends/types.ts';
import type { JournalRecord } from '../events/catalogue.ts';
import { holdersOf } from '../machines/cache.ts';
import { canonicalJson, objectKey, type FoldState } from '../machines/index.ts';
import type { Model, MWorkshop } from './model.ts';
import type { SimObject } from './sim-backend.ts';
import { CHAIN_FILE, chainOfHash, lineOfHash } from './specs.ts';
import type { World } from './world.ts';

export class InvariantViolation extends Error {
  constructor(
    readonly invariant: string,
    message: string,
  ) {
    super(`invariant ${invariant} violated: ${message}`);
    this.name = 'InvariantViolation';
  }
}

function fail(invariant: string, message: string): never {
  throw new InvariantViolation(invariant, message);
}

/** Owned objects of the backend, by `space/name` (see `World.owned`). */
export function ownedObjects(world: World): Map<string, SimObject> {
  return world.owned();
}

/** What an instance's root filesystem holds, as one string (for "same content as before"). */
export function digestOf(o: SimObject | undefined): string | null {
  return o ? o.digest() : null;
}

export function chainIn(o: SimObject): readonly string[] {
  return o.chain;
}

/**
 * Whether two JSON-shaped values serialise alike under `canonicalJson` (keys in any order,
 * `undefined` members absent), without building either string. `true` is exact; `false` may be
 * wrong only for values JSON rewrites (NaN, `toJSON`), so callers confirm a `false` with
 * `canonicalJson` (which also says what differs).
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i] ?? null, b[i] ?? null)) return false;
    return true;
  }
  if (Array.isArray(b) || Object.getPrototypeOf(a) !== Object.prototype || Object.getPrototypeOf(b) !== Object.prototype) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let n = 0;
  for (const k in x) {
    if (x[k] === undefined) continue;
    n++;
    if (!Object.hasOwn(y, k) || !sameJson(x[k], y[k])) return false;
  }
  for (const k in y) if (y[k] !== undefined) n--;
  return n === 0;
}

/** 1. The live state, the state replayed from the journal on disk, and the model agree. */
export function statesAgree(world: World, model: Model): void {
  const name = '1 (live state = replayed journal = model)';
  const live = world.e.folded;
  const disk = world.reader.read().state;
  // The structural comparison is the fast path; canonical JSON decides (and describes) a difference.
  const a = sameJson(live, disk) ? '' : canonicalJson(live);
  const b = a === '' ? '' : canonicalJson(disk);
  if (a !== b) fail(name, `the live state differs from the journal replayed from disk (seq ${live.seq} live, ${disk.seq} on disk)\n live: ${a.slice(0, 600)}\n disk: ${b.slice(0, 600)}`);
  const ops = Object.keys(live.ops);
  if (ops.length) fail(name, `ops ${ops.join(', ')} are still in progress after the step settled`);
  const names = Object.keys(live.workshops).sort();
  const expected = [...model.workshops.keys()].sort();
  if (names.join() !== expected.join()) fail(name, `the engine has workshops [${names.join(', ')}], the model [${expected.join(', ')}]`);
  for (const [n, m] of model.workshops) {
    const ws = live.workshops[n]!;
    if (ws.status !== m.status) fail(name, `workshop ${n} is ${ws.status}, the model says ${m.status} (last error: ${ws.lastError?.code} ${ws.lastError?.message ?? ''})`);
    if (m.status === 'ready') {
      const hashes = ws.sdks.map((l) => l.hash).join();
      if (hashes !== m.content.hashes.join()) fail(name, `workshop ${n} has SDKs ${ws.sdks.map((l) => `${l.sdk}@${l.hash}`).join(', ')}, the model ${m.content.sdks.join(', ')}`);
      if ((ws.stash !== null) !== (m.stash !== null)) fail(name, `workshop ${n} ${ws.stash ? 'has' : 'has no'} stash, the model says the opposite`);
    }
    if (m.identity && ws.identity && !sameIdentity(m.identity, ws.identity)) fail(name, `workshop ${n}'s identity changed from ${m.identity.mac} to ${ws.identity.mac}`);
  }
}

function sameIdentity(a: Identity, b: Identity): boolean {
  return a.mac === b.mac && a.uuid === b.uuid;
}

/**
 * 2. The backend inventory equals what the state accounts for: no owned orphan, nothing missing.
 * One exception between restarts: a transient container whose removal failed after taking effect
 * stays in the volatile journal until reconciliation drops it (harmless: removing it again
 * succeeds), so "recorded but gone" is only an error right after a reconciliation.
 */
export function inventoryAccounted(world: World, reconciled = true): void {
  const name = '2 (inventory = state)';
  const s = world.e.folded;
  const owned = ownedObjects(world);
  const containers = new Set(Object.values(world.e.volatileState.containers).map((c) => objectKey(c.ref)));
  for (const [k, o] of owned) {
    if (o.tags['kind'] === 'container') {
      if (!containers.has(k)) fail(name, `transient container ${k} is on the backend but not in the volatile journal`);
      continue;
    }
    if (!s.objects[k]) fail(name, `owned ${o.tags['kind']} ${k} (op ${o.tags['op']}) is on the backend but the state does not account for it`);
  }
  if (reconciled) for (const c of containers) if (!owned.has(c)) fail(name, `transient container ${c} is in the volatile journal but not on the backend`);
  for (const [k, rec] of Object.entries(s.objects)) {
    if (rec.state === 'present' && !rec.garbage && !owned.has(k)) fail(name, `the state holds ${rec.kind} ${k} as present, the backend does not have it`);
  }
  for (const ws of Object.values(s.workshops)) {
    if (ws.status === 'broken') continue;
    const refs = [`workshops/${ws.instance}`, ...ws.sdks.map((l) => `layers/${l.layer}`)];
    if (ws.stash) refs.push(`layers/${ws.stash.layer}`, ...ws.stash.sdkLayers.flatMap((l) => (l.copy ? [`layers/${l.copy}`] : [])));
    for (const r of refs) {
      const rec = s.objects[r];
      // 'removing' / 'pending' records an op gave up on (a broken remove, then a failed refresh)
      // stay unsettled until reconciliation; they must still be on the backend (checked below).
      if (!rec || rec.state === 'missing' || rec.garbage) fail(name, `workshop ${ws.name} needs ${r}, which the state holds as ${rec ? `${rec.state}${rec.garbage ? ' garbage' : ''}` : 'absent'}`);
      if (!owned.has(r)) fail(name, `workshop ${ws.name} needs ${r}, which is not on the backend`);
    }
  }
}

/**
 * 3. A workshop that existed before a failed or crashed refresh (or stash, restore) still exists
 * with the same identity and the same root filesystem content as before.
 */
export function refreshPreservesWorkshop(world: World, workshop: string, before: { identity: Identity | null; digest: string | null }): void {
  const name = '3 (failed refresh keeps the workshop)';
  const ws = world.e.folded.workshops[workshop];
  if (!ws) fail(name, `workshop ${workshop} existed before its op failed and is gone now`);
  if (before.identity && (!ws.identity || !sameIdentity(before.identity, ws.identity))) fail(name, `workshop ${workshop}'s identity changed from ${before.identity.mac} to ${ws.identity?.mac}`);
  const inst = ownedObjects(world).get(`workshops/${ws.instance}`);
  if (!inst) fail(name, `workshop ${workshop}'s instance is gone from the backend`);
  if (!sameIdentity(inst.identity, ws.identity ?? inst.identity)) fail(name, `the backend's identity of ${workshop} (${inst.identity.mac}) is not the state's (${ws.identity?.mac})`);
  if (before.digest !== null && digestOf(inst) !== before.digest) fail(name, `workshop ${workshop}'s root filesystem differs from before the failed op: ${CHAIN_FILE} = ${JSON.stringify(chainIn(inst))}`);
}

/** 4. Reconciling the same crash image twice gives identical journal tails and identical state. */
export function reconcileIsDeterministic(
  a: { tail: readonly JournalRecord[]; state: FoldState; backend: string },
  b: { tail: readonly JournalRecord[]; state: FoldState; backend: string },
  /** Per-side rewriting of every compared string, in the same order (identities drawn at random). */
  normalize?: { a: (s: string) => string; b: (s: string) => string },
): void {
  const name = '4 (reconciliation is deterministic)';
  // Without renaming, the structural comparison is the fast path; canonical JSON decides a difference.
  if (!normalize && a.tail.length === b.tail.length && a.tail.every((r, i) => sameJson(r, b.tail[i])) && sameJson(a.state, b.state) && a.backend === b.backend) return;
  const na = normalize?.a ?? ((s: string) => s);
  const nb = normalize?.b ?? ((s: string) => s);
  const ta = a.tail.map((r) => na(canonicalJson(r)));
  const tb = b.tail.map((r) => nb(canonicalJson(r)));
  for (let i = 0; i < Math.max(ta.length, tb.length); i++) if (ta[i] !== tb[i]) fail(name, `journal tails differ at record ${i}:\n first:  ${ta[i]?.slice(0, 400)}\n second: ${tb[i]?.slice(0, 400)}`);
  if (na(canonicalJson(a.state)) !== nb(canonicalJson(b.state))) fail(name, 'the states differ after reconciling the same image twice');
  const [ba, bb] = [na(a.backend), nb(b.backend)];
  if (ba !== bb) fail(name, `the backends differ after reconciling the same image twice:\n first:  ${ba.slice(0, 600)}\n second: ${bb.slice(0, 600)}`);
}

/** 5. No command fails with `ALREADY_EXISTS` because of something a crashed command left behind. */
export function noLeftoverConflict(cmd: string, workshopExpected: boolean, error: { code: string; cause?: string; message: string }): void {
  const name = '5 (no ALREADY_EXISTS from leftovers)';
  if (error.code === 'ALREADY_EXISTS' && !workshopExpected) fail(name, `${cmd} was refused with ALREADY_EXISTS but the workshop should not exist: ${error.message}`);
  if (error.cause === 'ALREADY_EXISTS' || error.cause === 'NOT_OWNED') fail(name, `${cmd} failed on an object in its way (${error.cause}): ${error.message}`);
}

/** 6. No stash outlives the command that made it, once reconciliation has run. */
export function noStrayStash(world: World, model: Model): void {
  const name = '6 (no stray stash)';
  const s = world.e.folded;
  for (const [k, o] of ownedObjects(world)) {
    const kind = o.tags['kind'];
    if (kind !== 'stash' && kind !== 'stash-sdk') continue;
    const w = o.tags['workshop'] ?? '';
    const m: MWorkshop | undefined = model.workshops.get(w);
    if (s.objects[k]?.garbage) continue; // a clean-up that kept failing leaves it to gc
    if (m?.status === 'broken') continue;
    if (!m?.stash) fail(name, `${kind} ${k} of workshop ${w} (op ${o.tags['op']}) survives, but no stash command holds it`);
    const ws = s.workshops[w];
    const names = ws?.stash ? [ws.stash.layer, ...ws.stash.sdkLayers.flatMap((l) => (l.copy ? [l.copy] : []))] : [];
    if (!names.includes(o.name)) fail(name, `${kind} ${k} is not part of workshop ${w}'s stash (${names.join(', ')})`);
  }
}

/** 7. No transient container survives a reboot, and its backend leftovers are gone after start-up. */
export function noTransientAfterReboot(world: World): void {
  const name = '7 (no transient container after a reboot)';
  const live = Object.keys(world.e.volatileState.containers);
  if (live.length) fail(name, `containers ${live.join(', ')} are still in the volatile state after a reboot`);
  for (const [k, o] of ownedObjects(world)) if (o.tags['kind'] === 'container') fail(name, `container ${k} is still on the backend after a reboot and start-up`);
}

/** 8. Every layer's SDK chain is a prefix of its workshop's SDK list (and so is the instance's). */
export function sdkChainsArePrefixes(world: World, model: Model): void {
  const name = '8 (SDK chains are prefixes)';
  const owned = ownedObjects(world);
  for (const ws of Object.values(world.e.folded.workshops)) {
    if (ws.status === 'broken') continue;
    const lines = ws.sdks.map((l) => lineOfHash(l.hash) ?? `?${l.hash}`);
    ws.sdks.forEach((l, i) => {
      const o = owned.get(`layers/${l.layer}`);
      if (!o) return; // invariant 2's business
      const chain = chainIn(o);
      if (chain.join('|') !== lines.slice(0, i + 1).join('|')) fail(name, `layer ${l.layer} of ${ws.name} holds chain [${chain.join(', ')}], expected [${lines.slice(0, i + 1).join(', ')}]`);
    });
    const inst = owned.get(`workshops/${ws.instance}`);
    if (!inst) continue;
    const chain = chainIn(inst);
    if (chain.some((c, i) => lines[i] !== c)) fail(name, `instance of ${ws.name} holds chain [${chain.join(', ')}], not a prefix of [${lines.join(', ')}]`);
    const want = model.workshops.get(ws.name)?.content.chain;
    if (want && chain.join('|') !== want.join('|')) fail(name, `instance of ${ws.name} holds chain [${chain.join(', ')}], the model expects [${want.join(', ')}]`);
  }
}

/**
 * 9. Shared SDK layers (the SDK cache): each one's holders are what the state says, a held one is
 * present, one layer per chain, and none is half-built.
 *
 * - Holders: every workshop (not broken, no op in progress) whose SDKs name a shared layer, and
 *   every stash that holds one by reference (no copy), is among `holdersOf` for it; and everything
 *   `holdersOf` names still names the layer in the state (no holder left over).
 * - A held layer is never removed: it is `present` in the state and on the backend. (The journal's
 *   half, `evict` in `journal-invariants.ts`, checks at each record that nothing evicts or removes
 *   a layer anyone else holds.)
 * - One layer per chain: at most one owned object per content key (`cache` tag) on the backend,
 *   named `<sdk>-<key>`, and one shared layer per SDK hash among the layers the workshops name
 *   (retries do not pile up duplicates). With the cache on, a workshop's layers are all shared.
 * - Never half: a shared layer on the backend has a shared record (else it is an orphan: invariant
 *   2 says so too), and one the state holds as present holds its whole chain (`/etc/sdk-chain` is
 *   every SDK of its chain, in order: the hook ran to its end before the snapshot).
 */
export function sharedLayersHeld(world: World): void {
  const name = '9 (shared layers: holders = state, held ones present, one per chain)';
  const st = world.e.world;
  const s = st.durable;
  const owned = ownedObjects(world);
  const sharedRec = (layer: string) => {
    const o = s.objects[`layers/${layer}`];
    return o?.shared ? o : undefined;
  };
  const holders = holdersOf(st);
  const byHash = new Map<string, string>();
  for (const ws of Object.values(s.workshops)) {
    const settled = ws.status !== 'broken' && ws.op === null;
    const named = [...ws.sdks.map((l) => ({ l, who: `workshop:${ws.name}` })), ...(ws.stash?.sdkLayers ?? []).filter((l) => l.copy === null).map((l) => ({ l, who: `stash:${ws.name}` }))];
    for (const { l, who } of named) {
      const rec = sharedRec(l.layer);
      if (!rec) {
        if (settled && world.config.sdkCache && who.startsWith('workshop:')) fail(name, `workshop ${ws.name}'s layer ${l.layer} (${l.sdk}) is not a shared layer, and the SDK cache is on`);
        continue;
      }
      if (!holders.get(l.layer)?.includes(who)) fail(name, `${who} names shared layer ${l.layer}, but its holders are [${(holders.get(l.layer) ?? []).join(', ')}]`);
      const other = byHash.get(l.hash);
      if (other !== undefined && other !== l.layer) fail(name, `two shared layers for one chain (SDK ${l.sdk}, hash ${l.hash}): ${other} and ${l.layer}`);
      byHash.set(l.hash, l.layer);
      if (!settled) continue;
      if (rec.state !== 'present' || rec.garbage) fail(name, `${who} holds shared layer ${l.layer}, which the state holds as ${rec.state}${rec.garbage ? ' garbage' : ''}`);
      if (!owned.has(`layers/${l.layer}`)) fail(name, `${who} holds shared layer ${l.layer}, which is not on the backend`);
    }
  }
  for (const [layer, list] of holders) {
    for (const who of list) {
      const [kind, id] = [who.slice(0, who.indexOf(':')), who.slice(who.indexOf(':') + 1)];
      const ws = s.workshops[id];
      const holds =
        kind === 'workshop' ? ws?.sdks.some((l) => l.layer === layer) :
        kind === 'stash' ? ws?.stash?.sdkLayers.some((l) => l.copy === null && l.layer === layer) :
        kind === 'op' ? s.ops[id] !== undefined :
        kind === 'container' ? st.volatile.containers[id]?.source.name === layer : false;
      if (!holds) fail(name, `holdersOf names ${who} as holding ${layer}, which the state does not say`);
    }
    const rec = sharedRec(layer)!;
    if (rec.state === 'present' && !rec.garbage && !owned.has(`layers/${layer}`)) fail(name, `shared layer ${layer} is held by ${list.join(', ')} and present in the state, but not on the backend`);
  }
  const keys = new Map<string, string>();
  for (const [k, o] of owned) {
    const key = o.tags['cache'];
    if (key === undefined) continue;
    const seen = keys.get(key);
    if (seen !== undefined) fail(name, `two layers on the backend for one content key ${key}: ${seen} and ${k}`);
    keys.set(key, k);
    if (o.name !== `${o.tags['sdk']}-${key}`) fail(name, `shared layer ${k} is not named by its content (sdk ${o.tags['sdk']}, key ${key})`);
    const rec = s.objects[k];
    if (!rec?.shared) fail(name, `shared layer ${k} (op ${o.tags['op']}) is on the backend without a shared record in the state`);
    if (rec.state !== 'present') continue;
    const want = chainOfHash(o.tags['sdkHash'] ?? '');
    if (want && chainIn(o).join('|') !== want.join('|')) fail(name, `shared layer ${k} is present but holds chain [${chainIn(o).join(', ')}], not its whole chain [${want.join(', ')}]`);
  }
}

/**
 * 10. Once every workshop is removed (the run's closing phase, `closeRun`), no owned object is left
 * on the backend but the shared layers the cache policy keeps: no workshop, stash or container, no
 * per-workshop layer, and (a count policy) at most that many cache entries, each present. A layer
 * whose eviction is journaled but whose removal failed (`removing`) is let go, not kept: it does not
 * count, and `gc --cache` must remove it (`gcFreesEverything`).
 */
export function cacheKeptAfterRemovingAll(world: World): void {
  const name = '10 (once every workshop is removed, only what the cache policy keeps remains)';
  const s = world.e.folded;
  const left = Object.keys(s.workshops);
  if (left.length) fail(name, `workshops ${left.join(', ')} are still there after removing every workshop`);
  let entries = 0;
  for (const [k, o] of ownedObjects(world)) {
    const rec = s.objects[k];
    if (o.tags['cache'] === undefined || !rec?.shared) fail(name, `${o.tags['kind']} ${k} (op ${o.tags['op']}) is still on the backend once every workshop is removed${rec ? ` (the state holds it as ${rec.state}${rec.garbage ? ' garbage' : ''})` : ''}`);
    // An eviction journaled whose removal failed (a backend error): let go by the policy, left for a
    // retry (gc --cache must free it: `gcFreesEverything`).
    if (rec.state === 'removing') continue;
    if (rec.state !== 'present') fail(name, `shared layer ${k} is still on the backend as ${rec.state} once every workshop is removed`);
    entries++;
  }
  const policy = world.config.cacheKeep;
  if (!world.config.sdkCache && entries > 0) fail(name, `${entries} shared layers are on the backend, and the SDK cache is off`);
  if (policy.count !== undefined && entries > policy.count) fail(name, `${entries} cached layers remain once every workshop is removed; the policy keeps ${policy.count}`);
}

/** 10, continued: after `gc --cache` with no workshop left, nothing owned is on the backend or in the state. */
export function gcFreesEverything(world: World): void {
  const name = '10 (once every workshop is removed, gc frees everything)';
  const s = world.e.folded;
  const owned = [...ownedObjects(world).keys()];
  if (owned.length) fail(name, `gc --cache left ${owned.map((k) => `${k} (${s.objects[k] ? `the state holds it as ${s.objects[k].state}` : 'no record'})`).join(', ')} on the backend with no workshop left`);
  const kept = Object.entries(s.objects).filter(([, o]) => o.state !== 'missing');
  if (kept.length) fail(name, `gc --cache left ${kept.map(([k, o]) => `${k} (${o.state})`).join(', ')} in the state with no workshop left`);
}

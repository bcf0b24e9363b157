/**
 * The SDK cache, at the engine (fake backend): shared layers named by content, reused by a second
 * workshop with no hook run again, built once by concurrent launches, never reused when their
 * build failed, never left looking complete by a crash, held by what uses them, evicted by policy
 * (journaled) and by `gc --cache`, and the move of per-workshop layers onto shared ones at a refresh.
 * The same behaviours on the real backends: `test/backends/cases/sharing.ts`, `test/cache/`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { objectKey } from '../../machines/index.ts';
import { holdersOf } from '../../machines/cache.ts';
import { withSharedLayers } from '../../engine/cache.ts';
import { assertAccounted, fixture, mutatingCalls, sdk, spec, V1, V2, WS, type Fixture } from './helpers.ts';

const OTHER = { name: 'perception', projectId: '5e6f7a8b' } as const;
const OTHER_WS = 'workshops/perception-5e6f7a8b';
const hooks = (f: Fixture) => f.backend.trace().filter((l) => l.startsWith('exec ')).length;
const shared = (f: Fixture) =>
  Object.values(f.engine.folded.objects)
    .filter((o) => o.shared)
    .map((o) => o.ref.name)
    .sort();

test('a second workshop with the same base and SDKs runs no hook: it is made from the cached layer', async () => {
  const f = await fixture();
  try {
    const a = await f.engine.launch(V1);
    const named = await withSharedLayers(f.backend, V1);
    assert.equal(a.sdks.map((l) => l.layer), named.sdks.map((s) => s.layer), 'layers named by base fingerprint and chain hash');
    f.backend.clearCalls();
    const b = await f.engine.launch({ ...V1, ...OTHER });
    assert.equal(f.backend.trace(), [`copy layers/${a.sdks[1]!.layer} -> ${OTHER_WS}`, `start ${OTHER_WS}`], 'one copy and a start: no hook, no snapshot');
    assert.equal(b.sdks, a.sdks, 'the same layers');
    assert.is.not(b.identity?.uuid, a.identity?.uuid, 'an identity of its own');
    assert.equal(holdersOf(f.engine.world).get(a.sdks[0]!.layer), ['workshop:nav2', 'workshop:perception']);
    const fromA = await f.backend.readFile(WS, '/etc/nav');
    const fromB = await f.backend.readFile({ space: 'workshops', name: 'perception-5e6f7a8b' }, '/etc/nav');
    assert.is(fromB?.content, fromA?.content, 'the same root filesystem content');
    await assertAccounted(f.engine, f.backend);
  } finally {
    await f.cleanup();
  }
});

test('a chain sharing a prefix reuses the prefix and builds the rest', async () => {
  const f = await fixture();
  try {
    const a = await f.engine.launch(V1);
    f.backend.clearCalls();
    const b = await f.engine.launch({ ...V2, ...OTHER });
    assert.is(hooks(f), 1, "only the changed SDK's hook runs");
    assert.is(b.sdks[0]!.layer, a.sdks[0]!.layer);
    assert.is.not(b.sdks[1]!.layer, a.sdks[1]!.layer);
    assert.equal(f.backend.trace()[0], `copy layers/${a.sdks[0]!.layer} -> ${OTHER_WS}`);
    // A refresh of nav2 onto V2's chain takes perception's layer: no hook at all.
    f.backend.clearCalls();
    const r = await f.engine.refresh(V2);
    assert.is(hooks(f), 0, 'the refresh runs no hook');
    assert.equal(r.sdks, b.sdks);
    assert.ok(f.engine.folded.objects[`layers/${a.sdks[1]!.layer}`]?.state === 'present', "nav2's old layer stays, as a cache entry");
    await assertAccounted(f.engine, f.backend);
  } finally {
    await f.cleanup();
  }
});

test('concurrent launches needing the same layers run each hook once (one flight per layer)', async () => {
  const f = await fixture();
  try {
    const names = ['alpha', 'bravo', 'charlie'];
    const views = await Promise.all(names.map((name, i) => f.engine.launch({ ...V1, name, projectId: `0000000${i}` })));
    assert.is(hooks(f), V1.sdks.length, 'each hook ran once in all');
    for (const v of views) assert.equal(v.sdks, views[0]!.sdks);
    assert.is(shared(f).length, V1.sdks.length, 'one layer per SDK, no duplicate');
    await assertAccounted(f.engine, f.backend);
  } finally {
    await f.cleanup();
  }
});

test('a failed build is never reused: the layers before it are, the failed one is built again', async () => {
  const f = await fixture();
  try {
    f.backend.setFaultPlan({ rules: [{ call: 'exec', nth: 2, when: 'before', action: 'fail', code: 'EXEC_FAILED' }] });
    await f.engine.launch(V1).catch(() => undefined);
    f.backend.setFaultPlan(null);
    assert.is(f.engine.state.workshops['nav2'], undefined, 'the launch is undone');
    const named = await withSharedLayers(f.backend, V1);
    const [ros2, nav] = named.sdks.map((s) => s.layer!);
    assert.is(f.engine.folded.objects[`layers/${ros2}`]?.state, 'present', "the first SDK's finished layer is kept, as a cache entry");
    assert.is(f.engine.folded.objects[`layers/${nav}`], undefined, 'nothing of the failed one');
    f.backend.clearCalls();
    await f.engine.launch(V1);
    assert.is(hooks(f), 1, 'only the failed SDK runs again');
    await assertAccounted(f.engine, f.backend);
  } finally {
    await f.cleanup();
  }
});

test('a crash at every backend call of a shared build leaves, once reconciled, the finished layer or none', async () => {
  const calls = await mutatingCalls('launch');
  const probe = await fixture();
  const layers = (await withSharedLayers(probe.backend, V1)).sdks.map((s) => s.layer!);
  await probe.cleanup();
  let checked = 0;
  for (const [call, nth] of calls) {
    for (const when of ['before', 'after'] as const) {
      const f = await fixture();
      try {
        f.backend.setFaultPlan({ rules: [{ call, nth, when, action: 'crash' }] });
        await f.engine.launch(V1).catch(() => undefined);
        f.backend.setFaultPlan(null);
        await f.engine.crash();
        const e = await f.reopen();
        const where = `crash ${when} ${call}#${nth}`;
        const onBackend = new Set(f.backend.objects().map((o) => `${o.space}/${o.name}`));
        for (const l of layers) {
          const rec = e.folded.objects[`layers/${l}`];
          assert.ok(rec === undefined || rec.state === 'present', `${where}: ${l} is finished or gone (${rec?.state})`);
          assert.is(onBackend.has(`layers/${l}`), rec !== undefined, `${where}: ${l} on the backend exactly when the state has it`);
        }
        await assertAccounted(e, f.backend);
        // And whatever is left is good: a relaunch completes from it.
        if (!e.state.workshops['nav2']) await e.launch(V1);
        assert.is(e.show('nav2').status, 'ready', where);
        checked++;
      } finally {
        await f.cleanup();
      }
    }
  }
  assert.ok(checked >= 10, `checked ${checked} crash points`);
});

test('held layers are never evicted; unheld ones are kept by the policy, least recently used evicted first', async () => {
  const f = await fixture();
  try {
    f.engine.cache.policy = { count: 1 };
    const v1 = await f.engine.launch(V1);
    const other = spec([sdk('gazebo', 'harmonic')], OTHER);
    const o = await f.engine.launch(other);
    assert.equal(shared(f).length, 3, 'all held: nothing evicted');
    await f.engine.remove('nav2');
    // Two unheld entries, one kept: the child goes (a parent never goes without its children).
    assert.equal(shared(f), [o.sdks[0]!.layer, v1.sdks[0]!.layer].sort());
    assert.ok(f.engine.folded.objects[`layers/${v1.sdks[1]!.layer}`] === undefined);
    await f.engine.remove('perception');
    // Now three unheld: nav2's chain (used earlier) goes, perception's layer (used last) stays.
    assert.equal(shared(f), [o.sdks[0]!.layer]);
    const evictions = f.engine.folded.seq;
    assert.ok(evictions > 0);
    await assertAccounted(f.engine, f.backend);
    const dry = await f.engine.gc({ cache: true, dryRun: true });
    assert.equal(dry.evicted?.map((r) => r.name), [o.sdks[0]!.layer]);
    assert.equal(shared(f), [o.sdks[0]!.layer], 'a dry run evicts nothing');
    const done = await f.engine.gc({ cache: true });
    assert.equal(done.evicted?.map((r) => r.name), [o.sdks[0]!.layer]);
    assert.equal(shared(f), []);
    assert.equal(f.backend.objects().filter((x) => x.tags.owner === 'alice'), [], 'nothing owned remains');
  } finally {
    await f.cleanup();
  }
});

test('a parent is evicted with its children: a cached chain is never left without its prefix', async () => {
  const f = await fixture();
  try {
    await f.engine.launch(V1);
    await f.engine.remove('nav2');
    assert.is(shared(f).length, 2);
    f.engine.cache.policy = { count: 1 };
    // The next command trims: keeping one would keep the child (used at the same time, later by name)
    // or the parent; whichever is let go takes its descendants.
    await f.engine.launch(spec([sdk('gazebo', 'harmonic')], OTHER));
    const left = Object.values(f.engine.folded.objects).filter((o) => o.shared && o.ref.name.startsWith('nav-') === false && o.ref.name.startsWith('ros2-'));
    const navLeft = Object.values(f.engine.folded.objects).some((o) => o.shared && o.ref.name.startsWith('nav-'));
    assert.ok(!(navLeft && left.length === 0), 'no child without its parent');
    await assertAccounted(f.engine, f.backend);
  } finally {
    await f.cleanup();
  }
});

test('a launch needing a layer under eviction waits for the eviction, then builds the layer anew', async () => {
  const f = await fixture();
  try {
    f.engine.cache.policy = { count: 0 };
    const a = await f.engine.launch(V1);
    const parent = a.sdks[0]!.layer;
    // Hold the backend's removal of the parent layer: its eviction is under way meanwhile.
    const remove = f.backend.remove.bind(f.backend);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let held = false;
    f.backend.remove = async (ref) => {
      if (ref.space === 'layers' && ref.name === parent) {
        held = true;
        await gate;
      }
      return remove(ref);
    };
    const removing = f.engine.remove('nav2');
    for (let i = 0; i < 200 && !held; i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(held, 'the eviction reached the backend');
    assert.is(f.engine.folded.objects[`layers/${parent}`]?.state, 'removing');
    f.backend.clearCalls();
    const relaunch = f.engine.launch({ ...V1, ...OTHER });
    await new Promise((r) => setTimeout(r, 50));
    assert.is(f.backend.trace().length, 0, 'the launch waits while its layer is evicted');
    open();
    await removing;
    const b = await relaunch;
    assert.is(hooks(f), 2, 'then builds both layers anew');
    assert.equal(b.sdks.map((l) => l.layer), a.sdks.map((l) => l.layer));
    await assertAccounted(f.engine, f.backend);
  } finally {
    await f.cleanup();
  }
});

test('stash holds shared layers by reference and copies none; unstash returns to them', async () => {
  const f = await fixture();
  try {
    const a = await f.engine.launch(V1);
    f.backend.clearCalls();
    const s = await f.engine.stash('nav2');
    assert.equal(f.backend.trace(), [`stop ${objectKey(WS)}`, `copy ${objectKey(WS)} -> layers/stash-nav2-1a2b3c4d`, `start ${objectKey(WS)}`]);
    assert.equal(s.stash?.sdkLayers.map((l) => l.copy), [null, null]);
    f.backend.clearCalls();
    await f.engine.unstash('nav2');
    assert.equal(f.backend.trace().filter((l) => l.includes(' layers/ros2-') || l.includes(' layers/nav-')), [], 'no shared layer copied or removed');
    assert.equal(f.engine.show('nav2').sdks, a.sdks);
    await assertAccounted(f.engine, f.backend);
  } finally {
    await f.cleanup();
  }
});

test('upgrade: per-workshop layers from before the cache keep working; the next refresh moves onto shared layers', async () => {
  const f = await fixture({ sdkCache: false });
  try {
    const old = await f.engine.launch(V1);
    assert.equal(shared(f), [], 'per-workshop layers');
    await f.engine.close();
    const e = await (async () => {
      const { openEngineImpl } = await import('../../engine/engine.ts');
      const { sequentialIds, steppingClock } = await import('../../engine/ids.ts');
      return openEngineImpl({ stateDir: f.stateDir, runDir: f.runDir, backend: f.backend, owner: 'alice', ids: sequentialIds(100), clock: steppingClock('2027-01-01T00:00:00.000Z') });
    })();
    f.engine = e;
    await e.stash('nav2');
    await e.unstash('nav2');
    assert.equal(e.show('nav2').sdks, old.sdks, 'stash and unstash as before');
    const moved = await e.refresh(V1);
    const named = await withSharedLayers(f.backend, V1);
    assert.equal(moved.sdks.map((l) => l.layer), named.sdks.map((s) => s.layer), 'shared layers now');
    for (const l of old.sdks) assert.not.ok(f.backend.objects().some((o) => o.name === l.layer), `${l.layer} removed`);
    await assertAccounted(e, f.backend);
  } finally {
    await f.cleanup();
  }
});

test.run();

/**
 * The SDK cache on a real LXD daemon: `one` with two SDKs runs both hooks; `two` with the same SDKs
 * runs none (a copy of the deepest cached layer, then a start). The shared layers live in the
 * owner's layers project (`workshop-layers.<owner>`) under their content names (`<sdk>-<16 hex>`,
 * the key from the base image's fingerprint and the SDK chain hash), once each, tagged as cache
 * entries. Removing both workshops leaves them there, recorded `shared` in the state; `gc --cache`
 * deletes them from LXD.
 * Without a daemon: fails in CI, skips with a reason elsewhere (`bash scripts/lxd-setup.sh`).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLxdBackend } from '../../backends/lxd/index.ts';
import type { LxdInstance } from '../../backends/lxd/client.ts';
import { layerKey } from '../../engine/cache.ts';
import { openEngineImpl, type EngineImpl } from '../../engine/engine.ts';
import { guarded, LXD_BASE, LXD_SOCKET, lxdAvailable, lxdUnavailable, purgeOwner, rawClient, uniqueOwner } from '../backends/lxd-env.ts';
import { inlineSpec, ProgressLog } from './helpers.ts';

const avail = await lxdAvailable();

const SDKS = ['alpha', 'beta'].map((name) => ({
  name,
  'setup-base': `R="\${ATELIER_ROOTFS%/}"\nmkdir -p "$R/opt/${name}" "$R/var/log"\necho ${name} > "$R/opt/${name}/marker"\necho ${name} >> "$R/var/log/hooks"`,
}));

/** The instances of one of the owner's projects, by name, as LXD lists them. */
async function instances(project: string): Promise<LxdInstance[]> {
  const raw = rawClient();
  try {
    return (await raw.get<LxdInstance[]>('/1.0/instances', { project, recursion: 1 })).sort((a, b) => (a.name < b.name ? -1 : 1));
  } finally {
    raw.close();
  }
}

if (!avail.ok) {
  const t = suite('SDK cache on LXD');
  lxdUnavailable(t, 'SDK cache on LXD', avail.reason);
  t.run();
} else {
  const t = guarded(suite('SDK cache on LXD'));

  t('two runs no hook; the shared layers sit once in the layers project under their hash names; removed, they stay cached; gc --cache deletes them', async () => {
    const owner = uniqueOwner('atl-cache');
    const dir = await mkdtemp(join(tmpdir(), 'atelier-lxd-cache-'));
    const backend = createLxdBackend({ owner, socket: LXD_SOCKET, stopTimeoutS: 0 });
    let engine: EngineImpl | null = null;
    try {
      engine = await openEngineImpl({ stateDir: join(dir, 'state'), runDir: join(dir, 'run'), backend, owner });
      const layersProject = `workshop-layers.${owner}`;
      const workshopsProject = `workshop.${owner}`;

      const p1 = new ProgressLog();
      const one = await engine.launch(inlineSpec('one', LXD_BASE, SDKS), { onProgress: p1.on });
      assert.equal(p1.hooks(), ['setup-base alpha', 'setup-base beta'], 'one runs both hooks');
      const p2 = new ProgressLog();
      const two = await engine.launch(inlineSpec('two', LXD_BASE, SDKS), { onProgress: p2.on });
      assert.equal(p2.hooks(), [], 'two runs no hook');
      assert.equal(p2.started(), ['create from beta', 'start'], 'two is a copy of the cached beta layer, then a start');
      assert.equal(two.sdks, one.sdks, 'the same layers');
      assert.is(two.status, 'ready');
      assert.is.not(two.identity?.uuid, one.identity?.uuid);
      assert.is.not(two.identity?.mac, one.identity?.mac, 'a MAC of its own');
      assert.is((await backend.readFile({ space: 'workshops', name: two.instance }, '/var/log/hooks'))?.content, 'alpha\nbeta\n', "two's root holds what the hooks wrote, once each");

      // The layers project: the two shared layers, under their content names, once each, stopped.
      const fingerprint = await backend.baseFingerprint(LXD_BASE);
      const spec = inlineSpec('one', LXD_BASE, SDKS);
      const names = spec.sdks.map((s) => `${s.name}-${layerKey(fingerprint, s.hash)}`);
      assert.equal(one.sdks.map((l) => l.layer), names, 'named by base fingerprint and chain hash');
      for (const n of names) assert.match(n, /^[a-z]+-[0-9a-f]{16}$/);
      let layers = await instances(layersProject);
      assert.equal(layers.map((i) => i.name), [...names].sort(), 'the layers project holds each shared layer once, and nothing else');
      for (const i of layers) {
        assert.is(i.status, 'Stopped', `${i.name} never runs`);
        assert.is(i.config['user.atelier.kind'], 'sdk');
        assert.is(i.config['user.atelier.cache'], i.name.slice(i.name.indexOf('-') + 1), `${i.name}: tagged with its content key`);
        assert.is(i.config['user.atelier.workshop'], undefined, `${i.name}: nobody's own`);
      }
      assert.is(layers.find((i) => i.name === names[1])!.config['user.atelier.parent'], names[0], 'beta names its parent');
      assert.equal((await instances(workshopsProject)).map((i) => i.name), [one.instance, two.instance].sort());

      // Removed: the layers stay, as cache entries.
      await engine.remove('one');
      await engine.remove('two');
      assert.equal(await instances(workshopsProject), [], 'the workshops are gone');
      layers = await instances(layersProject);
      assert.equal(layers.map((i) => i.name), [...names].sort(), 'the shared layers stay in LXD');
      for (const n of names) {
        const rec = engine.folded.objects[`layers/${n}`];
        assert.equal([rec?.state, rec?.shared], ['present', true], `${n}: a cache entry in the state`);
      }
      const usage = await engine.usage();
      for (const n of names) assert.equal(usage.objects.find((o) => o.ref.name === n)?.shared, [], `${n}: held by nobody`);

      // gc --cache: evicted from LXD and from the state.
      const dry = await engine.gc({ cache: true, dryRun: true });
      assert.equal(dry.evicted?.map((r) => r.name).sort(), [...names].sort());
      assert.is((await instances(layersProject)).length, 2, 'a dry run deletes nothing');
      const report = await engine.gc({ cache: true });
      assert.equal(report.evicted?.map((r) => r.name).sort(), [...names].sort(), 'both evicted');
      assert.equal(await instances(layersProject), [], 'LXD holds no layer');
      assert.equal(Object.keys(engine.folded.objects), [], 'the state accounts for nothing');
      assert.equal(await backend.list(owner), []);
    } finally {
      await engine?.close().catch(() => undefined);
      await backend.close();
      await purgeOwner(owner);
      await rm(dir, { recursive: true, force: true });
    }
  });

  t.run();
}

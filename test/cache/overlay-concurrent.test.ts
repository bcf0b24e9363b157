/**
 * The SDK cache on overlay (containers under runc), both drivers: two workshops with the same SDKs
 * launched at the same time run each hook once in all (one flight per layer). Counted two ways:
 * `setup-base` progress events that started, across both launches; and each hook appends its name
 * to `/var/log/hooks` inside the root, so the deepest layer (and both workshops) hold one line per
 * hook. Both end ready with the same SDK layers, and each layer is in the store once.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { inlineSpec, overlayMissing, overlayWorld, OWNER, ProgressLog } from './helpers.ts';

const t = suite('SDK cache on overlay: concurrent launches');

/** Hooks that take a while (so the launches overlap) and leave one line each in `/var/log/hooks`. */
const SLOW = ['alpha', 'beta', 'gamma'].map((name) => ({
  name,
  'setup-base': `R="\${ATELIER_ROOTFS%/}"\nsleep 1\nmkdir -p "$R/var/log" "$R/opt/${name}"\necho ${name} >> "$R/var/log/hooks"\necho ${name} > "$R/opt/${name}/marker"`,
}));

if (!(await overlayMissing(t, 'SDK cache concurrency on overlay'))) {
  for (const driver of ['overlayfs', 'copy'] as const) {
    t(`${driver}: two launches at once with the same SDKs run each hook once; both ready on the same layers, each layer in the store once`, async () => {
      const w = await overlayWorld(driver);
      try {
        const e = w.engine;
        const log = new ProgressLog();
        const [x, y] = await Promise.all([e.launch(inlineSpec('left', e.backend.defaultBase, SLOW), { onProgress: log.on }), e.launch(inlineSpec('right', e.backend.defaultBase, SLOW), { onProgress: log.on })]);

        assert.equal(log.hooks().sort(), SLOW.map((s) => `setup-base ${s.name}`), `each hook started once in all: ${JSON.stringify(log.hooks())}`);
        const builders = [x, y].filter((v) => log.hooks(v.name).length > 0);
        assert.is(builders.length, 1, 'one launch built the layers');
        const other = builders[0] === x ? y : x;
        assert.equal(log.started(other.name), ['create from gamma', 'start'], 'the other waited, then was made from the cached layer');
        // The waiting one began once the builder had snapshotted the last layer.
        const lastSnapshot = log.events.find((p) => p.workshop === builders[0]!.name && p.label === 'snapshot gamma' && p.status === 'done')!;
        const otherFirst = log.events.find((p) => p.workshop === other.name)!;
        assert.ok(otherFirst.at >= lastSnapshot.at, `the copy (${otherFirst.at}) follows the last snapshot (${lastSnapshot.at})`);

        for (const v of [x, y]) assert.is(v.status, 'ready', `${v.name} is ready`);
        assert.equal(x.sdks, y.sdks, 'the same SDK layers');
        assert.equal(x.sdks.map((l) => l.sdk), ['alpha', 'beta', 'gamma']);

        // One line per hook: in the deepest layer, in its parents (theirs so far), in both workshops.
        for (const [i, l] of x.sdks.entries()) {
          const f = await w.backend.readFile({ space: 'layers', name: l.layer }, '/var/log/hooks');
          assert.is(f?.content, SLOW.slice(0, i + 1).map((s) => `${s.name}\n`).join(''), `layer ${l.layer}: one line per hook up to ${l.sdk}`);
        }
        for (const v of [x, y]) {
          assert.is((await w.backend.readFile({ space: 'workshops', name: v.instance }, '/var/log/hooks'))?.content, 'alpha\nbeta\ngamma\n', `${v.name}: one line per hook`);
          assert.is((await w.backend.inspect({ space: 'workshops', name: v.instance }))?.status, 'running', `${v.name} runs`);
        }

        // Each layer once: in the port's listing, in the store's object directory, in the state.
        const names = x.sdks.map((l) => l.layer).sort();
        const listed = (await w.backend.list(OWNER)).filter((o) => o.ref.space === 'layers').map((o) => o.ref.name).sort();
        assert.equal(listed, names, 'the backend lists each layer once, and no other');
        assert.equal((await readdir(join(w.backend.root, 'objects', 'layers'))).sort(), names, "the store's layers: these three");
        const shared = Object.values(e.folded.objects).filter((o) => o.ref.space === 'layers');
        assert.equal(shared.map((o) => [o.ref.name, o.state, o.shared]).sort(), names.map((n) => [n, 'present', true]), 'the state: three shared layers');
        assert.equal(Object.keys(e.folded.ops), [], 'no op left in progress');
      } finally {
        await w.cleanup();
      }
    });
  }
}

t.run();

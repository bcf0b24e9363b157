/**
 * The SDK cache through a real atelierd process (the compiled daemon, on a real unix socket) on
 * the overlay backend, containers under runc: two `POST /v1/workshops` launches sent at once with
 * the same SDKs (inline specs, two projects) both end Done on the same shared layers, and each hook
 * ran once in all. Counted three ways: the changes' `setup-base` tasks; the journal as
 * `/v1/events` streams it (`effect.requested` of an `exec` step of each op's plan); and inside the
 * workshops, where each hook appended its name to `/var/log/hooks` (read by a transient container,
 * `POST /v1/containers`). Each layer is on the backend once (`GET /v1/space`); removing both
 * leaves them cached, and `POST /v1/gc {"cache":true}` evicts them.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventStream, request, spawnDaemon, waitChange } from '../daemon/helpers.ts';
import { releaseMounts } from '../backends/overlay-env.ts';
import { overlayMissing } from './helpers.ts';

const t = suite('SDK cache through atelierd (overlay)');

const SDKS = ['alpha', 'beta', 'gamma'].map((name) => ({
  name,
  'setup-base': `R="\${ATELIER_ROOTFS%/}"\nsleep 1\nmkdir -p "$R/var/log"\necho ${name} >> "$R/var/log/hooks"`,
}));
const launch = (socket: string, name: string) => request(socket, 'POST', '/v1/workshops', { action: 'launch', spec: { name, project: `/srv/projects/${name}`, sdks: SDKS } });

async function done(socket: string, id: string): Promise<any> {
  const c = await waitChange(socket, id, '120s');
  assert.is(c.status, 'Done', JSON.stringify(c));
  return c;
}

async function layersOnBackend(socket: string): Promise<string[]> {
  const r = await request(socket, 'GET', '/v1/space');
  assert.is(r.status, 200, r.text);
  return (r.body.result.objects as { ref: { space: string; name: string } }[]).filter((o) => o.ref.space === 'layers').map((o) => o.ref.name).sort();
}

if (!(await overlayMissing(t, 'SDK cache through atelierd on overlay'))) {
  t('two launches at once with the same SDKs: both Done, on the same layers, each hook run once in all', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'atelierd-cache-ovl-'));
    const socket = join(dir, 'sock', 'atelierd.sock');
    const d = spawnDaemon(['--backend', 'overlay', '--state-dir', join(dir, 'state'), '--run-dir', join(dir, 'run'), '--socket', socket, '--grace', '1']);
    const launched: string[] = [];
    try {
      for (let i = 0; ; i++) {
        if ((await request(socket, 'GET', '/v1/system-info').catch(() => null))?.status === 200) break;
        if (i > 400 || d.proc.exitCode !== null) throw new Error(`atelierd did not answer on ${socket}:\n${d.output()}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      const info = (await request(socket, 'GET', '/v1/system-info')).body.result;
      assert.is(info.backend, 'overlay');
      assert.is(info.isolation?.kind ?? info.isolation, 'runc', `containers: ${JSON.stringify(info.isolation)}`);
      const events = new EventStream(socket, '/v1/events?after=0');

      const [a, b] = await Promise.all([launch(socket, 'one'), launch(socket, 'two')]);
      assert.is(a.status, 202, a.text);
      assert.is(b.status, 202, b.text);
      launched.push('one', 'two');
      const changes = [await done(socket, a.body.change), await done(socket, b.body.change)];

      // The changes' tasks: each setup-base once in all, done; the other launch copied the cached layer.
      const hookTasks = changes.flatMap((c) => c.tasks.filter((k: any) => k.summary.startsWith('setup-base ')));
      assert.equal(hookTasks.map((k: any) => k.summary).sort(), SDKS.map((s) => `setup-base ${s.name}`), 'each hook is a task once in all');
      assert.ok(hookTasks.every((k: any) => k.status === 'Done'), JSON.stringify(hookTasks));
      const builders = changes.filter((c) => c.tasks.some((k: any) => k.summary.startsWith('setup-base ')));
      assert.is(builders.length, 1, 'one change built the layers');
      const other = changes.find((c) => c !== builders[0])!;
      assert.equal(other.tasks.map((k: any) => [k.summary, k.status]), [['create from gamma', 'Done'], ['start', 'Done']], 'the other is a copy of the cached layer');

      // The journal: exec effects requested, once per SDK.
      await events.until((rs) => rs.filter((r) => r.type === 'op.finished').length >= 2);
      events.close();
      const plans = new Map<string, any>(events.records.filter((r) => r.type === 'op.started').map((r) => [r.data.op, r.data.plan]));
      const execs = events.records.filter((r) => r.type === 'effect.requested' && r.data.phase === 'do' && plans.get(r.data.op)?.do[r.data.step]?.effect.type === 'exec');
      assert.equal(execs.map((r) => plans.get(r.data.op).do[r.data.step].effect.sdk).sort(), ['alpha', 'beta', 'gamma'], 'the journal: one exec per SDK');

      // Both workshops: ready, the same layers; inside, one line per hook.
      const views = await Promise.all(['one', 'two'].map(async (n) => (await request(socket, 'GET', `/v1/workshops/${n}`)).body.result));
      for (const v of views) assert.is(v.status, 'ready', JSON.stringify(v));
      const layers = views[0].sdks.map((s: { layer: string }) => s.layer);
      assert.equal(views[1].sdks.map((s: { layer: string }) => s.layer), layers, 'the same SDK layers');
      for (const [i, l] of layers.entries()) assert.match(l, new RegExp(`^${SDKS[i]!.name}-[0-9a-f]{16}$`));
      for (const n of ['one', 'two']) {
        const r = await request(socket, 'POST', '/v1/containers', { from: n, script: 'cat /var/log/hooks' });
        assert.is(r.status, 202, r.text);
        const c = await done(socket, r.body.change);
        assert.is(c.data['exit-code'], 0, JSON.stringify(c.data));
        assert.is(c.data.stdout, 'alpha\nbeta\ngamma\n', `${n}: one line per hook`);
      }
      assert.equal(await layersOnBackend(socket), [...layers].sort(), 'each layer on the backend once, and no other');

      // Removed: the layers stay as cache entries; gc --cache evicts them.
      for (const n of ['one', 'two']) await done(socket, (await request(socket, 'POST', `/v1/workshops/${n}`, { action: 'remove' })).body.change);
      launched.length = 0;
      assert.equal(await layersOnBackend(socket), [...layers].sort(), 'cached once nobody holds them');
      const gc = await done(socket, (await request(socket, 'POST', '/v1/gc', { cache: true })).body.change);
      assert.equal(gc.data.evicted.map((r: { name: string }) => r.name).sort(), [...layers].sort());
      assert.equal(await layersOnBackend(socket), [], 'evicted');
    } finally {
      for (const n of launched) {
        const r = await request(socket, 'POST', `/v1/workshops/${n}`, { action: 'remove' }).catch(() => null);
        if (r?.status === 202) await waitChange(socket, r.body.change).catch(() => undefined);
      }
      if (d.proc.exitCode === null) {
        d.proc.kill('SIGTERM');
        await d.exit;
      }
      await releaseMounts(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

t.run();

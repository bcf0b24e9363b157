/**
 * The engine on a real LXD daemon: identity across refresh and failed refresh, stash MACs, `user.*`
 * config through stash and unstash, SDK layer reuse, and crash recovery with the engine SIGKILLed in
 * a child process (`lxd-crash-child.ts`) at several points of a refresh.
 * Without a daemon: fails in CI, skips with a reason elsewhere (`bash scripts/lxd-setup.sh`).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createLxdBackend } from '../../backends/lxd/index.ts';
import type { LxdInstance } from '../../backends/lxd/client.ts';
import type { Backend, ObjectRef } from '../../backends/types.ts';
import { isAtelierError } from '../../machines/errors.ts';
import { loadWorkshopFile, openEngine } from '../../engine/index.ts';
import type { Engine, WorkshopView } from '../../engine/index.ts';
import { LXD_BASE, LXD_SOCKET, lxdAvailable, guarded, lxdUnavailable, purgeOwner, rawClient, uniqueOwner } from '../backends/lxd-env.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const avail = await lxdAvailable();

/** A project directory with SDKs a, b, c; `gen[i]` goes into SDK i's marker file, `extra[i]` into its hook. */
async function writeProject(dir: string, name: string, gen: number[], extra: string[] = []): Promise<string> {
  const sdks = ['a', 'b', 'c'];
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'workshop.yaml'), `name: ${name}\nbase: ${LXD_BASE}\nsdks:\n${sdks.map((s) => `  - name: ${s}\n`).join('')}`);
  for (const [i, sdk] of sdks.entries()) {
    const hooks = join(dir, '.workshop', sdk, 'hooks');
    await mkdir(hooks, { recursive: true });
    await writeFile(join(dir, '.workshop', sdk, 'sdk.yaml'), `name: ${sdk}\n`);
    const script = [`mkdir -p "\${ATELIER_ROOTFS%/}/opt/${sdk}"`, `echo ${gen[i] ?? 1} > "\${ATELIER_ROOTFS%/}/opt/${sdk}/gen"`, extra[i] ?? ''].join('\n');
    await writeFile(join(hooks, 'setup-base'), `${script}\n`, { mode: 0o755 });
  }
  return join(dir, 'workshop.yaml');
}

interface World {
  owner: string;
  dir: string;
  backend: Backend;
  open(): Promise<Engine>;
  cleanup(): Promise<void>;
}

async function world(label: string): Promise<World> {
  const owner = uniqueOwner(`atl-${label}`);
  const dir = await mkdtemp(join(tmpdir(), `atelier-lxd-${label}-`));
  const backend = createLxdBackend({ owner, socket: LXD_SOCKET, stopTimeoutS: 0 });
  const engines: Engine[] = [];
  return {
    owner,
    dir,
    backend,
    async open() {
      const e = await openEngine({ stateDir: join(dir, 'state'), runDir: join(dir, 'run'), backend, owner });
      engines.push(e);
      return e;
    },
    async cleanup() {
      for (const e of engines) await e.close().catch(() => undefined);
      await backend.close();
      await purgeOwner(owner);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const key = (r: ObjectRef) => `${r.space}/${r.name}`;

/** What the state says should exist, as `space/name`. */
function expected(view: WorkshopView): string[] {
  const out = [`workshops/${view.instance}`, ...view.sdks.map((l) => `layers/${l.layer}`)];
  if (view.stash) out.push(`layers/${view.stash.layer}`, ...view.stash.sdkLayers.flatMap((l) => (l.copy ? [`layers/${l.copy}`] : [])));
  return out.sort();
}

/** State and LXD agree: the owner's objects are exactly the state's, nothing else sits in either project, layers are stopped. */
async function agree(w: World, view: WorkshopView): Promise<void> {
  const listed = await w.backend.list(w.owner);
  // Shared SDK layers the workshop no longer uses stay as cache entries (the SDK cache's policy keeps
  // up to ten): the state accounts for them, they are not the workshop's.
  const cached = new Set(listed.filter((o) => o.tags.cache !== undefined && !expected(view).includes(key(o.ref))).map((o) => key(o.ref)));
  for (const c of cached) assert.ok(c.startsWith('layers/'), `${c}: a cache entry is a layer`);
  const owned = listed.filter((o) => !cached.has(key(o.ref)));
  assert.equal(owned.map((o) => key(o.ref)).sort(), expected(view), 'owned objects match the state');
  const raw = rawClient();
  try {
    const all: string[] = [];
    for (const [space, project] of [['workshops', `workshop.${w.owner}`], ['layers', `workshop-layers.${w.owner}`]] as const) {
      for (const i of await raw.get<LxdInstance[]>('/1.0/instances', { project, recursion: 1 })) {
        all.push(`${space}/${i.name}`);
        if (space === 'layers') assert.is(i.status, 'Stopped', `layer ${i.name} is never running`);
      }
    }
    assert.equal(all.filter((n) => !cached.has(n)).sort(), expected(view), 'no orphan instance in either project');
  } finally {
    raw.close();
  }
}

async function instanceConfig(w: World, name: string, space: 'workshops' | 'layers' = 'workshops'): Promise<Record<string, string>> {
  const raw = rawClient();
  try {
    return (await raw.get<LxdInstance>(`/1.0/instances/${name}`, { project: space === 'workshops' ? `workshop.${w.owner}` : `workshop-layers.${w.owner}` })).config;
  } finally {
    raw.close();
  }
}

async function gen(w: World, view: WorkshopView, sdk: string): Promise<string | undefined> {
  return (await w.backend.readFile({ space: 'workshops', name: view.instance }, `/opt/${sdk}/gen`))?.content?.trim();
}

interface Killed {
  killedAt: string | null;
  lines: string[];
}

/** Run `refresh` in a child engine and SIGKILL it `delayMs` after the first progress event matching `when`. */
function refreshInChild(w: World, project: string, when: (p: { phase: string; label: string; status: string }) => boolean, delayMs: number): Promise<Killed> {
  return new Promise((resolve, reject) => {
    const args = { stateDir: join(w.dir, 'state'), runDir: join(w.dir, 'run'), owner: w.owner, project, socket: LXD_SOCKET, cmd: 'refresh' };
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'lxd-crash-child.ts'), JSON.stringify(args)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Killed = { killedAt: null, lines: [] };
    let buf = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const l = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        out.lines.push(l);
        let msg: { progress?: { phase: string; label: string; status: string } };
        try {
          msg = JSON.parse(l);
        } catch {
          continue;
        }
        if (msg.progress && out.killedAt === null && when(msg.progress)) {
          out.killedAt = `${msg.progress.phase} ${msg.progress.label} ${msg.progress.status}`;
          setTimeout(() => child.kill('SIGKILL'), delayMs);
        }
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL' || out.killedAt === null) {
        reject(new Error(`the child was not killed at the crash point (exit ${code}, signal ${signal}); output:\n${out.lines.join('\n')}\n${stderr}`));
      } else resolve(out);
    });
  });
}

if (!avail.ok) {
  const t = suite('lxd engine');
  lxdUnavailable(t, 'lxd engine', avail.reason);
  t.run();
} else {
  const t = guarded(suite('lxd engine'));

  t('refresh keeps the workshop MAC and uuid and reuses SDK layers whose hash matches', async () => {
    const w = await world('rf');
    try {
      const engine = await w.open();
      const proj = join(w.dir, 'project');
      const spec1 = await loadWorkshopFile(await writeProject(proj, 'reuse', [1, 1, 1]), { defaultBase: w.backend.defaultBase });
      const v1 = await engine.launch(spec1);
      assert.ok(v1.identity?.mac, 'the workshop has a MAC');
      const info1 = await w.backend.inspect({ space: 'workshops', name: v1.instance });
      assert.equal(info1?.identity, v1.identity);
      assert.is(info1?.status, 'running');
      for (const l of v1.sdks) {
        const li = await w.backend.inspect({ space: 'layers', name: l.layer });
        assert.is(li?.tags.kind, 'sdk');
        assert.is(li?.status, 'stopped');
        assert.is((await instanceConfig(w, l.layer, 'layers'))['boot.autostart'], 'false');
      }
      await agree(w, v1);
      const layerOps = await Promise.all(v1.sdks.map(async (l) => (await w.backend.inspect({ space: 'layers', name: l.layer }))?.tags.op));

      const spec2 = await loadWorkshopFile(await writeProject(proj, 'reuse', [1, 1, 2]), { defaultBase: w.backend.defaultBase });
      const v2 = await engine.refresh(spec2);
      assert.equal(v2.identity, v1.identity, 'identity kept by the state');
      const info2 = await w.backend.inspect({ space: 'workshops', name: v2.instance });
      assert.equal(info2?.identity, v1.identity, 'identity kept by LXD');
      assert.is(v2.sdks[0]!.layer, v1.sdks[0]!.layer, 'layer a reused');
      assert.is(v2.sdks[1]!.layer, v1.sdks[1]!.layer, 'layer b reused');
      assert.is.not(v2.sdks[2]!.layer, v1.sdks[2]!.layer, 'layer c rebuilt');
      for (const i of [0, 1]) assert.is((await w.backend.inspect({ space: 'layers', name: v2.sdks[i]!.layer }))?.tags.op, layerOps[i], 'a reused layer is not recreated');
      assert.is(await gen(w, v2, 'c'), '2');
      assert.is(await gen(w, v2, 'a'), '1');
      assert.is(v2.stash, null);
      await agree(w, v2);
    } finally {
      await w.cleanup();
    }
  });

  t('stash gets its own MAC; user.* config survives stash and unstash; a failed refresh keeps identity', async () => {
    const w = await world('st');
    try {
      const engine = await w.open();
      const proj = join(w.dir, 'project');
      const v1 = await engine.launch(await loadWorkshopFile(await writeProject(proj, 'stashy', [1, 1, 1]), { defaultBase: w.backend.defaultBase }));
      const raw = rawClient();
      await raw.sync('PATCH', `/1.0/instances/${v1.instance}`, { config: { 'user.custom': 'mine' } }, { project: `workshop.${w.owner}` });
      raw.close();

      const s = await engine.stash('stashy');
      assert.ok(s.stash, 'the stash is recorded');
      const stash = await w.backend.inspect({ space: 'layers', name: s.stash!.layer });
      assert.ok(stash?.identity.mac);
      assert.is.not(stash?.identity.mac, v1.identity?.mac, 'the stash has its own MAC');
      assert.is.not(stash?.identity.uuid, v1.identity?.uuid);
      assert.is((await instanceConfig(w, s.stash!.layer, 'layers'))['user.custom'], 'mine');
      await agree(w, s);

      const raw2 = rawClient();
      await raw2.sync('PATCH', `/1.0/instances/${v1.instance}`, { config: { 'user.custom': 'changed-after-stash' } }, { project: `workshop.${w.owner}` });
      raw2.close();
      const u = await engine.unstash('stashy');
      assert.is(u.stash, null);
      const cfg = await instanceConfig(w, v1.instance);
      assert.is(cfg['user.custom'], 'mine', 'user.* config comes back with the stash');
      assert.is(cfg['volatile.eth0.hwaddr'], v1.identity?.mac);
      assert.is(cfg['volatile.uuid'], v1.identity?.uuid);
      await agree(w, u);

      // a refresh whose hook fails is undone: same identity, same files, same layers
      const bad = await loadWorkshopFile(await writeProject(proj, 'stashy', [1, 2, 2], ['', 'exit 3', '']), { defaultBase: w.backend.defaultBase });
      try {
        await engine.refresh(bad);
        assert.unreachable('the refresh should fail');
      } catch (e) {
        assert.ok(isAtelierError(e, 'OP_FAILED'), `expected OP_FAILED, got ${(e as Error).message}`);
      }
      const after = engine.show('stashy');
      assert.equal(after.identity, v1.identity);
      const info = await w.backend.inspect({ space: 'workshops', name: v1.instance });
      assert.equal(info?.identity, v1.identity, 'LXD kept the MAC and uuid through a failed refresh');
      assert.is(info?.status, 'running');
      assert.equal(after.sdks.map((l) => l.layer), v1.sdks.map((l) => l.layer));
      assert.is(await gen(w, after, 'b'), '1');
      assert.is((await instanceConfig(w, v1.instance))['user.custom'], 'mine');
      await agree(w, after);
    } finally {
      await w.cleanup();
    }
  });

  const crashes: Array<{ name: string; when: (p: { phase: string; label: string; status: string }) => boolean; delayMs: number; slowHook?: boolean; gens?: number[] }> = [
    { name: 'during stash', when: (p) => p.phase === 'do' && p.label === 'stash' && p.status === 'started', delayMs: 60 },
    { name: 'after rebuild', when: (p) => p.phase === 'do' && p.label.startsWith('rebuild from') && p.status === 'done', delayMs: 0 },
    // the first SDK changed: rebuilt from the image through a temporary instance, killed midway
    { name: 'during a rebuild from the base', when: (p) => p.phase === 'do' && p.label === 'rebuild from base' && p.status === 'started', delayMs: 150, gens: [2, 1, 1] },
    { name: 'during a hook', when: (p) => p.phase === 'do' && p.label === 'setup-base c' && p.status === 'started', delayMs: 400, slowHook: true },
  ];

  for (const c of crashes) {
    t(`SIGKILL ${c.name}: reopening reconciles with LXD and the retried refresh succeeds`, async () => {
      const w = await world('cr');
      try {
        const proj = join(w.dir, 'project');
        const e1 = await w.open();
        const v1 = await e1.launch(await loadWorkshopFile(await writeProject(proj, 'crashy', [1, 1, 1]), { defaultBase: w.backend.defaultBase }));
        await e1.close();
        const gens = c.gens ?? [1, 1, 2];
        const file = await writeProject(proj, 'crashy', gens, ['', '', c.slowHook ? 'sleep 3' : '']);
        const killed = await refreshInChild(w, file, c.when, c.delayMs);
        assert.ok(killed.killedAt);

        const e2 = await w.open(); // reconciles
        const v2 = e2.show('crashy');
        assert.is.not(v2.status, 'busy', 'no op is left in flight after reconciliation');
        await agree(w, v2);
        const info = await w.backend.inspect({ space: 'workshops', name: v1.instance });
        assert.equal(info?.identity, v1.identity, 'identity kept through the crash');

        const v3 = await e2.refresh(await loadWorkshopFile(file, { defaultBase: w.backend.defaultBase }));
        assert.is(v3.status, 'ready');
        assert.equal(v3.identity, v1.identity);
        for (const [i, sdk] of ['a', 'b', 'c'].entries()) assert.is(await gen(w, v3, sdk), String(gens[i]));
        assert.is((await w.backend.inspect({ space: 'workshops', name: v3.instance }))?.status, 'running');
        await agree(w, v3);
      } finally {
        await w.cleanup();
      }
    });
  }

  t.run();
}

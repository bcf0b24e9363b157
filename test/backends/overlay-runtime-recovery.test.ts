/**
 * Overlay containers across crashes, reboots and copies: a crashed process's containers are still
 * running after a reopen; a container deleted behind atelier's back reads stopped; a half-created
 * one is deleted and run again; a wiped run directory's and a deleted store's processes are
 * killed; a copy of a running workshop restarts its container; nothing the runtime makes ever
 * lands in an instance's upper layer, on any base.
 *
 * Needs root, runc and catatonit: skipped with the reason elsewhere, failing in CI.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOverlayBackend } from '../../backends/overlay/index.ts';
import { mountsUnder } from '../../backends/overlay/mounts.ts';
import type { ObjectRef } from '../../backends/types.ts';
import type { OverlayFixture } from './overlay-env.ts';
import { overlayFixture, releaseMounts } from './overlay-env.ts';
import { rejects } from './cases/fixture.ts';
import { Collect, eventually, hostPids, LY, runcState, runtimeMissing, tags, upperEntries, withRuntime, WS } from './overlay-runtime-env.ts';

const t = suite('overlay runtime: recovery, copies, clean uppers');

const hostnameIn = async (f: OverlayFixture, ws: ObjectRef) => (await f.backend.exec(ws, { script: 'hostname' })).stdout;
const runcRoot = (f: OverlayFixture) => join(f.backend.runDir, 'runc');
const initPid = (f: OverlayFixture, id: string) => runcState(f, id)?.pid;

if (!(await runtimeMissing(t, 'overlay runtime recovery'))) {
  t('a crash of this process (reopen without stop): the container still runs and is recognised', withRuntime(async (f, ws) => {
    const pid = initPid(f, ws.name);
    const again = await f.reopen();
    assert.equal(again.recovery.restarted, []);
    assert.equal(again.recovery.orphans, []);
    assert.is((await again.inspect(ws))?.status, 'running');
    assert.is(initPid(f, ws.name), pid, 'the same container');
    assert.is((await again.exec(ws, { script: 'hostname' })).stdout, 'nav2\n');
    assert.is((await again.list('alice'))[0]?.status, 'running');
  }));

  t('a container deleted behind atelier\'s back reads stopped (as runc says); start runs it again', withRuntime(async (f, ws) => {
    assert.is(runcState(f, ws.name)?.status, 'running');
    execFileSync('runc', ['--root', runcRoot(f), 'kill', ws.name, 'KILL']);
    await eventually('runc sees it stopped', async () => runcState(f, ws.name)?.status === 'stopped');
    assert.is((await f.backend.inspect(ws))?.status, 'stopped', 'init dead: stopped');
    execFileSync('runc', ['--root', runcRoot(f), 'delete', '--force', ws.name]);
    assert.is((await f.backend.inspect(ws))?.status, 'stopped');
    await rejects(f.backend.exec(ws, { script: 'true' }), 'INVALID');
    await f.backend.start(ws);
    assert.is((await f.backend.inspect(ws))?.status, 'running');
    assert.is(await hostnameIn(f, ws), 'nav2\n');
    await f.backend.stop(ws);
    assert.equal(await mountsUnder(f.dir), []);
  }));

  t('a half-created container (runc says created) is not running, and recovery deletes it and runs it again', withRuntime(async (f, ws) => {
    execFileSync('runc', ['--root', runcRoot(f), 'delete', '--force', ws.name]);
    // What a crash inside `start` leaves: the bundle, and a container created but never started.
    execFileSync('runc', ['--root', runcRoot(f), 'create', '--bundle', join(f.backend.runDir, 'bundles', ws.name), ws.name], { stdio: 'ignore' });
    assert.is(runcState(f, ws.name)?.status, 'created');
    assert.is((await f.backend.inspect(ws))?.status, 'stopped');
    const again = await f.reopen();
    assert.equal(again.recovery.restarted, [ws.name]);
    assert.is(runcState(f, ws.name)?.status, 'running');
    assert.is((await again.inspect(ws))?.status, 'running');
    assert.is((await again.exec(ws, { script: 'hostname' })).stdout, 'nav2\n');
  }));

  t('a run directory wiped by hand (a reboot that was not one): the store\'s processes are killed at open', withRuntime(async (f, ws) => {
    const pid = initPid(f, ws.name)!;
    await f.backend.close();
    await releaseMounts(join(f.dir, 'root')); // the mounts, not the containers
    await rm(f.backend.runDir, { recursive: true, force: true });
    process.kill(pid, 0); // still alive, and nobody could stop it
    const again = await f.reopen();
    assert.ok(again.recovery.orphans.includes(ws.name), String(again.recovery.orphans));
    await eventually('the init is gone', async () => !(await readFile(`/proc/${pid}/stat`, 'utf8').then((s) => !/\) Z /.test(s), () => false)));
    assert.is((await again.inspect(ws))?.status, 'stopped');
    await again.start(ws);
    assert.is((await again.exec(ws, { script: 'hostname' })).stdout, 'nav2\n');
  }));

  t('a deleted store\'s containers are killed when another store opens', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'atelier-abandoned-'));
    const a = await createOverlayBackend({ root: join(dir, 'root'), runDir: join(dir, 'run'), runtime: 'runc' });
    const ws = WS('lost');
    await a.create({ target: ws, source: { base: a.defaultBase }, tags: tags('workshop') });
    await a.start(ws);
    const p = await a.spawn(ws, { argv: ['sleep', '274'], stdout: new Collect(), stderr: new Collect() });
    await eventually('sleep runs', async () => (await hostPids(['sleep', '274'])).length === 1);
    await releaseMounts(join(dir, 'root'));
    await rm(dir, { recursive: true, force: true });
    const other = await overlayFixture('overlayfs', { runtime: 'runc' });
    try {
      await eventually('the deleted store\'s process is gone', async () => (await hostPids(['sleep', '274'])).length === 0);
      assert.is(await p.exit, 137);
    } finally {
      await other.cleanup();
    }
  });

  t('a copy of a running workshop stops its container, freezes, and runs it again (processes in it end)', withRuntime(async (f, ws) => {
    const b = f.backend;
    await b.exec(ws, { script: 'echo kept > /etc/kept' });
    const p = await b.spawn(ws, { argv: ['sleep', '275'], stdout: new Collect(), stderr: new Collect() });
    const before = initPid(f, ws.name);
    await b.copy({ source: ws, target: LY('snap'), tags: tags('sdk') });
    assert.is(await p.exit, 137, 'the process in it ended');
    assert.equal(await hostPids(['sleep', '275']), []);
    assert.is((await b.inspect(ws))?.status, 'running');
    assert.is.not(initPid(f, ws.name), before, 'a new container');
    assert.is(await hostnameIn(f, ws), 'nav2\n');
    assert.is((await b.readFile(LY('snap'), '/etc/kept'))?.content, 'kept\n');
    // Nothing changed since: no remount, the container is left alone.
    const same = initPid(f, ws.name);
    await b.copy({ source: ws, target: LY('snap2'), tags: tags('stash') });
    assert.is(initPid(f, ws.name), same);
    // A transient container from the running workshop (it freezes its source too).
    await b.exec(ws, { script: 'echo more > /etc/more' });
    await b.create({ target: WS('tc'), source: { object: ws }, tags: tags('container') });
    await b.start(WS('tc'));
    assert.is((await b.exec(WS('tc'), { script: 'cat /etc/more; hostname' })).stdout, 'more\ntc\n');
    assert.is((await b.inspect(ws))?.status, 'running');
  }));

  t('containers on one shared scratch: each its own, the root shared; stopping one keeps the other', withRuntime(async (f, ws) => {
    const b = f.backend;
    await b.copy({ source: ws, target: LY('src'), tags: tags('sdk') });
    const [x, y] = [WS('ca'), WS('cb')];
    for (const r of [x, y]) {
      await b.create({ target: r, source: { object: LY('src'), scratch: 'k' }, tags: tags('container') });
      await b.start(r);
    }
    await b.exec(x, { script: 'echo from-x > /etc/shared' });
    assert.is((await b.exec(y, { script: 'cat /etc/shared; hostname' })).stdout, 'from-x\ncb\n');
    await b.stop(x);
    assert.is((await b.inspect(y))?.status, 'running');
    assert.is((await b.exec(y, { script: 'cat /etc/shared' })).stdout, 'from-x\n');
  }));

  t('start, hooks, spawn and stop cycles leave no mount and nothing in the upper layer', withRuntime(async (f, ws) => {
    const b = f.backend;
    for (let i = 0; i < 3; i++) {
      await b.exec(ws, { script: 'true' });
      const p = await b.spawn(ws, { argv: ['sh', '-c', 'ls / >/dev/null; echo x > /tmp/scratch; echo y > /run/y'], stdout: new Collect(), stderr: new Collect() });
      assert.is(await p.exit, 0);
      const term = await b.spawn(ws, { argv: ['true'], terminal: { cols: 80, rows: 24 }, stdout: new Collect(), stderr: new Collect() });
      assert.is(await term.exit, 0);
      await b.stop(ws);
      assert.equal(await mountsUnder(f.dir), [], 'no mount left');
      assert.equal(await upperEntries(f, ws), [], 'nothing in the upper');
      assert.equal(execFileSync('ls', [join(b.runDir, 'bundles'), join(b.runDir, 'runc'), join(b.runDir, 'exec')], { encoding: 'utf8' }).replace(/^\S.*:$/gm, '').trim(), '');
      await b.start(ws);
    }
  }));

  t('a base without /run, /sys, /tmp or /etc/resolv.conf: those mounts are left out, the init goes on /dev, the upper stays empty', withRuntime(async (f) => {
    const b = f.backend;
    await b.addBase('bare', 'fixtures/bases/tiny');
    // `addBase` gives an imported base its mount points; take them away again, as an older store's base may lack them.
    const bases = JSON.parse(await readFile(join(b.root, 'bases.json'), 'utf8')) as Record<string, { blob: string }>;
    const blob = join(b.root, 'blobs', bases['bare']!.blob);
    for (const p of ['run', 'sys', 'tmp', 'etc/resolv.conf']) await rm(join(blob, p), { recursive: true, force: true });
    execFileSync('cp', ['-a', '/bin/busybox', join(blob, 'busybox')]);
    const ws = WS('bare');
    await b.create({ target: ws, source: { base: 'bare' }, tags: tags('workshop') });
    await b.start(ws);
    const out = new Collect();
    assert.is(await (await b.spawn(ws, { argv: ['/busybox', 'cat', '/proc/1/cmdline'], stdout: out, stderr: new Collect() })).exit, 0);
    assert.is(out.text, '/dev/.atelier/init\0-P\0');
    await b.stop(ws);
    assert.equal(await upperEntries(f, ws), []);
    const tiny = await readFile('fixtures/bases/tiny/etc/os-release', 'utf8');
    assert.is((await b.readFile(ws, '/etc/os-release'))?.content, tiny);
  }));
}

t.run();

/**
 * The LXD adapter against a real LXD daemon (`bash scripts/lxd-setup.sh` prepares one): the shared
 * conformance suite, then what only LXD has (projects, config keys, MACs, idmaps, live copies).
 * Without a daemon: fails in CI, skips with a reason elsewhere.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createLxdBackend } from '../../backends/lxd/index.ts';
import type { Backend, BackendError, ObjectRef, Tags } from '../../backends/types.ts';
import { isBackendError } from '../../backends/types.ts';
import { LXD_BASE, LXD_SOCKET, lxdAvailable, guarded, lxdConformance, lxdUnavailable, purgeOwner, rawClient, sweepStale, uniqueOwner } from './lxd-env.ts';
import type { LxdInstance } from '../../backends/lxd/client.ts';
import { runConformance } from './conformance.ts';

const avail = await lxdAvailable();

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (isBackendError(e)) {
      assert.is(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
      return;
    }
    throw e;
  }
  assert.unreachable(`expected a ${code} error`);
}

const WS = (name: string): ObjectRef => ({ space: 'workshops', name });
const LY = (name: string): ObjectRef => ({ space: 'layers', name });

if (!avail.ok) {
  const t = suite('lxd');
  lxdUnavailable(t, 'lxd adapter', avail.reason);
  t.run();
} else {
  const swept = await sweepStale();
  if (swept.length) console.log(`lxd: removed the projects of ${swept.length} stale test owner(s)`);
  registerConformance();

  const owner = uniqueOwner('atl-ad');
  const wsProject = `workshop.${owner}`;
  const lyProject = `workshop-layers.${owner}`;
  const b: Backend = createLxdBackend({ owner, socket: LXD_SOCKET, stopTimeoutS: 0 });
  const raw = rawClient();
  const tags = (op: string, kind: Tags['kind'], extra: Partial<Tags> = {}): Tags => ({ owner, op, kind, workshop: 'w', ...extra }) as Tags;
  const cfg = async (ref: ObjectRef) =>
    (await raw.get<LxdInstance>(`/1.0/instances/${ref.name}`, { project: ref.space === 'workshops' ? wsProject : lyProject })).config;

  const t = guarded(suite('lxd adapter'));
  t.before(async () => {
    await b.ensureProjects(owner);
  });
  t.after(async () => {
    await b.close();
    raw.close();
    await purgeOwner(owner);
  });

  t('projects are created with features.images=false and features.profiles=false', async () => {
    for (const p of [wsProject, lyProject]) {
      const proj = await raw.get<{ config: Record<string, string> }>(`/1.0/projects/${p}`);
      assert.is(proj.config['features.images'], 'false');
      assert.is(proj.config['features.profiles'], 'false');
    }
    await b.ensureProjects(owner); // idempotent
    await rejects(b.ensureProjects('1bad name'), 'INVALID');
  });

  t('listBases lists image aliases; an unknown base is NOT_FOUND', async () => {
    assert.ok((await b.listBases()).includes(LXD_BASE));
    await rejects(b.create({ target: WS('nobase-1'), source: { base: 'no-such-alias' }, tags: tags('o1', 'workshop') }), 'NOT_FOUND');
  });

  t('tags are user.atelier.* keys; copies drop identity and keep user.* config, idmap and base image', async () => {
    const ws = WS('cfg-1');
    await b.create({ target: ws, source: { base: LXD_BASE }, tags: tags('c1', 'workshop', { sdkHash: 'h0' }) });
    await raw.sync('PATCH', `/1.0/instances/${ws.name}`, { config: { 'user.custom': 'kept' } }, { project: wsProject });
    await b.start(ws);
    const wcfg = await cfg(ws);
    assert.is(wcfg['user.atelier.owner'], owner);
    assert.is(wcfg['user.atelier.sdkHash'], 'h0');

    // live copy of a running workshop into the layers project
    const st = LY('stash-cfg-1');
    const info = await b.copy({ source: ws, target: st, tags: tags('c2', 'stash') });
    const scfg = await cfg(st);
    assert.is(info.status, 'stopped');
    assert.is(scfg['user.custom'], 'kept');
    assert.is(scfg['boot.autostart'], 'false');
    assert.is(scfg['user.atelier.sdkHash'], undefined, 'a copy carries only the tags given');
    assert.is(scfg['user.atelier.op'], 'c2');
    assert.is(scfg['volatile.last_state.idmap'], wcfg['volatile.last_state.idmap']);
    assert.is(scfg['volatile.base_image'], wcfg['volatile.base_image']);
    assert.is.not(info.identity.mac, wcfg['volatile.eth0.hwaddr']);
    assert.is.not(info.identity.uuid, wcfg['volatile.uuid']);
    assert.ok(info.identity.mac.length > 0, 'the stash has its own MAC');

    // the stash back onto the workshop: identity kept, user.* config back, autostart not forced
    await b.exec(ws, { script: 'echo after > /etc/marker' });
    await b.stop(ws);
    await raw.sync('PATCH', `/1.0/instances/${ws.name}`, { config: { 'user.custom': 'changed', 'user.added': 'x' } }, { project: wsProject });
    const back = await b.copy({ source: st, target: ws, tags: tags('c3', 'workshop'), refresh: true });
    const bcfg = await cfg(ws);
    assert.is(back.identity.mac, wcfg['volatile.eth0.hwaddr']);
    assert.is(back.identity.uuid, wcfg['volatile.uuid']);
    assert.is(bcfg['user.custom'], 'kept');
    assert.is(bcfg['user.added'], undefined);
    assert.is(bcfg['boot.autostart'], undefined);
    assert.is(bcfg['user.atelier.op'], 'c3');
    assert.equal(back.tags, tags('c3', 'workshop'));
    assert.is(await b.readFile(ws, '/etc/marker'), null, 'the root filesystem is the stash’s');
    await b.start(ws);
    assert.is((await b.exec(ws, { script: 'echo ok' })).stdout, 'ok\n');
    await b.remove(ws);
    await b.remove(st);
  });

  t('refresh-copy onto a running target is BUSY; onto an absent one creates it', async () => {
    const ws = WS('busy-1');
    await b.create({ target: ws, source: { base: LXD_BASE }, tags: tags('b1', 'workshop') });
    const sdk = LY('sdk-busy-1');
    await b.copy({ source: ws, target: sdk, tags: tags('b2', 'sdk', { sdk: 's' }) });
    await b.start(ws);
    await rejects(b.copy({ source: sdk, target: ws, tags: tags('b3', 'workshop'), refresh: true }), 'BUSY');
    await rejects(b.create({ target: ws, source: { base: LXD_BASE }, tags: tags('b3', 'workshop'), refresh: true }), 'BUSY');
    await rejects(b.copy({ source: ws, target: sdk, tags: tags('b4', 'sdk') }), 'ALREADY_EXISTS');
    const fresh = await b.copy({ source: sdk, target: WS('busy-2'), tags: tags('b5', 'workshop'), refresh: true });
    assert.is(fresh.tags.op, 'b5');
    await b.remove(WS('busy-2'));
    await b.remove(ws); // running: stopped first
    await b.remove(sdk);
    assert.is(await b.inspect(ws), null);
  });

  t('rebuild from base in place keeps identity, resets files and ownership maps', async () => {
    const ws = WS('rebuild-1');
    const first = await b.create({ target: ws, source: { base: LXD_BASE }, tags: tags('r1', 'workshop') });
    await b.start(ws); // the first start shifts every file to the container's uid range
    await b.exec(ws, { script: 'echo x > /etc/extra' });
    await b.stop(ws);
    const again = await b.create({ target: ws, source: { base: LXD_BASE }, tags: tags('r2', 'workshop'), refresh: true });
    assert.equal(again.identity, first.identity);
    assert.is(again.tags.op, 'r2');
    await b.start(ws);
    assert.is(await b.readFile(ws, '/etc/extra'), null);
    const passwd = await b.readFile(ws, '/etc/passwd');
    assert.is(passwd?.uid, 0, 'files are owned by the container’s root after the rebuild');
    assert.is((await b.exec(ws, { script: 'touch /root/x && stat -c %u /root/x' })).stdout.trim(), '0');
    const left = (await b.list(owner)).filter((o) => o.ref.name.startsWith('atelier-tmp-'));
    assert.is(left.length, 0, 'no temporary instance remains');
    await b.remove(ws);
  });

  t('layers are never started; exec needs a running instance', async () => {
    const ws = WS('layer-1');
    await b.create({ target: ws, source: { base: LXD_BASE }, tags: tags('l1', 'workshop') });
    const sdk = LY('s-0123456789abcdef');
    await b.copy({ source: ws, target: sdk, tags: tags('l2', 'sdk', { sdk: 's', sdkHash: 'h' }) });
    await rejects(b.start(sdk), 'INVALID');
    await rejects(b.exec(ws, { script: 'true' }), 'INVALID');
    await rejects(b.create({ target: LY('bad-space'), source: { base: LXD_BASE }, tags: tags('l3', 'workshop') }), 'INVALID');
    assert.is((await b.inspect(sdk))?.status, 'stopped');
    assert.is((await cfg(sdk))['boot.autostart'], 'false');
    await b.remove(sdk);
    await b.remove(ws);
  });

  t('exec: output, exit status, ATELIER_ROOTFS, timeout', async () => {
    const ws = WS('exec-1');
    await b.create({ target: ws, source: { base: LXD_BASE }, tags: tags('e1', 'workshop') });
    await b.start(ws);
    const r = await b.exec(ws, { script: 'printf "%s" "$ATELIER_ROOTFS"; echo warn >&2; echo "$FOO"', env: { FOO: 'bar' } });
    assert.is(r.stdout, '/bar\n');
    assert.is(r.stderr, 'warn\n');
    try {
      await b.exec(ws, { script: 'echo boom >&2; exit 7' });
      assert.unreachable();
    } catch (e) {
      assert.ok(isBackendError(e, 'EXEC_FAILED'));
      assert.is((e as BackendError).info.exitCode, 7);
      assert.match(String((e as BackendError).info.stderr), /boom/);
    }
    await rejects(b.exec(ws, { script: 'set -u; echo $UNSET_VAR' }), 'EXEC_FAILED');
    const t0 = Date.now();
    await rejects(b.exec(ws, { script: 'sleep 60', timeoutMs: 1000 }), 'EXEC_FAILED');
    assert.ok(Date.now() - t0 < 15_000);
    const ps = await b.exec(ws, { script: 'ps' });
    assert.not.match(ps.stdout, /sleep 60/, 'a timed-out hook is killed');
    await b.remove(ws);
  });

  t('objects without the owner tag are never touched', async () => {
    const name = 'foreign-1';
    await raw.async('POST', '/1.0/instances', { name, type: 'container', profiles: ['default'], source: { type: 'image', alias: LXD_BASE }, config: { 'user.atelier.owner': 'someone-else' } }, { project: wsProject });
    const ref = WS(name);
    assert.is((await b.inspect(ref))?.tags.owner, 'someone-else');
    assert.not.ok((await b.list(owner)).some((o) => o.ref.name === name));
    await rejects(b.remove(ref), 'NOT_OWNED');
    await rejects(b.start(ref), 'NOT_OWNED');
    await rejects(b.copy({ source: ref, target: LY('x-foreign'), tags: tags('f1', 'stash') }), 'NOT_OWNED');
    await rejects(b.create({ target: ref, source: { base: LXD_BASE }, tags: tags('f2', 'workshop'), refresh: true }), 'NOT_OWNED');
    assert.ok(await b.inspect(ref), 'still there');
    await raw.async('DELETE', `/1.0/instances/${name}`, undefined, { project: wsProject });
  });

  t('a transient container depends on its source; scratch is shared', async () => {
    const ws = WS('tr-1');
    await b.create({ target: ws, source: { base: LXD_BASE }, tags: tags('t1', 'workshop') });
    await b.start(ws);
    const c1 = WS('ctr-a1');
    const c2 = WS('ctr-a2');
    await b.create({ target: c1, source: { object: ws, scratch: 'k1' }, tags: tags('t2', 'container') });
    await b.create({ target: c2, source: { object: ws, scratch: 'k1' }, tags: tags('t3', 'container') });
    await b.start(c1);
    await b.start(c2);
    await b.exec(c1, { script: 'echo shared > /scratch/f' });
    assert.is((await b.exec(c2, { script: 'cat /scratch/f' })).stdout, 'shared\n');
    await rejects(b.remove(ws), 'IN_USE');
    await b.remove(c1);
    await rejects(b.remove(ws), 'IN_USE');
    await b.remove(c2);
    await b.remove(ws);
    assert.is((await b.list(owner)).length, 0);
  });

  t('diskSpace: the pool new instances go to (the profile\'s root disk, or the pool option), from its resources', async () => {
    const profile = await raw.get<{ devices: Record<string, Record<string, string>> }>('/1.0/profiles/default');
    const pool = Object.values(profile.devices).find((d) => d.type === 'disk' && d.path === '/')!['pool']!;
    const d = await b.diskSpace();
    assert.is(d.where, `lxd:${pool}`);
    const res = await raw.get<{ space: { used: number; total: number } }>(`/1.0/storage-pools/${pool}/resources`);
    assert.is(d.total, res.space.total);
    // Others write to the pool meanwhile: free is the pool's total minus used, give or take that.
    assert.ok(Math.abs(d.free - (res.space.total - res.space.used)) < 256 * 1024 * 1024, `free ${d.free} vs ${res.space.total - res.space.used}`);
    const pools = (await raw.get<string[]>('/1.0/storage-pools')).map((p) => p.split('/').pop()!);
    const other = pools.find((p) => p !== pool);
    if (other) {
      const onOther = createLxdBackend({ owner, socket: LXD_SOCKET, pool: other });
      try {
        assert.is((await onOther.diskSpace()).where, `lxd:${other}`);
      } finally {
        await onOther.close();
      }
    }
    const missing = createLxdBackend({ owner, socket: LXD_SOCKET, pool: 'no-such-pool' });
    await rejects(missing.diskSpace(), 'NOT_FOUND');
    await missing.close();
  });

  t('usage: LXD\'s root disk usage per object, null on a dir pool (no quotas)', async () => {
    const ws = WS('use-1');
    await b.create({ target: ws, source: { base: LXD_BASE }, tags: tags('u1', 'workshop') });
    const used = await b.usage(owner);
    assert.equal(used.map((u) => u.ref), (await b.list(owner)).map((o) => o.ref));
    const mine = used.find((u) => u.ref.name === ws.name)!;
    const inst = await raw.get<LxdInstance & { expanded_devices: Record<string, Record<string, string>> }>(`/1.0/instances/${ws.name}`, { project: wsProject });
    const pool = await raw.get<{ driver: string }>(`/1.0/storage-pools/${inst.expanded_devices['root']!['pool']}`);
    if (pool.driver === 'dir') assert.is(mine.bytes, null, 'the dir driver without a quota reports no usage');
    else assert.ok(mine.bytes === null || mine.bytes >= 0);
    await b.remove(ws);
  });

  t('a hook failing because the disk is full is NO_SPACE, with the exit status and output', async () => {
    const ws = WS('full-1');
    await b.create({ target: ws, source: { base: LXD_BASE }, tags: tags('f1', 'workshop') });
    await b.start(ws);
    try {
      await b.exec(ws, { script: 'echo partial\necho "sh: write error: No space left on device" >&2\nexit 1' });
      assert.unreachable('the hook failed');
    } catch (e) {
      assert.ok(isBackendError(e, 'NO_SPACE'), `NO_SPACE, got ${String(e)}`);
      assert.is(e.info['exitCode'], 1);
      assert.is(e.info['stdout'], 'partial\n');
      assert.match(String(e.info['stderr']), /No space left on device/);
      assert.match(e.message, /storage pool \S+ holding it is full/);
    }
    await rejects(b.exec(ws, { script: 'echo "disk quota is fine" >&2\nexit 4' }), 'EXEC_FAILED');
    await b.remove(ws);
  });

  t('resetIdentity: real key pairs pushed before the op tag; a refused key type deletes the copy; baseFingerprint is the alias\'s image', async () => {
    const ws = WS('rid-1');
    await b.create({ target: ws, source: { base: LXD_BASE }, tags: tags('i1', 'workshop') });
    await b.start(ws);
    await b.exec(ws, { script: 'mkdir -p /etc/ssh\necho old > /etc/ssh/ssh_host_ed25519_key\necho old > /etc/ssh/ssh_host_ed25519_key.pub' });
    await b.stop(ws);
    const sdk = LY('sdk-rid-1');
    await b.copy({ source: ws, target: sdk, tags: tags('i2', 'sdk') });
    const copy = WS('rid-2');
    const info = await b.copy({ source: sdk, target: copy, tags: tags('i3', 'workshop'), resetIdentity: true });
    assert.is(info.tags.op, 'i3');
    assert.is((await cfg(copy))['user.atelier.op'], 'i3');
    const key = (await b.readFile(copy, '/etc/ssh/ssh_host_ed25519_key'))!.content!;
    const pub = (await b.readFile(copy, '/etc/ssh/ssh_host_ed25519_key.pub'))!.content!;
    const dir = mkdtempSync(join(tmpdir(), 'atelier-lxd-key-'));
    try {
      writeFileSync(join(dir, 'k'), key, { mode: 0o600 });
      const derived = execFileSync('ssh-keygen', ['-y', '-f', join(dir, 'k')], { encoding: 'utf8' }).trim().split(' ').slice(0, 2).join(' ');
      assert.is(pub.trim().split(' ').slice(0, 2).join(' '), derived, 'the .pub is the key\'s');
      assert.is(pub.trim().split(' ')[2], 'root@rid-2');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await b.start(copy);
    assert.is((await b.exec(copy, { script: 'cat /etc/ssh/ssh_host_ed25519_key.pub' })).stdout, pub, 'the container sees the pushed file');
    await b.remove(copy);
    // A key type ssh-keygen cannot make: INVALID, and the copy made for it is gone.
    await b.start(ws);
    await b.exec(ws, { script: 'echo old > /etc/ssh/ssh_host_bogus_key' });
    await b.stop(ws);
    const bogus = LY('sdk-rid-2');
    await b.copy({ source: ws, target: bogus, tags: tags('i4', 'sdk') });
    await rejects(b.copy({ source: bogus, target: WS('rid-3'), tags: tags('i5', 'workshop'), resetIdentity: true }), 'INVALID');
    assert.is(await b.inspect(WS('rid-3')), null);
    const alias = await raw.get<{ target: string }>(`/1.0/images/aliases/${LXD_BASE}`);
    assert.is(await b.baseFingerprint(LXD_BASE), alias.target);
    for (const ref of [bogus, sdk, ws]) await b.remove(ref);
  });

  t('an absent socket is UNAVAILABLE', async () => {
    const gone = createLxdBackend({ owner, socket: '/nonexistent/lxd.socket' });
    await rejects(gone.list(owner), 'UNAVAILABLE');
    await rejects(gone.inspect(WS('x')), 'UNAVAILABLE');
    await gone.close();
  });

  t.run();
}

/** The shared conformance suite on the profile's pool (`dir` from scripts/lxd-setup.sh). */
function registerConformance(): void {
  runConformance('lxd', lxdConformance('atl-cf'));
}

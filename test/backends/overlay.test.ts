/**
 * The overlay backend: the shared conformance suite against both drivers, then what only this
 * backend has (kernel overlayfs details, crash and reboot recovery, flattening, bases, hooks).
 * Runs as root (CI does): the overlayfs driver is never skipped.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ObjectRef, Tags } from '../../backends/types.ts';
import { fitsOneMount, mountPoints } from '../../backends/overlay/mounts.ts';
import { runConformance } from './conformance.ts';
import { rejects } from './cases/fixture.ts';
import { bigFileScript } from './cases/space.ts';
import { overlayFixture, releaseMounts } from './overlay-env.ts';
import type { OverlayFixture } from './overlay-env.ts';

runConformance('overlay/overlayfs', () => overlayFixture('overlayfs'));
runConformance('overlay/copy', () => overlayFixture('copy'));

const WS = (name: string): ObjectRef => ({ space: 'workshops', name });
const LY = (name: string): ObjectRef => ({ space: 'layers', name });
const tags = (kind: Tags['kind'], extra: Partial<Tags> = {}): Tags => ({ owner: 'alice', op: `op-${kind}`, kind, ...extra }) as Tags;
const P = (path: string) => `"\${ATELIER_ROOTFS%/}${path}"`;

interface Meta {
  chain: string[];
  upper?: string;
}
const metaOf = async (f: OverlayFixture, ref: ObjectRef): Promise<Meta> =>
  JSON.parse(await readFile(join(f.backend.root, 'objects', ref.space, ref.name, 'meta.json'), 'utf8')) as Meta;
const blobPath = (f: OverlayFixture, id: string) => join(f.backend.root, 'blobs', id);

/** A running workshop `w` on the default base. */
async function workshop(f: OverlayFixture, name = 'w'): Promise<ObjectRef> {
  const ws = WS(name);
  await f.backend.create({ target: ws, source: { base: f.backend.defaultBase }, tags: tags('workshop') });
  await f.backend.start(ws);
  return ws;
}

function withFixture(driver: 'overlayfs' | 'copy', body: (f: OverlayFixture) => Promise<void>, extra = {}) {
  return async () => {
    const f = await overlayFixture(driver, extra);
    try {
      await body(f);
    } finally {
      await f.cleanup();
    }
  };
}

const t = suite('overlay: backend-specific');

t('auto picks overlayfs as root; a root keeps its driver (INVALID to force the other)', withFixture('overlayfs', async (f) => {
  const auto = await overlayFixture('overlayfs');
  try {
    assert.is(auto.backend.driver, 'overlayfs');
    assert.is((await auto.reopen({ driver: 'auto' })).driver, 'overlayfs');
    await rejects(auto.reopen({ driver: 'copy' }), 'INVALID');
  } finally {
    await auto.cleanup();
  }
  assert.is(f.backend.kind, 'overlay');
}));

t('regression: a layer view is mounted read-only (EROFS), every time it is viewed', withFixture('overlayfs', async (f) => {
  const ws = await workshop(f);
  await f.backend.exec(ws, { script: `echo v > ${P('/etc/ro')}` });
  await f.backend.copy({ source: ws, target: LY('l'), tags: tags('sdk') });
  await f.backend.stop(ws);
  // BuildKit once returned a cached mount that ignored read-only: view twice, and a stopped instance.
  for (const ref of [LY('l'), LY('l'), ws]) {
    const view = await f.backend.mountView(ref);
    try {
      await writeFile(join(view.path, 'etc/ro'), 'x');
      assert.unreachable(`a write into ${ref.name}'s view succeeded`);
    } catch (e) {
      assert.is((e as NodeJS.ErrnoException).code, 'EROFS', ref.name);
    } finally {
      await view.release();
    }
  }
  assert.is((await f.backend.readFile(LY('l'), '/etc/ro'))?.content, 'v\n');
}));

t('regression: deletes are 0/0 character devices on disk and recreated directories are opaque', withFixture('overlayfs', async (f) => {
  const ws = await workshop(f);
  await f.backend.exec(ws, { script: `mkdir -p ${P('/opt/d')}\necho x > ${P('/opt/d/x')}\necho g > ${P('/etc/gone')}` });
  await f.backend.copy({ source: ws, target: LY('l1'), tags: tags('sdk') });
  await f.backend.exec(ws, { script: `rm -f ${P('/etc/gone')}\nrm -rf ${P('/opt/d')}\nmkdir -p ${P('/opt/d')}` });
  await f.backend.copy({ source: ws, target: LY('l2'), tags: tags('sdk') });
  const m = await metaOf(f, LY('l2'));
  const top = blobPath(f, m.chain[m.chain.length - 1]);
  const wh = await lstat(join(top, 'etc/gone'));
  assert.ok(wh.isCharacterDevice());
  assert.is(wh.rdev, 0);
  const xattr = execFileSync('getfattr', ['--absolute-names', '-n', 'trusted.overlay.opaque', '--only-values', join(top, 'opt/d')], { encoding: 'utf8' });
  assert.is(xattr, 'y');
}));

t('regression: a snapshot copies no data: the upper joins the chain (same inode), no remount when unchanged', withFixture('overlayfs', async (f) => {
  const ws = await workshop(f);
  await f.backend.exec(ws, { script: `mkdir -p ${P('/srv')}\nprintf '%s' ${'x'.repeat(4096)} > ${P('/srv/big')}` });
  const before = await metaOf(f, ws);
  const ino = (await stat(join(blobPath(f, before.upper!), 'srv/big'))).ino;
  await f.backend.copy({ source: ws, target: LY('s1'), tags: tags('sdk') });
  const layer = await metaOf(f, LY('s1'));
  assert.is(layer.chain[layer.chain.length - 1], before.upper);
  assert.is((await stat(join(blobPath(f, before.upper!), 'srv/big'))).ino, ino);
  const after = await metaOf(f, ws);
  assert.is.not(after.upper, before.upper);
  // Nothing changed since: a stash shares the chain exactly and the workshop keeps its upper.
  await f.backend.copy({ source: ws, target: LY('stash-w'), tags: tags('stash') });
  assert.equal((await metaOf(f, LY('stash-w'))).chain, layer.chain);
  assert.is((await metaOf(f, ws)).upper, after.upper);
  assert.is((await f.backend.inspect(ws))?.status, 'running');
}));

t('flattening: a chain over the threshold becomes one hardlink-merged blob with the same view', withFixture('overlayfs', async (f) => {
  const ws = await workshop(f);
  const b = f.backend;
  await b.exec(ws, { script: `mkdir -p ${P('/srv/d/sub')}\necho keep > ${P('/srv/keep')}\necho x > ${P('/srv/d/sub/x')}\nln -s keep ${P('/srv/link')}\nchown 7:8 ${P('/srv/keep')}` });
  await b.copy({ source: ws, target: LY('f0'), tags: tags('sdk') });
  await b.exec(ws, { script: `rm -rf ${P('/srv/d')}\nmkdir -p ${P('/srv/d')}\necho y > ${P('/srv/d/y')}\nrm -f ${P('/etc/hostname')}` });
  await b.copy({ source: ws, target: LY('f1'), tags: tags('sdk') });
  for (let i = 2; i < 6; i++) {
    await b.exec(ws, { script: `echo ${i} > ${P(`/srv/n${i}`)}` });
    await b.copy({ source: ws, target: LY(`f${i}`), tags: tags('sdk') });
  }
  const m = await metaOf(f, LY('f5'));
  assert.ok(m.chain.length <= 3, `chain of ${m.chain.length} with threshold 3`);
  const flat = blobPath(f, m.chain[0]);
  assert.ok((await stat(join(flat, 'srv/keep'))).nlink >= 2, 'files are hardlinked, not copied');
  for (const ref of [LY('f5'), ws]) {
    assert.is((await b.readFile(ref, '/srv/keep'))?.content, 'keep\n');
    assert.equal([(await b.readFile(ref, '/srv/keep'))?.uid, (await b.readFile(ref, '/srv/keep'))?.gid], [7, 8]);
    assert.is((await b.readFile(ref, '/srv/link'))?.content, 'keep');
    assert.is(await b.readFile(ref, '/srv/d/sub'), null, 'opaque directory honoured in the merge');
    assert.is((await b.readFile(ref, '/srv/d/y'))?.content, 'y\n');
    assert.is(await b.readFile(ref, '/etc/hostname'), null, 'whiteout honoured in the merge');
    assert.is((await b.readFile(ref, '/srv/n4'))?.content, '4\n');
  }
  assert.is((await b.readFile(LY('f0'), '/srv/d/sub/x'))?.content, 'x\n', 'older layers keep their chains');
}, { flattenThreshold: 3 }));

t('flattening: chains whose mount options would not fit in one page are flattened too', async () => {
  const ids = Array.from({ length: 300 }, (_, i) => i.toString(16).padStart(16, '0'));
  assert.not.ok(fitsOneMount(ids));
  assert.ok(fitsOneMount(ids.slice(0, 128)));
});

t('crash leftovers are swept at start-up: temp dirs, stale view mounts, orphan blobs', withFixture('overlayfs', async (f) => {
  const ws = await workshop(f);
  await f.backend.exec(ws, { script: `echo kept > ${P('/etc/kept')}` });
  const root = f.backend.root;
  const half = join(root, 'tmp', 'blob-halfmade');
  await mkdir(join(half, 'etc'), { recursive: true });
  await writeFile(join(half, 'etc/x'), 'x');
  await mkdir(join(root, 'blobs', 'deadbeefdeadbeef', 'etc'), { recursive: true });
  const stale = join(root, 'views', 'stale');
  await mkdir(stale, { recursive: true });
  const wm = await metaOf(f, ws);
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${[...wm.chain].reverse().concat('_empty').join(':')}`, stale], { cwd: join(root, 'blobs') });
  const again = await f.reopen();
  assert.ok(again.recovery.tmp.includes('blob-halfmade'));
  assert.ok(again.recovery.mounts.includes(stale));
  assert.equal(await readdir(join(root, 'tmp')), []);
  assert.not.ok((await readdir(join(root, 'blobs'))).includes('deadbeefdeadbeef'));
  assert.not.ok((await mountPoints()).includes(stale));
  assert.is((await again.inspect(ws))?.status, 'running', 'a running workshop stays mounted');
  assert.is((await again.readFile(ws, '/etc/kept'))?.content, 'kept\n');
}));

t('refcounted scratch: mounted once for all its users, released by the last one', withFixture('overlayfs', async (f) => {
  const b = f.backend;
  const ws = await workshop(f);
  await b.copy({ source: ws, target: LY('src'), tags: tags('sdk') });
  const [a, c] = [WS('ca'), WS('cb')];
  for (const ref of [a, c]) {
    await b.create({ target: ref, source: { object: LY('src'), scratch: 'shared' }, tags: tags('container') });
    await b.start(ref);
  }
  const merged = join(b.root, 'scratch', 'shared', 'merged');
  const count = async () => (await mountPoints()).filter((m) => m === merged).length;
  assert.is(await count(), 1);
  await b.exec(a, { script: `echo from-a > ${P('/etc/shared')}` });
  assert.is((await b.readFile(c, '/etc/shared'))?.content, 'from-a\n', 'writes are shared');
  await b.stop(a);
  assert.is(await count(), 1, 'still used by the other container');
  await b.remove(a);
  assert.is(await count(), 1);
  await b.remove(c);
  assert.is(await count(), 0);
  assert.not.ok((await readdir(join(b.root, 'scratch'))).includes('shared'));
}));

t('after a reboot (run directory wiped) transient containers, their uppers and mounts are collected', withFixture('overlayfs', async (f) => {
  const b = f.backend;
  const ws = await workshop(f);
  await b.copy({ source: ws, target: LY('src'), tags: tags('sdk') });
  await b.create({ target: WS('tc'), source: { object: LY('src') }, tags: tags('container') });
  await b.create({ target: WS('ts'), source: { object: LY('src'), scratch: 'k' }, tags: tags('container') });
  for (const r of [WS('tc'), WS('ts')]) await b.start(r);
  const upper = (await metaOf(f, WS('tc'))).upper!;
  // A reboot: every mount is gone and the tmpfs run directory is empty.
  await releaseMounts(f.dir);
  await rm(b.runDir, { recursive: true, force: true });
  const again = await f.reopen();
  assert.equal([...again.recovery.containers].sort(), ['tc', 'ts']);
  assert.is(await again.inspect(WS('tc')), null);
  assert.is(await again.inspect(WS('ts')), null);
  assert.not.ok((await readdir(join(b.root, 'blobs'))).includes(upper));
  assert.equal(await readdir(join(b.root, 'scratch')), []);
  assert.is((await again.inspect(ws))?.status, 'stopped');
  await again.remove(LY('src'));
}));

t('remove drops a reference; blobs go once nothing uses them', withFixture('overlayfs', async (f) => {
  const b = f.backend;
  const ws = await workshop(f);
  await b.exec(ws, { script: `echo 1 > ${P('/etc/one')}` });
  await b.copy({ source: ws, target: LY('sdk'), tags: tags('sdk') });
  await b.copy({ source: LY('sdk'), target: LY('stash-sdk'), tags: tags('stash-sdk') });
  await b.remove(LY('sdk'));
  assert.is((await b.readFile(LY('stash-sdk'), '/etc/one'))?.content, '1\n');
  await b.remove(LY('stash-sdk'));
  await b.remove(ws);
  const left = (await readdir(join(b.root, 'blobs'))).sort();
  const baseBlob = (JSON.parse(await readFile(join(b.root, 'bases.json'), 'utf8')) as Record<string, { blob: string }>)[b.defaultBase].blob;
  assert.equal(left, ['_empty', baseBlob].sort());
  assert.equal(await readdir(join(b.root, 'work')), []);
}));

for (const driver of ['overlayfs', 'copy'] as const) {
  t(`${driver}: hooks run under chroot with ATELIER_ROOTFS=/ on the busybox base`, withFixture(driver, async (f) => {
    const ws = await workshop(f);
    const r = await f.backend.exec(ws, { script: 'echo "$ATELIER_ROOTFS"\ntest -x /bin/busybox && echo chrooted' });
    assert.is(r.stdout, '/\nchrooted\n');
  }));
}

t('bases: a directory and a tarball register and list; hooks in a base without /bin/sh run on the host', withFixture('overlayfs', async (f) => {
  const b = f.backend;
  await b.addBase('tiny', 'fixtures/bases/tiny');
  const tar = join(f.dir, 'tiny.tar.gz');
  execFileSync('tar', ['-czf', tar, '-C', 'fixtures/bases/tiny', '.']);
  await b.addBase('tiny-tar', tar);
  assert.equal(await b.listBases(), ['minimal', 'tiny', 'tiny-tar']);
  await rejects(b.addBase('tiny', 'fixtures/bases/tiny'), 'ALREADY_EXISTS');
  await rejects(b.addBase('nope', join(f.dir, 'missing')), 'NOT_FOUND');
  await rejects(b.addBase('bad/name', 'fixtures/bases/tiny'), 'INVALID');
  for (const base of ['tiny', 'tiny-tar']) {
    const ws = WS(`on-${base}`);
    await b.create({ target: ws, source: { base }, tags: tags('workshop') });
    await b.start(ws);
    const r = await b.exec(ws, { script: `cat ${P('/etc/os-release')} >/dev/null\necho "$ATELIER_ROOTFS"\necho h > ${P('/srv/hook')}` });
    assert.is.not(r.stdout, '/\n', 'host mode: ATELIER_ROOTFS is the merged root');
    assert.is((await b.readFile(ws, '/srv/hook'))?.content, 'h\n');
    assert.is((await b.inspect(ws))?.base, base);
  }
  await b.removeBase('tiny');
  assert.equal(await b.listBases(), ['minimal', 'tiny-tar']);
  assert.is((await b.readFile(WS('on-tiny'), '/etc/os-release'))?.content?.includes('tiny'), true, 'workshops keep their base data');
}));

t('copy driver: nothing is ever mounted', withFixture('copy', async (f) => {
  const ws = await workshop(f);
  await f.backend.exec(ws, { script: `echo c > ${P('/etc/c')}` });
  await f.backend.copy({ source: ws, target: LY('l'), tags: tags('sdk') });
  assert.is((await f.backend.readFile(LY('l'), '/etc/c'))?.content, 'c\n');
  assert.equal((await mountPoints()).filter((m) => m.startsWith(f.dir)), []);
}));

t('usage: a workshop is charged its upper, a layer the blob it froze, a hard-linked file once', withFixture('overlayfs', async (f) => {
  const K = 1024;
  const ws = await workshop(f);
  const bytes = async (name: string) => (await f.backend.usage('alice')).find((u) => u.ref.name === name)!.bytes!;
  const fresh = await bytes('w');
  assert.ok(fresh < 64 * K, `a fresh workshop holds next to nothing of its own (${fresh})`);
  await f.backend.exec(ws, { script: bigFileScript('/var/big') });
  const written = await bytes('w');
  assert.ok(written - fresh >= 256 * K, `the upper holds the 256 KiB file (${written})`);
  await f.backend.exec(ws, { script: `ln ${P('/var/big')} ${P('/var/link')}` });
  assert.ok((await bytes('w')) - written < 16 * K, 'the hard link is counted once');
  await f.backend.copy({ source: ws, target: LY('l'), tags: tags('sdk') });
  assert.ok((await bytes('l')) >= 256 * K, 'the layer holds the blob it froze');
  assert.ok((await bytes('w')) < 64 * K, 'the workshop holds only its new, empty upper');
  // A layer copied from an untouched workshop ends with the base's blob: it holds nothing of its own.
  await f.backend.create({ target: WS('plain'), source: { base: f.backend.defaultBase }, tags: tags('workshop') });
  await f.backend.copy({ source: WS('plain'), target: LY('plain-l'), tags: tags('sdk') });
  assert.ok((await bytes('plain-l')) < 64 * K, 'no base blob is charged to a layer');
  const d = await f.backend.diskSpace();
  assert.is(d.where, f.backend.root);
}));

for (const driver of ['overlayfs', 'copy'] as const) {
  t(`${driver}: resetIdentity writes real key pairs into the new upper; a refused key type leaves nothing behind`, withFixture(driver, async (f) => {
    const b = f.backend;
    const ws = await workshop(f);
    await b.exec(ws, { script: `mkdir -p ${P('/etc/ssh')}\necho old > ${P('/etc/ssh/ssh_host_ed25519_key')}\necho old > ${P('/etc/ssh/ssh_host_ed25519_key.pub')}` });
    await b.copy({ source: ws, target: LY('l'), tags: tags('sdk') });
    await b.copy({ source: LY('l'), target: WS('x'), tags: tags('workshop'), resetIdentity: true });
    const view = await b.mountView(WS('x'));
    try {
      const derived = execFileSync('ssh-keygen', ['-y', '-f', join(view.path, 'etc/ssh/ssh_host_ed25519_key')], { encoding: 'utf8' }).trim().split(' ').slice(0, 2).join(' ');
      const pub = (await readFile(join(view.path, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8')).trim();
      assert.is(pub.split(' ').slice(0, 2).join(' '), derived, 'the .pub is the key\'s');
      assert.is(pub.split(' ')[2], 'root@x');
    } finally {
      await view.release();
    }
    // A host key type ssh-keygen cannot make: INVALID, no object, no new blob, no mount left.
    await b.exec(ws, { script: `echo old > ${P('/etc/ssh/ssh_host_bogus_key')}` });
    await b.copy({ source: ws, target: LY('bogus'), tags: tags('sdk') });
    const blobs = (await readdir(join(b.root, 'blobs'))).sort();
    const mounts = (await mountPoints()).filter((m) => m.startsWith(f.dir)).sort();
    await rejects(b.copy({ source: LY('bogus'), target: WS('y'), tags: tags('workshop'), resetIdentity: true }), 'INVALID');
    assert.is(await b.inspect(WS('y')), null);
    assert.equal((await readdir(join(b.root, 'blobs'))).sort(), blobs);
    assert.equal((await mountPoints()).filter((m) => m.startsWith(f.dir)).sort(), mounts);
    assert.equal(await readdir(join(b.root, 'views')), []);
  }));
}

t('usage on the copy driver: every object holds a full tree', withFixture('copy', async (f) => {
  const ws = await workshop(f);
  await f.backend.exec(ws, { script: bigFileScript('/var/big') });
  await f.backend.copy({ source: ws, target: LY('l'), tags: tags('sdk') });
  const used = await f.backend.usage('alice');
  assert.equal(used.map((u) => u.ref.name), ['l', 'w']);
  for (const u of used) assert.ok(u.bytes! >= 256 * 1024, `${u.ref.name} holds a full tree with the 256 KiB file (${u.bytes})`);
}));

t.run();

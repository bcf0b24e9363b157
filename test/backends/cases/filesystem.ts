/**
 * Conformance: what a root filesystem looks like through chains of copies, in the spirit of
 * containerd's snapshotter suite (layered content, deletions, opaque directories, modes, owners,
 * deep chains) plus the port's identity, tag and dependency rules as they touch content.
 *
 * Uses only the port: hooks in the shell subset the fake interprets (see `backends/fake/shell.ts`)
 * and `readFile`. Every path is written as `"${ATELIER_ROOTFS%/}/..."` so the same script runs under
 * chroot, on the host, and in the fake.
 *
 * @example
 * ```ts
 * filesystemCases('overlay/overlayfs', make);
 * ```
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ObjectRef } from '../../../backends/types.ts';
import type { Ctx } from './fixture.ts';
import { rejects, rootPath as p, withCtx } from './fixture.ts';
import type { Make } from './types.ts';

/** Run a hook in a (running) workshop, then snapshot it into a new `sdk` layer. */
async function step(c: Ctx, ws: ObjectRef, script: string, label = 'ly'): Promise<ObjectRef> {
  await c.b.exec(ws, { script: `set -eu\n${script}` });
  const layer = c.layer(label);
  await c.b.copy({ source: ws, target: layer, tags: c.tags('sdk') });
  return layer;
}

async function mode(c: Ctx, ref: ObjectRef, path: string): Promise<number | undefined> {
  return (await c.b.readFile(ref, path))?.mode;
}

export function filesystemCases(name: string, make: Make): void {
  const t = suite(`${name}: filesystem`);

  t('a chain of three layers: each level shows exactly its own content', withCtx(make, async (c) => {
    const ws = await c.workshop('chain', { start: true });
    const l1 = await step(c, ws, `mkdir -p ${p('/srv/app')}\necho one > ${p('/srv/app/one')}`);
    const l2 = await step(c, ws, `echo two > ${p('/srv/app/two')}\necho one-b > ${p('/srv/app/one')}`);
    const l3 = await step(c, ws, `echo three > ${p('/srv/app/three')}`);
    const want: Array<[ObjectRef, Record<string, string | undefined>]> = [
      [l1, { one: 'one\n', two: undefined, three: undefined }],
      [l2, { one: 'one-b\n', two: 'two\n', three: undefined }],
      [l3, { one: 'one-b\n', two: 'two\n', three: 'three\n' }],
      [ws, { one: 'one-b\n', two: 'two\n', three: 'three\n' }],
    ];
    for (const [ref, files] of want) {
      for (const [f, content] of Object.entries(files)) assert.is(await c.content(ref, `/srv/app/${f}`), content, `${ref.name}:${f}`);
    }
    assert.is((await c.b.readFile(l1, '/srv/app'))?.type, 'dir');
  }));

  t('a file deleted in a child stays hidden in the grandchild and below', withCtx(make, async (c) => {
    const ws = await c.workshop('wh', { start: true });
    const parent = await step(c, ws, `mkdir -p ${p('/etc/wh')}\necho k > ${p('/etc/wh/keep')}\necho g > ${p('/etc/wh/gone')}`);
    const child = await step(c, ws, `rm -f ${p('/etc/wh/gone')}`);
    const grandchild = await step(c, ws, `echo n > ${p('/etc/wh/new')}`);
    assert.is(await c.content(parent, '/etc/wh/gone'), 'g\n');
    for (const ref of [child, grandchild, ws]) {
      assert.is(await c.b.readFile(ref, '/etc/wh/gone'), null, ref.name);
      assert.is(await c.content(ref, '/etc/wh/keep'), 'k\n', ref.name);
    }
    // A workshop made from the grandchild still hides it, and may bring it back.
    const again = c.ws('again');
    await c.b.copy({ source: grandchild, target: again, tags: c.tags('workshop') });
    assert.is(await c.b.readFile(again, '/etc/wh/gone'), null);
    await c.hook(again, `echo back > ${p('/etc/wh/gone')}`);
    assert.is(await c.content(again, '/etc/wh/gone'), 'back\n');
    assert.is(await c.b.readFile(grandchild, '/etc/wh/gone'), null);
  }));

  t('a directory removed in a lower layer and recreated above hides its old entries', withCtx(make, async (c) => {
    const ws = await c.workshop('opq', { start: true });
    const l1 = await step(c, ws, `mkdir -p ${p('/opt/d/sub')}\necho x > ${p('/opt/d/x')}\necho y > ${p('/opt/d/sub/y')}\necho f > ${p('/opt/f')}`);
    const l2 = await step(c, ws, `rm -rf ${p('/opt/d')}\nrm -f ${p('/opt/f')}`);
    const l3 = await step(c, ws, `mkdir -p ${p('/opt/d')} ${p('/opt/f')}\necho z > ${p('/opt/d/z')}\necho i > ${p('/opt/f/inner')}`);
    const l4 = await step(c, ws, `touch ${p('/opt/later')}`);
    assert.is(await c.content(l1, '/opt/d/sub/y'), 'y\n');
    assert.is(await c.b.readFile(l2, '/opt/d'), null);
    for (const ref of [l3, l4, ws]) {
      assert.is(await c.b.readFile(ref, '/opt/d/x'), null, ref.name);
      assert.is(await c.b.readFile(ref, '/opt/d/sub'), null, ref.name);
      assert.is(await c.content(ref, '/opt/d/z'), 'z\n', ref.name);
      assert.is((await c.b.readFile(ref, '/opt/f'))?.type, 'dir', ref.name);
      assert.is(await c.content(ref, '/opt/f/inner'), 'i\n', ref.name);
    }
  }));

  t('file overwrite and mode change are seen per layer', withCtx(make, async (c) => {
    const ws = await c.workshop('mode', { start: true });
    const l1 = await step(c, ws, `echo v1 > ${p('/etc/conf')}\nchmod 644 ${p('/etc/conf')}`);
    const l2 = await step(c, ws, `echo v2 > ${p('/etc/conf')}\nchmod 600 ${p('/etc/conf')}`);
    const l3 = await step(c, ws, `chmod 755 ${p('/etc/conf')}`);
    assert.equal([await c.content(l1, '/etc/conf'), await mode(c, l1, '/etc/conf')], ['v1\n', 0o644]);
    assert.equal([await c.content(l2, '/etc/conf'), await mode(c, l2, '/etc/conf')], ['v2\n', 0o600]);
    assert.equal([await c.content(l3, '/etc/conf'), await mode(c, l3, '/etc/conf')], ['v2\n', 0o755]);
  }));

  t('an ownership change of a lower tree applies to every entry above it, not below', withCtx(make, async (c) => {
    const ws = await c.workshop('own', { start: true });
    const tree = ['/srv/tree', '/srv/tree/a', '/srv/tree/a/b', '/srv/tree/a/b/f', '/srv/tree/top'];
    const l1 = await step(c, ws, `mkdir -p ${p('/srv/tree/a/b')}\necho f > ${p('/srv/tree/a/b/f')}\necho t > ${p('/srv/tree/top')}`);
    const l2 = await step(c, ws, `chown -R 1234:2345 ${p('/srv/tree')}`);
    for (const path of tree) {
      const lo = await c.b.readFile(l1, path);
      const hi = await c.b.readFile(l2, path);
      assert.equal([lo?.uid, lo?.gid], [0, 0], `${path} below`);
      assert.equal([hi?.uid, hi?.gid], [1234, 2345], `${path} above`);
    }
    assert.is(await c.content(l2, '/srv/tree/a/b/f'), 'f\n');
  }));

  t('symlinks are kept through copies', withCtx(make, async (c) => {
    const ws = await c.workshop('ln', { start: true });
    const l1 = await step(c, ws, `echo tgt > ${p('/etc/target')}\nln -s /etc/target ${p('/etc/link')}`);
    const l2 = c.layer('ln2');
    await c.b.copy({ source: l1, target: l2, tags: c.tags('stash-sdk') });
    for (const ref of [l1, l2]) {
      const link = await c.b.readFile(ref, '/etc/link');
      assert.equal([link?.type, link?.content], ['symlink', '/etc/target'], ref.name);
      assert.is(await c.content(ref, '/etc/target'), 'tgt\n', ref.name);
    }
  }));

  t('a 128-layer chain: the merged view equals the flat directory', withCtx(make, async (c) => {
    const ws = await c.workshop('deep', { start: true });
    const flat = new Map<string, string>(); // the same changes applied to one flat directory
    let top: ObjectRef = ws;
    await c.b.exec(ws, { script: `mkdir -p ${p('/srv/deep')}` });
    for (let i = 0; i < 128; i++) {
      const lines = [`echo ${i} > ${p(`/srv/deep/f${i}`)}`, `echo ${i} > ${p('/srv/deep/last')}`];
      flat.set(`f${i}`, `${i}\n`).set('last', `${i}\n`);
      if (i % 10 === 9) {
        lines.push(`rm -f ${p(`/srv/deep/f${i - 5}`)}`);
        flat.delete(`f${i - 5}`);
      }
      top = await step(c, ws, lines.join('\n'), `d${i}`);
    }
    const check = async (ref: ObjectRef) => {
      for (let i = 0; i < 128; i++) assert.is(await c.content(ref, `/srv/deep/f${i}`), flat.get(`f${i}`), `${ref.name} f${i}`);
      assert.is(await c.content(ref, '/srv/deep/last'), '127\n');
    };
    await check(top);
    const copy = c.ws('deepcopy');
    await c.b.copy({ source: top, target: copy, tags: c.tags('workshop') });
    await check(copy);
  }));

  t('a layer is read-only: no hook runs in it and later writes to its source do not reach it', withCtx(make, async (c) => {
    const ws = await c.workshop('ro', { start: true });
    const layer = await step(c, ws, `echo v1 > ${p('/etc/ro')}`);
    await rejects(c.b.exec(layer, { script: `echo x > ${p('/etc/ro')}` }), 'INVALID');
    await c.b.exec(ws, { script: `echo v2 > ${p('/etc/ro')}\nrm -rf ${p('/etc/passwd')}` });
    const derived = c.ws('derived');
    await c.b.copy({ source: layer, target: derived, tags: c.tags('workshop') });
    await c.hook(derived, `echo v3 > ${p('/etc/ro')}`);
    assert.is(await c.content(layer, '/etc/ro'), 'v1\n');
    assert.is(await c.content(ws, '/etc/ro'), 'v2\n');
    assert.is(await c.content(derived, '/etc/ro'), 'v3\n');
  }));

  t('a snapshot of a running workshop is frozen; the workshop keeps running and writing', withCtx(make, async (c) => {
    const ws = await c.workshop('live', { start: true });
    const layer = await step(c, ws, `echo before > ${p('/etc/live')}`);
    await c.b.exec(ws, { script: `echo after > ${p('/etc/live')}` });
    assert.is((await c.b.inspect(ws))?.status, 'running');
    assert.is(await c.content(layer, '/etc/live'), 'before\n');
    assert.is(await c.content(ws, '/etc/live'), 'after\n');
  }));

  t('removing a layer a live container depends on is IN_USE; copies and sources are independent', withCtx(make, async (c) => {
    const ws = await c.workshop('dep', { start: true });
    const layer = await step(c, ws, `echo dep > ${p('/etc/dep')}`);
    const copy = c.layer('depcopy');
    await c.b.copy({ source: layer, target: copy, tags: c.tags('stash-sdk') });
    const ctr = c.ws('ctr');
    await c.b.create({ target: ctr, source: { object: layer }, tags: c.tags('container', { source: layer.name }) });
    await rejects(c.b.remove(layer), 'IN_USE');
    assert.is(await c.content(layer, '/etc/dep'), 'dep\n');
    await c.b.remove(ctr);
    await c.b.remove(layer);
    await c.b.remove(ws);
    assert.is(await c.b.inspect(layer), null);
    assert.is(await c.content(copy, '/etc/dep'), 'dep\n', 'a copy survives its removed source');
  }));

  t('a name reused after remove shows the new content, never the old', withCtx(make, async (c) => {
    const ws = await c.workshop('reuse', { start: true });
    const layer = await step(c, ws, `echo old > ${p('/etc/gen')}\necho old > ${p('/etc/only-old')}`);
    await c.b.remove(layer);
    const ws2 = await c.workshop('reuse2', { start: true });
    await c.b.exec(ws2, { script: `echo new > ${p('/etc/gen')}` });
    await c.b.copy({ source: ws2, target: layer, tags: c.tags('sdk') });
    assert.is(await c.content(layer, '/etc/gen'), 'new\n');
    assert.is(await c.b.readFile(layer, '/etc/only-old'), null);
  }));

  // Whether containers on one scratch see each other's writes is backend-specific (the fake gives
  // each its own tree); the overlay test checks sharing. Here: neither leaks into the source.
  t('transient containers, on a scratch or alone, never write into their source layer', withCtx(make, async (c) => {
    const ws = await c.workshop('scr', { start: true });
    const layer = await step(c, ws, `echo base > ${p('/etc/scr')}`);
    const key = `k-${layer.name}`.slice(0, 40);
    const [a, b, solo] = [c.ws('sa'), c.ws('sb'), c.ws('solo')];
    for (const ref of [a, b]) await c.b.create({ target: ref, source: { object: layer, scratch: key }, tags: c.tags('container') });
    await c.b.create({ target: solo, source: { object: layer }, tags: c.tags('container') });
    for (const ref of [a, b, solo]) await c.b.start(ref);
    await c.b.exec(a, { script: `echo shared > ${p('/etc/scr')}` });
    await c.b.exec(solo, { script: `echo solo > ${p('/etc/solo')}` });
    assert.is(await c.content(a, '/etc/scr'), 'shared\n');
    assert.is(await c.content(solo, '/etc/scr'), 'base\n');
    assert.is(await c.content(layer, '/etc/scr'), 'base\n');
    assert.is(await c.b.readFile(a, '/etc/solo'), null);
    await c.b.remove(a);
    assert.ok(await c.b.readFile(b, '/etc/scr'), 'the scratch outlives one of its users');
    await c.b.remove(b);
    await c.b.remove(solo);
    await c.b.remove(layer);
  }));

  t('stash, rebuild and unstash round-trip the workshop content and keep its identity', withCtx(make, async (c) => {
    const ws = await c.workshop('rt', { start: true });
    const id = (await c.b.inspect(ws))!.identity;
    const sdk1 = await step(c, ws, `echo 1 > ${p('/etc/sdk1')}`, 'sdk1');
    await step(c, ws, `echo 2 > ${p('/etc/sdk2')}\nrm -f ${p('/etc/hostname')}`, 'sdk2');
    await c.b.stop(ws);
    const stash = c.layer('stash');
    await c.b.copy({ source: ws, target: stash, tags: c.tags('stash') });
    await c.b.copy({ source: sdk1, target: ws, tags: c.tags('workshop'), refresh: true });
    assert.is(await c.b.readFile(ws, '/etc/sdk2'), null);
    assert.is(await c.content(ws, '/etc/sdk1'), '1\n');
    await c.b.copy({ source: stash, target: ws, tags: c.tags('workshop'), refresh: true });
    await c.b.remove(stash);
    await c.b.start(ws);
    assert.is(await c.content(ws, '/etc/sdk2'), '2\n');
    assert.is(await c.b.readFile(ws, '/etc/hostname'), null);
    assert.equal((await c.b.inspect(ws))!.identity, id);
  }));

  t.run();
}

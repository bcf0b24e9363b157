/**
 * Conformance: the lifecycle of objects through the port (create, copy, refresh-copy, remove,
 * start, stop, inspect) and the error codes each rule names (`backends/types.ts`, rules 1 and 4).
 *
 * @example
 * ```ts
 * lifecycleCases('fake', make);
 * ```
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects, rootPath, withCtx } from './fixture.ts';
import type { Make } from './types.ts';

export function lifecycleCases(name: string, make: Make): void {
  const t = suite(`${name}: lifecycle`);

  t('create from the default base makes a stopped instance with the tags given', withCtx(make, async (c) => {
    const ws = c.ws();
    const tags = c.tags('workshop', { workshop: 'nav2', project: '1a2b3c4d' });
    const info = await c.b.create({ target: ws, source: { base: c.b.defaultBase }, tags });
    assert.equal(info.ref, ws);
    assert.is(info.status, 'stopped');
    assert.equal({ ...info.tags }, tags);
    const seen = await c.b.inspect(ws);
    assert.ok(seen);
    assert.is(seen.status, 'stopped');
    assert.equal({ ...seen.tags }, tags);
    assert.equal(seen.identity, info.identity);
    assert.ok((await c.b.listBases()).includes(c.b.defaultBase));
  }));

  t('create onto a taken name is ALREADY_EXISTS and changes nothing', withCtx(make, async (c) => {
    const ws = await c.workshop();
    const before = await c.b.inspect(ws);
    await rejects(c.b.create({ target: ws, source: { base: c.b.defaultBase }, tags: c.tags('workshop') }), 'ALREADY_EXISTS');
    assert.equal(await c.b.inspect(ws), before);
  }));

  t('create from an unknown base is NOT_FOUND and creates nothing', withCtx(make, async (c) => {
    const ws = c.ws();
    await rejects(c.b.create({ target: ws, source: { base: 'no-such-base-xyz' }, tags: c.tags('workshop') }), 'NOT_FOUND');
    assert.is(await c.b.inspect(ws), null);
  }));

  t('inspect of an absent object is null; start, stop, exec of one are NOT_FOUND', withCtx(make, async (c) => {
    const ws = c.ws('absent');
    assert.is(await c.b.inspect(ws), null);
    assert.is(await c.b.inspect(c.layer('absent')), null);
    await rejects(c.b.start(ws), 'NOT_FOUND');
    await rejects(c.b.stop(ws), 'NOT_FOUND');
    await rejects(c.b.exec(ws, { script: 'true' }), 'NOT_FOUND');
  }));

  t('start and stop change the status and are idempotent', withCtx(make, async (c) => {
    const ws = await c.workshop();
    await c.b.start(ws);
    assert.is((await c.b.inspect(ws))?.status, 'running');
    await c.b.start(ws);
    assert.is((await c.b.inspect(ws))?.status, 'running');
    await c.b.stop(ws);
    assert.is((await c.b.inspect(ws))?.status, 'stopped');
    await c.b.stop(ws);
    assert.is((await c.b.inspect(ws))?.status, 'stopped');
  }));

  t('copy makes a stopped layer; a layer is never started (INVALID)', withCtx(make, async (c) => {
    const ws = await c.workshop('src', { start: true });
    const layer = c.layer('sdk');
    const info = await c.b.copy({ source: ws, target: layer, tags: c.tags('sdk', { sdk: 'ros2' }) });
    assert.is(info.status, 'stopped');
    assert.equal(info.ref, layer);
    await rejects(c.b.start(layer), 'INVALID');
    assert.is((await c.b.inspect(layer))?.status, 'stopped');
    await rejects(c.b.exec(layer, { script: 'true' }), 'INVALID');
  }));

  t('copy from a missing source is NOT_FOUND; onto a taken name ALREADY_EXISTS', withCtx(make, async (c) => {
    const ws = await c.workshop();
    const layer = c.layer();
    await rejects(c.b.copy({ source: c.ws('missing'), target: layer, tags: c.tags('sdk') }), 'NOT_FOUND');
    assert.is(await c.b.inspect(layer), null);
    await c.b.copy({ source: ws, target: layer, tags: c.tags('sdk') });
    await rejects(c.b.copy({ source: ws, target: layer, tags: c.tags('sdk') }), 'ALREADY_EXISTS');
  }));

  t('copy works in every direction: workshop→layer→layer→workshop', withCtx(make, async (c) => {
    const ws = await c.workshop('a', { script: `echo one > ${rootPath('/etc/atelier-mark')}` });
    const l1 = c.layer('l1');
    const l2 = c.layer('l2');
    const back = c.ws('back');
    await c.b.copy({ source: ws, target: l1, tags: c.tags('sdk') });
    await c.b.copy({ source: l1, target: l2, tags: c.tags('stash-sdk') });
    await c.b.copy({ source: l2, target: back, tags: c.tags('workshop') });
    for (const ref of [l1, l2, back]) assert.is(await c.content(ref, '/etc/atelier-mark'), 'one\n', `${ref.name}`);
    await c.b.start(back);
    assert.is((await c.b.inspect(back))?.status, 'running');
  }));

  t('refresh-copy replaces the target content and tags; a missing target is created', withCtx(make, async (c) => {
    const src = await c.workshop('src', { script: `echo new > ${rootPath('/etc/from-src')}` });
    const dst = await c.workshop('dst', { script: `echo old > ${rootPath('/etc/only-dst')}` });
    const tags = c.tags('workshop', { sdkHash: 'abc' });
    await c.b.copy({ source: src, target: dst, tags, refresh: true });
    assert.is(await c.content(dst, '/etc/from-src'), 'new\n');
    assert.is(await c.b.readFile(dst, '/etc/only-dst'), null);
    assert.equal({ ...(await c.b.inspect(dst))!.tags }, tags);
    const fresh = c.layer('fresh');
    await c.b.copy({ source: src, target: fresh, tags: c.tags('stash'), refresh: true });
    assert.is(await c.content(fresh, '/etc/from-src'), 'new\n');
  }));

  t('refresh-copy onto a running target is BUSY and changes nothing', withCtx(make, async (c) => {
    const src = await c.workshop('src', { script: `echo new > ${rootPath('/etc/from-src')}` });
    const dst = await c.workshop('dst', { start: true });
    const before = await c.b.inspect(dst);
    await rejects(c.b.copy({ source: src, target: dst, tags: c.tags('workshop'), refresh: true }), 'BUSY');
    assert.equal(await c.b.inspect(dst), before);
    assert.is(await c.b.readFile(dst, '/etc/from-src'), null);
  }));

  t('create with refresh rebuilds a stopped instance from the base; running is BUSY', withCtx(make, async (c) => {
    const ws = await c.workshop('rb', { script: `echo x > ${rootPath('/etc/hook-made')}` });
    const tags = c.tags('workshop', { sdkHash: 'h2' });
    await c.b.create({ target: ws, source: { base: c.b.defaultBase }, tags, refresh: true });
    assert.is(await c.b.readFile(ws, '/etc/hook-made'), null);
    assert.equal({ ...(await c.b.inspect(ws))!.tags }, tags);
    await c.b.start(ws);
    await rejects(c.b.create({ target: ws, source: { base: c.b.defaultBase }, tags: c.tags('workshop'), refresh: true }), 'BUSY');
  }));

  t('remove: absent succeeds, running is stopped first, names are reusable', withCtx(make, async (c) => {
    await c.b.remove(c.ws('never'));
    await c.b.remove(c.layer('never'));
    const ws = await c.workshop('rm', { start: true });
    const layer = c.layer('rm');
    await c.b.copy({ source: ws, target: layer, tags: c.tags('sdk') });
    await c.b.remove(ws);
    await c.b.remove(layer);
    assert.is(await c.b.inspect(ws), null);
    assert.is(await c.b.inspect(layer), null);
    await c.b.remove(ws);
    await c.b.create({ target: ws, source: { base: c.b.defaultBase }, tags: c.tags('workshop') });
    await c.b.copy({ source: ws, target: layer, tags: c.tags('sdk') });
    assert.is((await c.b.inspect(ws))?.status, 'stopped');
    assert.ok(await c.b.inspect(layer));
  }));

  t.run();
}

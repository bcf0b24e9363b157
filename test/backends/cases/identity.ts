/**
 * Conformance: identity, tags, listing and ownership (`backends/types.ts`, rules 2 and 3).
 * A copy never carries identity; a refresh keeps the target's. Tags are exactly those given.
 * `list(owner)` is filtered and sorted. Objects without the owner tag are never touched.
 *
 * @example
 * ```ts
 * identityCases('fake', make);
 * ```
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Identity, ObjectRef } from '../../../backends/types.ts';
import { rejects, rootPath, withCtx } from './fixture.ts';
import type { Make } from './types.ts';

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function distinct(ids: Identity[]): void {
  for (const id of ids) {
    assert.match(id.mac, MAC);
    assert.match(id.uuid, UUID);
  }
  assert.is(new Set(ids.map((i) => i.mac)).size, ids.length, 'every MAC differs');
  assert.is(new Set(ids.map((i) => i.uuid)).size, ids.length, 'every uuid differs');
}

export function identityCases(name: string, make: Make): void {
  const t = suite(`${name}: identity, tags and ownership`);

  t('create and copy give new identities; copies of copies too', withCtx(make, async (c) => {
    const a = await c.workshop('a');
    const b = await c.workshop('b');
    const la = c.layer('la');
    const lb = c.layer('lb');
    const back = c.ws('back');
    await c.b.copy({ source: a, target: la, tags: c.tags('stash') });
    await c.b.copy({ source: la, target: lb, tags: c.tags('stash-sdk') });
    await c.b.copy({ source: lb, target: back, tags: c.tags('workshop') });
    const ids = await Promise.all([a, b, la, lb, back].map(async (r) => (await c.b.inspect(r))!.identity));
    distinct(ids);
  }));

  t('refresh-copy and create-refresh keep the target identity', withCtx(make, async (c) => {
    const ws = await c.workshop('keep', { script: `echo 1 > ${rootPath('/etc/gen')}` });
    const id = (await c.b.inspect(ws))!.identity;
    const stash = c.layer('stash');
    await c.b.copy({ source: ws, target: stash, tags: c.tags('stash') });
    await c.hook(ws, `echo 2 > ${rootPath('/etc/gen')}`);
    const back = await c.b.copy({ source: stash, target: ws, tags: c.tags('workshop'), refresh: true });
    assert.equal(back.identity, id);
    assert.equal((await c.b.inspect(ws))!.identity, id);
    assert.is(await c.content(ws, '/etc/gen'), '1\n');
    const rebuilt = await c.b.create({ target: ws, source: { base: c.b.defaultBase }, tags: c.tags('workshop'), refresh: true });
    assert.equal(rebuilt.identity, id);
    assert.not.equal((await c.b.inspect(stash))!.identity, id);
  }));

  t('tags are stored verbatim; a copy takes the tags given, not the source\'s', withCtx(make, async (c) => {
    const ws = c.ws('tg');
    const wsTags = c.tags('workshop', { workshop: 'nav2', project: '1a2b3c4d', sdk: 'ros2', sdkHash: 'f00d' });
    await c.b.create({ target: ws, source: { base: c.b.defaultBase }, tags: wsTags });
    const layer = c.layer('tg');
    const layerTags = c.tags('stash', { workshop: 'nav2' });
    const info = await c.b.copy({ source: ws, target: layer, tags: layerTags });
    assert.equal({ ...info.tags }, layerTags);
    assert.equal({ ...(await c.b.inspect(layer))!.tags }, layerTags);
    assert.is((await c.b.inspect(layer))!.tags.sdk, undefined);
    assert.equal({ ...(await c.b.inspect(ws))!.tags }, wsTags);
  }));

  t('list(owner) returns only that owner\'s objects, sorted by space then name', withCtx(make, async (c) => {
    const names = ['m', 'b', 'x'].map((l) => c.ws(`ls${l}`));
    for (const ref of names) await c.b.create({ target: ref, source: { base: c.b.defaultBase }, tags: c.tags('workshop') });
    const layers = ['z', 'a'].map((l) => c.layer(`ls${l}`));
    for (const ref of layers) await c.b.copy({ source: names[0]!, target: ref, tags: c.tags('sdk') });
    const other = c.ws('other');
    await c.b.create({ target: other, source: { base: c.b.defaultBase }, tags: { ...c.tags('workshop'), owner: `${c.owner}-other` } });
    const listed = await c.b.list(c.owner);
    const mine = new Set([...names, ...layers].map((r) => `${r.space}/${r.name}`));
    const keys = listed.map((o) => `${o.ref.space}/${o.ref.name}`);
    for (const k of mine) assert.ok(keys.includes(k), `${k} listed`);
    assert.not.ok(keys.includes(`workshops/${other.name}`), 'the other owner\'s object is not listed');
    for (const o of listed) assert.is(o.tags.owner, c.owner);
    const sorted = [...listed].sort((a, b) => (a.ref.space !== b.ref.space ? (a.ref.space < b.ref.space ? -1 : 1) : a.ref.name < b.ref.name ? -1 : a.ref.name > b.ref.name ? 1 : 0));
    assert.equal(keys, sorted.map((o) => `${o.ref.space}/${o.ref.name}`));
    const info = listed.find((o) => o.ref.name === names[1]!.name)!;
    assert.equal(info, await c.b.inspect(names[1]!));
  }));

  t('a refresh onto another owner\'s object is NOT_OWNED', withCtx(make, async (c) => {
    const src = await c.workshop('src');
    const theirs = c.ws('theirs');
    await c.b.create({ target: theirs, source: { base: c.b.defaultBase }, tags: { ...c.tags('workshop'), owner: `${c.owner}-other` } });
    await rejects(c.b.copy({ source: src, target: theirs, tags: c.tags('workshop'), refresh: true }), 'NOT_OWNED');
    await rejects(c.b.create({ target: theirs, source: { base: c.b.defaultBase }, tags: c.tags('workshop'), refresh: true }), 'NOT_OWNED');
    assert.is((await c.b.inspect(theirs))!.tags.owner, `${c.owner}-other`);
  }));

  t('objects without the owner tag are never modified or removed (NOT_OWNED)', withCtx(make, async (c) => {
    if (!c.fixture.plant) {
      console.log(`${name}: skipped "objects without the owner tag": the factory provides no plant()`);
      return;
    }
    const ws: ObjectRef = c.ws('unowned');
    const layer: ObjectRef = c.layer('unowned');
    await c.fixture.plant(ws, { note: 'planted' });
    await c.fixture.plant(layer, { note: 'planted' });
    const before = await c.b.inspect(ws);
    assert.ok(before);
    assert.is(before.tags.owner, undefined);
    assert.is(before.tags['note'], 'planted');
    await rejects(c.b.remove(ws), 'NOT_OWNED', 'remove');
    await rejects(c.b.remove(layer), 'NOT_OWNED', 'remove layer');
    await rejects(c.b.start(ws), 'NOT_OWNED', 'start');
    await rejects(c.b.stop(ws), 'NOT_OWNED', 'stop');
    await rejects(c.b.exec(ws, { script: 'true' }), 'NOT_OWNED', 'exec');
    const src = await c.workshop('src');
    await rejects(c.b.copy({ source: src, target: ws, tags: c.tags('workshop'), refresh: true }), 'NOT_OWNED', 'refresh-copy');
    await rejects(c.b.copy({ source: src, target: layer, tags: c.tags('sdk'), refresh: true }), 'NOT_OWNED', 'refresh-copy layer');
    await rejects(c.b.create({ target: ws, source: { base: c.b.defaultBase }, tags: c.tags('workshop'), refresh: true }), 'NOT_OWNED', 'create refresh');
    await rejects(c.b.copy({ source: src, target: ws, tags: c.tags('workshop') }), 'ALREADY_EXISTS', 'copy');
    assert.equal(await c.b.inspect(ws), before);
    assert.ok(await c.b.inspect(layer));
    const listed = (await c.b.list(c.owner)).map((o) => o.ref.name);
    assert.not.ok(listed.includes(ws.name));
    assert.not.ok(listed.includes(layer.name));
  }));

  t.run();
}

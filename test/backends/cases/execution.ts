/**
 * Conformance: hooks (`exec`, rule 6) and transient containers (rule 5). Hooks are written in the
 * fake's shell subset with `"${ATELIER_ROOTFS%/}/path"` paths, so real `sh` runs them too.
 *
 * @example
 * ```ts
 * executionCases('fake', make);
 * ```
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects, rootPath, withCtx } from './fixture.ts';
import type { Make } from './types.ts';

export function executionCases(name: string, make: Make): void {
  const t = suite(`${name}: hooks and transient containers`);

  t('a hook runs as root in the instance: files, output, env', withCtx(make, async (c) => {
    const ws = await c.workshop('hk', { start: true });
    const r = await c.b.exec(ws, {
      script: [
        'set -eu',
        `mkdir -p ${rootPath('/opt/sdk/bin')}`,
        `printf '%s\\n' "$GREETING" > ${rootPath('/opt/sdk/greeting')}`,
        `echo more >> ${rootPath('/opt/sdk/greeting')}`,
        'echo to-stdout',
        'echo to-stderr >&2',
      ].join('\n'),
      env: { GREETING: 'hello world' },
    });
    assert.is(r.exitCode, 0);
    assert.is(r.stdout, 'to-stdout\n');
    assert.is(r.stderr, 'to-stderr\n');
    const f = await c.b.readFile(ws, '/opt/sdk/greeting');
    assert.ok(f);
    assert.is(f.type, 'file');
    assert.is(f.content, 'hello world\nmore\n');
    assert.is(f.uid, 0);
    assert.is((await c.b.readFile(ws, '/opt/sdk/bin'))?.type, 'dir');
    assert.is(await c.b.readFile(ws, '/opt/sdk/none'), null);
  }));

  t('a failing hook is EXEC_FAILED with its exit status and stderr; set -e stops it', withCtx(make, async (c) => {
    const ws = await c.workshop('fail', { start: true });
    const e = await rejects(c.b.exec(ws, { script: `echo before > ${rootPath('/etc/step')}\necho boom >&2\nexit 7\necho after > ${rootPath('/etc/step')}` }), 'EXEC_FAILED');
    assert.is(e.info['exitCode'], 7);
    assert.match(String(e.info['stderr']), /boom/);
    assert.is(await c.content(ws, '/etc/step'), 'before\n');
    const e2 = await rejects(c.b.exec(ws, { script: `set -e\nrm ${rootPath('/etc/no-such-file')}\necho after > ${rootPath('/etc/step')}` }), 'EXEC_FAILED');
    assert.is(e2.info['exitCode'], 1);
    assert.is(await c.content(ws, '/etc/step'), 'before\n');
  }));

  t('exec needs a running instance (INVALID when stopped)', withCtx(make, async (c) => {
    const ws = await c.workshop('stopped');
    await rejects(c.b.exec(ws, { script: 'true' }), 'INVALID');
  }));

  t('a copy is a deep copy: later changes on either side stay on that side', withCtx(make, async (c) => {
    const ws = await c.workshop('deep', { script: `echo v1 > ${rootPath('/etc/v')}` });
    const layer = c.layer('deep');
    const other = c.ws('deep2');
    await c.b.copy({ source: ws, target: layer, tags: c.tags('sdk') });
    await c.b.copy({ source: layer, target: other, tags: c.tags('workshop') });
    await c.hook(ws, `echo v2 > ${rootPath('/etc/v')}`);
    await c.hook(other, `echo v3 > ${rootPath('/etc/v')}`);
    assert.is(await c.content(ws, '/etc/v'), 'v2\n');
    assert.is(await c.content(layer, '/etc/v'), 'v1\n');
    assert.is(await c.content(other, '/etc/v'), 'v3\n');
  }));

  t('a transient container sees its source, has its own identity, and pins the source (IN_USE)', withCtx(make, async (c) => {
    const ws = await c.workshop('tsrc', { script: `echo src > ${rootPath('/etc/origin')}` });
    const layer = c.layer('tsrc');
    await c.b.copy({ source: ws, target: layer, tags: c.tags('sdk') });
    const fromLayer = c.ws('ctl');
    const fromWs = c.ws('ctw');
    const tags = c.tags('container', { source: `layers/${layer.name}` });
    const info = await c.b.create({ target: fromLayer, source: { object: layer }, tags });
    await c.b.create({ target: fromWs, source: { object: ws }, tags: c.tags('container') });
    assert.equal({ ...info.tags }, tags);
    assert.not.equal(info.identity, (await c.b.inspect(layer))!.identity);
    assert.is(await c.content(fromLayer, '/etc/origin'), 'src\n');
    await c.b.start(fromLayer);
    await c.b.exec(fromLayer, { script: `echo mine > ${rootPath('/etc/origin')}` });
    assert.is(await c.content(layer, '/etc/origin'), 'src\n', 'the source is unchanged');
    await rejects(c.b.remove(layer), 'IN_USE');
    await rejects(c.b.remove(ws), 'IN_USE');
    assert.ok(await c.b.inspect(layer));
    await c.b.remove(fromLayer);
    await c.b.remove(layer);
    await c.b.remove(fromWs);
    await c.b.remove(ws);
    assert.is(await c.b.inspect(ws), null);
  }));

  t('a missing source is NOT_FOUND; copies never pin their source', withCtx(make, async (c) => {
    await rejects(c.b.create({ target: c.ws('ct'), source: { object: c.layer('gone') }, tags: c.tags('container') }), 'NOT_FOUND');
    const ws = await c.workshop('pin');
    const copy = c.layer('pin');
    await c.b.copy({ source: ws, target: copy, tags: c.tags('stash') });
    await c.b.remove(ws);
    assert.ok(await c.b.inspect(copy));
  }));

  t('containers naming one scratch share it until the last is removed', withCtx(make, async (c) => {
    const ws = await c.workshop('scr');
    const layer = c.layer('scr');
    await c.b.copy({ source: ws, target: layer, tags: c.tags('sdk') });
    const scratch = `scratch-${layer.name}`;
    const a = c.ws('sca');
    const b = c.ws('scb');
    await c.b.create({ target: a, source: { object: layer, scratch }, tags: c.tags('container') });
    await c.b.create({ target: b, source: { object: layer, scratch }, tags: c.tags('container') });
    await c.b.remove(a);
    await c.b.start(b);
    await c.b.exec(b, { script: 'true' });
    await rejects(c.b.remove(layer), 'IN_USE');
    await c.b.remove(b);
    const again = c.ws('scc');
    await c.b.create({ target: again, source: { object: layer, scratch }, tags: c.tags('container') });
    await c.b.start(again);
    await c.b.exec(again, { script: 'true' });
    await c.b.remove(again);
    await c.b.remove(layer);
    assert.is(await c.b.inspect(layer), null);
  }));

  t.run();
}

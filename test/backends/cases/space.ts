/**
 * Conformance: disk space (`Backend.diskSpace`) and what objects hold (`Backend.usage`), as
 * `backends/types.ts` defines them: sane byte counts, one usage entry per listed object in list
 * order, growth after a hook writes a file, other owners left out. `bytes` may be null only on
 * LXD (a storage driver that does not report usage); the fake and overlay must measure.
 *
 * @example
 * ```ts
 * spaceCases('fake', make);
 * ```
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Backend, ObjectUsage } from '../../../backends/types.ts';
import { rootPath, withCtx } from './fixture.ts';
import type { Make } from './types.ts';

/** The file the growth case writes: 256 KiB. */
const BIG = 256 * 1024;

/**
 * A hook writing exactly 256 KiB to `path` (absolute in the root, its directory must exist), in the
 * fake shell's subset (no loops, no pipes, no `dd`): a 1 KiB word doubled eight times, printed once.
 */
export function bigFileScript(path: string): string {
  const lines = [`A=${'x'.repeat(1024)}`];
  for (let i = 0; i < 8; i++) lines.push('A=$A$A');
  lines.push(`printf '%s' "$A" > ${rootPath(path)}`);
  return lines.join('\n');
}

/** Whether this backend may answer `bytes: null` (the port allows it on LXD only). */
function mayNotMeasure(b: Backend): boolean {
  return b.kind === 'lxd';
}

function checkBytes(b: Backend, u: ObjectUsage): void {
  const what = `${u.ref.space}/${u.ref.name}`;
  if (u.bytes === null) {
    assert.ok(mayNotMeasure(b), `${b.kind} must measure ${what}: bytes is null`);
    return;
  }
  assert.ok(Number.isSafeInteger(u.bytes) && u.bytes >= 0, `${what}: bytes ${u.bytes} is a non-negative integer`);
}

export function spaceCases(name: string, make: Make): void {
  const t = suite(`${name}: disk space and usage`);

  t('diskSpace reports integer bytes, 0 <= free <= total, total > 0, and where', withCtx(make, async (c) => {
    const d = await c.b.diskSpace();
    assert.type(d.where, 'string');
    assert.ok(d.where.length > 0, 'where is not empty');
    assert.ok(Number.isSafeInteger(d.total) && d.total > 0, `total ${d.total} is a positive integer`);
    assert.ok(Number.isSafeInteger(d.free) && d.free >= 0, `free ${d.free} is a non-negative integer`);
    assert.ok(d.free <= d.total, `free ${d.free} <= total ${d.total}`);
    assert.is((await c.b.diskSpace()).where, d.where, 'where is stable');
  }));

  t('usage(owner) has one entry per listed object, same refs, tags and order', withCtx(make, async (c) => {
    assert.equal(await c.b.usage(c.owner), [], 'nothing yet: no entries');
    const ws = await c.workshop('us', { start: true });
    await c.workshop('ua');
    const layer = c.layer('us');
    await c.b.copy({ source: ws, target: layer, tags: c.tags('sdk', { sdk: 'ros2' }) });
    const ctr = c.ws('uc');
    await c.b.create({ target: ctr, source: { object: layer }, tags: c.tags('container') });
    const listed = await c.b.list(c.owner);
    const used = await c.b.usage(c.owner);
    assert.equal(used.map((u) => u.ref), listed.map((o) => o.ref), 'same refs in the same order');
    assert.equal(used.map((u) => ({ ...u.tags })), listed.map((o) => ({ ...o.tags })), 'same tags');
    assert.ok(used.length >= 4);
    for (const u of used) checkBytes(c.b, u);
  }));

  t('a 256 KiB file written by a hook grows its workshop\'s usage by at least 200 KiB', withCtx(make, async (c) => {
    const ws = await c.workshop('grow', { start: true });
    const bytesOf = async () => (await c.b.usage(c.owner)).find((u) => u.ref.name === ws.name)!.bytes;
    const before = await bytesOf();
    await c.b.exec(ws, { script: bigFileScript('/var/big-file') });
    assert.is((await c.b.readFile(ws, '/var/big-file'))?.content?.length, BIG, 'the hook wrote 256 KiB');
    const after = await bytesOf();
    if (before === null || after === null) {
      assert.ok(mayNotMeasure(c.b), `${c.b.kind} must measure its objects`);
      console.log(`${name}: usage not reported by this backend (bytes null): growth not checked`);
      return;
    }
    assert.ok(after - before >= 200 * 1024, `usage grew by ${after - before} bytes (from ${before} to ${after}), expected >= ${200 * 1024}`);
  }));

  t('usage(owner) leaves out other owners\' objects', withCtx(make, async (c) => {
    const mine = await c.workshop('um');
    const theirs = c.ws('ut');
    await c.b.create({ target: theirs, source: { base: c.b.defaultBase }, tags: { ...c.tags('workshop'), owner: `${c.owner}-other` } });
    const names = (await c.b.usage(c.owner)).map((u) => u.ref.name);
    assert.ok(names.includes(mine.name), 'mine is there');
    assert.not.ok(names.includes(theirs.name), 'the other owner\'s object is not');
    for (const u of await c.b.usage(c.owner)) assert.is(u.tags.owner, c.owner);
  }));

  t.run();
}

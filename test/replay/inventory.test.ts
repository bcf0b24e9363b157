/**
 * `atelier inventory`: what the backend lists for this user, read-only. With `--json`, the
 * inventory file's object; without, a table and how to save it. It reads the fake's file without
 * saving it (nor creating the state directory), and the overlay store without opening it (opening
 * recovers, which writes): the store is byte for byte the same afterwards, and a transient
 * container whose boot is over is left out as the store's recovery would remove it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createFakeBackend } from '../../backends/fake/index.ts';
import { createOverlayBackend } from '../../backends/overlay/index.ts';
import { fakeStateFile, overlayRoot, overlayRunDir } from '../../backends/select.ts';
import type { ObjectRef, Tags } from '../../backends/types.ts';
import { currentOwner } from '../../cli/context.ts';
import { checkInventory, inventoryCommand, readInventory, type Inventory } from '../../cli/inventory.ts';
import { cli, command, errorCode, snapshot, tempDir } from './reconcile-support.ts';

const WS: ObjectRef = { space: 'workshops', name: 'nav2-1a2b3c4d' };
const LAYER: ObjectRef = { space: 'layers', name: 'ros2-0000000000000002' };
const tags = (owner: string, op: string, kind: Tags['kind']): Tags => ({ owner, op, kind, workshop: 'nav2' });

test('fake backend, through the command line: --json is the inventory of this user; the file is only read', async () => {
  const dir = tempDir('inventory-fake');
  try {
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir);
    const me = currentOwner();
    const fake = createFakeBackend({ seed: 7, file: fakeStateFile(stateDir) });
    await fake.ensureProjects(me);
    await fake.create({ target: WS, source: { base: 'busybox' }, tags: tags(me, 'op-1', 'workshop') });
    await fake.start(WS);
    await fake.copy({ source: WS, target: LAYER, tags: tags(me, 'op-1', 'sdk') });
    await fake.create({ target: { space: 'workshops', name: 'other-1' }, source: { base: 'busybox' }, tags: tags(`${me}x`, 'op-9', 'workshop') });
    const before = snapshot(stateDir);

    const r = await cli(['--backend', 'fake', '--state-dir', stateDir, '--run-dir', join(dir, 'run'), '--no-daemon', '--json', 'inventory']);
    assert.is(r.code, 0, r.out);
    const inv = JSON.parse(r.out) as Inventory & { ok: boolean };
    assert.is(inv.ok, true);
    assert.is(inv.kind, 'atelier-inventory');
    assert.is(inv.backend, 'fake');
    assert.is(inv.owner, me);
    assert.type(inv.atelier, 'string');
    assert.equal(inv.objects, await fake.list(me), 'exactly what list(owner) answers');
    assert.equal(inv.objects.map((o) => o.status), ['stopped', 'running']);
    assert.equal(checkInventory(inv, 'stdout').objects, inv.objects, 'it reads back as it was written');
    assert.equal(snapshot(stateDir), before, 'the fake file is not saved again');
    assert.not.ok(existsSync(join(dir, 'run')), 'no run directory is made');

    const text = await cli(['--backend', 'fake', '--state-dir', stateDir, '--no-daemon', 'inventory']);
    assert.is(text.code, 0, text.err);
    assert.match(text.out, /SPACE\s+NAME\s+KIND/);
    assert.match(text.out, /workshops\s+nav2-1a2b3c4d\s+workshop\s+nav2\s+op-1\s+running/);
    assert.match(text.out, /2 objects of /);
    assert.match(text.out, /atelier inventory --json > FILE/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a state directory that holds no backend: an empty inventory, and nothing is created', async () => {
  const dir = tempDir('inventory-empty');
  try {
    const stateDir = join(dir, 'no-such-state');
    const r = await cli(['--backend', 'fake', '--state-dir', stateDir, '--no-daemon', '--json', 'inventory']);
    assert.is(r.code, 0, r.out);
    assert.equal((JSON.parse(r.out) as Inventory).objects, []);
    assert.not.ok(existsSync(stateDir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a fake file that cannot be read: UNAVAILABLE, naming the file', async () => {
  const dir = tempDir('inventory-bad');
  try {
    writeFileSync(fakeStateFile(dir), '{ not json');
    const r = await command({ backend: 'fake', stateDir: dir, json: true }, inventoryCommand);
    assert.is(errorCode(r), 'UNAVAILABLE', r.out);
    assert.is(r.code, 5);
    assert.match(r.out, /fake-backend\.json/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('overlay backend: read without opening the store (which would tidy it), byte for byte untouched', async () => {
  const dir = tempDir('inventory-overlay');
  const stateDir = join(dir, 'state');
  const runDir = join(dir, 'run');
  const root = overlayRoot(stateDir);
  const ovlRun = overlayRunDir(runDir, root);
  try {
    const backend = await createOverlayBackend({ root, runDir: ovlRun, driver: 'copy' });
    await backend.ensureProjects('alice');
    await backend.create({ target: WS, source: { base: backend.defaultBase }, tags: tags('alice', 'op-1', 'workshop') });
    await backend.copy({ source: WS, target: LAYER, tags: tags('alice', 'op-1', 'sdk') });
    await backend.start(WS);
    const live: ObjectRef = { space: 'workshops', name: 'run-c1' };
    const dead: ObjectRef = { space: 'workshops', name: 'run-c2' };
    for (const c of [live, dead]) await backend.create({ target: c, source: { object: LAYER }, tags: { owner: 'alice', op: `op-${c.name}`, kind: 'container', source: LAYER.name } });
    await backend.create({ target: { space: 'workshops', name: 'bobs-1' }, source: { base: backend.defaultBase }, tags: tags('bob', 'op-2', 'workshop') });
    const listed = await backend.list('alice');
    await backend.close();
    // run-c2's boot is over (its live mark gone, as after a reboot): opening the store removes it.
    unlinkSync(join(ovlRun, 'live', dead.name));
    const before = snapshot(dir);

    const r = await command({ backend: 'overlay', stateDir, runDir, json: true, owner: 'alice' }, inventoryCommand);
    assert.is(r.code, 0, r.out);
    const inv = JSON.parse(r.out) as Inventory;
    assert.is(inv.backend, 'overlay');
    assert.equal(inv.objects, listed.filter((o) => o.ref.name !== dead.name), 'what list answers once the store is open');
    assert.equal(inv.droppedAtOpen, [dead]);
    assert.equal(snapshot(dir), before, 'nothing in the store or its run directory changed');

    const reopened = await createOverlayBackend({ root, runDir: ovlRun, driver: 'copy' });
    try {
      assert.equal(await reopened.list('alice'), inv.objects, 'what the store lists once opened');
    } finally {
      await reopened.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reading an inventory file back checks it: codes for a missing, unreadable or malformed one', async () => {
  const dir = tempDir('inventory-read');
  try {
    const good = { ok: true, atelier: '0.1.0', kind: 'atelier-inventory', backend: 'fake', owner: 'alice', at: '2026-12-05T12:00:00.000Z', objects: [] };
    const f = (name: string, content: string): string => {
      const p = join(dir, name);
      writeFileSync(p, content);
      return p;
    };
    assert.equal((await readInventory(f('good.json', JSON.stringify(good)))).owner, 'alice');
    const codeOf = (p: Promise<unknown>) => p.then(() => 'resolved', (e: { code?: string }) => e.code);
    assert.is(await codeOf(readInventory(join(dir, 'missing.json'))), 'NOT_FOUND');
    assert.is(await codeOf(readInventory(dir)), 'INVALID_ARGUMENT');
    assert.is(await codeOf(readInventory(f('empty.json', ''))), 'INVALID_ARGUMENT');
    assert.is(await codeOf(readInventory(f('array.json', '[]'))), 'INVALID_ARGUMENT');
    assert.is(await codeOf(readInventory(f('no-owner.json', JSON.stringify({ ...good, owner: '' })))), 'INVALID_ARGUMENT');
    const obj = { ref: WS, tags: tags('alice', 'op-1', 'workshop'), status: 'running', identity: { mac: 'm', uuid: 'u' } };
    assert.is((await readInventory(f('one.json', JSON.stringify({ ...good, objects: [obj] })))).objects.length, 1);
    for (const [name, o] of [
      ['space', { ...obj, ref: { space: 'elsewhere', name: 'x' } }],
      ['kind', { ...obj, tags: { ...obj.tags, kind: 'vm' } }],
      ['identity', { ...obj, identity: null }],
      ['tags', { ...obj, tags: { ...obj.tags, n: 1 } }],
      ['base', { ...obj, base: 7 }],
    ] as const)
      assert.is(await codeOf(readInventory(f(`${name}.json`, JSON.stringify({ ...good, objects: [o] })))), 'INVALID_ARGUMENT', name);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();

/**
 * The SDK cache on overlay, for both drivers (`overlayfs` and `copy`), as Workshop's PR #520 did:
 * a workshop made from cached layers has the same root filesystem as one built from scratch.
 *
 * Engine A launches `one` (three SDKs whose hooks write files, directories, symlinks, hard links, a
 * FIFO, modes and owners, and delete or replace what the base or an earlier layer holds: whiteouts,
 * opaque directories, metadata-only copy-ups), then `two` with the same SDKs: made from the cache
 * (no `setup-base` in its progress: one copy of the deepest layer, then a start). Engine B, on a
 * fresh state directory and a fresh store with the same base, builds `three` from scratch. The
 * roots of `two` and `three` are compared entry by entry (type, mode, owner, link count, size,
 * sha256, symlink target), walked from the host through the backend's `mountView` and listed from
 * inside the running workshops; only identity files are compared without their content.
 *
 * Identity: the base has a filled `/etc/machine-id` and SSH host keys. `one` and `three` (built
 * from the base) keep them; `two` gets an empty machine-id and new host keys (real pairs, commented
 * with its instance), and `one` still has its own after `two` was made.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ObjectRef } from '../../backends/types.ts';
import type { OverlayBackend } from '../../backends/overlay/index.ts';
import type { WorkshopView } from '../../engine/api.ts';
import { BASE_MACHINE_ID, hostTree, inlineSpec, insideTree, KEY_TYPES, makeBaseTree, overlayMissing, overlayWorld, ProgressLog, SDKS, treeDiff, type OverlayWorld } from './helpers.ts';

const t = suite('SDK cache on overlay: a workshop made from cached layers has the root of one built from scratch');
const BASE = 'idbase';
const ref = (v: WorkshopView): ObjectRef => ({ space: 'workshops', name: v.instance });

/** The identity files of a workshop, read through the port. */
async function identity(b: OverlayBackend, v: WorkshopView): Promise<Record<string, { content: string | undefined; mode: number; uid: number; gid: number } | null>> {
  const out: Record<string, { content: string | undefined; mode: number; uid: number; gid: number } | null> = {};
  for (const p of ['/etc/machine-id', ...KEY_TYPES.flatMap((k) => [`/etc/ssh/ssh_host_${k}_key`, `/etc/ssh/ssh_host_${k}_key.pub`])]) {
    const f = await b.readFile(ref(v), p);
    out[p] = f && { content: f.content, mode: f.mode, uid: f.uid, gid: f.gid };
  }
  return out;
}

if (!(await overlayMissing(t, 'SDK cache trees on overlay'))) {
  for (const driver of ['overlayfs', 'copy'] as const) {
    t(`${driver}: two (from the cache) and three (from scratch, another store) have the same root; two has an identity of its own`, async () => {
      const dir = await mkdtemp(join(tmpdir(), `atelier-cache-tree-${driver}-`));
      const worlds: OverlayWorld[] = [];
      try {
        const tree = join(dir, 'base');
        await makeBaseTree(tree);
        const a = await overlayWorld(driver);
        worlds.push(a);
        const b = await overlayWorld(driver);
        worlds.push(b);
        assert.is(a.backend.driver, driver);
        await a.backend.addBase(BASE, tree);
        await b.backend.addBase(BASE, tree);

        // one: every hook runs.
        const p1 = new ProgressLog();
        const one = await a.engine.launch(inlineSpec('one', BASE), { onProgress: p1.on });
        assert.equal(p1.hooks(), SDKS.map((s) => `setup-base ${s.name}`), 'one runs every hook');
        for (const [i, l] of one.sdks.entries()) assert.match(l.layer, new RegExp(`^${SDKS[i]!.name}-[0-9a-f]{16}$`), 'a shared layer, named by content');
        const oneIdBefore = await identity(a.backend, one);

        // two: from the cache, no hook.
        const p2 = new ProgressLog();
        const two = await a.engine.launch(inlineSpec('two', BASE), { onProgress: p2.on });
        assert.equal(p2.hooks(), [], 'two runs no hook');
        assert.equal(p2.started(), ['create from gamma', 'start'], 'two is a copy of the deepest cached layer, then a start');
        assert.equal(two.sdks, one.sdks, 'the same layers');
        assert.is(two.status, 'ready');
        assert.is.not(two.identity?.uuid, one.identity?.uuid, 'an instance identity of its own');

        // three: another engine, another store, the same base: every hook runs.
        const p3 = new ProgressLog();
        const three = await b.engine.launch(inlineSpec('three', BASE), { onProgress: p3.on });
        assert.equal(p3.hooks(), SDKS.map((s) => `setup-base ${s.name}`), 'three is built from scratch');

        // The roots, from the host.
        const [tOne, tTwo, tThree] = [await hostTree(a.backend, ref(one)), await hostTree(a.backend, ref(two)), await hostTree(b.backend, ref(three))];
        assert.equal(treeDiff(tTwo, tThree, ['two', 'three']), [], 'two (cached) and three (from scratch): the same root');
        assert.equal(treeDiff(tOne, tThree, ['one', 'three']), [], 'one and three (both from scratch): the same root');
        // Not vacuous: what the hooks did is there.
        assert.ok(tTwo.size > 300, `a whole root (${tTwo.size} entries)`);
        for (const gone of ['/etc/delete-me', '/srv/gone', '/srv/opaque/old', '/opt/alpha/share/doomed', '/opt/alpha/replaced/a', '/opt/alpha/moving', '/opt/beta/fifo']) assert.not.ok(tTwo.has(gone), `${gone} is deleted`);
        assert.match(tTwo.get('/opt/beta/tool-hardlink')!, /^file 0755 0:0 nlink=2 /);
        assert.match(tTwo.get('/opt/alpha/owned')!, /^file 0644 1000:1001 /);
        assert.match(tTwo.get('/opt/gamma/sticky')!, /^dir 1777 /);
        assert.match(tTwo.get('/opt/beta/dangling')!, /-> \/nowhere\/at\/all$/);
        assert.match(tTwo.get('/srv/becomes-file')!, /^file /);
        assert.match(tTwo.get('/srv/becomes-dir')!, /^dir /);
        assert.match(tTwo.get('/srv')!, /^dir 0700 /);
        assert.is((await a.backend.readFile(ref(two), '/var/log/hooks'))?.content, 'alpha\nbeta\ngamma\n', 'each hook ran once for its layer');
        assert.is((await a.backend.readFile(ref(two), '/etc/append-me'))?.content, 'base line\nalpha line\nbeta line\ngamma line\n');

        // The roots, from inside the running workshops.
        const [iTwo, iThree] = [await insideTree(a.backend, ref(two)), await insideTree(b.backend, ref(three))];
        assert.ok(iTwo.size > 300, `listed from inside (${iTwo.size} entries)`);
        assert.equal(treeDiff(iTwo, iThree, ['two', 'three']), [], 'seen from inside: the same root');

        // Identity files.
        const base = { machineId: BASE_MACHINE_ID, keys: Object.fromEntries(await Promise.all(KEY_TYPES.map(async (k) => [k, await readFile(join(tree, `etc/ssh/ssh_host_${k}_key`), 'utf8')] as const))) };
        const idOne = await identity(a.backend, one);
        const idTwo = await identity(a.backend, two);
        const idThree = await identity(b.backend, three);
        assert.equal(idOne, oneIdBefore, 'one keeps its identity files once two is made from its layers');
        assert.is(idOne['/etc/machine-id']?.content, base.machineId, "one has the base's machine-id");
        assert.is(idThree['/etc/machine-id']?.content, base.machineId, "three has the base's machine-id");
        assert.is(idTwo['/etc/machine-id']?.content, '', 'two: an empty machine-id');
        for (const k of KEY_TYPES) {
          const key = `/etc/ssh/ssh_host_${k}_key`;
          assert.is(idOne[key]?.content, base.keys[k], `one keeps the base's ${k} host key`);
          assert.is(idThree[key]?.content, base.keys[k], `three has the base's ${k} host key`);
          assert.ok(idTwo[key]?.content && idTwo[key]!.content !== base.keys[k], `two has a new ${k} host key`);
          assert.equal([idTwo[key]!.mode, idTwo[key]!.uid, idTwo[key]!.gid], [0o600, 0, 0], `${key}: 0600 root`);
          assert.equal([idTwo[`${key}.pub`]?.mode, idTwo[`${key}.pub`]?.uid], [0o644, 0], `${key}.pub: 0644 root`);
          assert.is.not(idTwo[`${key}.pub`]?.content, idOne[`${key}.pub`]?.content, `two has a new ${k} public key`);
        }
        // Real pairs: each .pub is its key's, commented with two's instance.
        const view = await a.backend.mountView(ref(two));
        try {
          for (const k of KEY_TYPES) {
            const derived = execFileSync('ssh-keygen', ['-y', '-f', join(view.path, `etc/ssh/ssh_host_${k}_key`)], { encoding: 'utf8' }).trim().split(' ').slice(0, 2).join(' ');
            const pub = (await readFile(join(view.path, `etc/ssh/ssh_host_${k}_key.pub`), 'utf8')).trim().split(' ');
            assert.is(pub.slice(0, 2).join(' '), derived, `${k}: the .pub is the key's`);
            assert.is(pub[2], `root@${two.instance}`);
          }
        } finally {
          await view.release();
        }
        // The shared layers themselves were not touched by two's reset: a third copy starts from the base's files again.
        const p4 = new ProgressLog();
        const four = await a.engine.launch(inlineSpec('four', BASE), { onProgress: p4.on });
        assert.equal(p4.hooks(), []);
        const idFour = await identity(a.backend, four);
        assert.is(idFour['/etc/machine-id']?.content, '');
        for (const k of KEY_TYPES) assert.is.not(idFour[`/etc/ssh/ssh_host_${k}_key`]?.content, idTwo[`/etc/ssh/ssh_host_${k}_key`]?.content, `four's ${k} key is not two's`);
      } finally {
        for (const w of worlds) await w.cleanup();
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
}

t.run();

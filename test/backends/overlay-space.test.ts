/**
 * The overlay backend on a real, small file system, filled up: a 16 MiB tmpfs per driver holds the
 * store (its run directory stays outside, as `/run` would be). Checks `diskSpace` against `statfs`,
 * then, with the disk full, that making things fails with `NO_SPACE` (never `INTERNAL`) and leaves
 * nothing behind, that removing still works, that a hook writing to the full disk is `NO_SPACE`,
 * and that everything works again once room is made.
 *
 * Mounting needs root. CI runs as root and must not skip: there (`process.env.CI`) a failed mount
 * is a failing test; elsewhere the suite is skipped with the reason printed. The disks are mounted
 * when the file loads (so a failed mount can still skip the suite) and released in `after`,
 * whatever the tests did; should the process die before that, an exit handler detaches them.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOverlayBackend } from '../../backends/overlay/index.ts';
import type { OverlayBackend } from '../../backends/overlay/index.ts';
import type { ObjectRef, Tags } from '../../backends/types.ts';
import { rejects } from './cases/fixture.ts';
import { releaseMounts } from './overlay-env.ts';

const DRIVERS = ['overlayfs', 'copy'] as const;
const dir = await mkdtemp(join(tmpdir(), 'atelier-ovl-space-'));
const disk = (driver: string) => join(dir, `disk-${driver}`);

/** Mount a 16 MiB tmpfs per driver; the reason it cannot be done, or null. */
async function mountDisks(): Promise<string | null> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not root: mounting a tmpfs needs root';
  for (const driver of DRIVERS) {
    await mkdir(disk(driver));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', disk(driver)], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      return `mount -t tmpfs on ${disk(driver)} failed: ${String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim()}`;
    }
  }
  return null;
}

/** The last resort if `after` never runs (the process dies): detach the disks (sync, as `exit` needs). */
function detachDisks(): void {
  for (const driver of DRIVERS) {
    try {
      execFileSync('umount', ['-R', '-l', disk(driver)], { stdio: 'ignore' });
    } catch {
      /* not mounted */
    }
  }
}

/** Unmount the store's overlay mounts, then the tmpfs disks, then delete everything. */
async function unmountDisks(): Promise<void> {
  for (const driver of DRIVERS) await releaseMounts(disk(driver)).catch(() => undefined);
  for (const driver of DRIVERS) {
    try {
      execFileSync('umount', [disk(driver)], { stdio: 'ignore' });
    } catch {
      // Not mounted (the mount failed), or still busy: a lazy unmount never leaves it behind.
      try {
        execFileSync('umount', ['-l', disk(driver)], { stdio: 'ignore' });
      } catch {
        /* was not mounted */
      }
    }
  }
  await rm(dir, { recursive: true, force: true });
}

/** Write zeros to `path` until the file system says ENOSPC; the bytes written. */
function fill(path: string): number {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(1024 * 1024);
  let written = 0;
  try {
    for (;;) written += writeSync(fd, chunk); // a short write is followed by ENOSPC
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
  return written;
}

/** Every directory entry the store keeps objects in (`layout.ts`), to spot anything left behind. */
async function storeEntries(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ['blobs', 'work', 'tmp', 'views', 'scratch', 'objects/workshops', 'objects/layers']) {
    for (const n of await readdir(join(root, sub)).catch(() => [])) out.push(`${sub}/${n}`);
  }
  return out.sort();
}

const WS = (name: string): ObjectRef => ({ space: 'workshops', name });
const LY = (name: string): ObjectRef => ({ space: 'layers', name });
const tags = (kind: Tags['kind'], op: string): Tags => ({ owner: 'alice', op, kind });
const P = (path: string) => `"\${ATELIER_ROOTFS%/}${path}"`;

const problem = await mountDisks();
process.once('exit', detachDisks);
const t = suite('overlay: a full disk');
let started = 0;
t.before(() => {
  started = performance.now();
});
t.after(async () => {
  await unmountDisks();
  process.removeListener('exit', detachDisks);
  console.log(`overlay-space: ${((performance.now() - started) / 1000).toFixed(1)} s`);
});

if (problem && process.env.CI) {
  t('overlay on a full tmpfs: the tmpfs must mount in CI', () => {
    throw new Error(`${problem}; CI runs as root and must run these tests`);
  });
} else if (problem) {
  console.log(`SKIP overlay-space: ${problem}`);
  t.skip(`overlay on a full tmpfs (${problem})`, () => undefined);
} else {
  for (const driver of DRIVERS) registerDriver(driver);
}

function registerDriver(driver: (typeof DRIVERS)[number]): void {
  const root = join(disk(driver), 'store');
  const filler = join(disk(driver), 'filler');
  let b: OverlayBackend;
  const names = async () => (await b.list('alice')).map((o) => `${o.ref.space}/${o.ref.name}`);

  t(`${driver}: diskSpace is the store's directory, free as statfs says`, async () => {
    b = await createOverlayBackend({ root, runDir: join(dir, `run-${driver}`), driver });
    await b.ensureProjects('alice');
    const d = await b.diskSpace();
    const st = statfsSync(root);
    assert.is(d.where, root);
    assert.is(d.total, st.blocks * st.bsize);
    assert.ok(d.total >= 15 * 1024 * 1024 && d.total <= 17 * 1024 * 1024, `total ${d.total} is about 16 MiB`);
    assert.ok(Math.abs(d.free - st.bavail * st.bsize) <= 4 * st.bsize, `free ${d.free} vs statfs ${st.bavail * st.bsize}`);
  });

  t(`${driver}: on a full disk, create and copy are NO_SPACE and leave nothing; remove works; a hook writing is NO_SPACE`, async () => {
    // Before the disk fills: a running workshop with a change in its upper (so a copy must freeze
    // it), and a workshop and a layer to remove later.
    const w1 = WS('w1');
    await b.create({ target: w1, source: { base: b.defaultBase }, tags: tags('workshop', 'op1') });
    await b.start(w1);
    await b.exec(w1, { script: `echo kept > ${P('/etc/kept')}` });
    await b.create({ target: WS('w2'), source: { base: b.defaultBase }, tags: tags('workshop', 'op2') });
    await b.copy({ source: w1, target: LY('l2'), tags: tags('sdk', 'op3') });
    await b.exec(w1, { script: `echo again > ${P('/etc/again')}` }); // the upper differs from l2 again

    const filled = fill(filler);
    assert.ok(filled > 0);
    const d = await b.diskSpace();
    assert.ok(d.free <= 64 * 1024, `the disk is full: free ${d.free}`);

    const listed = await names();
    // A failed call may collect old garbage (a stale work directory) but must add nothing.
    const nothingNew = async (what: string) => {
      const before = new Set(await storeEntries(root));
      return async () => {
        const added = (await storeEntries(root)).filter((n) => !before.has(n));
        assert.equal(added, [], `${what} left no directory in the store`);
        assert.equal(await names(), listed, `${what} made no object`);
      };
    };
    let check = await nothingNew('create');
    const e1 = await rejects(b.create({ target: WS('w3'), source: { base: b.defaultBase }, tags: tags('workshop', 'op4') }), 'NO_SPACE', 'create from the base');
    assert.match(e1.message, root);
    await check();
    check = await nothingNew('copy');
    await rejects(b.copy({ source: w1, target: LY('l3'), tags: tags('stash', 'op5') }), 'NO_SPACE', 'copy to a layer');
    await check();
    // The source of the failed copy is as it was: running, its files there.
    assert.is((await b.inspect(w1))?.status, 'running');
    assert.is((await b.readFile(w1, '/etc/again'))?.content, 'again\n');

    const e2 = await rejects(b.exec(w1, { script: `echo before\ncat /dev/zero > ${P('/var/big')}` }), 'NO_SPACE', 'a hook writing to the full disk');
    assert.type(e2.info['exitCode'], 'number');
    assert.is.not(e2.info['exitCode'], 0);
    assert.match(String(e2.info['stdout']), /^before/); // EXEC_FAILED's info, kept as it was
    assert.match(String(e2.info['stderr']), /No space left on device/);
    assert.match(e2.message, root);
    await b.exec(w1, { script: `rm -f ${P('/var/big')}` });

    await b.remove(WS('w2'));
    await b.remove(LY('l2'));
    assert.equal(await names(), ['workshops/w1'], 'remove works on a full disk');
  });

  t(`${driver}: once the filler is deleted, create and copy work again`, async () => {
    unlinkSync(filler);
    const w3 = WS('w3');
    await b.create({ target: w3, source: { base: b.defaultBase }, tags: tags('workshop', 'op6') });
    await b.copy({ source: WS('w1'), target: LY('l3'), tags: tags('stash', 'op7') });
    assert.is((await b.readFile(LY('l3'), '/etc/again'))?.content, 'again\n');
    assert.equal(await names(), ['layers/l3', 'workshops/w1', 'workshops/w3']);
    const used = await b.usage('alice');
    assert.ok(used.every((u) => typeof u.bytes === 'number' && u.bytes > 0), JSON.stringify(used));
    for (const ref of [w3, WS('w1'), LY('l3')]) await b.remove(ref);
    assert.equal((await storeEntries(root)).filter((n) => n.startsWith('objects/')), []);
    await b.close();
  });
}

t.run();

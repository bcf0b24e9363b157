/**
 * Degraded mode, on real small file systems (tmpfs with `size=`), the journal's disk and the
 * overlay store's disk each filled on its own, with a long-lived engine (as atelierd holds one):
 *
 * - a full disk refuses launch, stash and run at once with `NO_SPACE`, naming the disk and what is
 *   free there, and writes nothing;
 * - list and show answer; remove and gc work (on the journal's disk, through its reserve);
 * - a disk that fills in the middle of an op gets it undone, with `NO_SPACE`;
 * - once space is freed the engine leaves degraded mode by itself: the next launch works, with no
 *   restart; reopened, the state is what was acknowledged.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOverlayBackend, type OverlayBackend } from '../../backends/overlay/index.ts';
import { openEngine } from '../../engine/open.ts';
import type { Engine, Progress } from '../../engine/api.ts';
import { specFromInline } from '../../engine/workshop-file.ts';
import { RESERVE_NAME } from '../../events/reserve.ts';
import { releaseMounts } from '../backends/overlay-env.ts';
import { mountSmallFs, smallFsBlocker, smallFsUnavailable, type SmallFs } from '../support/small-fs.ts';

const blocker = smallFsBlocker();
const MIN_FREE = 1 << 20;

interface World {
  fsys: SmallFs;
  scratch: string;
  stateDir: string;
  runDir: string;
  storeRoot: string;
  backend: OverlayBackend;
  engine: Engine;
  open(): Promise<Engine>;
}

let world: World | null = null;

test.after.each(async () => {
  if (!world) return;
  await world.engine.close().catch(() => undefined);
  await releaseMounts(world.scratch);
  await releaseMounts(world.fsys.dir);
  await world.fsys.unmount();
  rmSync(world.scratch, { recursive: true, force: true });
  world = null;
});

/** An overlay engine whose journal (`disk: 'journal'`) or store (`disk: 'store'`) is on a small tmpfs. */
async function setUp(disk: 'journal' | 'store', bytes: number): Promise<World> {
  const fsys = await mountSmallFs(disk, bytes);
  const scratch = mkdtempSync(join(tmpdir(), 'atelier-full-disk-'));
  const stateDir = disk === 'journal' ? join(fsys.dir, 'state') : join(scratch, 'state');
  const storeRoot = disk === 'store' ? join(fsys.dir, 'store') : join(scratch, 'store');
  const runDir = join(scratch, 'run');
  const backend = await createOverlayBackend({ root: storeRoot, runDir: join(runDir, 'overlay') });
  const open = () => openEngine({ stateDir, runDir, backend, owner: 'alice', minFreeBytes: MIN_FREE });
  const w: World = { fsys, scratch, stateDir, runDir, storeRoot, backend, engine: await open(), open };
  world = w;
  return w;
}

function spec(name: string, sdks = 1) {
  const list = Array.from({ length: sdks }, (_, i) => ({ name: `s${i}`, 'setup-base': `echo ${name}${i} > "\${ATELIER_ROOTFS%/}/etc/s${i}"` }));
  return specFromInline({ name, project: `/srv/${name}`, sdks: list }, { defaultBase: 'minimal' });
}

async function refusal(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a refusal');
}

/** A progress callback that fills the world's small disk at the first step `when` accepts. */
function fillOnce(w: World, when: (p: Progress) => boolean): (p: Progress) => void {
  let filled = false;
  return (p) => {
    if (filled || !when(p)) return;
    filled = true;
    w.fsys.fill();
  };
}

/** Every file under `dir` with its size and content hash: "nothing was written". */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    out[p] = fs.readFileSync(p).toString('base64').slice(-64) + `:${fs.statSync(p).size}`;
  }
  return out;
}

if (blocker) {
  smallFsUnavailable(test, 'degraded mode on a full disk', blocker);
} else {
  test("the journal's disk full: making commands refused at once, remove and gc work, and space back means launch works", async () => {
    const w = await setUp('journal', 8 << 20);
    await w.engine.launch(spec('w1'));
    await w.engine.launch(spec('w2'));
    w.fsys.fill();
    const before = snapshot(w.stateDir);
    let progressed = 0;
    const e = await refusal(w.engine.launch(spec('w3'), { onProgress: () => progressed++ }));
    assert.is(e.code, 'NO_SPACE');
    assert.equal(e.info.full, ['journal']);
    assert.ok(e.message.includes(w.stateDir), e.message);
    assert.match(e.message, /0 B free of/);
    assert.is(progressed, 0, 'refused before any step');
    assert.equal(snapshot(w.stateDir), before, 'nothing written');
    for (const p of [w.engine.stash('w1'), w.engine.refresh(spec('w1', 2)), w.engine.run({ from: 'w1', script: 'true' })]) {
      assert.is((await refusal(p)).code, 'NO_SPACE');
    }
    assert.equal(snapshot(w.stateDir), before, 'still nothing written');
    // Bad input keeps its own error.
    assert.is((await refusal(w.engine.stash('nosuch'))).code, 'NOT_FOUND');
    // Reading works.
    assert.equal(w.engine.list().map((x) => x.name), ['w1', 'w2']);
    assert.is(w.engine.show('w1').status, 'ready');
    const space = await w.engine.space();
    assert.equal(space.degraded?.full, ['journal']);
    // Remove works on the full disk: its records go to the reserve.
    await w.engine.remove('w1');
    assert.equal(w.engine.list().map((x) => x.name), ['w2']);
    assert.not.ok(fs.existsSync(join(w.stateDir, 'journal', RESERVE_NAME)), 'the reserve was spent');
    assert.ok((await w.backend.list('alice')).every((o) => !o.ref.name.startsWith('w1')), 'w1 is gone from the store');
    await w.engine.gc();
    // Space back: degraded mode ends by itself, the reserve is written again, launch works.
    w.fsys.unfill();
    assert.is((await w.engine.space()).degraded, null);
    assert.ok(fs.existsSync(join(w.stateDir, 'journal', RESERVE_NAME)), 'the reserve is back');
    await w.engine.launch(spec('w3'));
    await w.engine.close();
    w.engine = await w.open();
    assert.equal(w.engine.list().map((x) => x.name), ['w2', 'w3']);
  });

  test("the journal's disk fills during a launch: it is undone with NO_SPACE, through the reserve", async () => {
    const w = await setUp('journal', 8 << 20);
    await w.engine.launch(spec('w1'));
    const e = await refusal(w.engine.launch(spec('w2', 4), { onProgress: fillOnce(w, (p) => p.status === 'started') }));
    assert.is(e.code, 'NO_SPACE', e.message);
    assert.equal(w.engine.list().map((x) => x.name), ['w1'], 'w2 was undone');
    assert.ok((await w.backend.list('alice')).every((o) => !o.ref.name.startsWith('w2')), 'nothing of w2 is left in the store');
    assert.equal((await w.engine.space()).degraded?.full, ['journal']);
    w.fsys.unfill();
    await w.engine.launch(spec('w2', 4));
    await w.engine.close();
    w.engine = await w.open();
    assert.equal(w.engine.list().map((x) => x.name), ['w1', 'w2']);
  });

  test("the store's disk full: a launch under way is undone with NO_SPACE, then making commands are refused at once; remove and gc work; space back, launch works", async () => {
    const w = await setUp('store', 48 << 20);
    await w.engine.launch(spec('w1'));
    await w.engine.launch(spec('w2'));
    const e = await refusal(w.engine.launch(spec('w3', 3), { onProgress: fillOnce(w, (p) => p.status === 'done' && p.label === 'create') }));
    assert.is(e.code, 'NO_SPACE', e.message);
    assert.equal(w.engine.list().map((x) => x.name), ['w1', 'w2']);
    assert.ok((await w.backend.list('alice')).every((o) => !o.ref.name.startsWith('w3')), 'nothing of w3 is left in the store');
    // Degraded now: refused at once, naming the store and what is free.
    const before = snapshot(w.stateDir);
    const s = await refusal(w.engine.stash('w1'));
    assert.is(s.code, 'NO_SPACE');
    assert.equal(s.info.full, ['backend']);
    assert.ok(s.message.includes(w.storeRoot), s.message);
    assert.equal(snapshot(w.stateDir), before, 'nothing journaled');
    assert.is(w.engine.show('w2').status, 'ready');
    await w.engine.remove('w1');
    await w.engine.gc();
    w.fsys.unfill();
    assert.is((await w.engine.space()).degraded, null);
    await w.engine.launch(spec('w3', 3));
    assert.equal(w.engine.list().map((x) => x.name), ['w2', 'w3']);
  });
}

test.run();

/**
 * The engine's behaviour beyond single traces: serialisation, abort, the state-directory lock, a
 * backend that is down, rejection without journaling, gc, missing objects, transient containers
 * across a reboot, checkpoints and the observables.
 */
import { rmSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { firstValueFrom, filter } from 'rxjs';
import { isAtelierError } from '../../machines/errors.ts';
import { openEngineImpl as openEngine } from '../../engine/engine.ts';
import { canonicalJson } from '../../machines/index.ts';
import { assertAccounted, codeOf, content, fixture, sdk, spec, V1, V2, V3, WS } from './helpers.ts';


test('commands on one workshop are serialised; a second workshop runs alongside', async () => {
  const f = await fixture();
  try {
    await f.engine.launch(V1);
    f.backend.clearCalls();
    const other = spec([sdk('ros2', 'humble')], { name: 'other' });
    await Promise.all([f.engine.refresh(V2), f.engine.refresh(V3), f.engine.launch(other)]);
    const mine = f.backend.trace().filter((l) => l.includes('nav2-1a2b3c4d') || / layers\/(ros2|nav)-0/.test(l) || l.includes('stash-ros2-') || l.includes('stash-nav-'));
    // The two refreshes do not interleave: the second's stop comes after the first's clean-up.
    const stops = mine.map((l, i) => [l, i] as const).filter(([l]) => l === `stop ${WS.space}/${WS.name}`).map(([, i]) => i);
    assert.is(stops.length, 2);
    const firstCleanup = mine.findIndex((l) => l.startsWith('remove layers/stash-nav2-'));
    assert.ok(firstCleanup < stops[1]!, 'the second refresh starts after the first finished');
    const traceAll = f.backend.trace();
    const otherFirst = traceAll.findIndex((l) => l.includes('other-'));
    const navLast = traceAll.length - 1 - [...traceAll].reverse().findIndex((l) => l.includes('nav2-1a2b3c4d'));
    assert.ok(otherFirst < navLast, 'the other workshop ran while nav2 was being refreshed');
    assert.equal(f.engine.show('nav2').sdks.map((l) => l.hash), V3.sdks.map((s) => s.hash));
    await assertAccounted(f.engine, f.backend);
  } finally {
    await f.cleanup();
  }
});

test('an aborted refresh is undone like a failed one (ABORTED), the workshop as it was', async () => {
  const f = await fixture();
  try {
    await f.engine.launch(V1);
    const before = { ws: f.engine.show('nav2'), content: await content(f.backend) };
    const ac = new AbortController();
    const p = f.engine.refresh(V3, { signal: ac.signal, onProgress: (e) => e.label === 'start' && e.status === 'done' && ac.abort() });
    assert.is(await codeOf(p), 'ABORTED');
    const ws = f.engine.show('nav2');
    assert.equal(ws.sdks, before.ws.sdks);
    assert.equal(ws.identity, before.ws.identity);
    assert.equal(await content(f.backend), before.content);
    assert.is(ws.lastError?.code, 'ABORTED');
    await assertAccounted(f.engine, f.backend);
  } finally {
    await f.cleanup();
  }
});

test('a command aborted before it starts changes nothing', async () => {
  const f = await fixture();
  try {
    const seq = f.engine.state.seq;
    assert.is(await codeOf(f.engine.launch(V1, { signal: AbortSignal.abort() })), 'ABORTED');
    assert.is(f.engine.state.seq, seq);
  } finally {
    await f.cleanup();
  }
});

test('rejected commands journal nothing and carry their code', async () => {
  const f = await fixture();
  try {
    await f.engine.launch(V1);
    const seq = f.engine.state.seq;
    assert.is(await codeOf(f.engine.launch(V1)), 'ALREADY_EXISTS');
    assert.is(await codeOf(f.engine.refresh({ ...V1, name: 'ghost' })), 'NOT_FOUND');
    assert.is(await codeOf(f.engine.unstash('nav2')), 'FAILED_PRECONDITION');
    assert.is(await codeOf(f.engine.restore('nav2', 'ros3')), 'NOT_FOUND');
    assert.is(await codeOf(f.engine.remove('ghost')), 'NOT_FOUND');
    assert.throws(() => f.engine.show('ghost'), (e: unknown) => isAtelierError(e, 'NOT_FOUND'));
    assert.is(f.engine.state.seq, seq, 'nothing journaled');
  } finally {
    await f.cleanup();
  }
});

test('bad names are refused at the edge of the engine with INVALID_NAME, nothing journaled', async () => {
  const f = await fixture();
  try {
    const seq = f.engine.state.seq;
    assert.is(await codeOf(f.engine.launch({ ...V1, name: 'Nav2' })), 'INVALID_NAME');
    assert.is(await codeOf(f.engine.launch({ ...V1, name: 'a'.repeat(41) })), 'INVALID_NAME');
    assert.is(await codeOf(f.engine.launch(spec([sdk('agent', 'x')]))), 'INVALID_NAME');
    assert.is(await codeOf(f.engine.launch(spec([sdk('try-this', 'x')]))), 'INVALID_NAME');
    assert.is(await codeOf(f.engine.launch({ ...V1, name: 'a'.repeat(40), sdks: [] })), 'ok', 'a 40-character name fits');
    assert.is(await codeOf(f.engine.remove('../x')), 'INVALID_NAME');
    assert.is(f.engine.state.seq > seq, true);
    assert.equal(Object.keys(f.engine.state.workshops), ['a'.repeat(40)]);
  } finally {
    await f.cleanup();
  }
});

test('a second engine on the same state directory gets LOCKED naming the holder pid', async () => {
  const f = await fixture();
  try {
    const err = await openEngine({ stateDir: f.stateDir, runDir: f.runDir, backend: f.backend, owner: 'alice' }).then(
      () => null,
      (e) => e,
    );
    assert.ok(isAtelierError(err, 'LOCKED'));
    assert.ok(String(err.message).includes(String(process.pid)), 'the message names the holder pid');
  } finally {
    await f.cleanup();
  }
});

test('a backend that is down: UNAVAILABLE at open, the lock released, nothing journaled', async () => {
  const f = await fixture();
  try {
    await f.engine.close();
    f.backend.setAvailable(false);
    assert.is(await codeOf(openEngine({ stateDir: f.stateDir, runDir: f.runDir, backend: f.backend, owner: 'alice' })), 'UNAVAILABLE');
    f.backend.setAvailable(true);
    const e = await f.reopen();
    assert.ok(e.state.seq >= 0, 'the directory is not left locked');
  } finally {
    await f.cleanup();
  }
});

test('gc removes owned objects nobody accounts for, never unowned ones', async () => {
  const f = await fixture();
  try {
    await f.engine.launch(V1);
    f.backend.plant({ space: 'layers', name: 'leftover-1' }, { tags: { owner: 'alice', op: 'op-x', kind: 'sdk' } });
    f.backend.plant({ space: 'layers', name: 'someone-else' }, { tags: { op: 'op-y', kind: 'sdk' } });
    const dry = await f.engine.gc({ dryRun: true });
    assert.equal(dry.orphans.map((r) => r.name), ['leftover-1']);
    assert.ok(f.backend.objects().some((o) => o.name === 'leftover-1'), 'a dry run removes nothing');
    const done = await f.engine.gc();
    assert.equal(done.orphans.map((r) => r.name), ['leftover-1']);
    const names = f.backend.objects().map((o) => o.name);
    assert.not.ok(names.includes('leftover-1'));
    assert.ok(names.includes('someone-else'), 'an unowned object is never touched');
    await assertAccounted(f.engine, f.backend);
  } finally {
    await f.cleanup();
  }
});

test('a layer lost on the backend is journaled missing, the workshop broken; a refresh repairs it', async () => {
  const f = await fixture();
  try {
    const ws = await f.engine.launch(V1);
    await f.engine.close();
    const image = f.backend.dump();
    f.backend.load({ ...image, objects: image.objects.filter((o) => o.name !== ws.sdks[1]!.layer) } as typeof image);
    const e = await f.reopen();
    assert.is(e.show('nav2').status, 'broken');
    assert.is(e.show('nav2').lastError?.code, 'MISSING');
    assert.is(await codeOf(e.stash('nav2')), 'FAILED_PRECONDITION');
    const repaired = await e.refresh(V1);
    assert.is(repaired.status, 'ready');
    assert.is(repaired.sdks[0]!.layer, ws.sdks[0]!.layer, 'the intact first layer is reused');
    // A shared layer is named by its content: rebuilt under the same name.
    assert.is(repaired.sdks[1]!.layer, ws.sdks[1]!.layer);
    assert.ok(f.backend.objects().some((o) => o.name === ws.sdks[1]!.layer), 'the lost layer is rebuilt');
    assert.is(e.folded.objects[`layers/${ws.sdks[1]!.layer}`]?.state, 'present');
    await assertAccounted(e, f.backend);
  } finally {
    await f.cleanup();
  }
});

test('transient containers: run --rm leaves nothing; a kept one is reclaimed after a reboot', async () => {
  const f = await fixture();
  try {
    const ws = await f.engine.launch(V1);
    const r = await f.engine.run({ from: 'nav2', script: 'echo hi' });
    assert.is(r.stdout, 'hi\n');
    assert.equal(f.engine.state.containers, {});
    const bad = await f.engine.run({ from: ws.sdks[0]!.layer, script: 'exit 4' });
    assert.is(bad.exitCode, 4);
    const kept = await f.engine.run({ from: 'nav2', keep: true, scratch: 'shared' });
    assert.ok(f.engine.state.containers[kept.id], 'the kept container is in the volatile state');
    const seq = f.engine.state.seq;
    // Reboot: the process dies, the run directory (tmpfs) is wiped, container processes are gone.
    await f.engine.crash();
    f.backend.reboot();
    rmSync(f.runDir, { recursive: true, force: true });
    const e = await f.reopen();
    assert.equal(e.state.containers, {});
    assert.not.ok(f.backend.objects().some((o) => o.tags.kind === 'container'), 'its backend leftovers are gone after start-up');
    assert.ok(e.state.seq > seq, 'the removal is journaled');
    assert.is(await codeOf(e.run({ from: 'nope' })), 'NOT_FOUND');
    await assertAccounted(e, f.backend);
  } finally {
    await f.cleanup();
  }
});

test('a --rm container whose run died is reclaimed by the next start', async () => {
  const f = await fixture();
  try {
    await f.engine.launch(V1);
    f.backend.setFaultPlan({ rules: [{ call: 'exec', when: 'before', action: 'crash' }] });
    await f.engine.run({ from: 'nav2', script: 'echo hi' }).catch(() => undefined);
    f.backend.setFaultPlan(null);
    assert.ok(f.backend.objects().some((o) => o.tags.kind === 'container'), 'the container outlived its run');
    await f.engine.crash();
    const e = await f.reopen();
    assert.equal(e.state.containers, {});
    assert.not.ok(f.backend.objects().some((o) => o.tags.kind === 'container'));
    assert.is(await codeOf(e.remove('nav2')), 'ok', 'nothing blocks removing the workshop');
  } finally {
    await f.cleanup();
  }
});

test('a workshop with a live transient container cannot be removed until the container is', async () => {
  const f = await fixture();
  try {
    await f.engine.launch(V1);
    const kept = await f.engine.run({ from: 'nav2', keep: true });
    const seq = f.engine.state.seq;
    assert.is(await codeOf(f.engine.remove('nav2')), 'FAILED_PRECONDITION');
    assert.is(f.engine.state.seq, seq, 'nothing journaled');
    await f.engine.removeContainer(kept.id);
    assert.is(await codeOf(f.engine.remove('nav2')), 'ok');
    await assertAccounted(f.engine, f.backend);
  } finally {
    await f.cleanup();
  }
});

test('objects a given-up op left unsettled are settled by what the backend holds; remove then finishes', async () => {
  // Per-workshop layers: a remove removes them (shared ones it leaves to the cache).
  const f = await fixture({ sdkCache: false });
  try {
    const ws = await f.engine.launch(V1);
    f.backend.setFaultPlan({ rules: [{ call: 'remove', target: ws.sdks[1]!.layer, when: 'before', action: 'fail', once: false }] });
    assert.is(await codeOf(f.engine.remove('nav2')), 'BROKEN');
    assert.is(f.engine.show('nav2').status, 'broken');
    assert.is(f.engine.folded.objects[`layers/${ws.sdks[1]!.layer}`]?.state, 'removing');
    f.backend.setFaultPlan(null);
    await f.engine.reconcile();
    assert.is(f.engine.folded.objects[`layers/${ws.sdks[1]!.layer}`]?.state, 'present', 'settled: it is still there');
    assert.is(f.engine.folded.objects[`workshops/${WS.name}`], undefined, 'settled: the instance is gone');
    assert.is(await codeOf(f.engine.remove('nav2')), 'ok');
    await assertAccounted(f.engine, f.backend);
  } finally {
    await f.cleanup();
  }
});

test('checkpoints: reopening from a checkpoint gives the same state as before', async () => {
  const f = await fixture();
  try {
    await f.engine.close();
    const open = () => openEngine({ stateDir: f.stateDir, runDir: f.runDir, backend: f.backend, owner: 'alice', checkpointEvery: 10 });
    let e = await open();
    await e.launch(V1);
    await e.refresh(V2);
    const before = canonicalJson(e.folded);
    await e.crash();
    e = await open();
    const after = canonicalJson({ ...e.folded, seq: 0 });
    assert.is(after.replace(/"seq":\d+/, ''), canonicalJson({ ...JSON.parse(before), seq: 0 }).replace(/"seq":\d+/, ''));
    f.engine = e;
  } finally {
    await f.cleanup();
  }
});

test('state$ publishes each change and events$ every record', async () => {
  const f = await fixture();
  try {
    const seen: string[] = [];
    const sub = f.engine.events$.subscribe((r) => seen.push(r.type));
    const ready = firstValueFrom(f.engine.state$.pipe(filter((s) => s.workshops['nav2']?.status === 'ready')));
    await f.engine.launch(V1);
    assert.is((await ready).workshops['nav2']!.sdks.length, 2);
    sub.unsubscribe();
    assert.is(seen[0], 'op.started');
    assert.is(seen.at(-1), 'op.finished');
    assert.is(seen.filter((t) => t === 'effect.requested').length, 6);
  } finally {
    await f.cleanup();
  }
});

test.run();

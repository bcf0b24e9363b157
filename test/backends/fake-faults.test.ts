import { mkdtempSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createFakeBackend } from '../../backends/fake/index.ts';
import type { FakeBackend, FaultPlan } from '../../backends/fake/index.ts';
import { isBackendError } from '../../backends/types.ts';
import { LY, outcome, tags, WS } from './fault-outcome.ts';


async function withWorkshop(): Promise<FakeBackend> {
  const b = createFakeBackend({ seed: 3 });
  await b.create({ target: WS('w'), source: { base: 'busybox' }, tags: tags('workshop') });
  return b;
}

const t = suite('fake: fault plans');

t('fail before: the error, and nothing changed', async () => {
  const b = await withWorkshop();
  b.setFaultPlan({ rules: [{ call: 'copy', when: 'before', action: 'fail', code: 'NO_SPACE' }] });
  assert.is(await outcome(b.copy({ source: WS('w'), target: LY('l'), tags: tags('sdk') })), 'NO_SPACE');
  assert.is(await b.inspect(LY('l')), null);
  assert.is(await outcome(b.copy({ source: WS('w'), target: LY('l'), tags: tags('sdk') })), 'ok', 'once by default');
  const rec = b.calls.filter((c) => c.kind === 'copy');
  assert.equal(rec.map((c) => [c.ok, c.code, c.fault]), [[false, 'NO_SPACE', 'fail-before'], [true, undefined, undefined]]);
});

t('fail after: the effect happened, the caller sees the error (default INTERNAL)', async () => {
  const b = await withWorkshop();
  b.setFaultPlan({ rules: [{ call: 'copy', when: 'after', action: 'fail' }] });
  assert.is(await outcome(b.copy({ source: WS('w'), target: LY('l'), tags: tags('sdk') })), 'INTERNAL');
  assert.ok(await b.inspect(LY('l')));
  assert.equal(b.trace(), ['create workshops/w', 'copy workshops/w -> layers/l !INTERNAL']);
});

t('crash before and after throw SimulatedCrash without and with the effect', async () => {
  const b = await withWorkshop();
  b.setFaultPlan({ rules: [{ call: 'start', when: 'before', action: 'crash' }, { call: 'remove', when: 'after', action: 'crash' }] });
  assert.is(await outcome(b.start(WS('w'))), 'CRASH');
  assert.is((await b.inspect(WS('w')))!.status, 'stopped');
  assert.is(await outcome(b.remove(WS('w'))), 'CRASH');
  assert.is(await b.inspect(WS('w')), null);
  assert.equal(b.trace().slice(1), ['start workshops/w !CRASH', 'remove workshops/w !CRASH']);
  assert.equal(b.calls.filter((c) => c.kind === 'start' || c.kind === 'remove').map((c) => c.fault), ['crash-before', 'crash-after']);
});

t('nth counts matching calls from when the plan was set; target matches a substring', async () => {
  const b = await withWorkshop();
  await b.copy({ source: WS('w'), target: LY('before-plan'), tags: tags('sdk') });
  b.setFaultPlan({ rules: [{ call: 'copy', nth: 2, target: 'stash-', when: 'before', action: 'fail', code: 'BUSY' }] });
  const results: string[] = [];
  for (const name of ['sdk-1', 'stash-a', 'sdk-2', 'stash-b', 'stash-c']) results.push(await outcome(b.copy({ source: WS('w'), target: LY(name), tags: tags('stash') })));
  assert.equal(results, ['ok', 'ok', 'ok', 'BUSY', 'ok']);
});

t('once: false fires on every match from the nth on; "*" matches every kind', async () => {
  const b = await withWorkshop();
  b.setFaultPlan({ rules: [{ call: '*', nth: 2, once: false, when: 'before', action: 'fail', code: 'UNAVAILABLE' }] });
  assert.is(await outcome(b.start(WS('w'))), 'ok');
  assert.is(await outcome(b.stop(WS('w'))), 'UNAVAILABLE');
  assert.is(await outcome(b.inspect(WS('w'))), 'UNAVAILABLE');
  b.setFaultPlan(null);
  assert.is(await outcome(b.stop(WS('w'))), 'ok');
});

t('an after-fault on a call that itself failed: the call\'s own error wins', async () => {
  const b = await withWorkshop();
  b.setFaultPlan({ rules: [{ call: 'start', when: 'after', action: 'crash' }] });
  assert.is(await outcome(b.start(WS('missing'))), 'NOT_FOUND');
  assert.is(await outcome(b.start(WS('w'))), 'ok', 'the rule was spent');
});

t('random faults are deterministic from their seed and leave identities alone', async () => {
  const plan: FaultPlan = { random: { seed: 42, probability: 0.5, codes: ['NO_SPACE', 'INTERNAL'] } };
  const run = async () => {
    const b = createFakeBackend({ seed: 5 });
    b.setFaultPlan(plan);
    const out: string[] = [];
    for (let i = 0; i < 30; i++) {
      out.push(await outcome(b.create({ target: WS(`w${i}`), source: { base: 'busybox' }, tags: tags('workshop') })));
      out.push(await outcome(b.inspect(WS(`w${i}`))));
    }
    return { out, trace: b.trace(), dump: b.dump() };
  };
  const [a, c] = [await run(), await run()];
  assert.equal(a.out, c.out);
  assert.equal(a.trace, c.trace);
  assert.equal(a.dump, c.dump);
  assert.ok(a.out.filter((o) => o !== 'ok').length > 0, 'some faults fired');
  assert.ok(a.out.filter((o, i) => i % 2 === 0 && o === 'ok').length > 0, 'some calls succeeded');
  assert.ok(a.out.filter((_, i) => i % 2 === 1).every((o) => o === 'ok'), 'read-only calls are not faulted by default');
  assert.ok(a.out.includes('CRASH'));
  const other = createFakeBackend({ seed: 5 });
  other.setFaultPlan({ random: { seed: 43, probability: 0.5 } });
  const o: string[] = [];
  for (let i = 0; i < 30; i++) o.push(await outcome(other.create({ target: WS(`w${i}`), source: { base: 'busybox' }, tags: tags('workshop') })));
  assert.not.equal(o, a.out.filter((_, i) => i % 2 === 0));
});

t('random faults on read-only calls only when listed', async () => {
  const b = await withWorkshop();
  b.setFaultPlan({ random: { seed: 1, probability: 1, actions: ['fail-before'], codes: ['UNAVAILABLE'], calls: ['inspect'] } });
  assert.is(await outcome(b.inspect(WS('w'))), 'UNAVAILABLE');
  assert.is(await outcome(b.start(WS('w'))), 'ok');
});

t('baseFingerprint is a read-only call: out of random faults unless listed, hidden from trace()', async () => {
  const b = await withWorkshop();
  b.setFaultPlan({ random: { seed: 1, probability: 1, actions: ['crash-before'] } });
  assert.is(await b.baseFingerprint('busybox'), 'busybox#1');
  b.setFaultPlan({ random: { seed: 1, probability: 1, actions: ['fail-before'], codes: ['UNAVAILABLE'], calls: ['baseFingerprint'] } });
  assert.is(await outcome(b.baseFingerprint('busybox')), 'UNAVAILABLE');
  b.setFaultPlan({ rules: [{ call: 'baseFingerprint', target: 'ubuntu', when: 'before', action: 'fail', code: 'INTERNAL' }] });
  assert.is(await outcome(b.baseFingerprint('busybox')), 'ok');
  assert.is(await outcome(b.baseFingerprint('ubuntu@24.04')), 'INTERNAL');
  b.setFaultPlan(null);
  b.clearCalls();
  await b.baseFingerprint('busybox');
  assert.equal(b.trace(), []);
  assert.equal(b.trace({ readOnly: true }), ['baseFingerprint busybox']);
  assert.is(b.calls[0]!.base, 'busybox');
});

t('a plan is plain JSON, copied on set, and validated', async () => {
  const b = createFakeBackend();
  const plan = { rules: [{ call: 'copy' as const, when: 'before' as const, action: 'fail' as const }], random: { seed: 1, probability: 0.1 } };
  b.setFaultPlan(plan);
  assert.equal(JSON.parse(JSON.stringify(b.faultPlan)), plan);
  assert.equal(b.faultPlan, plan);
  try {
    b.setFaultPlan({ rules: [{ call: 'copy', when: 'during' as 'before', action: 'fail' }] });
    assert.unreachable();
  } catch (e) {
    assert.ok(isBackendError(e, 'INVALID'));
  }
});

t('setAvailable(false): every call UNAVAILABLE and nothing changes', async () => {
  const b = await withWorkshop();
  const before = b.dump();
  b.setAvailable(false);
  for (const p of [b.start(WS('w')), b.remove(WS('w')), b.inspect(WS('w')), b.list('alice'), b.listBases(), b.baseFingerprint('busybox'), b.ensureProjects('alice'), b.readFile(WS('w'), '/etc')]) {
    assert.is(await outcome(p), 'UNAVAILABLE');
  }
  assert.equal(b.dump(), before);
  b.setAvailable(true);
  assert.is(await outcome(b.start(WS('w'))), 'ok');
});

t.run();

const p = suite('fake: persistence and crash images');

p('dump/load are deep copies; load restores objects and the identity sequence', async () => {
  const a = await withWorkshop();
  const image = a.dump();
  const b = createFakeBackend({ seed: 999 });
  b.load(image);
  image.objects[0]!.tags['owner'] = 'mallory';
  assert.is((await b.inspect(WS('w')))!.tags.owner, 'alice');
  await a.copy({ source: WS('w'), target: LY('l'), tags: tags('sdk') });
  await b.copy({ source: WS('w'), target: LY('l'), tags: tags('sdk') });
  assert.equal(a.dump(), b.dump(), 'same next identity after load');
  const exported = b.dump();
  exported.objects[0]!.files['/etc/x'] = { type: 'file', mode: 0o644, uid: 0, gid: 0, content: 'x' };
  assert.is(await b.readFile(LY('l'), '/etc/x'), null);
});

p('with a file, two instances share state across "processes"; saves are atomic', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'atelier-fake-'));
  try {
    const file = join(dir, 'fake.json');
    const one = createFakeBackend({ seed: 7, file });
    assert.not.ok(existsSync(file));
    await one.create({ target: WS('w'), source: { base: 'busybox' }, tags: tags('workshop') });
    await one.start(WS('w'));
    await one.exec(WS('w'), { script: 'echo persisted > "${ATELIER_ROOTFS%/}/etc/p"' });
    assert.ok(existsSync(file));
    assert.equal(readdirSync(dir), ['fake.json'], 'no temp file left behind');
    const two = createFakeBackend({ seed: 1, file });
    assert.equal(two.dump(), one.dump());
    assert.is((await two.readFile(WS('w'), '/etc/p'))!.content, 'persisted\n');
    await two.copy({ source: WS('w'), target: LY('l'), tags: tags('sdk') });
    const three = createFakeBackend({ file });
    assert.equal((await three.list('alice')).map((o) => o.ref.name), ['l', 'w']);
    three.reboot();
    assert.is((await createFakeBackend({ file }).inspect(WS('w')))!.status, 'stopped');
    // A failed call that changed nothing still leaves a readable image.
    assert.is(await outcome(three.start(LY('l'))), 'INVALID');
    assert.equal(createFakeBackend({ file }).dump(), three.dump());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

p('a corrupt file is a clear error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'atelier-fake-'));
  try {
    const file = join(dir, 'fake.json');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(file, '{"format":"something-else"}');
    try {
      createFakeBackend({ file });
      assert.unreachable();
    } catch (e) {
      assert.ok(isBackendError(e, 'INTERNAL'));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

p.run();

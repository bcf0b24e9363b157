/**
 * The simulation harness against a real backend: `withFaults` (the fake's fault-plan semantics
 * around any adapter), the overlay world's crash and reboot, and a short bounded budget of random
 * runs against overlay with the overlayfs driver (root only; CI runs as root, so it is never
 * skipped). Override the budget with ATELIER_SIM_OVERLAY_SEED / _RUNS / _COMMANDS.
 */
import { execFileSync } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createFakeBackend, type FaultPlan } from '../../backends/fake/index.ts';
import { createOverlayBackend } from '../../backends/overlay/index.ts';
import { mountsUnder } from '../../backends/overlay/mounts.ts';
import type { Backend } from '../../backends/types.ts';
import { readRepro, replaySteps, simulate } from '../../simulate/index.ts';
import { withFaults } from '../../simulate/faulty-backend.ts';
import { newContext, runStep } from '../../simulate/runner.ts';
import { releaseMountsUnder } from '../../simulate/sim-backend.ts';
import { simRoot } from '../../simulate/world.ts';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LY, outcome, tags, WS } from '../backends/fault-outcome.ts';

const SEED = Number(process.env.ATELIER_SIM_OVERLAY_SEED ?? 20261124);
const RUNS = Number(process.env.ATELIER_SIM_OVERLAY_RUNS ?? 20);
const COMMANDS = Number(process.env.ATELIER_SIM_OVERLAY_COMMANDS ?? 25);


/** A fixed sequence of calls (some failing on their own), with each call's outcome. */
async function script(b: Backend): Promise<string[]> {
  const out: string[] = [];
  const w = WS('w');
  out.push(await outcome(b.create({ target: w, source: { base: b.defaultBase }, tags: tags('workshop') })));
  out.push(await outcome(b.create({ target: w, source: { base: b.defaultBase }, tags: tags('workshop') }))); // ALREADY_EXISTS
  out.push(await outcome(b.start(w)));
  for (let i = 0; i < 6; i++) {
    out.push(await outcome(b.exec(w, { script: `echo ${i} >> "\${ATELIER_ROOTFS%/}/etc/n"` })));
    out.push(await outcome(b.copy({ source: w, target: LY(`l${i}`), tags: tags('sdk', `op${i}`) })));
    out.push(await outcome(b.inspect(LY(`l${i}`))));
  }
  out.push(await outcome(b.stop(w)));
  out.push(await outcome(b.remove(LY('l0'))));
  out.push(await outcome(b.remove(LY('nope'))));
  return out;
}

const f = suite('simulate: withFaults');

f('applies the same plan as the fake: same outcomes, same resulting state', async () => {
  const plans: FaultPlan[] = [
    { rules: [{ call: 'copy', nth: 3, when: 'after', action: 'fail', code: 'NO_SPACE' }, { call: '*', target: 'l4', when: 'before', action: 'crash' }] },
    { rules: [{ call: 'exec', nth: 2, when: 'before', action: 'fail', once: false }] },
    { random: { seed: 5, probability: 0.4, codes: ['BUSY', 'NO_SPACE'] } },
    { rules: [{ call: 'create', when: 'after', action: 'fail' }], random: { seed: 9, probability: 0.3, calls: ['inspect', 'copy'] } },
  ];
  for (const plan of plans) {
    const fake = createFakeBackend({ seed: 4 });
    fake.setFaultPlan(plan);
    const plain = createFakeBackend({ seed: 4 });
    const wrapped = withFaults(plain, plan);
    const a = await script(fake);
    const b = await script(wrapped);
    assert.equal(b, a, JSON.stringify(plan));
    assert.equal(plain.dump(), fake.dump(), `state after ${JSON.stringify(plan)}`);
    assert.is(wrapped.calls, a.length);
    assert.ok(a.some((o) => o !== 'ok' && o !== 'ALREADY_EXISTS' && o !== 'NOT_FOUND'), 'the plan fired');
  }
});

f('around the overlay adapter: before leaves nothing, after takes effect then throws', async () => {
  const dir = mkdtempSync(join(simRoot(), 'atelier-faulty-'));
  try {
    const overlay = await createOverlayBackend({ root: join(dir, 'root'), runDir: join(dir, 'run'), driver: 'overlayfs' });
    const b = withFaults(overlay, { rules: [{ call: 'create', when: 'before', action: 'fail', code: 'NO_SPACE' }] });
    assert.is(await outcome(b.create({ target: WS('w'), source: { base: b.defaultBase }, tags: tags('workshop') })), 'NO_SPACE');
    assert.is(await overlay.inspect(WS('w')), null, 'fail before: not created');
    assert.is(await outcome(b.create({ target: WS('w'), source: { base: b.defaultBase }, tags: tags('workshop') })), 'ok', 'spent');
    b.setFaultPlan({ rules: [{ call: 'copy', target: 'layers/', when: 'after', action: 'crash' }, { call: 'exec', when: 'after', action: 'fail' }] });
    assert.is(await outcome(b.copy({ source: WS('w'), target: LY('l'), tags: tags('sdk') })), 'CRASH');
    assert.is((await overlay.inspect(LY('l')))?.tags.op, 'op1', 'crash after: the copy happened');
    // An `after` fault on a call that fails by itself is spent; the call's own error comes out.
    assert.is(await outcome(b.exec(WS('w'), { script: 'exit 0' })), 'INVALID', 'stopped: the adapter refuses');
    await b.start(WS('w'));
    assert.is(await outcome(b.exec(WS('w'), { script: 'echo x > "${ATELIER_ROOTFS%/}/etc/x"' })), 'ok');
    assert.is((await overlay.readFile(WS('w'), '/etc/x'))?.content, 'x\n');
    b.setFaultPlan(null);
    await b.close();
  } finally {
    await releaseMountsUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  }
});

f.run();

const w = suite('simulate: overlay world');

w('a crash reopens a fresh adapter on the same root; a reboot unmounts and its recovery cleans up', async () => {
  const ctx = await newContext({ seed: 1, backend: 'overlay' });
  const world = ctx.world;
  try {
    const root = (world.backend as unknown as { root: string }).root;
    await runStep(ctx, { type: 'cmd', ops: [{ do: 'launch', workshop: 'alpha' }], fault: null, recovery: null });
    // Crash after the refresh's stash copy took effect (its first copy: the stash holds the shared
    // SDK layers by reference, it copies none): reconciliation on a new adapter undoes it.
    await runStep(ctx, { type: 'cmd', ops: [{ do: 'refresh', workshop: 'alpha', change: 'first' }], fault: { type: 'call', call: 'copy', nth: 1, when: 'after', action: 'crash' }, recovery: null });
    assert.is(ctx.stats.crashes, 1);
    await world.observe();
    const owned = world.owned();
    assert.equal(owned.get('workshops/alpha-a1a2a3a4')?.chain, ['ros2:1', 'nav:1', 'tools:1']);
    assert.is([...owned.values()].filter((o) => o.tags.kind === 'sdk').length, 3);
    assert.ok((await mountsUnder(root)).length > 0, 'the running workshop is mounted');
    await runStep(ctx, { type: 'reboot' });
    await world.observe();
    assert.ok([...world.owned().values()].every((o) => o.tags.kind !== 'container'));
    await runStep(ctx, { type: 'cmd', ops: [{ do: 'refresh', workshop: 'alpha', change: 'middle' }], fault: null, recovery: null });
    await world.observe();
    assert.equal(world.owned().get('workshops/alpha-a1a2a3a4')?.chain, ['ros2:1', 'nav:2', 'tools:1']);
  } finally {
    const dir = world.dir;
    await world.dispose();
    assert.equal(await mountsUnder(dir), [], 'dispose releases every mount');
  }
});

// The regression fixtures (found on the fake) replayed on overlay: the steps are backend-agnostic.
const FIXTURES = new URL('../../fixtures/simulate/', import.meta.url).pathname;
for (const name of readdirSync(FIXTURES).filter((d) => existsSync(join(FIXTURES, d, 'repro.json'))).sort()) {
  w(`regression ${name} replays on overlay without a failure`, async () => {
    const repro = readRepro(join(FIXTURES, name));
    const r = await replaySteps({ ...repro, backend: 'overlay' });
    if (r.failure) assert.unreachable(`step ${r.failure.atStep + 1}: ${r.failure.message}`);
    assert.is(r.stats.steps, repro.steps.length);
  });
}

w.run();

const b = suite('simulate: overlay budget');

b(`bounded simulation against overlay/overlayfs: ${RUNS} runs of up to ${COMMANDS} steps hold every invariant`, async () => {
  console.log(`simulate (overlay/overlayfs): seed ${SEED}, ${RUNS} runs, up to ${COMMANDS} steps each; invariant 4 on copies of the state directory and overlay root (cp -ax), identities compared up to renaming`);
  const r = await simulate({ seed: SEED, runs: RUNS, commands: COMMANDS, backend: 'overlay' });
  console.log(`simulate (overlay): ${r.runs} runs, ${r.commands} commands, ${r.restarts} restarts (${r.crashes} crashes, ${r.reboots} reboots) in ${(r.elapsedMs / 1000).toFixed(1)} s (${r.commandsPerSecond.toFixed(1)} commands/s)`);
  if (r.failure) {
    assert.unreachable(
      `${r.failure.message}\nseed ${r.failure.seed}, fast-check path "${r.failure.path}"\nsteps:\n${r.failure.steps.map((s, i) => `  ${i + 1}. ${s}`).join('\n')}\n` +
        `reproduction: ${r.failure.dir} (atelier simulate --reproduce ${r.failure.dir}; it replays on overlay)`,
    );
  }
  assert.ok(r.runs >= RUNS);
  assert.ok(r.crashes > 0 && r.reboots > 0, 'the budget crashed and rebooted at least once');
  // Nothing of the runs is left mounted.
  const left = execFileSync('sh', ['-c', `grep -c ' ${simRoot()}/atelier-sim-' /proc/self/mountinfo || true`]).toString().trim();
  assert.is(left, '0', 'no simulation mount is left behind');
});

b.run();

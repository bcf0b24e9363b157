import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { WorkshopEvent } from '../../machines/workshop.ts';
import { decide, resolveWorkshop } from '../../machines/workshop.ts';
import { phaseSteps } from '../../machines/plan.ts';
import type { EngineImpl } from '../../engine/engine.ts';
import { Reconciler } from '../../engine/reconcile.ts';
import { simulate } from '../../simulate/index.ts';
import { SIM_SEED } from './budget.ts';

// The harness must catch a reconciliation that is wrong. Break one rule of the probe table on
// purpose: a pending effect is taken as done without probing the backend ("trust the request").
// `recoverOp` below is reconcile.ts's with that one rule changed. The prototype is restored
// afterwards: uvu runs every test file in one process.
type Patchable = { recoverOp(this: { engine: EngineImpl }, opId: string): Promise<void> };

async function trustingRecoverOp(this: { engine: EngineImpl }, opId: string): Promise<void> {
  const e = this.engine;
  let op = e.folded.ops[opId]!;
  if (op.pending) {
    // The broken rule: no probe, every pending effect "happened".
    await e.append([{ type: 'effect.observed', key: op.workshop, data: { op: opId, phase: op.phase, step: op.step, at: e.clock(), observation: { present: true }, decision: 'done' } }]);
    op = e.folded.ops[opId]!;
  }
  const current = phaseSteps(op.plan, op.phase, op.undoFrom)[op.step];
  const snap = resolveWorkshop(e.contextFor(op.workshop));
  const events: WorkshopEvent[] = [];
  if (op.phase === 'do' && !current?.retry) events.push({ type: 'abort', code: 'INTERRUPTED', message: 'the engine stopped while this operation ran' });
  events.push({ type: 'resume' });
  for (const ev of events) {
    const d = decide(snap, ev);
    if (d.actions.length > 0) return void (await e.drive(op.workshop, opId, d.actions));
  }
}

test('a broken reconciliation rule (pending effects trusted, not probed) is caught by an invariant', async () => {
  const proto = Reconciler.prototype as unknown as Patchable;
  const original = proto.recoverOp;
  proto.recoverOp = trustingRecoverOp;
  try {
    const r = await simulate({ seed: SIM_SEED, runs: 60, commands: 40, failureDir: `${process.env.TMPDIR ?? '/tmp'}/atelier-sim-mutant-${process.pid}` });
    assert.ok(r.failure, 'the simulation did not notice a reconciliation that trusts pending effects');
    console.log(`broken rule caught after ${r.runs} runs: ${r.failure!.message.split('\n')[0]!.slice(0, 200)}`);
  } finally {
    proto.recoverOp = original;
  }
});

test.run();

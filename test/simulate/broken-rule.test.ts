import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decide } from '../../machines/index.ts';
import { Reconciler, type ReconcileHost } from '../../engine/reconcile.ts';
import { simulate } from '../../simulate/index.ts';
import { SIM_SEED } from './budget.ts';

// The harness must catch a reconciliation that is wrong. Break one rule of the probe table on
// purpose: a pending effect is taken as done without probing the backend ("trust the request").
// `recover` below is reconcile.ts's with that one rule changed. The prototype is restored
// afterwards: uvu runs every test file in one process.
type Patchable = { recover(this: { host: ReconcileHost }, opId: string): Promise<unknown> };

async function trustingRecover(this: { host: ReconcileHost }, opId: string): Promise<unknown> {
  const h = this.host;
  const op = h.world.durable.ops[opId]!;
  // The broken rule: no probe, every pending effect "happened".
  if (op.pending) await h.record([{ type: 'effect.observed', key: op.workshop, data: { op: opId, phase: op.phase, step: op.step, at: h.clock(), observation: { present: true }, decision: 'done', row: 'trusted' } }]);
  const events = decide(h.world, { type: 'interrupted', op: opId, at: h.clock() });
  return events.length > 0 ? h.drive(op.workshop, opId, events) : undefined;
}

test('a broken reconciliation rule (pending effects trusted, not probed) is caught by an invariant', async () => {
  const proto = Reconciler.prototype as unknown as Patchable;
  const original = proto.recover;
  proto.recover = trustingRecover;
  try {
    const failureDir = `${process.env.TMPDIR ?? '/tmp'}/atelier-sim-mutant-${process.pid}`;
    // Up to 300 runs: it stops at the first failure (fast-check's path starts with its run's index),
    // then shrinks it (runs counts those too).
    const r = await simulate({ seed: SIM_SEED, runs: 300, commands: 40, failureDir });
    assert.ok(r.failure, 'the simulation did not notice a reconciliation that trusts pending effects');
    console.log(`broken rule caught at run ${Number(r.failure!.path.split(':')[0]) + 1} (${r.runs} runs with shrinking): ${r.failure!.message.split('\n')[0]!.slice(0, 200)}`);
    // The reproduction directory carries the run's journal as a timeline, with the trusted probe in it.
    const html = readFileSync(join(r.failure!.dir, 'timeline.html'), 'utf8');
    assert.ok(html.startsWith('<!doctype html>') || html.startsWith('<!DOCTYPE html>'), 'an HTML page');
    assert.not.ok(existsSync(join(r.failure!.dir, 'timeline.error.txt')));
    assert.not.match(html, /<script[^>]+src=|<link[^>]+href=/i, 'self-contained');
    rmSync(failureDir, { recursive: true, force: true });
  } finally {
    proto.recover = original;
  }
});

test.run();

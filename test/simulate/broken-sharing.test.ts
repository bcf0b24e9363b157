import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { SdkCache } from '../../engine/cache.ts';
import { decide, type DomainState, type KeyedEvent } from '../../machines/index.ts';
import { simulate } from '../../simulate/index.ts';
import { SIM_SEED } from './budget.ts';

// The harness must catch a cache that evicts layers someone holds. Break the policy on purpose:
// the trim decides on a state with no workshops, ops or containers in it, so every shared layer
// looks unheld and the least recently used beyond the policy's count go, held or not. `blindTrim`
// is engine/cache.ts's trim with that one change. The prototype is restored afterwards: uvu runs
// every test file in one process.
type Host = { world: DomainState; clock(): string; record(e: readonly KeyedEvent[]): Promise<void>; backend: { remove(ref: unknown): Promise<void> } };
type Patchable = { trim(this: { host: Host; policy: object }, opts?: { all?: boolean; dryRun?: boolean }): Promise<unknown[]> };

async function blindTrim(this: { host: Host; policy: object }, opts: { all?: boolean; dryRun?: boolean } = {}): Promise<unknown[]> {
  if (opts.dryRun) return [];
  const h = this.host;
  // The broken rule: holders are not looked at.
  const blind: DomainState = { durable: { ...h.world.durable, workshops: {}, ops: {} }, volatile: { ...h.world.volatile, containers: {} } };
  const events = decide(blind, { type: 'cache.trim', at: h.clock(), policy: opts.all ? { count: 0 } : this.policy, ...(opts.all ? { all: true } : {}) });
  if (events.length > 0) await h.record(events);
  for (const e of events) {
    if (e.type !== 'cache.evicting') continue;
    await h.backend.remove(e.data.object.ref).catch(() => undefined);
    await h.record(decide(h.world, { type: 'cache.evicted', at: h.clock(), object: e.data.object }));
  }
  return [];
}

test('a cache that evicts held layers (holders ignored) is caught by the sharing invariant at the eviction record', async () => {
  const proto = SdkCache.prototype as unknown as Patchable;
  const original = proto.trim;
  proto.trim = blindTrim;
  try {
    const failureDir = `${process.env.TMPDIR ?? '/tmp'}/atelier-sim-mutant-sharing-${process.pid}`;
    // Up to 300 runs: it stops at the first failure (the first run on SIM_SEED: alpha's launch holds three layers, the policy keeps two).
    const r = await simulate({ seed: SIM_SEED, runs: 300, commands: 40, failureDir });
    assert.ok(r.failure, 'the simulation did not notice a cache that evicts layers workshops hold');
    console.log(`held-layer eviction caught at run ${Number(r.failure!.path.split(':')[0]) + 1} (${r.runs} runs with shrinking): ${r.failure!.message.split('\n')[0]!.slice(0, 200)}`);
    assert.match(r.failure!.invariant ?? '', /a held layer is never removed\), journal half "evict"/);
    rmSync(failureDir, { recursive: true, force: true });
  } finally {
    proto.trim = original;
  }
});

test.run();

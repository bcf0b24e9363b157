import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { enumerateCrashPoints } from '../../simulate/index.ts';

test('every crash point of every op restarts into a state that holds every invariant', async () => {
  const r = await enumerateCrashPoints();
  for (const [name, s] of Object.entries(r.byScenario)) console.log(`  ${name}: ${s.points} crash points (${s.appends} journal appends, ${s.calls} backend calls)`);
  console.log(`crash points checked: ${r.points} in ${(r.elapsedMs / 1000).toFixed(1)} s`);
  const first = r.failures[0];
  if (first) assert.unreachable(`${r.failures.length} crash points failed; first: ${first.scenario} / ${first.point}: ${first.message}\nsteps: ${JSON.stringify(first.steps)}`);
  assert.ok(r.points > 100, `only ${r.points} crash points were enumerated`);
});

test.run();

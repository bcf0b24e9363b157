import fs from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readRepro, replaySteps } from '../../simulate/index.ts';

// Failures the simulation found, kept as regression cases once fixed: each replays its steps
// exactly (faults and interleavings included) and must now hold every invariant.
const ROOT = new URL('../../fixtures/simulate/', import.meta.url).pathname;
const cases = fs.readdirSync(ROOT).filter((d) => fs.existsSync(join(ROOT, d, 'repro.json'))).sort();

test('there are regression fixtures', () => {
  assert.ok(cases.length > 0);
});

for (const name of cases) {
  test(`regression ${name} replays without a failure`, async () => {
    const repro = readRepro(join(ROOT, name));
    const r = await replaySteps(repro);
    if (r.failure) assert.unreachable(`step ${r.failure.atStep + 1}: ${r.failure.message}`);
    assert.is(r.stats.steps, repro.steps.length);
  });
}

test.run();

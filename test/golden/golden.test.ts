/**
 * Golden journals (`fixtures/journals/<case>/`): journals written by an earlier atelier, folded by
 * this one, must mean exactly what they meant, byte for byte (`folded.json`). Changing what an old
 * event means takes an upcaster (`events/upcast.ts`); these files are never regenerated.
 *
 * And a state directory written before opens after: an engine started on each case (and on each
 * crash image, which it reconciles) ends with the same workshops, layers and backend objects the
 * earlier atelier ended with.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { foldCase, openCase } from './fold-case.ts';

const DIR = join(import.meta.dirname, '../../fixtures/journals');
const CASES = readdirSync(DIR).filter((n) => existsSync(join(DIR, n, 'case.json'))).sort();

test('the golden journals are there, in both generations', () => {
  for (const must of ['launch', 'refresh-reuse', 'refresh-from-base', 'refresh-failed-undone', 'stash-unstash-restore', 'remove', 'run-rm', 'run-keep', 'gc-orphan', 'torn-tail', 'broken-stays', 'checkpoints'])
    assert.ok(CASES.includes(must), `fixtures/journals/${must}`);
  for (const kind of ['create', 'copy', 'refresh-copy', 'exec', 'remove', 'start']) assert.ok(CASES.includes(`crash-${kind}`), `fixtures/journals/crash-${kind}`);
  // v1 cases each have their v2; v3 cases (the SDK cache) are new scenarios of their own.
  for (const c of CASES.filter((n) => !/^v\d+-/.test(n))) assert.ok(CASES.includes(`v2-${c}`), `fixtures/journals/v2-${c}`);
  for (const must of ['v3-cache-share', 'v3-cache-evict', 'v3-cache-concurrent', 'v3-cache-crash-build', 'v3-cache-upgrade']) assert.ok(CASES.includes(must), `fixtures/journals/${must}`);
});

for (const name of CASES) {
  const dir = join(DIR, name);
  test(`${name}: folds to folded.json, byte for byte`, async () => {
    const want = readFileSync(join(dir, 'folded.json'), 'utf8');
    assert.fixture(await foldCase(dir), want, 'from the latest checkpoint');
    if (existsSync(join(dir, 'state', 'checkpoints'))) assert.fixture(await foldCase(dir, { fromCheckpoint: false }), want, 'from the first record');
    if (existsSync(join(dir, 'image'))) assert.fixture(await foldCase(join(dir, 'image')), readFileSync(join(dir, 'image', 'folded.json'), 'utf8'), 'the crash image');
  });

  test(`${name}: opens with the same workshops, layers and backend objects`, async () => {
    // Opening reconciles (a crash image's pending op, objects lost or left behind): what this
    // atelier ends with must be what the earlier one ended with (`opened.json`).
    assert.fixture(await openCase(dir), readFileSync(join(dir, 'opened.json'), 'utf8'));
    if (existsSync(join(dir, 'image'))) assert.fixture(await openCase(join(dir, 'image')), readFileSync(join(dir, 'image', 'opened.json'), 'utf8'), 'the crash image');
  });
}

/** A golden view without the times and sequence numbers (the two generations read the clock a different number of times). */
function timeless(json: string): unknown {
  return JSON.parse(json, (k, v) => (['at', 'updatedAt', 'createdAt', 'startedAt', 'seq'].includes(k) ? undefined : v));
}

// The domain core replaced the code that wrote the v1 cases. It ran the same scenarios (same ids,
// same faults, same crashes) for the v2 cases: they must mean the same, and leave the backend the same.
for (const name of CASES.filter((n) => !/^v\d+-/.test(n) && CASES.includes(`v2-${n}`))) {
  test(`${name}: the domain core (v2-${name}) decided what the code before it decided`, () => {
    for (const part of ['folded.json', 'opened.json', 'image/folded.json', 'image/opened.json']) {
      if (!existsSync(join(DIR, name, part))) continue;
      assert.equal(timeless(readFileSync(join(DIR, `v2-${name}`, part), 'utf8')), timeless(readFileSync(join(DIR, name, part), 'utf8')), part);
    }
    for (const part of ['backend.json', 'image/backend.json'])
      if (existsSync(join(DIR, name, part))) assert.is(readFileSync(join(DIR, `v2-${name}`, part), 'utf8'), readFileSync(join(DIR, name, part), 'utf8'), part);
  });
}

test.run();

/**
 * Decisions do not depend on the machine's locale: orders the decider chooses (objects found
 * missing, an op's leftovers) are code-point orders. Under a Lithuanian collator "y" sorts before
 * "j", so a `localeCompare` would journal a different order there than on an English machine.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decide, initialState, initialVolatile, type FoldState } from '../../machines/index.ts';

const ROOT = join(import.meta.dirname, '../..');

/** A state holding two layers whose keys differ by "j" against "y", both present. */
function twoLayers(): FoldState {
  const s = initialState();
  for (const name of ['tools-yy', 'tools-jj']) {
    s.objects[`layers/${name}`] = { ref: { space: 'layers', name }, kind: 'sdk', op: 'op-1', state: 'present' };
  }
  return s;
}

/** The order in which the inventory decision journals both layers missing, in this process. */
function missingOrder(): string[] {
  const events = decide({ durable: twoLayers(), volatile: initialVolatile() }, { type: 'inventory', at: '2026-12-05T00:00:00.000Z', present: new Set() });
  return events.map((e) => (e.data as { object: { ref: { name: string } } }).object.ref.name);
}

test('the inventory decision orders objects by code point, whatever the locale', () => {
  const here = missingOrder();
  assert.equal(here, ['tools-jj', 'tools-yy']);
  // The same decision in a process whose collator is Lithuanian ("y" before "j").
  const out = execFileSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `import('./machines/index.ts').then((m) => { const s = m.initialState(); for (const n of ['tools-yy', 'tools-jj']) s.objects['layers/' + n] = { ref: { space: 'layers', name: n }, kind: 'sdk', op: 'op-1', state: 'present' }; const ev = m.decide({ durable: s, volatile: m.initialVolatile() }, { type: 'inventory', at: '2026-12-05T00:00:00.000Z', present: new Set() }); console.log(JSON.stringify({ locale: Intl.DateTimeFormat().resolvedOptions().locale, yj: 'y'.localeCompare('j'), order: ev.map((e) => e.data.object.ref.name) })); })`,
    ],
    { cwd: ROOT, env: { ...process.env, LC_ALL: 'lt_LT.UTF-8', LANG: 'lt_LT.UTF-8' }, encoding: 'utf8' },
  );
  const r = JSON.parse(out.trim().split('\n').at(-1)!) as { locale: string; yj: number; order: string[] };
  // Without a Lithuanian collator the check proves nothing: say so rather than pass quietly.
  assert.is(r.yj, -1, `the child's collator (${r.locale}) does not sort "y" before "j"; this Node has no Lithuanian collation data`);
  assert.equal(r.order, here, `under ${r.locale} the decider ordered ${r.order.join(', ')}`);
});

test.run();

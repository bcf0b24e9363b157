/**
 * The layer chart: the reconciliation table row by row (decision and row name), the lifecycle the
 * fold reads from it, and that what `evolve` does with a journaled row is what the chart says. The
 * container chart's lifecycle.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Effect, Observation } from '../../machines/types.ts';
import { judgeProbe, lifeAfter, LAYER_FACTS, LIVES } from '../../machines/layer.ts';
import { containerAfter } from '../../machines/container.ts';
import { evolve, initialState, type FoldState } from '../../machines/index.ts';

const target = { space: 'layers', name: 'stash-nav2-1a2b3c4d' } as const;
const ws = { space: 'workshops', name: 'nav2-1a2b3c4d' } as const;
const tags = { owner: 'alice', op: 'op-1', kind: 'stash' as const };
const copy: Effect = { type: 'copy', source: ws, target, tags };
const create: Effect = { type: 'create', target: ws, base: 'busybox', tags: { ...tags, kind: 'workshop' } };
const refresh: Effect = { type: 'copy', source: target, target: ws, tags, refresh: true };
const unstash: Effect = { type: 'copy', source: target, target: ws, tags: { ...tags, step: 'unstash' }, refresh: true };
const remove: Effect = { type: 'remove', target };
const exec: Effect = { type: 'exec', target: ws, sdk: 'ros2', script: 'true' };
const start: Effect = { type: 'start', target: ws };
const stop: Effect = { type: 'stop', target: ws };

const absent: Observation = { present: false };
const mine: Observation = { present: true, owned: true, op: 'op-1', status: 'stopped' };
const other: Observation = { present: true, owned: true, op: 'op-0', status: 'stopped' };
const foreign: Observation = { present: true, owned: false, status: 'stopped' };
const running: Observation = { present: true, owned: true, op: 'op-0', status: 'running' };

// docs/design.md's reconciliation table, row by row (the refresh row refined by step tags: machines/README.md).
const table: Array<[string, Effect, Observation, string, string]> = [
  ['create: target absent', create, absent, 'redo', 'create-absent'],
  ['copy: target absent', copy, absent, 'redo', 'create-absent'],
  ['create: present with this op', create, mine, 'done', 'create-done'],
  ['copy: present with this op', copy, mine, 'done', 'create-done'],
  ['copy: present, owned, other op', copy, other, 'delete-redo', 'create-conflict'],
  ['create: present, owned, other op', create, other, 'delete-redo', 'create-conflict'],
  ['copy: present, not owned', copy, foreign, 'fail', 'not-owned'],
  ['refresh-copy: op tag = this op', refresh, mine, 'done', 'refresh-done'],
  ['refresh-copy: this op and this step', unstash, { ...mine, step: 'unstash' }, 'done', 'refresh-done'],
  ['refresh-copy: this op, another of its refreshes', unstash, { ...mine, step: 'rebuild' }, 'redo', 'refresh-redo'],
  ['refresh-copy: this op, no step tag on the target', unstash, mine, 'redo', 'refresh-redo'],
  ['refresh-copy: other op', refresh, other, 'redo', 'refresh-redo'],
  ['refresh-copy: absent target', refresh, absent, 'redo', 'refresh-redo'],
  ['refresh-copy: not owned', refresh, foreign, 'fail', 'not-owned'],
  ['remove: absent', remove, absent, 'done', 'remove-done'],
  ['remove: present', remove, other, 'redo', 'remove-redo'],
  ['exec: present', exec, mine, 'unknown', 'exec'],
  ['exec: absent', exec, absent, 'unknown', 'exec'],
  ['start: running', start, running, 'done', 'status-done'],
  ['start: stopped', start, other, 'redo', 'status-redo'],
  ['stop: stopped', stop, other, 'done', 'status-done'],
  ['stop: running', stop, running, 'redo', 'status-redo'],
  ['start: instance absent', start, absent, 'fail', 'status-absent'],
];
for (const [what, effect, seen, decision, row] of table) {
  test(`probe table: ${what} -> ${decision} (row ${row})`, () => {
    const j = judgeProbe(effect, seen, 'op-1');
    assert.equal([j.decision, j.row], [decision, row]);
  });
}

// ---- the lifecycle the fold reads from the chart
const life: Array<[string, Parameters<typeof lifeAfter>, { life: string; garbage: boolean }]> = [
  ['a create is requested: a pending record', ['absent', false, 'requested'], { life: 'pending', garbage: false }],
  ['it took place: present', ['pending', false, 'done'], { life: 'present', garbage: false }],
  ['a refresh onto a present object keeps it present', ['present', false, 'requested'], { life: 'present', garbage: false }],
  ['a create over garbage makes it pending and held again', ['present', true, 'requested'], { life: 'pending', garbage: false }],
  ['a remove is requested: removing', ['present', false, 'remove'], { life: 'removing', garbage: false }],
  ['it took place: no record', ['removing', false, 'removed'], { life: 'absent', garbage: false }],
  ['a create that never happened: no record', ['pending', false, 'gone'], { life: 'absent', garbage: false }],
  ['"gone" leaves a present object alone', ['present', false, 'gone'], { life: 'present', garbage: false }],
  ['abandoned: garbage, where it is', ['present', false, 'abandoned'], { life: 'present', garbage: true }],
  ['lost: missing, garbage or not', ['present', true, 'lost'], { life: 'missing', garbage: true }],
  ['a lost stash part is forgotten: no record', ['present', false, 'forgotten'], { life: 'absent', garbage: false }],
  ['settled present', ['pending', false, 'settled.present'], { life: 'present', garbage: false }],
  ['settled absent', ['removing', false, 'settled.absent'], { life: 'absent', garbage: false }],
  ['done on no record makes none', ['absent', false, 'done'], { life: 'absent', garbage: false }],
];
for (const [what, args, want] of life) test(`layer lifecycle: ${what}`, () => assert.equal(lifeAfter(...args), want));

test('layer lifecycle: every state and fact has a transition in the table', () => {
  for (const l of LIVES) for (const f of LAYER_FACTS) assert.ok(LIVES.includes(lifeAfter(l, false, f).life), `${l} x ${f}`);
});

// ---- what evolve does with an effect.observed row is what the chart says
const refOf = (e: Effect) => ('target' in e ? e.target : ws);
for (const [what, effect, seen] of table) {
  test(`evolve agrees with the chart: ${what}`, () => {
    const j = judgeProbe(effect, seen, 'op-1', 'pending');
    const s: FoldState = initialState();
    s.ops['op-1'] = { id: 'op-1', kind: 'refresh', plan: { do: [{ label: 'x', effect }], cleanup: [], before: null, after: null }, workshop: 'nav2', startedAt: 'T', phase: 'do', step: 0, attempt: 1, undo: null, failure: null, pending: true };
    const ref = refOf(effect);
    s.objects[`${ref.space}/${ref.name}`] = { ref, kind: 'sdk', workshop: 'nav2', op: 'op-1', state: 'pending' };
    evolve(s, { type: 'effect.observed', data: { op: 'op-1', phase: 'do', step: 0, at: 'T', observation: seen, decision: j.decision, row: j.row } });
    const after = s.objects[`${ref.space}/${ref.name}`];
    assert.is(after ? after.state : 'absent', j.life);
  });
}

// ---- containers
test('container chart: create, start, remove', () => {
  assert.is(containerAfter('absent', 'create'), 'created');
  assert.is(containerAfter('created', 'start'), 'running');
  assert.is(containerAfter('running', 'remove'), 'removed');
  assert.is(containerAfter('created', 'remove'), 'removed');
  assert.is(containerAfter('running', 'lost'), 'removed');
});
test('container chart: illegal events are refused', () => {
  assert.is(containerAfter('absent', 'start'), null);
  assert.is(containerAfter('absent', 'remove'), null);
  assert.is(containerAfter('running', 'start'), null);
  assert.is(containerAfter('removed', 'start'), null);
});

test.run();

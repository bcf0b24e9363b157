import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Effect, Observation } from '../../events/catalogue.ts';
import { judgeProbe } from '../../machines/layer.ts';
import { containerNext } from '../../machines/container.ts';

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

// DESIGN.md's reconciliation table, row by row (the refresh row refined by step tags: machines/README.md).
const table: Array<[string, Effect, Observation, string]> = [
  ['create: target absent', create, absent, 'redo'],
  ['copy: target absent', copy, absent, 'redo'],
  ['create: present with this op', create, mine, 'done'],
  ['copy: present with this op', copy, mine, 'done'],
  ['copy: present, owned, other op', copy, other, 'delete-redo'],
  ['create: present, owned, other op', create, other, 'delete-redo'],
  ['copy: present, not owned', copy, foreign, 'fail'],
  ['refresh-copy: op tag = this op', refresh, mine, 'done'],
  ['refresh-copy: this op and this step', unstash, { ...mine, step: 'unstash' }, 'done'],
  ['refresh-copy: this op, another of its refreshes', unstash, { ...mine, step: 'rebuild' }, 'redo'],
  ['refresh-copy: this op, no step tag on the target', unstash, mine, 'redo'],
  ['refresh-copy: other op', refresh, other, 'redo'],
  ['refresh-copy: absent target', refresh, absent, 'redo'],
  ['refresh-copy: not owned', refresh, foreign, 'fail'],
  ['remove: absent', remove, absent, 'done'],
  ['remove: present', remove, other, 'redo'],
  ['exec: present', exec, mine, 'unknown'],
  ['exec: absent', exec, absent, 'unknown'],
  ['start: running', start, running, 'done'],
  ['start: stopped', start, other, 'redo'],
  ['stop: stopped', stop, other, 'done'],
  ['stop: running', stop, running, 'redo'],
  ['start: instance absent', start, absent, 'fail'],
];
for (const [row, effect, seen, decision] of table) {
  test(`probe table: ${row} -> ${decision}`, () => {
    assert.is(judgeProbe(effect, seen, 'op-1'), decision);
  });
}

test('container machine: create, start, remove', () => {
  assert.is(containerNext('absent', 'create'), 'created');
  assert.is(containerNext('created', 'start'), 'running');
  assert.is(containerNext('running', 'remove'), 'removed');
  assert.is(containerNext('created', 'remove'), 'removed');
});
test('container machine: illegal events are refused', () => {
  assert.is(containerNext('absent', 'start'), null);
  assert.is(containerNext('absent', 'remove'), null);
  assert.is(containerNext('running', 'start'), null);
  assert.is(containerNext('removed', 'start'), null);
});
test.run();

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Plan, PlanStep, WorkshopSpec } from '../../events/catalogue.ts';
import { planLaunch, planRefresh, planRemove, planStash, planUnstash, planRestore, reusablePrefix } from '../../machines/plan.ts';
import { decide, rejection, resolveWorkshop, MAX_ATTEMPTS, type OpFacts, type WorkshopContext, type WorkshopEvent, type CommandEvent } from '../../machines/workshop.ts';

const ctx = { owner: 'alice', op: 'op-1' };
const spec: WorkshopSpec = {
  name: 'nav2',
  base: 'busybox',
  defaultBase: false,
  projectId: '1a2b3c4d',
  sdks: [
    { name: 'ros2', hash: 'h1', script: 'true' },
    { name: 'nav', hash: 'h2', script: 'true' },
  ],
};
const launch = planLaunch({ ctx, spec, suffixes: ['0000000000000001', '0000000000000002'] });
const shape = launch.after!;
const always = () => true;
const withStash = planStash({ ctx, name: 'nav2', shape, isPresent: always }).after!;

const ws = (over: Partial<NonNullable<WorkshopContext['workshop']>> = {}) => ({ status: 'ready' as const, hasStash: false, sdks: ['ros2', 'nav'], instancePresent: true, ...over });
const op = (plan: Plan, over: Partial<OpFacts> = {}): OpFacts => ({ id: 'op-1', kind: 'refresh', plan, phase: 'do', step: 0, attempt: 1, undoFrom: 0, failure: null, ...over });
const run = (c: WorkshopContext, e: WorkshopEvent) => decide(resolveWorkshop(c), e);
const types = (r: ReturnType<typeof run>) => r.actions.map((a) => (a.type === 'request' ? `request ${a.params.phase}#${a.params.step}@${a.params.attempt}` : a.type === 'enterPhase' ? `enter ${a.params.phase}` : a.type === 'finish' ? `finish ${a.params.outcome}` : a.type));
const value = (r: ReturnType<typeof run>) => JSON.stringify(r.snapshot.value);

// A plan whose first step has no compensation and is not retried.
const bare: Plan = { do: [{ label: 'start', effect: { type: 'start', target: { space: 'workshops', name: 'x' } } } as PlanStep], cleanup: [], before: shape, after: shape };

const commands: Record<CommandEvent['type'], CommandEvent> = {
  launch: { type: 'launch', op: 'op-1', plan: launch },
  refresh: { type: 'refresh', op: 'op-1', plan: planRefresh({ ctx, name: 'nav2', shape, spec, reuse: 1, suffixes: ['0000000000000003'], isPresent: always }) },
  stash: { type: 'stash', op: 'op-1', plan: planStash({ ctx, name: 'nav2', shape, isPresent: always }) },
  unstash: { type: 'unstash', op: 'op-1', plan: planUnstash({ ctx, name: 'nav2', shape: withStash }) },
  restore: { type: 'restore', op: 'op-1', plan: planRestore({ ctx, name: 'nav2', shape, sdk: 'ros2' }), sdk: 'ros2' },
  remove: { type: 'remove', op: 'op-1', plan: planRemove({ ctx, shape }) },
};

// ---- legal commands: [from, command, workshop facts]
const legal: Array<[string, CommandEvent['type'], WorkshopContext['workshop']]> = [
  ['absent', 'launch', null],
  ['ready', 'refresh', ws()],
  ['ready', 'stash', ws()],
  ['ready', 'unstash', ws({ hasStash: true })],
  ['ready', 'restore', ws()],
  ['ready', 'remove', ws()],
  ['broken', 'refresh', ws({ status: 'broken' })],
  ['broken', 'unstash', ws({ status: 'broken', hasStash: true })],
  ['broken', 'remove', ws({ status: 'broken', instancePresent: false })],
];
for (const [from, cmd, facts] of legal) {
  test(`${from} --${cmd}--> busy.do: starts the op and requests do step 0`, () => {
    const c: WorkshopContext = { name: 'nav2', workshop: facts, op: null };
    assert.is(rejection(c, cmd, cmd === 'restore' ? 'ros2' : undefined), null);
    const r = run(c, commands[cmd]);
    assert.ok(r.accepted);
    assert.is(value(r), '{"busy":"do"}');
    assert.equal(types(r), ['startOp', 'request do#0@1']);
  });
}

// ---- illegal commands: [command, workshop facts, op?, code]
const illegal: Array<[string, CommandEvent['type'], WorkshopContext['workshop'], boolean, string]> = [
  ['launch on an existing workshop', 'launch', ws(), false, 'ALREADY_EXISTS'],
  ['launch on a busy workshop', 'launch', ws({ status: 'busy' }), true, 'BUSY'],
  ['refresh of a missing workshop', 'refresh', null, false, 'NOT_FOUND'],
  ['stash of a missing workshop', 'stash', null, false, 'NOT_FOUND'],
  ['unstash of a missing workshop', 'unstash', null, false, 'NOT_FOUND'],
  ['restore of a missing workshop', 'restore', null, false, 'NOT_FOUND'],
  ['remove of a missing workshop', 'remove', null, false, 'NOT_FOUND'],
  ['refresh of a busy workshop', 'refresh', ws({ status: 'busy' }), true, 'BUSY'],
  ['remove of a busy workshop', 'remove', ws({ status: 'busy' }), true, 'BUSY'],
  ['stash of a workshop that has a stash', 'stash', ws({ hasStash: true }), false, 'FAILED_PRECONDITION'],
  ['unstash without a stash', 'unstash', ws(), false, 'FAILED_PRECONDITION'],
  ['restore while stashed', 'restore', ws({ hasStash: true }), false, 'FAILED_PRECONDITION'],
  ['refresh while stashed', 'refresh', ws({ hasStash: true }), false, 'FAILED_PRECONDITION'],
  ['stash of a broken workshop', 'stash', ws({ status: 'broken' }), false, 'FAILED_PRECONDITION'],
  ['restore of a broken workshop', 'restore', ws({ status: 'broken' }), false, 'FAILED_PRECONDITION'],
  ['refresh of a workshop whose instance is lost', 'refresh', ws({ status: 'broken', instancePresent: false }), false, 'FAILED_PRECONDITION'],
];
for (const [what, cmd, facts, busy, code] of illegal) {
  test(`rejects ${what} with ${code}, and the machine does not move`, () => {
    const c: WorkshopContext = { name: 'nav2', workshop: facts, op: busy ? op(launch) : null };
    assert.is(rejection(c, cmd, cmd === 'restore' ? 'ros2' : undefined)?.code, code);
    const r = run(c, commands[cmd]);
    assert.not.ok(r.accepted);
    assert.equal(r.actions, []);
  });
}

test('restore of an SDK the workshop does not have is NOT_FOUND', () => {
  assert.is(rejection({ name: 'nav2', workshop: ws(), op: null }, 'restore', 'ros3')?.code, 'NOT_FOUND');
});

// ---- saga transitions
const busy = (o: OpFacts, facts = ws({ status: 'busy' })): WorkshopContext => ({ name: 'nav2', workshop: facts, op: o });
const refresh = commands.refresh.plan;
const lastDo = refresh.do.length;

test('busy.do --step.ok--> busy.do: requests the next step', () => {
  const r = run(busy(op(refresh, { step: 1 })), { type: 'step.ok' });
  assert.is(value(r), '{"busy":"do"}');
  assert.equal(types(r), ['request do#1@1']);
});
test('busy.do --step.ok (last, clean-up to do)--> busy.cleanup', () => {
  const r = run(busy(op(refresh, { step: lastDo })), { type: 'step.ok' });
  assert.is(value(r), '{"busy":"cleanup"}');
  assert.equal(types(r), ['enter cleanup', 'request cleanup#0@1']);
});
test('busy.do --step.ok (last, no clean-up)--> ready: finish done', () => {
  const r = run(busy(op(launch, { kind: 'launch', step: launch.do.length })), { type: 'step.ok' });
  assert.is(value(r), '"ready"');
  assert.equal(types(r), ['finish done']);
});
test('busy.do --step.ok (last step of remove)--> absent', () => {
  const plan = commands.remove.plan;
  const r = run(busy(op(plan, { kind: 'remove', step: plan.do.length })), { type: 'step.ok' });
  assert.is(value(r), '"absent"');
});
test('busy.do --step.failed--> busy.undo from the failed step', () => {
  const r = run(busy(op(refresh, { step: 3 })), { type: 'step.failed', code: 'NO_SPACE', message: 'full' });
  assert.is(value(r), '{"busy":"undo"}');
  assert.equal(types(r), ['enter undo', 'request undo#0@1']);
  const enter = r.actions[0]!;
  assert.ok(enter.type === 'enterPhase' && enter.params.from === 3 && enter.params.code === 'NO_SPACE');
});
test('busy.do --step.failed (nothing to compensate)--> ready: finish undone', () => {
  const r = run(busy(op(bare)), { type: 'step.failed', code: 'BUSY', message: 'x' });
  assert.is(value(r), '"ready"');
  assert.equal(types(r), ['finish undone']);
});
test('busy.do --step.failed (failed launch, nothing to compensate)--> absent', () => {
  const plan: Plan = { ...bare, before: null };
  const r = run(busy(op(plan, { kind: 'launch' })), { type: 'step.failed', code: 'BUSY', message: 'x' });
  assert.is(value(r), '"absent"');
});
const unstash = commands.unstash.plan;
test('busy.do --step.failed (past the pivot, attempts left)--> busy.do: retried', () => {
  const r = run(busy(op(unstash, { kind: 'unstash', step: 1, attempt: 1 })), { type: 'step.failed', code: 'BUSY', message: 'x' });
  assert.is(value(r), '{"busy":"do"}');
  assert.equal(types(r), ['request do#1@2']);
});
test('busy.do --step.failed (past the pivot, attempts spent)--> broken', () => {
  const r = run(busy(op(unstash, { kind: 'unstash', step: 1, attempt: MAX_ATTEMPTS })), { type: 'step.failed', code: 'BUSY', message: 'x' });
  assert.is(value(r), '"broken"');
  assert.equal(types(r), ['finish broken']);
});
test('busy.do --abort (before the pivot)--> busy.undo from the step that was running or next', () => {
  const r = run(busy(op(refresh, { step: 4 })), { type: 'abort', code: 'ABORTED', message: 'signal' });
  assert.is(value(r), '{"busy":"undo"}');
  const enter = r.actions[0]!;
  assert.ok(enter.type === 'enterPhase' && enter.params.from === 4);
});
test('busy.do --abort (past the pivot)--> no decision: the op rolls on', () => {
  const r = run(busy(op(unstash, { kind: 'unstash', step: 2 })), { type: 'abort', code: 'ABORTED', message: 'signal' });
  assert.equal(r.actions, []);
});
test('busy.undo --step.ok--> busy.undo, then ready (undone) with the original failure', () => {
  const o = op(refresh, { phase: 'undo', undoFrom: 3, step: 1, failure: { code: 'NO_SPACE', message: 'full' } });
  assert.equal(types(run(busy(o), { type: 'step.ok' })), ['request undo#1@1']);
  const undoLen = 4; // stash, stash-sdk x2, stop's start: compensations of do steps 0..3
  const r = run(busy({ ...o, step: undoLen }), { type: 'step.ok' });
  assert.is(value(r), '"ready"');
  const fin = r.actions[0]!;
  assert.ok(fin.type === 'finish' && fin.params.outcome === 'undone' && fin.params.code === 'NO_SPACE');
});
test('busy.undo (launch) --step.ok (last)--> absent', () => {
  const o = op(launch, { kind: 'launch', phase: 'undo', undoFrom: 0, step: 1 });
  assert.is(value(run(busy(o), { type: 'step.ok' })), '"absent"');
});
test('busy.undo --step.failed--> retried, then broken', () => {
  const o = op(refresh, { phase: 'undo', undoFrom: 3, step: 0 });
  assert.equal(types(run(busy(o), { type: 'step.failed', code: 'BUSY', message: 'x' })), ['request undo#0@2']);
  const r = run(busy({ ...o, attempt: MAX_ATTEMPTS }), { type: 'step.failed', code: 'BUSY', message: 'x' });
  assert.is(value(r), '"broken"');
});
test('busy.undo --abort--> no decision: an undo always finishes', () => {
  assert.equal(run(busy(op(refresh, { phase: 'undo', undoFrom: 3 })), { type: 'abort', code: 'ABORTED', message: 'x' }).actions, []);
});
test('busy.cleanup --step.ok (last)--> ready: finish done', () => {
  const r = run(busy(op(refresh, { phase: 'cleanup', step: refresh.cleanup.length })), { type: 'step.ok' });
  assert.is(value(r), '"ready"');
  assert.equal(types(r), ['finish done']);
});
test('busy.cleanup --step.failed (attempts spent)--> skips the step and finishes done with leftovers', () => {
  const r = run(busy(op(refresh, { phase: 'cleanup', step: refresh.cleanup.length - 1, attempt: MAX_ATTEMPTS })), { type: 'step.failed', code: 'BUSY', message: 'x' });
  assert.is(value(r), '"ready"');
  const fin = r.actions[0]!;
  assert.ok(fin.type === 'finish' && fin.params.outcome === 'done' && fin.params.leftovers === true);
});
test('busy.* --resume--> requests the current step again', () => {
  const r = run(busy(op(refresh, { phase: 'undo', undoFrom: 3, step: 2 })), { type: 'resume' });
  assert.equal(types(r), ['request undo#2@1']);
});
test('step outcomes outside an op are ignored', () => {
  const r = run({ name: 'nav2', workshop: ws(), op: null }, { type: 'step.ok' });
  assert.not.ok(r.accepted);
});

// ---- plans
test('refresh keeps the longest unchanged prefix, and only with the same base', () => {
  const changedLast = { ...spec, sdks: [spec.sdks[0]!, { ...spec.sdks[1]!, hash: 'h2b' }] };
  assert.is(reusablePrefix(shape, changedLast, always), 1);
  assert.is(reusablePrefix(shape, spec, always), 2);
  assert.is(reusablePrefix(shape, { ...spec, base: 'other' }, always), 0);
  assert.is(reusablePrefix(shape, { ...spec, sdks: [{ ...spec.sdks[0]!, hash: 'x' }, spec.sdks[1]!] }, always), 0);
  assert.is(reusablePrefix(shape, spec, (l) => l !== shape.sdks[0]!.layer), 0, 'a missing layer cannot be reused');
});
test('a refresh undo is an unstash followed by dropping the stash', () => {
  const plan = commands.refresh.plan;
  const failedAt = plan.do.findIndex((s) => s.label.startsWith('setup-base'));
  const r = run(busy(op(plan, { step: failedAt })), { type: 'step.failed', code: 'EXEC_FAILED', message: 'x' });
  assert.ok(r.accepted);
  const labels = (r.actions[0]!.type === 'enterPhase' ? undoLabels(plan, failedAt) : []).join(', ');
  assert.is(labels, 'stop, restore nav, unstash, drop stash, drop stash nav, drop stash ros2, start');
});
function undoLabels(plan: Plan, from: number): string[] {
  const out: string[] = [];
  for (let i = from; i >= 0; i--) for (const u of plan.do[i]!.undo ?? []) out.push(u.label);
  return out;
}

test.run();

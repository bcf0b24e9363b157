/**
 * The workshop chart, transition by transition: a snapshot rebuilt from facts, one event, the
 * state it lands in and the decisions (actions) that come back. Then `decide` end to end: the
 * events a command, an outcome and a reconciliation produce.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { transition } from 'xstate';
import { produce } from 'immer';
import type { Plan, PlanStep, WorkshopSpec } from '../../machines/types.ts';
import { planLaunch, planRefresh, planRemove, planStash, planUnstash, planRestore, reusablePrefix, undoSteps } from '../../machines/plan.ts';
import { DECISIONS, MAX_ATTEMPTS, resolveWorkshop, workshopMachine, type Decision, type OpFacts, type WorkshopContext, type WorkshopEvent, type CommandType } from '../../machines/workshop.ts';
import { decide, evolve, initialState, initialVolatile, type FoldState, type KeyedEvent } from '../../machines/index.ts';
import { sequentialIds } from '../../engine/ids.ts';

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
const plans = {
  launch,
  refresh: planRefresh({ ctx, name: 'nav2', shape, spec, reuse: 1, suffixes: ['0000000000000003'], isPresent: always }),
  stash: planStash({ ctx, name: 'nav2', shape, isPresent: always }),
  unstash: planUnstash({ ctx, name: 'nav2', shape: withStash }),
  restore: planRestore({ ctx, name: 'nav2', shape, sdk: 'ros2' }),
  remove: planRemove({ ctx, shape }),
};

const ws = (over: Partial<NonNullable<WorkshopContext['workshop']>> = {}) => ({ status: 'ready' as const, hasStash: false, sdks: ['ros2', 'nav'], instancePresent: true, dependents: 0, ...over });
const op = (plan: Plan, over: Partial<OpFacts> = {}): OpFacts => ({ kind: 'refresh', plan, phase: 'do', step: 0, attempt: 1, undo: null, failure: null, ...over });
const inUndo = (plan: Plan, from: number, over: Partial<OpFacts> = {}): OpFacts => op(plan, { phase: 'undo', undo: undoSteps(plan, from), ...over });
const context = (workshop: WorkshopContext['workshop'], o: OpFacts | null = null, beforeHeld = true): WorkshopContext => ({ name: 'nav2', workshop, op: o, beforeHeld });
function run(c: WorkshopContext, e: WorkshopEvent): { value: string; actions: Decision[] } {
  const [after, actions] = transition(workshopMachine, resolveWorkshop(c), e);
  return { value: JSON.stringify(after.value), actions: actions.filter((a) => DECISIONS.has(a.type)).map((a) => ({ type: a.type, params: a.params }) as Decision) };
}
const types = (r: ReturnType<typeof run>) =>
  r.actions.map((a) => (a.type === 'request' ? `request ${a.params.phase}#${a.params.step}@${a.params.attempt}` : a.type === 'enterPhase' ? `enter ${a.params.phase}` : a.type === 'finish' ? `finish ${a.params.outcome}` : a.type === 'reject' ? `reject ${a.params.code}` : a.type));
const command = (type: CommandType, sdk = 'ros2'): WorkshopEvent => (type === 'restore' ? { type, sdk } : { type }) as WorkshopEvent;

// A plan whose first step has no compensation and is not retried.
const bare: Plan = { do: [{ label: 'start', effect: { type: 'start', target: { space: 'workshops', name: 'x' } } } as PlanStep], cleanup: [], before: shape, after: shape };

// ---- legal commands: [from, command, workshop facts]
const legal: Array<[string, CommandType, WorkshopContext['workshop']]> = [
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
    const r = run(context(facts), command(cmd));
    assert.is(r.value, '{"busy":"do"}');
    assert.equal(types(r), ['startOp', 'request do#0@1']);
  });
}

// ---- refused commands: [what, command, workshop facts, busy?, code]
const illegal: Array<[string, CommandType, WorkshopContext['workshop'], boolean, string]> = [
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
  ['refresh with a kept container running from it', 'refresh', ws({ dependents: 1 }), false, 'FAILED_PRECONDITION'],
  ['remove with a kept container running from it', 'remove', ws({ dependents: 2 }), false, 'FAILED_PRECONDITION'],
];
for (const [what, cmd, facts, busy, code] of illegal) {
  test(`refuses ${what} with ${code}, and the chart does not move`, () => {
    const c = context(facts, busy ? op(launch) : null);
    const r = run(c, command(cmd));
    assert.equal(types(r), [`reject ${code}`]);
    assert.is(r.value, JSON.stringify(resolveWorkshop(c).value));
  });
}

test('restore of an SDK the workshop does not have is NOT_FOUND', () => {
  const r = run(context(ws()), command('restore', 'ros3'));
  assert.equal(types(r), ['reject NOT_FOUND']);
  assert.match((r.actions[0] as Extract<Decision, { type: 'reject' }>).params.reason, /ros3/);
});

// ---- saga transitions
const busyWs = ws({ status: 'busy' });
const refresh = plans.refresh;
const lastDo = refresh.do.length;
const unstash = plans.unstash;

test('busy.do --step.ok--> busy.do: requests the next step', () => {
  const r = run(context(busyWs, op(refresh, { step: 1 })), { type: 'step.ok' });
  assert.is(r.value, '{"busy":"do"}');
  assert.equal(types(r), ['request do#1@1']);
});
test('busy.do --step.ok (last, clean-up to do)--> busy.cleanup', () => {
  const r = run(context(busyWs, op(refresh, { step: lastDo })), { type: 'step.ok' });
  assert.is(r.value, '{"busy":"cleanup"}');
  assert.equal(types(r), ['enter cleanup', 'request cleanup#0@1']);
});
test('busy.do --step.ok (last, no clean-up)--> ready: finish done', () => {
  const r = run(context(busyWs, op(launch, { kind: 'launch', step: launch.do.length })), { type: 'step.ok' });
  assert.is(r.value, '"ready"');
  assert.equal(types(r), ['finish done']);
});
test('busy.do --step.ok (last, instance lost)--> broken: finish done', () => {
  const r = run(context(ws({ status: 'busy', instancePresent: false }), op(launch, { kind: 'launch', step: launch.do.length })), { type: 'step.ok' });
  assert.is(r.value, '"broken"');
});
test('busy.do --step.ok (last step of remove)--> absent', () => {
  const plan = plans.remove;
  assert.is(run(context(busyWs, op(plan, { kind: 'remove', step: plan.do.length })), { type: 'step.ok' }).value, '"absent"');
});
test('busy.do --step.failed--> busy.undo from the failed step', () => {
  const r = run(context(busyWs, op(refresh, { step: 3 })), { type: 'step.failed', code: 'NO_SPACE', message: 'full' });
  assert.is(r.value, '{"busy":"undo"}');
  assert.equal(types(r), ['enter undo', 'request undo#0@1']);
  const enter = r.actions[0]!;
  assert.ok(enter.type === 'enterPhase' && enter.params.from === 3 && enter.params.code === 'NO_SPACE');
});
test('busy.do --step.failed (nothing to compensate)--> ready: finish undone', () => {
  const r = run(context(busyWs, op(bare)), { type: 'step.failed', code: 'BUSY', message: 'x' });
  assert.is(r.value, '"ready"');
  assert.equal(types(r), ['finish undone']);
});
test('busy.do --step.failed (nothing to compensate, a layer of the shape before lost)--> broken: finish undone', () => {
  assert.is(run(context(busyWs, op(bare), false), { type: 'step.failed', code: 'BUSY', message: 'x' }).value, '"broken"');
});
test('busy.do --step.failed (failed launch, nothing to compensate)--> absent', () => {
  const plan: Plan = { ...bare, before: null };
  assert.is(run(context(busyWs, op(plan, { kind: 'launch' })), { type: 'step.failed', code: 'BUSY', message: 'x' }).value, '"absent"');
});
test('busy.do --step.failed (past the pivot, attempts left)--> busy.do: retried', () => {
  const r = run(context(busyWs, op(unstash, { kind: 'unstash', step: 1, attempt: 1 })), { type: 'step.failed', code: 'BUSY', message: 'x' });
  assert.is(r.value, '{"busy":"do"}');
  assert.equal(types(r), ['request do#1@2']);
});
test('busy.do --step.failed (past the pivot, attempts spent)--> broken', () => {
  const r = run(context(busyWs, op(unstash, { kind: 'unstash', step: 1, attempt: MAX_ATTEMPTS })), { type: 'step.failed', code: 'BUSY', message: 'x' });
  assert.is(r.value, '"broken"');
  assert.equal(types(r), ['finish broken']);
});
test('busy.do --abort (before the pivot)--> busy.undo from the step that was running or next', () => {
  const r = run(context(busyWs, op(refresh, { step: 4 })), { type: 'abort', code: 'ABORTED', message: 'signal' });
  assert.is(r.value, '{"busy":"undo"}');
  const enter = r.actions[0]!;
  assert.ok(enter.type === 'enterPhase' && enter.params.from === 4 && enter.params.code === 'ABORTED');
});
test('busy.do --abort (past the pivot)--> no decision: the op rolls on', () => {
  assert.equal(run(context(busyWs, op(unstash, { kind: 'unstash', step: 2 })), { type: 'abort', code: 'ABORTED', message: 'signal' }).actions, []);
});
test('busy.undo --step.ok--> busy.undo, then ready (undone) with the original failure', () => {
  const o = inUndo(refresh, 3, { step: 1, failure: { code: 'NO_SPACE', message: 'full' } });
  assert.equal(types(run(context(busyWs, o), { type: 'step.ok' })), ['request undo#1@1']);
  const r = run(context(busyWs, { ...o, step: o.undo!.length }), { type: 'step.ok' });
  assert.is(r.value, '"ready"');
  const fin = r.actions[0]!;
  assert.ok(fin.type === 'finish' && fin.params.outcome === 'undone' && fin.params.code === 'NO_SPACE');
});
test('busy.undo (launch) --step.ok (last)--> absent', () => {
  assert.is(run(context(busyWs, inUndo(launch, 0, { kind: 'launch', step: 1 })), { type: 'step.ok' }).value, '"absent"');
});
test('busy.undo --step.failed--> retried, then broken', () => {
  const o = inUndo(refresh, 3);
  assert.equal(types(run(context(busyWs, o), { type: 'step.failed', code: 'BUSY', message: 'x' })), ['request undo#0@2']);
  assert.is(run(context(busyWs, { ...o, attempt: MAX_ATTEMPTS }), { type: 'step.failed', code: 'BUSY', message: 'x' }).value, '"broken"');
});
test('busy.undo --abort--> no decision: an undo always finishes', () => {
  assert.equal(run(context(busyWs, inUndo(refresh, 3)), { type: 'abort', code: 'ABORTED', message: 'x' }).actions, []);
});
test('busy.cleanup --step.ok (last)--> ready: finish done', () => {
  const r = run(context(busyWs, op(refresh, { phase: 'cleanup', step: refresh.cleanup.length })), { type: 'step.ok' });
  assert.is(r.value, '"ready"');
  assert.equal(types(r), ['finish done']);
});
test('busy.cleanup --step.failed (attempts spent, more clean-up)--> skips the step', () => {
  const r = run(context(busyWs, op(refresh, { phase: 'cleanup', step: 0, attempt: MAX_ATTEMPTS })), { type: 'step.failed', code: 'BUSY', message: 'x' });
  assert.equal(types(r), ['request cleanup#1@1']);
});
test('busy.cleanup --step.failed (attempts spent, last)--> ready: finish done (its leftovers become garbage)', () => {
  const r = run(context(busyWs, op(refresh, { phase: 'cleanup', step: refresh.cleanup.length - 1, attempt: MAX_ATTEMPTS })), { type: 'step.failed', code: 'BUSY', message: 'x' });
  assert.is(r.value, '"ready"');
  assert.equal(types(r), ['finish done']);
});
test('busy.* --resume--> requests the current step again', () => {
  assert.equal(types(run(context(busyWs, inUndo(refresh, 3, { step: 2 })), { type: 'resume' })), ['request undo#2@1']);
});
test('busy.do --interrupted (before the pivot)--> undone as an abort (INTERRUPTED)', () => {
  const r = run(context(busyWs, op(refresh, { step: 4 })), { type: 'interrupted' });
  assert.is(r.value, '{"busy":"undo"}');
  assert.ok(r.actions[0]!.type === 'enterPhase' && r.actions[0]!.params.code === 'INTERRUPTED');
});
test('busy.do --interrupted (past the pivot)--> resumes: the current step again', () => {
  assert.equal(types(run(context(busyWs, op(unstash, { kind: 'unstash', step: 2 })), { type: 'interrupted' })), ['request do#2@1']);
});
test('busy.do --interrupted with a failed probe (past the pivot)--> retried', () => {
  const r = run(context(busyWs, op(unstash, { kind: 'unstash', step: 2 })), { type: 'interrupted', failure: { code: 'NOT_OWNED', message: 'x' } });
  assert.equal(types(r), ['request do#2@2']);
});
test('busy.undo --interrupted with a failed probe, attempts spent--> broken', () => {
  assert.is(run(context(busyWs, inUndo(refresh, 3, { attempt: MAX_ATTEMPTS })), { type: 'interrupted', failure: { code: 'INTERRUPTED', message: 'x' } }).value, '"broken"');
});
test('ready --layer.lost--> broken; --instance.lost--> broken', () => {
  assert.is(run(context(ws()), { type: 'layer.lost' }).value, '"broken"');
  assert.is(run(context(ws()), { type: 'instance.lost' }).value, '"broken"');
});
test('step outcomes outside an op change nothing', () => {
  const r = run(context(ws()), { type: 'step.ok' });
  assert.equal(r.actions, []);
  assert.is(r.value, '"ready"');
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

// ---- decide, end to end: the events carry the decisions
const at = '2026-12-05T00:00:00.000Z';
/** Fold events as the engine does (immer: the states `decide` reads are immutable, and shared with what it returns). */
function fold(events: readonly KeyedEvent[], s: FoldState = initialState()): FoldState {
  return produce(s, (d) => {
    for (const e of events) evolve(d, e);
  });
}

test('decide: a launch is refused before any id is spent, or started with its plan and first request', () => {
  const ids = sequentialIds();
  let s = initialState();
  const first = decide({ durable: s, volatile: initialVolatile() }, { type: 'command', kind: 'launch', workshop: 'nav2', spec, owner: 'alice', at, ids });
  assert.equal(first.map((e) => e.type), ['op.started', 'effect.requested']);
  s = fold(first, s);
  assert.is(s.workshops.nav2!.status, 'busy');
  const before = ids.next;
  try {
    decide({ durable: s, volatile: initialVolatile() }, { type: 'command', kind: 'launch', workshop: 'nav2', spec, owner: 'alice', at, ids });
    assert.unreachable('a second launch is refused');
  } catch (e) {
    assert.is((e as { code: string }).code, 'BUSY');
  }
  assert.is(ids.next, before, 'a refused command spends no id');
});

test('decide: a failed step journals the outcome, the undo phase with its steps, and the first undo request', () => {
  let s = initialState();
  const world = () => ({ durable: s, volatile: initialVolatile() });
  s = fold(decide(world(), { type: 'command', kind: 'launch', workshop: 'nav2', spec, owner: 'alice', at, ids: sequentialIds() }), s);
  const opId = Object.keys(s.ops)[0]!;
  // create, start, setup-base ros2 ok; snapshot ros2 ok; setup-base nav fails.
  for (let i = 0; i < 4; i++) s = fold(decide(world(), { type: 'outcome', op: opId, at, result: { ok: true } }), s);
  const events = decide(world(), { type: 'outcome', op: opId, at, result: { ok: false, code: 'EXEC_FAILED', message: 'exit 1' } });
  assert.equal(events.map((e) => e.type), ['effect.failed', 'op.phase', 'effect.requested']);
  const phase = events[1]!;
  assert.ok(phase.type === 'op.phase');
  assert.equal(phase.data.steps!.map((x) => x.label), ['remove ros2-0000000000000002', 'remove workshop']);
  s = fold(events, s);
  s = fold(decide(world(), { type: 'outcome', op: opId, at, result: { ok: true } }), s);
  const last = decide(world(), { type: 'outcome', op: opId, at, result: { ok: true } });
  const fin = last.at(-1)!;
  assert.ok(fin.type === 'op.finished');
  assert.equal([fin.data.outcome, fin.data.status, fin.data.shape, fin.data.code], ['undone', 'absent', null, 'EXEC_FAILED']);
  s = fold(last, s);
  assert.equal(s.workshops, {});
});

test('decide: reconciliation journals the table row that judged a probe', () => {
  let s = initialState();
  const world = () => ({ durable: s, volatile: initialVolatile() });
  s = fold(decide(world(), { type: 'command', kind: 'launch', workshop: 'nav2', spec, owner: 'alice', at, ids: sequentialIds() }), s);
  const opId = Object.keys(s.ops)[0]!;
  const events = decide(world(), { type: 'observed', op: opId, at, observation: { present: false } });
  const observed = events[0]!;
  assert.ok(observed.type === 'effect.observed');
  assert.equal([observed.data.decision, observed.data.row], ['redo', 'create-absent']);
  // A crash before the pivot is an abort: the create is compensated (removing what may not exist
  // costs a call, never correctness), with the undo steps in the event.
  assert.equal(events.slice(1).map((e) => e.type), ['op.phase', 'effect.requested']);
  const phase = events[1]!;
  assert.ok(phase.type === 'op.phase' && phase.data.code === 'INTERRUPTED');
  assert.equal(phase.data.steps!.map((x) => x.label), ['remove workshop']);
});

test.run();

/**
 * Trace tables, in the style of snapd's taskrunner tests: a line of set-up (`refresh:fail exec#1`)
 * and the exact sequence of backend calls the engine must make. Then, for every command, a fault at
 * every backend call (before and after it takes effect), checking the final state, the inventory,
 * and that a failed refresh leaves the workshop's identity and content as they were.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { CallKind } from '../../backends/types.ts';
import { isAtelierError } from '../../machines/errors.ts';
import { assertAccounted, COMMANDS, content, fixture, mutatingCalls, perform, prepare, type Cmd } from './helpers.ts';

/** `cmd[:fail|:fail-after KIND#N]` → the command and an optional fault on the Nth call of KIND. */
function parse(line: string): { cmd: Cmd; fault?: { call: CallKind; nth: number; when: 'before' | 'after' } } {
  const [cmd, fault] = line.split(' ') as [string, string | undefined];
  const [name, mode] = cmd.split(':') as [Cmd, string | undefined];
  if (!mode || !fault) return { cmd: name };
  const [call, nth] = fault.split('#') as [CallKind, string];
  return { cmd: name, fault: { call, nth: Number(nth), when: mode === 'fail-after' ? 'after' : 'before' } };
}

const W = 'workshops/nav2-1a2b3c4d';
const table: Array<[string, string[]]> = [
  ['launch', [`create ${W}`, `start ${W}`, `exec ${W}`, `copy ${W} -> layers/ros2-0000000000000002`, `exec ${W}`, `copy ${W} -> layers/nav-0000000000000003`]],
  [
    'launch:fail exec#2',
    [`create ${W}`, `start ${W}`, `exec ${W}`, `copy ${W} -> layers/ros2-0000000000000002`, `exec ${W} !INTERNAL`, 'remove layers/ros2-0000000000000002', `remove ${W}`],
  ],
  [
    'refresh-last',
    [
      `stop ${W}`,
      'copy layers/ros2-0000000000000002 -> layers/stash-ros2-0000000000000002',
      'copy layers/nav-0000000000000003 -> layers/stash-nav-0000000000000003',
      `copy ${W} -> layers/stash-nav2-1a2b3c4d`,
      `copy! layers/ros2-0000000000000002 -> ${W}`,
      'remove layers/nav-0000000000000003',
      `start ${W}`,
      `exec ${W}`,
      `copy ${W} -> layers/nav-0000000000000005`,
      'remove layers/stash-nav2-1a2b3c4d',
      'remove layers/stash-ros2-0000000000000002',
      'remove layers/stash-nav-0000000000000003',
    ],
  ],
  [
    'refresh-last:fail exec#1',
    [
      `stop ${W}`,
      'copy layers/ros2-0000000000000002 -> layers/stash-ros2-0000000000000002',
      'copy layers/nav-0000000000000003 -> layers/stash-nav-0000000000000003',
      `copy ${W} -> layers/stash-nav2-1a2b3c4d`,
      `copy! layers/ros2-0000000000000002 -> ${W}`,
      'remove layers/nav-0000000000000003',
      `start ${W}`,
      `exec ${W} !INTERNAL`,
      // unstash: stop, recreate the deleted layer, refresh-copy the stash back, drop the stash, start
      `stop ${W}`,
      'copy! layers/stash-nav-0000000000000003 -> layers/nav-0000000000000003',
      `copy! layers/stash-nav2-1a2b3c4d -> ${W}`,
      'remove layers/stash-nav2-1a2b3c4d',
      'remove layers/stash-nav-0000000000000003',
      'remove layers/stash-ros2-0000000000000002',
      `start ${W}`,
    ],
  ],
  [
    'refresh-first',
    [
      `stop ${W}`,
      'copy layers/ros2-0000000000000002 -> layers/stash-ros2-0000000000000002',
      'copy layers/nav-0000000000000003 -> layers/stash-nav-0000000000000003',
      `copy ${W} -> layers/stash-nav2-1a2b3c4d`,
      `create! ${W}`,
      'remove layers/ros2-0000000000000002',
      'remove layers/nav-0000000000000003',
      `start ${W}`,
      `exec ${W}`,
      `copy ${W} -> layers/ros2-0000000000000005`,
      `exec ${W}`,
      `copy ${W} -> layers/nav-0000000000000006`,
      'remove layers/stash-nav2-1a2b3c4d',
      'remove layers/stash-ros2-0000000000000002',
      'remove layers/stash-nav-0000000000000003',
    ],
  ],
  [
    'refresh-last:fail-after remove#3',
    [
      `stop ${W}`,
      'copy layers/ros2-0000000000000002 -> layers/stash-ros2-0000000000000002',
      'copy layers/nav-0000000000000003 -> layers/stash-nav-0000000000000003',
      `copy ${W} -> layers/stash-nav2-1a2b3c4d`,
      `copy! layers/ros2-0000000000000002 -> ${W}`,
      'remove layers/nav-0000000000000003',
      `start ${W}`,
      `exec ${W}`,
      `copy ${W} -> layers/nav-0000000000000005`,
      'remove layers/stash-nav2-1a2b3c4d',
      // a clean-up failure (here after the removal took effect) is retried, never undone
      'remove layers/stash-ros2-0000000000000002 !INTERNAL',
      'remove layers/stash-ros2-0000000000000002',
      'remove layers/stash-nav-0000000000000003',
    ],
  ],
  ['stash', [`stop ${W}`, 'copy layers/ros2-0000000000000002 -> layers/stash-ros2-0000000000000002', 'copy layers/nav-0000000000000003 -> layers/stash-nav-0000000000000003', `copy ${W} -> layers/stash-nav2-1a2b3c4d`, `start ${W}`]],
  [
    'stash:fail copy#3',
    [
      `stop ${W}`,
      'copy layers/ros2-0000000000000002 -> layers/stash-ros2-0000000000000002',
      'copy layers/nav-0000000000000003 -> layers/stash-nav-0000000000000003',
      `copy ${W} -> layers/stash-nav2-1a2b3c4d !INTERNAL`,
      'remove layers/stash-nav2-1a2b3c4d',
      'remove layers/stash-nav-0000000000000003',
      'remove layers/stash-ros2-0000000000000002',
      `start ${W}`,
    ],
  ],
  [
    'unstash:fail copy#1',
    [
      `stop ${W}`,
      // past the pivot: retried, not undone
      `copy! layers/stash-nav2-1a2b3c4d -> ${W} !INTERNAL`,
      `copy! layers/stash-nav2-1a2b3c4d -> ${W}`,
      'copy! layers/stash-ros2-0000000000000002 -> layers/ros2-0000000000000002',
      'copy! layers/stash-nav-0000000000000003 -> layers/nav-0000000000000003',
      `start ${W}`,
      'remove layers/stash-nav2-1a2b3c4d',
      'remove layers/stash-ros2-0000000000000002',
      'remove layers/stash-nav-0000000000000003',
    ],
  ],
  ['restore', [`stop ${W}`, `copy ${W} -> layers/stash-nav2-1a2b3c4d`, `copy! layers/ros2-0000000000000002 -> ${W}`, `start ${W}`, 'remove layers/stash-nav2-1a2b3c4d']],
  [
    'restore:fail start#1',
    [
      `stop ${W}`,
      `copy ${W} -> layers/stash-nav2-1a2b3c4d`,
      `copy! layers/ros2-0000000000000002 -> ${W}`,
      `start ${W} !INTERNAL`,
      `stop ${W}`,
      `copy! layers/stash-nav2-1a2b3c4d -> ${W}`,
      'remove layers/stash-nav2-1a2b3c4d',
      `start ${W}`,
    ],
  ],
  ['remove', [`remove ${W}`, 'remove layers/ros2-0000000000000002', 'remove layers/nav-0000000000000003']],
  ['remove:fail remove#2', [`remove ${W}`, 'remove layers/ros2-0000000000000002 !INTERNAL', 'remove layers/ros2-0000000000000002', 'remove layers/nav-0000000000000003']],
];

// Per-workshop layers (`sdkCache: false`, and workshops from before the SDK cache): the table above.
for (const [line, expected] of table) {
  test(`trace: ${line}`, async () => {
    const f = await fixture({ sdkCache: false });
    try {
      const { cmd, fault } = parse(line);
      await prepare(f, cmd);
      if (fault) f.backend.setFaultPlan({ rules: [{ call: fault.call, nth: fault.nth, when: fault.when, action: 'fail' }] });
      await perform(f, cmd).catch(() => undefined);
      assert.equal(f.backend.trace(), expected);
      await assertAccounted(f.engine, f.backend);
    } finally {
      await f.cleanup();
    }
  });
}

for (const cmd of COMMANDS) {
  test(`a fault at every backend call of ${cmd}: consistent state, nothing leaked, identity and content kept`, async () => {
    const calls = await mutatingCalls(cmd);
    let checked = 0;
    for (const [kind, nth] of calls) {
      for (const when of ['before', 'after'] as const) {
        const f = await fixture();
        try {
          await prepare(f, cmd);
          const before = cmd === 'launch' ? null : { ws: f.engine.show('nav2'), content: await content(f.backend) };
          f.backend.setFaultPlan({ rules: [{ call: kind, nth, when, action: 'fail', code: 'NO_SPACE' }] });
          const where = `${cmd}: fail ${when} ${kind}#${nth}`;
          let error: unknown = null;
          await perform(f, cmd).catch((e) => (error = e));
          // Undone, with the backend's code: a full disk keeps NO_SPACE (and its exit code), not OP_FAILED.
          if (error) assert.ok(isAtelierError(error, 'NO_SPACE'), `${where}: fails with NO_SPACE (${String(error)})`);
          await assertAccounted(f.engine, f.backend);
          const ws = f.engine.state.workshops['nav2'];
          if (cmd === 'launch') {
            if (error) assert.is(ws, undefined, `${where}: a failed launch leaves no workshop`);
            else assert.is(ws?.status, 'ready');
          } else if (cmd === 'remove') {
            assert.is(error, null, `${where}: remove rolls forward`);
            assert.is(ws, undefined);
          } else {
            assert.is(ws?.status, 'ready', `${where}: the workshop is ready`);
            assert.equal(ws?.identity, before!.ws.identity, `${where}: identity kept`);
            if (error) {
              assert.equal(ws?.sdks, before!.ws.sdks, `${where}: layers as before`);
              assert.equal(await content(f.backend), before!.content, `${where}: content as before`);
            }
          }
          checked++;
        } finally {
          await f.cleanup();
        }
      }
    }
    assert.is(checked, calls.length * 2);
  });
}

test.run();

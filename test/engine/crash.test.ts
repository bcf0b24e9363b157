/**
 * Crash recovery: for each command, "kill" the engine after each journal append and before and
 * after each backend call (drop it without close; keep journal and backend), reopen, and check that
 * the state matches the backend, no owned orphan remains, and retrying the command succeeds.
 * Canonical Workshop's bug (a retried refresh failing forever with `stash-... already exists`)
 * is among the points checked: a crash right after the stash copy.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SimulatedCrash } from '../../backends/types.ts';
import { canonicalJson, type FoldState } from '../../machines/index.ts';
import { replay } from '../../engine/replay.ts';
import { openJournal } from '../../events/journal.ts';
import { join } from 'node:path';
import { assertAccounted, COMMANDS, content, fixture, mutatingCalls, perform, prepare, V1, V2, V3, type Cmd, type Fixture } from './helpers.ts';

/** Whether the command already took full effect after recovery, so a retry would be refused. */
function finished(f: Fixture, cmd: Cmd): boolean {
  const ws = f.engine.state.workshops['nav2'];
  if (cmd === 'launch') return ws !== undefined;
  if (cmd === 'remove') return ws === undefined;
  if (cmd === 'stash') return ws?.stash != null;
  if (cmd === 'unstash') return ws?.stash == null;
  return false;
}

type Before = { ws: ReturnType<Fixture['engine']['show']>; content: Record<string, string | null> } | null;
const snapshot = async (f: Fixture, cmd: Cmd): Promise<Before> => (cmd === 'launch' ? null : { ws: f.engine.show('nav2'), content: await content(f.backend) });

async function crashAndRecover(f: Fixture, cmd: Cmd, where: string, before: Before): Promise<void> {
  f.backend.setFaultPlan({});
  await f.engine.crash();
  await f.reopen();
  await assertAccounted(f.engine, f.backend);
  const ws = f.engine.state.workshops['nav2'];
  if (before && ws) {
    assert.equal(ws.identity, before.ws.identity, `${where}: identity kept across the crash`);
    if (cmd.startsWith('refresh') && ws.sdks.every((l, i) => l.layer === before.ws.sdks[i]?.layer))
      assert.equal(await content(f.backend), before.content, `${where}: an undone refresh leaves the content as it was`);
  }
  if (ws) assert.ok(ws.status === 'ready', `${where}: the workshop is ready after recovery (${ws.status})`);
  // Reconciling again changes nothing: the same crash image gives the same state.
  const once = canonicalJson(f.engine.folded.workshops);
  await f.engine.reconcile();
  assert.is(canonicalJson(f.engine.folded.workshops), once, `${where}: a second reconcile changes nothing`);
  if (!finished(f, cmd)) await perform(f, cmd).catch((e) => assert.unreachable(`${where}: the retried ${cmd} failed: ${e.code} ${e.message}`));
  await assertAccounted(f.engine, f.backend);
}

async function appendsOf(cmd: Cmd): Promise<number> {
  const f = await fixture();
  try {
    await prepare(f, cmd);
    const seq = f.engine.state.seq;
    await perform(f, cmd);
    return f.engine.state.seq - seq;
  } finally {
    await f.cleanup();
  }
}

for (const cmd of COMMANDS) {
  test(`${cmd}: crash before and after every backend call, reopen, retry`, async () => {
    let points = 0;
    for (const [kind, nth] of await mutatingCalls(cmd)) {
      for (const when of ['before', 'after'] as const) {
        const f = await fixture();
        try {
          await prepare(f, cmd);
          const before = await snapshot(f, cmd);
          f.backend.setFaultPlan({ rules: [{ call: kind, nth, when, action: 'crash' }] });
          const err = await perform(f, cmd).then(() => null, (e) => e);
          assert.instance(err, SimulatedCrash, `${cmd}: crash ${when} ${kind}#${nth} reached the caller`);
          await crashAndRecover(f, cmd, `${cmd}: crash ${when} ${kind}#${nth}`, before);
          points++;
        } finally {
          await f.cleanup();
        }
      }
    }
    assert.ok(points > 0);
  });

  test(`${cmd}: crash after every journal append, reopen, retry`, async () => {
    const appends = await appendsOf(cmd);
    for (let k = 1; k <= appends; k++) {
      const f = await fixture();
      try {
        await prepare(f, cmd);
        const before = await snapshot(f, cmd);
        const start = f.engine.state.seq;
        const append = f.engine.append.bind(f.engine);
        f.engine.append = async (inputs) => {
          const records = await append(inputs);
          if (records.at(-1)!.seq >= start + k) throw new SimulatedCrash(`after append ${k}`);
          return records;
        };
        await perform(f, cmd).catch((e) => assert.instance(e, SimulatedCrash));
        await crashAndRecover(f, cmd, `${cmd}: crash after append ${k}/${appends}`, before);
      } finally {
        await f.cleanup();
      }
    }
  });
}

test('replaying a journal twice gives byte-identical state', async () => {
  const f = await fixture();
  try {
    await f.engine.launch(V1);
    await f.engine.refresh(V2);
    await f.engine.stash('nav2');
    await f.engine.unstash('nav2');
    f.backend.setFaultPlan({ rules: [{ call: 'exec', when: 'before', action: 'fail' }] });
    await f.engine.refresh(V3).catch(() => undefined);
    const live = canonicalJson(f.engine.folded);
    await f.engine.close();
    const read = async () => {
      const opened = await openJournal<FoldState>({ dir: join(f.stateDir, 'journal'), durable: true });
      const all = [];
      for await (const r of opened.journal.readAll()) all.push(r);
      await opened.journal.close();
      return { full: canonicalJson(replay(null, all)), fromCheckpoint: canonicalJson(replay(opened.checkpoint, opened.tail)) };
    };
    const a = await read();
    const b = await read();
    assert.is(a.full, b.full, 'two full replays give identical bytes');
    assert.is(a.full, live, 'the replayed state equals the live state');
    assert.is(a.fromCheckpoint, a.full, 'checkpoint + tail equals a full replay');
  } finally {
    await f.cleanup();
  }
});

test.run();

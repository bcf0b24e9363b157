/**
 * start, stop and exec through the engine on the fake backend: the ops the workshop chart decides,
 * what the journal records (the wanted status), what reconciliation does with a workshop found
 * stopped after a reboot, and exec's refusals (nothing journaled).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Writable } from 'node:stream';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { isAtelierError } from '../../machines/errors.ts';
import { codeOf, fixture, sdk, spec } from './helpers.ts';

const SPEC = spec([sdk('ros2', 'humble')]);

function sink(): Writable & { text: () => string } {
  const chunks: Buffer[] = [];
  const w = new Writable({ write: (c, _e, cb) => (chunks.push(Buffer.from(c)), cb()) }) as Writable & { text: () => string };
  w.text = () => Buffer.concat(chunks).toString('utf8');
  return w;
}


const status = async (f: Awaited<ReturnType<typeof fixture>>, name: string) => (await f.backend.inspect({ space: 'workshops', name: f.engine.folded.workshops[name]!.instance }))?.status;

test('launch leaves the workshop running and wanted running; stop and start are journaled ops of one step', async () => {
  const f = await fixture();
  try {
    const w = await f.engine.launch(SPEC);
    assert.is(w.running, true);
    assert.is(await status(f, 'nav2'), 'running');
    const stopped = await f.engine.stop('nav2');
    assert.is(stopped.running, false);
    assert.is(stopped.status, 'ready');
    assert.is(await status(f, 'nav2'), 'stopped');
    const started = await f.engine.start('nav2');
    assert.is(started.running, true);
    assert.is(await status(f, 'nav2'), 'running');
    const kinds = f.backend.calls.filter((c) => c.kind === 'start' || c.kind === 'stop').map((c) => c.kind);
    assert.equal(kinds.slice(-2), ['stop', 'start']);
    // Idempotent: a start of a running workshop is accepted and changes nothing.
    assert.is((await f.engine.start('nav2')).running, true);
  } finally {
    await f.cleanup();
  }
});

test('start and stop of a missing, busy or lost workshop are refused with their codes, journaling nothing', async () => {
  const f = await fixture();
  try {
    assert.is(await codeOf(f.engine.start('nope')), 'NOT_FOUND');
    assert.is(await codeOf(f.engine.stop('nope')), 'NOT_FOUND');
    assert.is(await codeOf(f.engine.start('Bad_Name')), 'INVALID_NAME');
    await f.engine.launch(SPEC);
    const seq = f.engine.folded.seq;
    assert.is(await codeOf(f.engine.stop('nope')), 'NOT_FOUND');
    assert.is(f.engine.folded.seq, seq);
  } finally {
    await f.cleanup();
  }
});

test('a reboot: a workshop wanted running is started again by reconciliation, one stopped with stop stays stopped', async () => {
  const f = await fixture();
  try {
    await f.engine.launch(SPEC);
    await f.engine.launch(spec([sdk('ros2', 'humble')], { name: 'quiet' }));
    await f.engine.stop('quiet');
    await f.engine.close();
    f.backend.reboot();
    rmSync(f.runDir, { recursive: true, force: true });
    assert.is((await f.backend.inspect({ space: 'workshops', name: 'nav2-1a2b3c4d' }))?.status, 'stopped');
    const e = await f.reopen();
    assert.is(await status(f, 'nav2'), 'running');
    assert.is(await status(f, 'quiet'), 'stopped');
    assert.is(e.folded.workshops['nav2']!.running, true);
    assert.is(e.folded.workshops['quiet']!.running, false);
    // The restart is an op of kind start, with its reason, in the journal.
    const records = await journalOf(f);
    const restart = records.find((r) => r.type === 'op.started' && r.data.kind === 'start');
    assert.ok(restart, 'an op.started of kind start');
    assert.match(String(restart!.data.reason), /found stopped/);
    const reconciled = records.filter((r) => r.type === 'engine.reconciled').pop();
    assert.is(reconciled?.data.restarted, 1);
    // Reopening again restarts nothing: the workshop is running.
    await f.engine.close();
    await f.reopen();
    const again = (await journalOf(f)).filter((r) => r.type === 'op.started' && r.data.kind === 'start');
    assert.is(again.length, 1);
  } finally {
    await f.cleanup();
  }
});

test('exec streams what the command writes and returns its status; nothing is journaled', async () => {
  const f = await fixture();
  try {
    await f.engine.launch(SPEC);
    const seq = f.engine.folded.seq;
    const out = sink();
    const err = sink();
    const p = await f.engine.exec('nav2', { command: ['sh', '-c', 'echo out; echo err >&2; exit 3'], stdout: out, stderr: err });
    assert.is(await p.exit, 3);
    assert.is(out.text(), 'out\n');
    assert.is(err.text(), 'err\n');
    const q = await f.engine.exec('nav2', { command: ['cat', '/etc/ros2'], stdout: out, stderr: err });
    assert.is(await q.exit, 0);
    assert.match(out.text(), /humble/);
    assert.is(f.engine.folded.seq, seq);
  } finally {
    await f.cleanup();
  }
});

test('exec is refused with a code: stopped (naming atelier start), missing, no command, a terminal on the fake', async () => {
  const f = await fixture();
  try {
    await f.engine.launch(SPEC);
    const io = { stdout: sink(), stderr: sink() };
    assert.is(await codeOf(f.engine.exec('nope', { command: ['true'], ...io })), 'NOT_FOUND');
    assert.is(await codeOf(f.engine.exec('nav2', { command: [], ...io })), 'INVALID_ARGUMENT');
    assert.is(await codeOf(f.engine.exec('nav2', { command: ['sh'], terminal: { cols: 80, rows: 24 }, ...io })), 'INVALID_ARGUMENT');
    await f.engine.stop('nav2');
    const seq = f.engine.folded.seq;
    try {
      await f.engine.exec('nav2', { command: ['true'], ...io });
      assert.unreachable('exec in a stopped workshop');
    } catch (e) {
      assert.ok(isAtelierError(e, 'FAILED_PRECONDITION'));
      assert.match((e as Error).message, /atelier start nav2/);
    }
    assert.is(f.engine.folded.seq, seq);
  } finally {
    await f.cleanup();
  }
});

/** The durable journal's records, read as the debugger reads them (records from every segment). */
async function journalOf(f: Awaited<ReturnType<typeof fixture>>): Promise<Array<{ type: string; data: Record<string, unknown> }>> {
  const { readRecords } = await import('../../replay/image.ts');
  return (await readRecords(join(f.stateDir, 'journal'))).records as never;
}

test.run();

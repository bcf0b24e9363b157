/**
 * The replay debugger's reading commands: the listing's filters, `at`, `diff`, `why` and `bisect`,
 * on golden journals and on journals written here; a damaged journal shows what came before the
 * damage; nothing is ever written; bad input gets its code.
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runCli } from '../support/cli.ts';
import { snapshot as tree } from '../support/tree.ts';
import { openJournal } from '../../events/journal.ts';
import { fixture, V1, V2 } from '../engine/helpers.ts';

const GOLDEN = join(import.meta.dirname, '../../fixtures/journals');

const cli = runCli;

/** What "writes nothing" is checked against: bytes, modes and modification times. */
const snapshot = (dir: string) => tree(dir, { mtimes: true });

const tmp = () => mkdtempSync(join(tmpdir(), 'atelier-replay-'));

test('filters: --failures, --op, --type (with a family) and --workshop keep only what they name', async () => {
  const j = join(GOLDEN, 'v2-random-2');
  const failures = await cli(['--json', 'replay', '--journal', j, '--failures']);
  assert.is(failures.code, 0);
  assert.ok(failures.json.events.length > 10);
  for (const e of failures.json.events) assert.ok(['effect.failed', 'op.phase', 'op.finished', 'object.missing', 'effect.observed'].includes(e.type), e.type);
  assert.ok(failures.json.events.every((e: any) => e.type !== 'op.finished' || e.data.outcome !== 'done'));
  const op = await cli(['--json', 'replay', '--journal', j, '--op', 'op-24', '--type', 'op.*,effect.failed']);
  assert.equal([...new Set(op.json.events.map((e: any) => e.data.op))], ['op-24']);
  assert.ok(op.json.events.every((e: any) => e.type.startsWith('op.') || e.type === 'effect.failed'));
  assert.ok(op.json.events.some((e: any) => e.type === 'effect.failed'));
  const ws = await cli(['--json', 'replay', '--journal', j, '--events', '--workshop', 'ros']);
  assert.ok(ws.json.events.length > 0);
  assert.ok(ws.json.events.every((e: any) => e.key === 'ros' || e.data.workshop === 'ros' || e.data.object?.workshop === 'ros'), 'only records about ros');
  assert.equal(Object.keys(ws.json.state.workshops), ['ros']);
  const bad = await cli(['--json', 'replay', '--journal', j, '--type', 'nonsense']);
  assert.is(bad.code, 2);
  assert.is(bad.json.error.code, 'INVALID_ARGUMENT');
});

test('at SEQ is the state right after that record; diff A B is what changed in between', async () => {
  const f = await fixture();
  try {
    await f.engine.launch(V1);
    const afterLaunch = f.engine.state.seq;
    await f.engine.refresh(V2);
    const end = f.engine.state.seq;
    await f.engine.close();
    const at = await cli(['--state-dir', f.stateDir, '--json', 'replay', 'at', String(afterLaunch)]);
    assert.is(at.code, 0);
    assert.is(at.json.seq, afterLaunch);
    assert.is(at.json.record.seq, afterLaunch);
    assert.is(at.json.record.type, 'op.finished');
    assert.equal(at.json.state.workshops.nav2.sdks.map((l: { hash: string }) => l.hash), V1.sdks.map((s) => s.hash));
    const zero = await cli(['--state-dir', f.stateDir, '--json', 'replay', 'at', '0']);
    assert.equal(zero.json.state.workshops, {});
    const d = await cli(['--state-dir', f.stateDir, '--json', 'replay', 'diff', String(afterLaunch), String(end)]);
    assert.is(d.code, 0);
    assert.is(d.json.between, end - afterLaunch);
    const paths = d.json.changes.map((c: { path: string }) => c.path);
    assert.ok(paths.some((p: string) => p.startsWith('workshops.nav2.sdks')), paths.join(' '));
    const sdkChange = d.json.changes.find((c: any) => c.path.startsWith('workshops.nav2.sdks') && c.op === 'change');
    assert.ok(sdkChange, 'a refresh changes the SDK layers');
    assert.not.equal(sdkChange.from, sdkChange.to);
    const same = await cli(['--state-dir', f.stateDir, '--json', 'replay', 'diff', String(end), String(end)]);
    assert.equal(same.json.changes, []);
    const back = await cli(['--state-dir', f.stateDir, '--json', 'replay', 'diff', String(end), String(afterLaunch)]);
    assert.is(back.json.changes.length, d.json.changes.length, 'a reversed diff has as many changes');
    const text = await cli(['--state-dir', f.stateDir, 'replay', 'diff', String(afterLaunch), String(end)]);
    assert.match(text.out, /^~ workshops\.nav2\.sdks/m);
    const past = await cli(['--state-dir', f.stateDir, '--json', 'replay', 'at', String(end + 1)]);
    assert.is(past.code, 2);
    assert.is(past.json.error.code, 'NOT_FOUND');
    assert.is((await cli(['--state-dir', f.stateDir, 'replay', 'diff', 'x', '3'])).code, 2);
  } finally {
    await f.cleanup();
  }
});

test('why explains a failed refresh that was undone: the failed step, its code, the undo steps', async () => {
  const r = await cli(['--json', 'replay', '--journal', join(GOLDEN, 'v2-refresh-failed-undone'), 'why', 'nav2']);
  assert.is(r.code, 0);
  assert.is(r.json.status, 'ready');
  const refresh = r.json.ops.find((o: any) => o.kind === 'refresh');
  assert.ok(refresh, 'the refresh is in the story');
  assert.is(refresh.outcome, 'undone');
  assert.ok(refresh.lines.some((l: any) => /FAILED with EXEC_FAILED/.test(l.text)), 'names the failed step and its code');
  assert.ok(refresh.lines.some((l: any) => /undone/.test(l.text)));
  assert.is(r.json.because.seq, refresh.last, 'the status comes from the refresh ending');
});

test('why names what reconciliation observed and the row of the table that decided', async () => {
  for (const c of ['v2-crash-copy', 'v2-crash-exec', 'v2-crash-remove']) {
    const r = await cli(['--json', 'replay', '--journal', join(GOLDEN, c), 'why', 'nav2']);
    assert.is(r.code, 0, c);
    const lines = r.json.ops.flatMap((o: any) => o.lines.map((l: any) => l.text));
    const probe = lines.find((t: string) => /reconciliation probed/.test(t));
    assert.ok(probe, `${c}: the probe is explained`);
    assert.match(probe, /row "[a-z-]+" of the reconciliation table decided (done|redo|delete-redo|fail|unknown)/);
  }
  // A layer removed behind the engine's back: the next start found it missing (record 16); a refresh repaired it later.
  const missing = await cli(['--json', 'replay', '--journal', join(GOLDEN, 'v2-missing-layer'), 'why', 'nav2', '--until', '16']);
  assert.is(missing.json.status, 'broken');
  assert.ok(missing.json.observations.some((l: any) => /missing on the backend/.test(l.text)));
  assert.match(missing.json.because.text, /missing/);
  const none = await cli(['--json', 'replay', '--journal', join(GOLDEN, 'v2-launch'), 'why', 'nope']);
  assert.is(none.code, 2);
  assert.is(none.json.error.code, 'NOT_FOUND');
});

test('bisect finds the first record after which an invariant fails; exit 0 when none does', async () => {
  const dir = tmp();
  try {
    cpSync(join(GOLDEN, 'v2-launch', 'state'), join(dir, 'state'), { recursive: true });
    const ok = await cli(['--json', 'replay', '--journal', join(dir, 'state'), 'bisect']);
    assert.is(ok.code, 0);
    assert.is(ok.json.failure, null);
    assert.match((await cli(['replay', '--journal', join(dir, 'state'), 'bisect'])).out, /^no invariant fails/);
    // A record that loses a ready workshop's layer without breaking it: the `held` invariant fails there.
    const state = JSON.parse(readFileSync(join(GOLDEN, 'v2-launch', 'folded.json'), 'utf8'));
    const layer = state.workshops.nav2.sdks[0].layer;
    const { journal } = await openJournal({ dir: join(dir, 'state', 'journal'), durable: true, checkpointDir: join(dir, 'ckpt') });
    const [rec] = await journal.append([{ type: 'object.missing', key: 'nav2', data: { object: { ref: { space: 'layers', name: layer }, kind: 'sdk', workshop: 'nav2' }, at: '2026-12-05T13:00:00.000Z' } }]);
    await journal.append([{ type: 'engine.reconciled', key: 'engine', data: { at: '2026-12-05T13:00:00.001Z', pending: 0, orphans: 0, missing: 1 } }]);
    await journal.close();
    const bad = await cli(['--json', 'replay', '--journal', join(dir, 'state'), 'bisect']);
    assert.is(bad.code, 1);
    assert.is(bad.json.failure.seq, rec!.seq);
    assert.is(bad.json.failure.invariant, 'held');
    assert.ok(bad.json.failure.changes.some((c: any) => c.path === `objects.layers/${layer}.state` && c.to === 'missing'));
    const other = await cli(['--json', 'replay', '--journal', join(dir, 'state'), 'bisect', '--invariant', 'stash', '--invariant', 'one-op']);
    assert.is(other.code, 0, 'the named invariants hold');
    const unknown = await cli(['--json', 'replay', '--journal', join(dir, 'state'), 'bisect', '--invariant', 'nope']);
    assert.is(unknown.json.error.code, 'INVALID_ARGUMENT');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a corrupt journal shows every record before the damage and where the damage is, and stays as it was', async () => {
  const dir = tmp();
  try {
    cpSync(join(GOLDEN, 'v2-refresh-reuse', 'state'), join(dir, 'state'), { recursive: true });
    const seg = join(dir, 'state', 'journal', readdirSync(join(dir, 'state', 'journal')).filter((n) => n.endsWith('.jsonl')).sort()[0]!);
    const lines = readFileSync(seg, 'utf8').split('\n');
    lines[9] = lines[9]!.replace('"at":"', '"at":"X'); // the seal no longer matches: corruption, not a torn write
    writeFileSync(seg, lines.join('\n'));
    const before = snapshot(dir);
    for (const args of [['replay', '--events'], ['replay', 'at', '5'], ['replay', 'diff', '1', '9'], ['replay', 'why', 'nav2'], ['replay', 'bisect']]) {
      const r = await cli(['--json', args[0]!, '--journal', join(dir, 'state'), ...args.slice(1)]);
      assert.is(r.code, 0, `${args.join(' ')}: ${r.out}`);
      assert.is(r.json.damage.kind, 'corrupt');
      assert.is(r.json.damage.code, 'JOURNAL_CORRUPT');
      assert.is(r.json.damage.seq, 10);
      assert.is(r.json.last, 9, 'everything before the damage');
    }
    const text = await cli(['replay', '--journal', join(dir, 'state')]);
    assert.match(text.out, /CORRUPT at record 10/);
    const past = await cli(['--json', 'replay', '--journal', join(dir, 'state'), 'at', '12']);
    assert.is(past.json.error.code, 'NOT_FOUND');
    assert.equal(snapshot(dir), before, 'the debugger wrote nothing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the debugger takes no lock: it reads a state directory an engine holds', async () => {
  const f = await fixture();
  try {
    await f.engine.launch(V1);
    for (const args of [['replay'], ['replay', 'why', 'nav2'], ['replay', 'bisect'], ['replay', 'at', '3'], ['replay', 'diff', '0', '3']]) {
      const r = await cli(['--state-dir', f.stateDir, '--run-dir', f.runDir, '--json', ...args]);
      assert.is(r.code, 0, `${args.join(' ')}: ${r.out}`);
    }
  } finally {
    await f.cleanup();
  }
});

test('every golden journal opens in every subcommand: listing, at, diff, why, bisect, reconcile and html', async () => {
  const cases = readdirSync(GOLDEN).filter((n) => n !== 'README.md');
  assert.ok(cases.length >= 76);
  const out = tmp();
  const before = snapshot(GOLDEN);
  try {
    for (const c of cases) await everySubcommand(c, out);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  assert.equal(snapshot(GOLDEN), before, 'no golden journal was written to');
});

/** Each subcommand on a golden case (and its crash image); the inventory is the case's backend's, taken as alice. */
async function everySubcommand(c: string, out: string): Promise<void> {
  {
    for (const dir of [join(GOLDEN, c), join(GOLDEN, c, 'image')]) {
      let listing;
      try {
        statSync(dir);
      } catch {
        continue;
      }
      listing = await cli(['--json', 'replay', '--journal', dir, '--events']);
      assert.is(listing.code, 0, `${dir}: ${listing.out}`);
      const last = listing.json.last as number;
      assert.is(listing.json.events.length, listing.json.records);
      assert.is((await cli(['--json', 'replay', '--journal', dir, 'at', String(Math.floor(last / 2))])).code, 0, dir);
      assert.is((await cli(['--json', 'replay', '--journal', dir, 'diff', '0', String(last)])).code, 0, dir);
      const bisect = await cli(['--json', 'replay', '--journal', dir, 'bisect']);
      assert.is(bisect.code, 0, `${dir}: ${bisect.json?.failure?.message}`);
      const names = [...new Set(listing.json.events.filter((e: any) => e.type === 'op.started').map((e: any) => e.data.workshop))] as string[];
      for (const n of names) assert.is((await cli(['--json', 'replay', '--journal', dir, 'why', n])).code, 0, `${dir} why ${n}`);
      const html = await cli(['--json', 'replay', '--journal', dir, 'html', '-o', join(out, 'timeline.html')]);
      assert.is(html.code, 0, `${dir} html: ${html.out}`);
      assert.is(html.json.last, last);
      const inventory = await inventoryOf(dir, out);
      const rec = await cli(['--json', 'replay', '--journal', dir, 'reconcile', '--inventory', inventory]);
      assert.is(rec.code, 0, `${dir} reconcile: ${rec.out}`);
      assert.ok(rec.json.decisions.some((d: any) => d.type === 'engine.reconciled'), `${dir}: reconciliation ends with engine.reconciled`);
    }
  }
}

/** `atelier inventory --owner alice --json` on a copy of the case's fake backend. */
async function inventoryOf(dir: string, out: string): Promise<string> {
  const stateDir = join(out, 'inv-state');
  rmSync(stateDir, { recursive: true, force: true });
  mkdirSync(stateDir, { recursive: true });
  cpSync(join(dir, 'backend.json'), join(stateDir, 'fake-backend.json'));
  const r = await cli(['--backend', 'fake', '--state-dir', stateDir, '--run-dir', join(out, 'inv-run'), '--json', 'inventory', '--owner', 'alice']);
  assert.is(r.code, 0, r.out);
  const file = join(out, 'inventory.json');
  writeFileSync(file, r.out);
  return file;
}

test.run();

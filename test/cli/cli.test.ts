/**
 * The `atelier` CLI end to end: each test spawns `node bin/atelier.js --backend fake --state-dir
 * TMP --run-dir TMP2 ...` as a child process and checks exit codes, `--json` output and that bad
 * input leaves the journal byte-for-byte unchanged.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createProgress } from '../../cli/progress.ts';
import type { Progress } from '../../engine/api.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/atelier.js');
const quick = path.join(root, 'fixtures/quickstart/workshop.yaml');
const quickV2 = path.join(root, 'fixtures/quickstart/workshop-v2.yaml');
const bad = (f: string): string => path.join(root, 'fixtures/bad', f);

// Tests that open an engine need the engine and the fake backend; until they exist they are
// registered as skipped (and say so), so the rest of the suite stays usable.
const ready = existsSync(path.join(root, 'engine/index.ts')) && existsSync(path.join(root, 'backends/fake/index.ts'));
const etest = ready ? test : test.skip;
if (!ready) console.warn('cli.test: engine/index.ts or backends/fake/index.ts missing: engine tests skipped');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface Dirs {
  base: string;
  state: string;
  run: string;
}

async function dirs(): Promise<Dirs> {
  const base = await mkdtemp(path.join(tmpdir(), 'atelier-cli-'));
  return { base, state: path.join(base, 'state'), run: path.join(base, 'run') };
}

/** Run the CLI on the fake backend in `d`. */
function atelier(d: Dirs, args: string[], extra: string[] = ['--backend', 'fake']): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...extra, '--state-dir', d.state, '--run-dir', d.run, ...args],
      { cwd: root, env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** The single JSON object a `--json` command prints. */
function json(r: Run): any {
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 1, `expected one line of JSON on stdout, got: ${r.stdout}\nstderr: ${r.stderr}`);
  return JSON.parse(lines[0]);
}

function expectCode(r: Run, code: number): void {
  assert.is(r.code, code, `exit ${r.code}, wanted ${code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/** Every file of the journal directory with its bytes (empty map when there is none). */
async function journalBytes(d: Dirs): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const dir = path.join(d.state, 'journal');
  if (!existsSync(dir)) return out;
  for (const f of (await readdir(dir)).sort()) out.set(f, (await readFile(path.join(dir, f))).toString('base64'));
  return out;
}

/** Map with at most `n` at a time: the bad-input cases are independent, and each spawn is slow. */
async function pool<T, R>(items: readonly T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: n }, worker));
  return out;
}

const cleanup: string[] = [];
test.after(async () => {
  for (const d of cleanup) await rm(d, { recursive: true, force: true });
});
async function fresh(): Promise<Dirs> {
  const d = await dirs();
  cleanup.push(d.base);
  return d;
}

// ---------------------------------------------------------------- no engine needed

test('--help lists every command and the exit codes; exit 0', async () => {
  const r = await atelier(await fresh(), ['--help']);
  expectCode(r, 0);
  for (const c of ['launch', 'refresh', 'stash', 'unstash', 'restore', 'remove', 'list', 'show', 'gc', 'run', 'base', 'reconcile', 'Exit codes:', '--json', '--state-dir', '--run-dir', '--base-default']) {
    assert.ok(r.stdout.includes(c), `--help should mention ${c}`);
  }
});

test('README shows exactly what --help prints', async () => {
  const r = await atelier(await fresh(), ['--help'], []);
  const readme = await readFile(path.join(root, 'README.md'), 'utf8');
  assert.ok(readme.includes(`$ atelier --help\n${r.stdout}`), 'README.md "CLI reference" must be the current `atelier --help` output');
});

test('unknown command or option, missing argument, bad --backend: exit 2', async () => {
  const d = await fresh();
  await pool([['frobnicate'], ['list', '--bogus'], ['show'], ['--backend', 'nope', 'list'], []], 4, async (args) => expectCode(await atelier(d, args, []), 2));
  const r = await atelier(d, ['--json', 'lanch', quick]);
  expectCode(r, 2);
  const o = json(r);
  assert.is(o.ok, false);
  assert.is(o.error.code, 'INVALID_ARGUMENT');
  assert.ok(o.error.message.includes('lanch'));
});

const badInputs: [args: string[], mention: string, code: string][] = [
  [['show', 'x'.repeat(41)], 'x'.repeat(41), 'INVALID_NAME'],
  [['show', 'Nav2'], 'Nav2', 'INVALID_NAME'],
  [['stash', 'a..b'], 'a..b', 'INVALID_NAME'],
  [['remove', '../x'], '../x', 'INVALID_NAME'],
  [['unstash', '--', '-x'], '-x', 'INVALID_NAME'],
  [['restore', 'quickstart', 'Ros2'], 'Ros2', 'INVALID_NAME'],
  [['restore', 'quickstart', 'agent'], 'agent', 'INVALID_NAME'],
  [['run', 'a b'], 'a b', 'INVALID_NAME'],
  [['run', 'quickstart', '--scratch', 'Bad Key'], 'Bad Key', 'INVALID_ARGUMENT'],
  [['launch', bad('unknown-sdk.yaml')], 'ros3', 'INVALID_SPEC'],
  [['launch', bad('empty.yaml')], 'empty.yaml', 'INVALID_SPEC'],
  [['launch', bad('malformed.yaml')], 'malformed.yaml', 'INVALID_SPEC'],
  [['launch', bad('missing.yaml')], 'missing.yaml', 'INVALID_SPEC'],
  [['launch', bad('bad-name.yaml')], 'Nav2', 'INVALID_NAME'],
  [['launch', bad('long-name.yaml')], 'abcdefghij', 'INVALID_NAME'],
  [['launch', bad('bad-sdk-name.yaml')], 'a..b', 'INVALID_NAME'],
  [['refresh', bad('duplicate-sdk.yaml')], 'ros2', 'INVALID_SPEC'],
  [['refresh', bad('unknown-sdk.yaml')], 'did you mean "ros2"?', 'INVALID_SPEC'],
  [['base', 'add', 'bad name', '/'], 'bad name', 'INVALID_NAME'],
];

test('bad input on a fresh state directory: exit 2, the message names it, nothing is created', async () => {
  const d = await fresh();
  await pool(badInputs, 4, async ([args, mention, code]) => {
    const r = await atelier(d, args);
    expectCode(r, 2);
    assert.ok(r.stderr.includes(mention), `stderr should name ${mention}: ${r.stderr}`);
    assert.ok(r.stderr.includes(code), `stderr should carry ${code}: ${r.stderr}`);
    const j = await atelier(d, ['--json', ...args]);
    expectCode(j, 2);
    const o = json(j);
    assert.equal([o.ok, o.error.code, o.error.exitCode], [false, code, 2]);
    assert.ok(o.error.message.includes(mention));
    assert.is(j.stderr, '', 'JSON mode prints errors on stdout only');
  });
  assert.not.ok(existsSync(d.state), 'bad input must not create the state directory');
});

test('progress: a TTY gets one rewritten line per step, a pipe plain lines', () => {
  let t = 0;
  const chunks: string[] = [];
  const p = (status: Progress['status'], step: number, label: string): Progress => ({
    op: 'op1', kind: 'launch', workshop: 'w', phase: 'do', step, total: 2, label, status, at: '',
  });
  const tty = createProgress({ mode: 'tty', stream: { write: (s: string) => chunks.push(s) }, now: () => t, intervalMs: 10_000 });
  tty.onProgress(p('started', 0, 'create w-1'));
  t = 1500;
  tty.onProgress(p('done', 0, 'create w-1'));
  tty.onProgress(p('started', 1, 'setup-base ros2'));
  tty.stop();
  const text = chunks.join('');
  assert.ok(text.includes('\r\x1b[2K'));
  assert.ok(text.includes('✓ 1/2 create w-1  1.5s\n'));
  assert.ok(text.includes('✗ 2/2 setup-base ros2'));

  const lines: string[] = [];
  const plain = createProgress({ mode: 'plain', stream: { write: (s: string) => lines.push(s) }, now: () => t });
  plain.onProgress(p('started', 0, 'create w-1'));
  plain.onProgress(p('failed', 0, 'create w-1'));
  assert.equal(lines, ['start 1/2 create w-1\n', 'FAILED  1/2 create w-1 (0.0s)\n']);
  assert.not.ok(lines.join('').includes('\x1b'));
});

// ---------------------------------------------------------------- with the engine

etest('the quick start on the fake: launch, show, list, refresh, stash, unstash, restore, run, gc, reconcile, remove', async () => {
  const d = await fresh();
  let r = await atelier(d, ['--json', 'launch', quick]);
  expectCode(r, 0);
  let o = json(r);
  assert.is(o.ok, true);
  assert.is(o.workshop.name, 'quickstart');
  assert.is(o.workshop.defaultBase, true);
  assert.equal(o.workshop.sdks.map((s: { sdk: string }) => s.sdk), ['ros2', 'nav2']);
  const ros2Layer = o.workshop.sdks[0].layer;

  r = await atelier(d, ['show', 'quickstart']);
  expectCode(r, 0);
  assert.ok(r.stdout.includes('backend default'), r.stdout);
  o = json(await atelier(d, ['--json', 'show', 'quickstart']));
  assert.is(o.workshop.defaultBase, true);
  assert.type(o.workshop.base, 'string');

  o = json(await atelier(d, ['--json', 'list']));
  assert.equal(o.workshops.map((w: { name: string }) => w.name), ['quickstart']);

  r = await atelier(d, ['--json', 'refresh', quickV2]);
  expectCode(r, 0);
  o = json(r);
  assert.equal(o.workshop.sdks.map((s: { sdk: string }) => s.sdk), ['ros2', 'nav2-next']);
  assert.is(o.workshop.sdks[0].layer, ros2Layer, 'refresh keeps the unchanged first SDK layer');
  assert.is(o.workshop.stash, null, 'a finished refresh drops its stash');

  r = await atelier(d, ['--json', 'stash', 'quickstart']);
  expectCode(r, 0);
  assert.ok(json(r).workshop.stash);
  r = await atelier(d, ['--json', 'unstash', 'quickstart']);
  expectCode(r, 0);
  assert.is(json(r).workshop.stash, null);

  expectCode(await atelier(d, ['restore', 'quickstart', 'ros2']), 0);

  r = await atelier(d, ['--json', 'run', 'quickstart', '--script', 'echo hello']);
  expectCode(r, 0);
  o = json(r);
  assert.is(o.run.exitCode, 0);
  assert.ok(o.run.stdout.includes('hello'));
  r = await atelier(d, ['run', 'quickstart', '--script', 'exit 4']);
  expectCode(r, 1);

  r = await atelier(d, ['--json', 'gc', '--dry-run']);
  expectCode(r, 0);
  assert.is(json(r).gc.dryRun, true);
  r = await atelier(d, ['--json', 'reconcile']);
  expectCode(r, 0);
  assert.type(json(r).reconcile.pending, 'number');

  expectCode(await atelier(d, ['remove', 'quickstart']), 0);
  o = json(await atelier(d, ['--json', 'list']));
  assert.equal(o.workshops, []);
});

etest('--base-default overrides the backend default; show says it was the default; base list', async () => {
  const d = await fresh();
  let r = await atelier(d, ['--json', 'launch', quick], ['--backend', 'fake', '--base-default', 'ubuntu@24.04']);
  expectCode(r, 0);
  assert.equal([json(r).workshop.base, json(r).workshop.defaultBase], ['ubuntu@24.04', true]);
  r = await atelier(d, ['show', 'quickstart']);
  assert.match(r.stdout, /base\s+ubuntu@24\.04 \(backend default/);
  r = await atelier(d, ['--json', 'base', 'list']);
  expectCode(r, 0);
  assert.ok(json(r).bases.includes('busybox'));
  assert.is(json(r).defaultBase, 'busybox');
  r = await atelier(d, ['--json', 'base', 'add', 'mine', root]);
  expectCode(r, 2); // the fake has no registrable bases
  assert.ok(json(r).error.message.includes('mine'));
  expectCode(await atelier(d, ['list'], ['--backend', 'fake', '--base-default', 'two words']), 2);
});

etest('progress on a pipe: plain lines on stderr, the result on stdout', async () => {
  const d = await fresh();
  const r = await atelier(d, ['launch', quick]);
  expectCode(r, 0);
  assert.match(r.stderr, /^done\s+\S.* \(\d+\.\ds\)$/m);
  assert.not.ok(r.stderr.includes('\x1b'), 'no escape codes when stderr is not a TTY');
  assert.ok(r.stdout.includes('quickstart'));
});

etest('exit 1: a hook that exits non-zero fails the launch and it is undone', async () => {
  const d = await fresh();
  const r = await atelier(d, ['--json', 'launch', bad('hook-fails.yaml')]);
  expectCode(r, 1);
  const o = json(r);
  assert.is(o.ok, false);
  assert.is(o.error.exitCode, 1);
  assert.ok(['OP_FAILED', 'ABORTED', 'BROKEN'].includes(o.error.code), o.error.code);
  assert.equal(json(await atelier(d, ['--json', 'list'])).workshops, []);
});

etest('exit 2: bad input after a launch leaves the journal byte-for-byte unchanged', async () => {
  const d = await fresh();
  expectCode(await atelier(d, ['launch', quick]), 0);
  const before = await journalBytes(d);
  assert.ok(before.size > 0, 'the launch journaled something');
  await pool(badInputs, 4, async ([args, mention]) => {
    const r = await atelier(d, args);
    expectCode(r, 2);
    assert.ok(r.stderr.includes(mention), `stderr should name ${mention}: ${r.stderr}`);
  });
  assert.equal(await journalBytes(d), before);
});

etest('exit 2: a workshop or SDK that does not exist, a command the state does not allow', async () => {
  const d = await fresh();
  expectCode(await atelier(d, ['launch', quick]), 0);
  let r = await atelier(d, ['--json', 'show', 'quickstrat']);
  expectCode(r, 2);
  assert.is(json(r).error.code, 'NOT_FOUND');
  assert.ok(json(r).error.message.includes('quickstrat'));
  expectCode(await atelier(d, ['stash', 'nope']), 2);
  expectCode(await atelier(d, ['restore', 'quickstart', 'ros3']), 2);
  expectCode(await atelier(d, ['launch', quick]), 2); // already exists
  r = await atelier(d, ['--json', 'unstash', 'quickstart']); // no stash to unstash
  expectCode(r, 2);
  assert.ok(json(r).error.message.includes('quickstart'));
});

etest('exit 3: the state directory is locked by another engine (reading is not: list takes no lock)', async () => {
  const d = await fresh();
  expectCode(await atelier(d, ['launch', quick]), 0);
  const { acquireLock } = (await import('../../events/lock.ts')) as {
    acquireLock: (dir: string) => Promise<{ release(): Promise<void> }>;
  };
  const lock = await acquireLock(d.state);
  try {
    const r = await atelier(d, ['--json', 'stash', 'quickstart']);
    expectCode(r, 3);
    assert.is(json(r).error.code, 'LOCKED');
    assert.ok(json(r).error.message.includes(String(process.pid)), 'the message names the holder');
    expectCode(await atelier(d, ['list']), 0);
  } finally {
    await lock.release();
  }
  expectCode(await atelier(d, ['stash', 'quickstart']), 0);
});

etest('exit 4: a corrupt record in the middle of the journal', async () => {
  const d = await fresh();
  expectCode(await atelier(d, ['launch', quick]), 0);
  const dir = path.join(d.state, 'journal');
  const seg = (await readdir(dir)).filter((f) => f.endsWith('.jsonl')).sort()[0];
  assert.ok(seg, 'a journal segment exists');
  const file = path.join(dir, seg);
  const lines = (await readFile(file, 'utf8')).split('\n');
  assert.ok(lines.length > 4, 'the launch wrote several records');
  const mid = Math.floor((lines.length - 1) / 2);
  // Same length, still JSON, wrong checksum: corruption, not a torn tail.
  lines[mid] = lines[mid].replace('"quickstart"', '"quickstarT"');
  await writeFile(file, lines.join('\n'));
  const r = await atelier(d, ['--json', 'list']);
  expectCode(r, 4);
  assert.is(json(r).error.code, 'JOURNAL_CORRUPT');
});

etest('exit 5: the backend is unavailable, and nothing is written', async () => {
  const d = await fresh();
  const r = await atelier(d, ['--json', 'launch', quick], ['--backend', 'lxd', '--lxd-socket', '/nonexistent/lxd.socket']);
  expectCode(r, 5);
  assert.is(json(r).error.code, 'UNAVAILABLE');
  const h = await atelier(d, ['launch', quick], ['--backend', 'lxd', '--lxd-socket', '/nonexistent/lxd.socket']);
  expectCode(h, 5);
  assert.ok(h.stderr.length > 0);
  assert.not.ok(existsSync(d.state), 'no state directory was created');
});

etest('a state directory that holds no state: reading it is an error (exit 2), and creates nothing', async () => {
  const d = await fresh();
  for (const args of [['list'], ['show', 'quickstart'], ['stash', 'quickstart'], ['gc'], ['reconcile']]) {
    const r = await atelier(d, ['--json', ...args]);
    expectCode(r, 2);
    assert.is(json(r).error.code, 'NOT_FOUND', args.join(' '));
    assert.match(json(r).error.message, /no atelier state in/);
  }
  assert.not.ok(existsSync(d.state), 'no state directory was created');
});

test.run();

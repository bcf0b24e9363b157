/**
 * The CLI as atelierd's client: with a daemon answering for the state directory, commands go
 * through it, with the same `--json` output and exit codes as in process; Ctrl-C aborts the change.
 * And reading is free: without a daemon, `list` and `show` leave the state directory byte-identical,
 * and a command refused for bad input writes nothing at all.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { daemon, treeDigest } from '../daemon/helpers.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/atelier.js');
const quick = path.join(root, 'fixtures/quickstart/workshop.yaml');
const quickV2 = path.join(root, 'fixtures/quickstart/workshop-v2.yaml');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function atelier(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, '--backend', 'fake', ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}

/** The quick start, with `--json`. */
const QUICKSTART: string[][] = [
  ['launch', quick],
  ['list'],
  ['show', 'quickstart'],
  ['refresh', quickV2],
  ['show', 'quickstart'],
  ['stash', 'quickstart'],
  ['unstash', 'quickstart'],
  ['run', 'quickstart', '--script', 'cat /etc/atelier/sdks'],
  ['gc', '--dry-run'],
  ['show', 'nosuch'],
  ['unstash', 'quickstart'],
  ['remove', 'quickstart'],
  ['list'],
];

/** What may differ between two runs: times, and the ids drawn at random (ops, layer suffixes, containers). */
function normal(text: string): unknown {
  return JSON.parse(
    text
      .replace(/"(at|createdAt|updatedAt)":"[^"]*"/g, '"$1":"T"')
      .replace(/op-[0-9a-z]{12}/g, 'op-X')
      .replace(/-[0-9a-f]{16}/g, '-SUFFIX')
      .replace(/"id":"[0-9a-z]{10}"/g, '"id":"C"')
      .replace(/run-[0-9a-z]{10}/g, 'run-C'),
  );
}

test('the quick start through atelierd gives the --json outputs and exit codes of the quick start in process', async () => {
  const d = await daemon();
  const local = mkdtempSync(path.join(tmpdir(), 'atelier-local-'));
  try {
    const viaDaemon = ['--state-dir', d.stateDir, '--run-dir', d.runDir, '--socket', d.socket, '--json'];
    const inProcess = ['--state-dir', path.join(local, 'state'), '--run-dir', path.join(local, 'run'), '--socket', path.join(local, 'none.sock'), '--no-daemon', '--json'];
    for (const args of QUICKSTART) {
      const a = await atelier([...viaDaemon, ...args]);
      const b = await atelier([...inProcess, ...args]);
      assert.is(a.code, b.code, `${args.join(' ')}: the same exit code (${a.stdout} / ${b.stdout})`);
      assert.equal(normal(a.stdout), normal(b.stdout), `${args.join(' ')}: the same --json output`);
    }
    // It did go through the daemon: its log holds the requests, with their change ids.
    const log = d.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.ok(log.some((l) => l.method === 'POST' && l.path === '/v1/workshops' && l.change), 'launch went through atelierd');
    assert.ok(log.some((l) => l.method === 'GET' && l.path === '/v1/workshops'), 'list went through atelierd');
  } finally {
    await d.stop();
    rmSync(d.dir, { recursive: true, force: true });
    rmSync(local, { recursive: true, force: true });
  }
});

test('through atelierd, Ctrl-C aborts the change: undone, exit 1 (ABORTED)', async () => {
  const d = await daemon({ latencyMs: 120 });
  try {
    const child = spawn(process.execPath, [bin, '--backend', 'fake', '--state-dir', d.stateDir, '--run-dir', d.runDir, '--socket', d.socket, '--json', 'launch', quick], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (x) => (out += x));
    await new Promise((r) => setTimeout(r, 600));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    assert.is(code, 1, out);
    assert.is(JSON.parse(out).error.code, 'ABORTED');
    const show = await atelier(['--state-dir', d.stateDir, '--run-dir', d.runDir, '--socket', d.socket, '--json', 'show', 'quickstart']);
    assert.is(show.code, 2, 'the aborted launch left no workshop');
  } finally {
    await d.stop();
    rmSync(d.dir, { recursive: true, force: true });
  }
});

test('without a daemon, reading and refused commands leave the state directory byte-identical', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'atelier-free-'));
  const g = ['--state-dir', path.join(dir, 'state'), '--run-dir', path.join(dir, 'run'), '--socket', path.join(dir, 'none.sock')];
  try {
    assert.is((await atelier([...g, 'launch', quick])).code, 0);
    assert.is((await atelier([...g, 'stash', 'quickstart'])).code, 0);
    const before = treeDigest(path.join(dir, 'state'));
    const refused: Array<[string[], number]> = [
      [['list'], 0],
      [['show', 'quickstart'], 0],
      [['base', 'list'], 0],
      [['replay'], 0],
      [['remove', 'nosuch'], 2],
      [['stash', 'quickstart'], 2],
      [['refresh', quick], 2],
      [['restore', 'quickstart', 'ros2'], 2],
      [['launch', quick], 2],
      [['run', 'nosuch'], 2],
      [['show', 'nosuch'], 2],
    ];
    for (const [args, code] of refused) {
      const r = await atelier([...g, '--json', ...args]);
      assert.is(r.code, code, `${args.join(' ')}: ${r.stdout}`);
      assert.is(treeDigest(path.join(dir, 'state')), before, `${args.join(' ')}: nothing written (no record, no checkpoint, no lock, no temp file)`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();

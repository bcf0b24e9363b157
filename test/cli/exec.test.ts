/**
 * `atelier start`, `stop`, `exec` and `shell` run as a user runs them: the compiled CLI as a child
 * process, in process (`--no-daemon`; atelierd's path is `test/daemon/exec.test.ts`).
 *
 * On the overlay backend (root, runc and a static catatonit: CI has them and nothing skips there):
 * the quick-start workshop is a container; exec's exit status, streams and stdin, `--env`, `--cwd`
 * and `--user`; `shell` on a real pseudo-terminal (util-linux `script`); SIGKILL of the CLI during
 * an exec leaves no process; stop and start; a host reboot (containers gone, run directory emptied)
 * then the next command that opens the engine starts the workshop again; an open shell holds no
 * lock. On the fake backend (any machine): exit statuses and the refusals with their codes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findRuntime } from '../../backends/overlay/runtime.ts';
import { releaseMounts } from '../backends/overlay-env.ts';
import { eventually, hostPids } from '../backends/overlay-runtime-env.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin/atelier.js');
const QUICKSTART = join(ROOT, 'fixtures/quickstart/workshop.yaml');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(dir: string, backend: string, args: string[], input = ''): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, '--backend', backend, '--state-dir', join(dir, 'state'), '--run-dir', join(dir, 'run'), '--no-daemon', ...args], { env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout: String(stdout), stderr: String(stderr) }),
    );
    child.stdin!.end(input);
  });
}

test('fake: exec returns the command status with stdout and stderr apart; refusals with their codes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'atelier-cli-exec-'));
  try {
    assert.is((await cli(dir, 'fake', ['launch', QUICKSTART])).code, 0);
    assert.equal(await cli(dir, 'fake', ['exec', '--env', 'WHO=me', 'quickstart', '--', 'sh', '-c', 'echo "out $WHO"; echo err >&2; exit 3']), { code: 3, stdout: 'out me\n', stderr: 'err\n' });
    const none = await cli(dir, 'fake', ['exec', 'quickstart']);
    assert.is(none.code, 2);
    const bad = await cli(dir, 'fake', ['--json', 'exec', '--env', 'no-equals', 'quickstart', '--', 'true']);
    assert.equal([bad.code, JSON.parse(bad.stdout).error.code], [2, 'INVALID_ARGUMENT']);
    const rel = await cli(dir, 'fake', ['--json', 'exec', '--cwd', 'tmp', 'quickstart', '--', 'true']);
    assert.equal([rel.code, JSON.parse(rel.stdout).error.code], [2, 'INVALID_ARGUMENT']);
    const shell = await cli(dir, 'fake', ['--json', 'shell', 'quickstart']);
    assert.equal([shell.code, JSON.parse(shell.stdout).error.code], [2, 'INVALID_ARGUMENT'], 'no terminal on stdin');
    const stopped = await cli(dir, 'fake', ['--json', 'stop', 'quickstart']);
    assert.equal([stopped.code, JSON.parse(stopped.stdout).workshop.running], [0, false]);
    const refused = await cli(dir, 'fake', ['exec', 'quickstart', '--', 'true']);
    assert.is(refused.code, 2);
    assert.match(refused.stderr, /stopped; start it first: atelier start quickstart \[FAILED_PRECONDITION\]/);
    assert.is((await cli(dir, 'fake', ['start', 'quickstart'])).code, 0);
    assert.is((await cli(dir, 'fake', ['exec', 'quickstart', '--', 'true'])).code, 0);
    const missing = await cli(dir, 'fake', ['--json', 'start', 'nosuch']);
    assert.equal([missing.code, JSON.parse(missing.stdout).error.code], [2, 'NOT_FOUND']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const found = await findRuntime();
const why = 'tools' in found ? null : found.reason;
if (why && process.env.CI) {
  test('overlay: containers must run in CI', () => {
    throw new Error(`${why}: CI runs as root with runc and catatonit installed`);
  });
} else if (why) {
  console.log(`SKIP overlay exec tests: ${why} (run as root with runc and catatonit)`);
} else {
  const dir = mkdtempSync(join(tmpdir(), 'atelier-cli-exec-ovl-'));
  const A = (args: string[], input?: string) => cli(dir, 'overlay', args, input);

  test.after(async () => {
    await A(['remove', 'quickstart']).catch(() => undefined);
    await releaseMounts(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  test('overlay: the launched workshop is a container; exec streams, stdin, env, cwd, user, exit status', async () => {
    assert.is((await A(['launch', QUICKSTART])).code, 0);
    assert.equal(await A(['exec', 'quickstart', '--', 'hostname']), { code: 0, stdout: 'quickstart\n', stderr: '' });
    assert.equal(await A(['exec', 'quickstart', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']), { code: 7, stdout: 'out\n', stderr: 'err\n' });
    assert.equal(await A(['exec', 'quickstart', '--', 'tr', 'a-z', 'A-Z'], 'piped in\n'), { code: 0, stdout: 'PIPED IN\n', stderr: '' });
    assert.equal(await A(['exec', '--env', 'A=1', '--cwd', '/etc', '--user', 'nobody', 'quickstart', '--', 'sh', '-c', 'echo "$A $(pwd) $(id -u)"']), { code: 0, stdout: '1 /etc 65534\n', stderr: '' });
    const ps = await A(['exec', 'quickstart', '--', 'ps', '-o', 'pid,comm']);
    assert.match(ps.stdout, /^\s*1 init\s*$/m, 'PID 1 is the init');
    const unknownUser = await A(['exec', '--user', 'nosuchuser', 'quickstart', '--', 'true']);
    assert.is(unknownUser.code, 2);
  });

  test('overlay: shell on a real pseudo-terminal (script), following its size; an open shell holds no lock', async () => {
    const cmd = `${process.execPath} ${BIN} --state-dir ${join(dir, 'state')} --run-dir ${join(dir, 'run')} --no-daemon shell quickstart`;
    const child = spawn('script', ['-q', '-e', '-c', `stty cols 100 rows 30; ${cmd}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const closed = new Promise<number>((r) => child.on('close', (c) => r(c ?? -1)));
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    await eventually('the shell prompt', async () => /#/.test(out), 20_000);
    // While the shell is open, another command that takes the state lock runs.
    const stop = await A(['--json', 'list']);
    assert.is(stop.code, 0);
    const gc = await A(['gc', '--dry-run']);
    assert.is(gc.code, 0, `gc beside an open shell: ${gc.stderr}`);
    child.stdin.write('echo $((6*7)); stty size; exit\n');
    assert.is(await closed, 0);
    assert.match(out, /42/);
    assert.match(out, /30 100/);
  });

  test('overlay: SIGKILL of the CLI during an exec leaves no process in the container or on the host', async () => {
    const child = spawn(process.execPath, [BIN, '--state-dir', join(dir, 'state'), '--run-dir', join(dir, 'run'), '--no-daemon', 'exec', 'quickstart', '--', 'sleep', '271'], { stdio: 'ignore' });
    await eventually('sleep 271 runs', async () => (await hostPids(['sleep', '271'])).length === 1, 20_000);
    child.kill('SIGKILL');
    await eventually('sleep 271 is gone', async () => (await hostPids(['sleep', '271'])).length === 0, 10_000);
    const inside = await A(['exec', 'quickstart', '--', 'ps', '-o', 'args']);
    assert.not.match(inside.stdout, /sleep 271/);
  });

  test('overlay: stop ends the container, exec is refused, start runs it again', async () => {
    const child = spawn(process.execPath, [BIN, '--state-dir', join(dir, 'state'), '--run-dir', join(dir, 'run'), '--no-daemon', 'exec', 'quickstart', '--', 'sleep', '272'], { stdio: 'ignore' });
    const closed = new Promise<number | null>((r) => child.on('close', (c, s) => r(c ?? (s ? 128 : null))));
    await eventually('sleep 272 runs', async () => (await hostPids(['sleep', '272'])).length === 1, 20_000);
    assert.is((await A(['stop', 'quickstart'])).code, 0);
    const exited = await closed;
    assert.ok(exited !== 0, 'the exec ended with the container');
    assert.is((await hostPids(['sleep', '272'])).length, 0);
    const refused = await A(['exec', 'quickstart', '--', 'true']);
    assert.is(refused.code, 2);
    assert.match(refused.stderr, /atelier start quickstart/);
    assert.is((await A(['start', 'quickstart'])).code, 0);
    assert.equal(await A(['exec', 'quickstart', '--', 'hostname']), { code: 0, stdout: 'quickstart\n', stderr: '' });
  });

  test('overlay: after a host reboot (containers gone, run directory emptied) the next command that opens the engine starts the workshop again; a stopped one stays stopped', async () => {
    await releaseMounts(dir); // the containers and mounts a reboot ends
    rmSync(join(dir, 'run'), { recursive: true, force: true }); // the tmpfs a reboot empties
    const before = await A(['exec', 'quickstart', '--', 'true']);
    assert.is(before.code, 2, 'reads do not start anything: exec says it is stopped');
    const r = await A(['reconcile']);
    assert.is(r.code, 0);
    assert.match(r.stdout, /1 workshop\(s\) wanted running started again/);
    assert.equal(await A(['exec', 'quickstart', '--', 'hostname']), { code: 0, stdout: 'quickstart\n', stderr: '' });
    // Stopped on purpose, it stays stopped across the next reboot.
    assert.is((await A(['stop', 'quickstart'])).code, 0);
    await releaseMounts(dir);
    rmSync(join(dir, 'run'), { recursive: true, force: true });
    const again = await A(['reconcile']);
    assert.not.match(again.stdout, /started again/);
    assert.is((await A(['exec', 'quickstart', '--', 'true'])).code, 2);
  });
}

test.run();

/**
 * atelierd as a process: its event stream and cursors, changes that wait, abort and conflict, the
 * socket's authority (a second daemon, a stale socket, another user), SIGTERM's grace, and bad
 * requests that change nothing. A real daemon on a real socket, the fake backend made slow
 * (`ATELIER_FAKE_LATENCY_MS`) where a change must still be running.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, daemon, EventStream, QUICKSTART, request, spawnDaemon, treeDigest, waitChange } from './helpers.ts';

/** `hook`: what its SDK writes; workshops with the same hook share their SDK layer (one flight per layer: the second waits for the first's build). */
const launch = (socket: string, name: string, hook = 'x') =>
  request(socket, 'POST', '/v1/workshops', { action: 'launch', spec: { name, project: `/srv/${name}`, sdks: [{ name: 'tools', 'setup-base': `echo ${hook} > "\${ATELIER_ROOTFS%/}/etc/x"` }] } });

test('events: a cursor resumes with no gap and no duplicate; volatile records are marked and numbered on their own', async () => {
  const d = await daemon();
  try {
    const first = new EventStream(d.socket, '/v1/events?after=0');
    const r = await request(d.socket, 'POST', '/v1/workshops', { action: 'launch', file: QUICKSTART });
    await waitChange(d.socket, r.body.change);
    await first.until((rs) => rs.some((x) => x.type === 'op.finished'));
    first.close();
    const durable = first.records.filter((x) => x.journal === 'durable');
    assert.equal(durable.map((x) => x.seq), durable.map((_, i) => i + 1), 'every durable record from 1, once, in order');
    const last = durable.at(-1).seq;
    const run = await request(d.socket, 'POST', '/v1/containers', { from: 'quickstart', script: 'true' });
    await waitChange(d.socket, run.body.change);
    const second = new EventStream(d.socket, `/v1/events?after=${last}`);
    await second.until((rs) => rs.some((x) => x.type === 'container.removed'));
    second.close();
    assert.ok(second.records.every((x) => x.journal === 'volatile' || x.seq > last), 'nothing at or before the cursor');
    const vol = second.records.filter((x) => x.journal === 'volatile');
    assert.equal(vol.map((x) => x.type), ['container.created', 'container.started', 'container.removed']);
    assert.equal(vol.map((x) => x.seq), [1, 2, 3]);
    const third = new EventStream(d.socket, `/v1/events?after=${last}&volatile-after=2&types=container.removed,some.future-type`);
    await third.until((rs) => rs.length >= 1);
    await new Promise((res) => setTimeout(res, 100));
    third.close();
    assert.equal(third.records.map((x) => [x.journal, x.seq, x.type]), [['volatile', 3, 'container.removed']], 'a type filter, unknown types ignored');
    assert.is((await request(d.socket, 'GET', '/v1/events?after=x')).status, 400);
  } finally {
    await d.stop();
    rmSync(d.dir, { recursive: true, force: true });
  }
});

test('changes: a second command on a busy workshop is 409 BUSY at once; other workshops run alongside; wait times out with 504; abort undoes', async () => {
  const d = await daemon({ latencyMs: 60 });
  try {
    const a = await launch(d.socket, 'alpha');
    assert.is(a.status, 202);
    const again = await request(d.socket, 'POST', '/v1/workshops/alpha', { action: 'stash' });
    assert.is(again.status, 409);
    assert.is(again.body.result.kind, 'BUSY');
    // Another SDK: beta shares no layer with alpha, so nothing holds it up.
    const b = await launch(d.socket, 'beta', 'y');
    assert.is(b.status, 202, 'another workshop is not held up');
    const early = await request(d.socket, 'GET', `/v1/changes/${a.body.change}/wait?timeout=10ms`);
    assert.is(early.status, 504);
    assert.is(early.body.result.kind, 'TIMEOUT');
    const inProgress = (await request(d.socket, 'GET', '/v1/changes')).body.result.map((c: any) => c.id);
    assert.ok(inProgress.includes(a.body.change) && inProgress.includes(b.body.change));
    const abort = await request(d.socket, 'POST', `/v1/changes/${b.body.change}`, { action: 'abort' });
    assert.is(abort.status, 200);
    const undone = await waitChange(d.socket, b.body.change);
    assert.is(undone.status, 'Undone');
    assert.match(undone.err, /ABORTED/);
    assert.is((await waitChange(d.socket, a.body.change)).status, 'Done');
    assert.is((await request(d.socket, 'GET', '/v1/workshops/beta')).status, 404, 'the aborted launch left nothing');
  } finally {
    await d.stop();
    rmSync(d.dir, { recursive: true, force: true });
  }
});

test('changes: once a change is ready, the next command on its workshop is accepted (never BUSY)', async () => {
  // The daemon once released a workshop only when the command's promise settled, a moment after
  // its change was ready: a client that waited and went on got 409 BUSY (found by the daemon bench,
  // when the engine's append awaited a checkpoint; a checkpoint every record widens that window).
  const d = await daemon();
  await d.stop();
  await d.start(['--checkpoint-every', '1']);
  try {
    const clients = Array.from({ length: 8 }, async (_, c) => {
      for (let i = 0; i < 15; i++) {
        const a = await launch(d.socket, `seq${c}`);
        assert.is(a.status, 202, `launch ${c}/${i}: ${a.text}`);
        await waitChange(d.socket, a.body.change);
        const r = await request(d.socket, 'POST', `/v1/workshops/seq${c}`, { action: 'remove' });
        assert.is(r.status, 202, `remove ${c}/${i}: ${r.text}`);
        await waitChange(d.socket, r.body.change);
      }
    });
    await Promise.all(clients);
  } finally {
    await d.stop();
    rmSync(d.dir, { recursive: true, force: true });
  }
});

test('the socket: a second daemon on a live socket is refused; a stale socket is replaced; a second daemon on the same state directory is LOCKED', async () => {
  const d = await daemon();
  try {
    const second = spawnDaemon(['--backend', 'fake', '--state-dir', `${d.dir}/other`, '--run-dir', `${d.dir}/other-run`, '--socket', d.socket]);
    assert.is(await second.exit, 3);
    assert.match(second.output(), /already running on/);
    const locked = spawnDaemon(['--backend', 'fake', '--state-dir', d.stateDir, '--run-dir', d.runDir, '--socket', `${d.dir}/sock2/a.sock`]);
    assert.is(await locked.exit, 3);
    assert.match(locked.output(), /LOCKED|locked/);
    await d.kill();
    assert.ok(existsSync(d.socket), 'SIGKILL leaves the socket file behind');
    await d.start();
    assert.is((await request(d.socket, 'GET', '/v1/system-info')).status, 200, 'the stale socket was replaced');
  } finally {
    await d.stop();
    rmSync(d.dir, { recursive: true, force: true });
  }
});

test('the socket: a client running as another user is refused by its permissions', async () => {
  const which = spawnSync('sh', ['-c', 'command -v setpriv']);
  if (which.status !== 0 || process.getuid?.() !== 0) {
    if (process.env.CI) assert.unreachable('setpriv (util-linux) and root are needed for this test, and CI has them');
    console.log('skipped: needs root and setpriv (util-linux)');
    return;
  }
  const d = await daemon();
  try {
    const script = `require('node:net').connect(${JSON.stringify(d.socket)}).on('connect',()=>{console.log('connected');process.exit(0)}).on('error',(e)=>{console.log(e.code);process.exit(1)})`;
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], { encoding: 'utf8' });
    assert.is(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /EACCES/);
    const asRoot = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    assert.is(asRoot.stdout.trim(), 'connected');
  } finally {
    await d.stop();
    rmSync(d.dir, { recursive: true, force: true });
  }
});

test('systemd socket activation: atelierd takes the socket it is given (LISTEN_FDS) instead of binding its own', async () => {
  const which = spawnSync('sh', ['-c', 'command -v systemd-socket-activate']);
  if (which.status !== 0) {
    if (process.env.CI) assert.unreachable('systemd-socket-activate (package systemd) is needed for this test, and CI has it');
    console.log('skipped: needs systemd-socket-activate (package systemd)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'atelierd-activate-'));
  const socket = join(dir, 'activated.sock');
  const proc = spawn('systemd-socket-activate', ['-l', socket, process.execPath, BIN, '--backend', 'fake', '--state-dir', join(dir, 'state'), '--run-dir', join(dir, 'run'), '--socket', socket], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  try {
    let r = null;
    for (let i = 0; i < 200 && !r; i++) {
      r = await request(socket, 'GET', '/v1/system-info').catch(() => null);
      if (!r) await new Promise((res) => setTimeout(res, 50));
    }
    assert.ok(r, `atelierd answered on the activated socket:\n${err}`);
    assert.is(r!.status, 200);
    assert.match(err, /"event":"started"/);
  } finally {
    const exit = new Promise((res) => proc.once('exit', res));
    proc.kill('SIGTERM');
    await exit;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGTERM: changes in flight finish within the grace period; the socket is removed; exit 0', async () => {
  const d = await daemon({ latencyMs: 40, grace: 20 });
  try {
    const a = await launch(d.socket, 'gamma');
    assert.is(await d.stop(), 0);
    assert.not.ok(existsSync(d.socket));
    await d.start();
    assert.is((await request(d.socket, 'GET', `/v1/changes/${a.body.change}`)).body.result.status, 'Done', 'it finished before the daemon stopped');
  } finally {
    await d.stop();
    rmSync(d.dir, { recursive: true, force: true });
  }
});

test('SIGTERM: past the grace period, changes in flight are aborted (undone)', async () => {
  const d = await daemon({ latencyMs: 150, grace: 0.2 });
  try {
    const a = await launch(d.socket, 'delta');
    assert.is(await d.stop(), 0);
    await d.start();
    const c = (await request(d.socket, 'GET', `/v1/changes/${a.body.change}`)).body.result;
    assert.is(c.status, 'Undone');
    assert.match(c.err, /ABORTED/);
  } finally {
    await d.stop();
    rmSync(d.dir, { recursive: true, force: true });
  }
});

test('malformed requests answer 400 in the error envelope and leave the state directory byte-identical', async () => {
  const d = await daemon();
  try {
    const r0 = await request(d.socket, 'POST', '/v1/workshops', { action: 'launch', file: QUICKSTART });
    await waitChange(d.socket, r0.body.change);
    await d.stop();
    await d.start();
    const before = treeDigest(d.stateDir);
    const huge = JSON.stringify({ action: 'launch', spec: { name: 'big', project: '/srv/big', sdks: [{ name: 'a', 'setup-base': 'x'.repeat(70_000) }] } });
    const corpus: Array<[string, string, string, unknown, Record<string, string>?]> = [
      ['malformed JSON', 'POST', '/v1/workshops', '{"action": "launch",', {}],
      ['not an object', 'POST', '/v1/workshops', '[1,2,3]', {}],
      ['an unknown action', 'POST', '/v1/workshops', { action: 'teleport', file: QUICKSTART }],
      ['an unknown field', 'POST', '/v1/workshops', { action: 'launch', file: QUICKSTART, colour: 'red' }],
      ['neither file nor spec', 'POST', '/v1/workshops', { action: 'launch' }],
      ['both file and spec', 'POST', '/v1/workshops', { action: 'launch', file: QUICKSTART, spec: { name: 'x', project: '/x', sdks: [] } }],
      ['a missing workshop file', 'POST', '/v1/workshops', { action: 'launch', file: '/nonexistent/workshop.yaml' }],
      ['a bad workshop name in a spec', 'POST', '/v1/workshops', { action: 'launch', spec: { name: 'Bad_Name', project: '/x', sdks: [] } }],
      ['a reserved SDK name', 'POST', '/v1/workshops', { action: 'launch', spec: { name: 'ok', project: '/x', sdks: [{ name: 'agent', 'setup-base': 'true' }] } }],
      ['a relative project', 'POST', '/v1/workshops', { action: 'launch', spec: { name: 'ok', project: 'x', sdks: [] } }],
      ['a body over the size limit', 'POST', '/v1/workshops', huge],
      ['a wrong type', 'POST', '/v1/workshops/quickstart', { action: 'restore', sdk: 7 }],
      ['restore without an SDK', 'POST', '/v1/workshops/quickstart', { action: 'restore' }],
      ['an SDK on a remove', 'POST', '/v1/workshops/quickstart', { action: 'remove', sdk: 'x' }],
      ['a bad workshop name in the path', 'POST', '/v1/workshops/No_Way', { action: 'stash' }],
      ['a run without a source', 'POST', '/v1/containers', { script: 'true' }],
      ['gc with an unknown field', 'POST', '/v1/gc', { all: true }],
      ['reconcile with a field', 'POST', '/v1/reconcile', { now: true }],
      ['an abort with another action', 'POST', '/v1/changes/op-x', { action: 'pause' }],
      ['a text body', 'POST', '/v1/workshops', 'launch please', { 'content-type': 'text/plain' }],
      ['a bad wait timeout', 'GET', '/v1/changes/op-x/wait?timeout=soon', undefined],
      ['an unknown query parameter', 'GET', '/v1/changes?colour=red', undefined],
    ];
    for (const [what, method, path, body, headers] of corpus) {
      const r = await request(d.socket, method, path, body, headers ?? {});
      assert.is(r.status, 400, `${what}: ${r.text}`);
      assert.is(r.body?.type, 'error', `${what}: an error envelope`);
      assert.is(r.body['status-code'], r.status);
      assert.type(r.body.result.message, 'string');
      assert.ok(['INVALID_ARGUMENT', 'INVALID_SPEC', 'INVALID_NAME', 'NOT_FOUND'].includes(r.body.result.kind), `${what}: kind ${r.body.result.kind}`);
    }
    assert.is(treeDigest(d.stateDir), before, 'nothing journaled, no checkpoint, no stray file');
  } finally {
    await d.stop();
    rmSync(d.dir, { recursive: true, force: true });
  }
});

test.run();

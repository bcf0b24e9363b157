/**
 * atelierd's exec protocol with real processes, on any machine: the daemon's API in this process on
 * a real unix socket, its engine a stand-in whose `exec` runs the command on the host (as a backend's
 * spawn would in a workshop; `script` gives it a pseudo-terminal when one is asked for). The CLI's
 * client (`DaemonHost.exec`, and `bin/atelier.js` as a process) talks to it: stdin, streaming
 * before exit, backpressure, signals, resize, abort, a client that dies, a client that never comes,
 * and `atelier shell` on a real terminal. The same through a real atelierd on a real backend is
 * `exec.test.ts`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import WebSocket from 'ws';
import type { FastifyInstance } from 'fastify';
import type { SpawnedProcess } from '../../backends/types.ts';
import { DaemonHost, type DaemonInfo } from '../../cli/daemon-host.ts';
import { ChangeBook } from '../../daemon/changes.ts';
import { buildApi, Inflight } from '../../daemon/server.ts';
import type { Engine, ExecRequest } from '../../engine/api.ts';
import { AtelierError } from '../../machines/errors.ts';
import { request, ROOT, waitChange } from './helpers.ts';

const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;

/** An engine whose only workshop, `box`, is the host: `exec` runs the command here. */
function hostEngine(resizes: [number, number][]): Engine {
  const exec = async (name: string, req: ExecRequest): Promise<SpawnedProcess> => {
    if (name !== 'box') throw new AtelierError('NOT_FOUND', `cannot exec in "${name}": no such workshop`, { workshop: name });
    const argv = req.terminal ? ['script', '-qefc', req.command.map(quote).join(' '), '/dev/null'] : [...req.command];
    const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...req.env }, ...(req.cwd ? { cwd: req.cwd } : {}), stdio: 'pipe' });
    child.stdout.pipe(req.stdout as NodeJS.WritableStream, { end: false });
    child.stderr.pipe(req.stderr as NodeJS.WritableStream, { end: false });
    child.stdin.on('error', () => undefined); // EPIPE once it has exited
    if (req.stdin) req.stdin.pipe(child.stdin);
    else child.stdin.end();
    const exit = new Promise<number>((resolve) => child.once('close', (code, sig) => resolve(code ?? 128 + (sig === 'SIGKILL' ? 9 : sig === 'SIGTERM' ? 15 : sig === 'SIGINT' ? 2 : 1))));
    return { exit, resize: (c, r) => resizes.push([c, r]), kill: (sig = 'SIGTERM') => void child.kill(sig) };
  };
  return { exec, state: { workshops: {} } } as unknown as Engine;
}

let dir: string;
let socket: string;
let app: FastifyInstance;
let host: DaemonHost;
const resizes: [number, number][] = [];

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'atelierd-exec-'));
  socket = join(dir, 'atelierd.sock');
  const info = { version: '0', backend: 'fake', 'default-base': 'busybox', 'state-dir': join(dir, 'state'), socket, pid: process.pid };
  app = buildApi({ engine: hostEngine(resizes), book: new ChangeBook(), info, log: () => undefined, execConnectMs: 1000 }, new Inflight()).app;
  await app.listen({ path: socket });
  host = new DaemonHost(socket, info as DaemonInfo);
});
test.after(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A writable that collects what it is given, and says when it has seen `text`. */
function sink(): PassThrough & { text: () => string; seen: (s: string) => Promise<void> } {
  const p = new PassThrough() as PassThrough & { text: () => string; seen: (s: string) => Promise<void> };
  let out = '';
  p.on('data', (d: Buffer) => (out += d.toString()));
  p.text = () => out;
  p.seen = async (s) => {
    for (let i = 0; i < 500 && !out.includes(s); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(out.includes(s), `expected ${JSON.stringify(s)} in ${JSON.stringify(out)}`);
  };
  return p;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 250 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
  return !alive(pid);
}

const lastExec = async () => (await request(socket, 'GET', '/v1/changes?select=all')).body.result.filter((c: any) => c.kind === 'exec').at(-1);

test('stdin in, stdout and stderr apart, the exit code; the change is Done with it', async () => {
  const out = sink();
  const err = sink();
  const p = await host.exec('box', { command: ['sh', '-c', 'cat; echo "err $A" >&2; exit 5'], env: { A: 'x' }, stdin: Readable.from(['hello ', 'world\n']), stdout: out, stderr: err });
  assert.is(await p.exit, 5);
  assert.is(out.text(), 'hello world\n');
  assert.is(err.text(), 'err x\n');
  const c = await lastExec();
  assert.is(c.status, 'Done', 'a non-zero exit is still Done: the command ran');
  assert.is(c.data['exit-code'], 5);
  assert.equal(c.data['websocket-ids'], ['stdio', 'stderr', 'control']);
});

test('4 MiB through cat both ways: nothing lost or reordered (backpressure on each side)', async () => {
  const big = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 10)) & 0xff;
  const chunks: Buffer[] = [];
  const out = new PassThrough();
  out.on('data', (d: Buffer) => chunks.push(d));
  const p = await host.exec('box', { command: ['cat'], stdin: Readable.from([big.subarray(0, 1 << 20), big.subarray(1 << 20)]), stdout: out, stderr: sink() });
  assert.is(await p.exit, 0);
  assert.ok(Buffer.concat(chunks).equals(big));
});

test('output streams before the process ends; a signal through control ends it', async () => {
  const out = sink();
  const p = await host.exec('box', { command: ['sh', '-c', 'echo first; exec sleep 30'], stdout: out, stderr: sink() });
  await out.seen('first\n');
  p.kill('SIGTERM');
  assert.is(await p.exit, 143);
});

test('an abort of the change kills the process (SIGKILL): the change ends in Error, exit 137', async () => {
  const out = sink();
  const p = await host.exec('box', { command: ['sh', '-c', 'echo $$; exec sleep 30'], stdout: out, stderr: sink() });
  await out.seen('\n');
  const c = await lastExec();
  assert.is((await request(socket, 'POST', `/v1/changes/${c.id}`, { action: 'abort' })).status, 200);
  assert.is(await p.exit, 137);
  assert.ok(await gone(Number(out.text().trim())));
  const ended = await waitChange(socket, c.id);
  assert.is(ended.status, 'Error');
  assert.is(ended.error.kind, 'ABORTED');
  assert.is(ended.data['exit-code'], 137);
});

test('a client that dies (its connections dropped) leaves no process', async () => {
  const r = await request(socket, 'POST', '/v1/workshops/box/exec', { command: ['sh', '-c', 'echo $$; exec sleep 30'] });
  assert.is(r.status, 202);
  const id = r.body.change;
  const url = (w: string) => `ws+unix://${socket}:/v1/changes/${id}/websocket?id=${w}`;
  let pid = '';
  const links = ['stdio', 'stderr', 'control'].map((w) => new WebSocket(url(w)));
  links[0]!.on('message', (d: Buffer) => (pid += d.toString()));
  await Promise.all(links.map((l) => new Promise((res) => l.once('open', res))));
  for (let i = 0; i < 250 && !pid.includes('\n'); i++) await new Promise((res) => setTimeout(res, 20));
  for (const l of links) l.terminate(); // no close frame: as when the CLI is killed
  assert.ok(await gone(Number(pid.trim())), 'the process was killed');
  const c = await waitChange(socket, id);
  assert.equal([c.status, c.error.kind, c.data['exit-code']], ['Error', 'ABORTED', 137]);
});

test('the CLI killed with SIGKILL mid-exec leaves no process', async () => {
  const cli = spawn(process.execPath, [join(ROOT, 'bin/atelier.js'), '--socket', socket, '--state-dir', join(dir, 'state'), 'exec', 'box', '--', 'sh', '-c', 'echo $$; exec sleep 30'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  cli.stdout.on('data', (d) => (out += d));
  for (let i = 0; i < 500 && !out.includes('\n'); i++) await new Promise((res) => setTimeout(res, 20));
  const pid = Number(out.trim());
  assert.ok(pid > 0 && alive(pid), `the command runs (${out})`);
  cli.kill('SIGKILL');
  assert.ok(await gone(pid), 'the process was killed with its client');
});

test('no client within the connect timeout: the process is killed, the change ends in Error (TIMEOUT)', async () => {
  const r = await request(socket, 'POST', '/v1/workshops/box/exec', { command: ['sleep', '30'] });
  assert.is(r.status, 202);
  const c = await waitChange(socket, r.body.change);
  assert.equal([c.status, c.error.kind, c.data['exit-code']], ['Error', 'TIMEOUT', 137]);
  assert.match(c.err, /no client connected websockets stdio, stderr, control within 1s/);
});

test('websocket refusals: an unknown change, a websocket it has not, one taken, a plain GET, an ended exec', async () => {
  const r = await request(socket, 'POST', '/v1/workshops/box/exec', { command: ['sleep', '30'] });
  const id = r.body.change;
  const refused = (url: string) =>
    new Promise<number>((res, rej) => {
      const ws = new WebSocket(`ws+unix://${socket}:${url}`);
      ws.once('unexpected-response', (_q, resp) => res(resp.statusCode ?? 0));
      ws.once('open', () => rej(new Error(`${url} upgraded`)));
    });
  assert.is(await refused('/v1/changes/nosuch/websocket?id=stdio'), 404);
  assert.is(await refused(`/v1/changes/${id}/websocket?id=pty`), 404, 'a non-interactive exec has no pty');
  assert.is(await refused(`/v1/changes/${id}/websocket?id=nosuch`), 400);
  const first = new WebSocket(`ws+unix://${socket}:/v1/changes/${id}/websocket?id=control`);
  await new Promise((res) => first.once('open', res));
  assert.is(await refused(`/v1/changes/${id}/websocket?id=control`), 409, 'one client per websocket');
  const plain = await request(socket, 'GET', `/v1/changes/${id}/websocket?id=stdio`);
  assert.equal([plain.status, plain.body.result.kind], [400, 'INVALID_ARGUMENT']);
  first.close(); // control closed: the client is gone, the process killed
  const c = await waitChange(socket, id);
  assert.is(c.error.kind, 'ABORTED');
  assert.is(await refused(`/v1/changes/${id}/websocket?id=stdio`), 409, 'an ended exec has no websockets');
});

test('interactive: one pty websocket, resize through control', async () => {
  const out = sink();
  const p = await host.exec('box', { command: ['sh', '-c', 'read x; echo "got:$x"; [ -t 0 ] && echo tty'], terminal: { cols: 100, rows: 30 }, stdin: Readable.from(['hello\n']), stdout: out, stderr: sink() });
  p.resize(120, 40);
  assert.is(await p.exit, 0);
  assert.match(out.text(), /got:hello/);
  assert.match(out.text(), /tty/);
  assert.equal(resizes.at(-1), [120, 40]);
  assert.equal((await lastExec()).data['websocket-ids'], ['pty', 'control']);
});

test('atelier shell on a real terminal (script): a login shell through the daemon', async () => {
  if (spawnSync('sh', ['-c', 'command -v script']).status !== 0) {
    if (process.env.CI) assert.unreachable('script (util-linux) is needed for this test, and CI has it');
    console.log('skipped: needs script (util-linux)');
    return;
  }
  const cmd = [process.execPath, join(ROOT, 'bin/atelier.js'), '--socket', socket, '--state-dir', join(dir, 'state'), 'shell', 'box'].map(quote).join(' ');
  // Not spawnSync: the daemon answering the shell runs in this process.
  const term = spawn('script', ['-q', '-e', '-c', cmd, '/dev/null'], { stdio: 'pipe' });
  let out = '';
  term.stdout.on('data', (d) => (out += d));
  term.stderr.on('data', (d) => (out += d));
  term.stdin.end('echo $((6*7)); exit\n');
  const code = await new Promise<number | null>((res) => term.once('close', (c) => res(c)));
  assert.is(code, 0, out);
  assert.match(out, /42/);
});

test.run();

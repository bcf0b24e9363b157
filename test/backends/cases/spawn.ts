/**
 * Conformance: `Backend.spawn`, a process with its streams connected, through the port only: the
 * exit status returned (not thrown), stdout and stderr apart, the environment, stdin, the working
 * directory and user, a terminal, and the refusals (stopped instance, layer, empty argv, absent or
 * unowned object). Commands are busybox ones (`sh -c`, `cat`, `echo`, `id -u`, `pwd`), so every
 * backend's default base runs them.
 *
 * The fake runs argv through its hook interpreter: it reads no stdin, has no working directory,
 * users or `id`/`pwd`, and refuses terminals (`INVALID`); the cases for those say so and skip on it.
 *
 * @example
 * ```ts
 * spawnCases('fake', make);
 * ```
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PassThrough, Writable } from 'node:stream';
import type { Backend, ObjectRef, SpawnRequest } from '../../../backends/types.ts';
import { rejects, withCtx } from './fixture.ts';
import type { Ctx } from './fixture.ts';
import type { Make } from './types.ts';

/** A stream that keeps the text written to it. */
class Text extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString('utf8');
    cb();
  }
}

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Spawn, feed `stdin` (then end it), wait for the exit: the status and both outputs. */
async function ran(b: Backend, ref: ObjectRef, argv: string[], more: Partial<Omit<SpawnRequest, 'argv' | 'stdin' | 'stdout' | 'stderr'>> & { stdin?: string } = {}): Promise<Ran> {
  const stdout = new Text();
  const stderr = new Text();
  const { stdin: input, ...rest } = more;
  const stdin = input === undefined ? null : new PassThrough();
  const p = await b.spawn(ref, { argv, stdout, stderr, stdin, ...rest });
  if (stdin) stdin.end(input);
  const code = await p.exit;
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const sinks = () => ({ stdout: new Text(), stderr: new Text() });

/** Skip on the fake, saying why (it has no processes: see the header). */
function fakeLacks(c: Ctx, name: string, what: string): boolean {
  if (c.b.kind !== 'fake') return false;
  console.log(`${name}: skipped "${what}" on the fake (no processes: no stdin, cwd, users or terminals)`);
  return true;
}

export function spawnCases(name: string, make: Make): void {
  const t = suite(`${name}: spawn`);

  t('the exit status is returned, not thrown', withCtx(make, async (c) => {
    const ws = await c.workshop('sp', { start: true });
    assert.is((await ran(c.b, ws, ['true'])).code, 0);
    assert.is((await ran(c.b, ws, ['sh', '-c', 'exit 3'])).code, 3);
    assert.is((await ran(c.b, ws, ['false'])).code, 1);
  }));

  t('stdout and stderr arrive apart', withCtx(make, async (c) => {
    const ws = await c.workshop('sp', { start: true });
    const r = await ran(c.b, ws, ['sh', '-c', 'echo to-stdout; echo to-stderr >&2; exit 4']);
    assert.equal(r, { code: 4, stdout: 'to-stdout\n', stderr: 'to-stderr\n' });
    assert.is((await ran(c.b, ws, ['echo', 'one', 'two'])).stdout, 'one two\n');
  }));

  t('the environment carries req.env', withCtx(make, async (c) => {
    const ws = await c.workshop('sp', { start: true });
    const r = await ran(c.b, ws, ['sh', '-c', 'echo "$GREETING"'], { env: { GREETING: 'hello world' } });
    assert.equal(r, { code: 0, stdout: 'hello world\n', stderr: '' });
  }));

  t('stdin is read; absent, it is at end-of-file at once', withCtx(make, async (c) => {
    if (fakeLacks(c, name, 'stdin')) return;
    const ws = await c.workshop('sp', { start: true });
    assert.equal(await ran(c.b, ws, ['cat'], { stdin: 'line one\nline two\n' }), { code: 0, stdout: 'line one\nline two\n', stderr: '' });
    assert.equal(await ran(c.b, ws, ['cat']), { code: 0, stdout: '', stderr: '' });
  }));

  t('the working directory and the user are the request\'s (root by default)', withCtx(make, async (c) => {
    if (fakeLacks(c, name, 'cwd and user')) return;
    const ws = await c.workshop('sp', { start: true });
    assert.is((await ran(c.b, ws, ['pwd'], { cwd: '/tmp' })).stdout, '/tmp\n');
    assert.is((await ran(c.b, ws, ['id', '-u'])).stdout, '0\n');
    assert.is((await ran(c.b, ws, ['id', '-u'], { user: '1234:1234' })).stdout, '1234\n');
    assert.is((await ran(c.b, ws, ['id', '-g'], { user: '1234:1234' })).stdout, '1234\n');
    await rejects(c.b.spawn(ws, { argv: ['true'], user: 'no-such-user-here', ...sinks() }), 'NOT_FOUND');
  }));

  t('a terminal: the process sees a tty and its output arrives on stdout (the fake refuses: INVALID)', withCtx(make, async (c) => {
    const ws = await c.workshop('sp', { start: true });
    const req = { argv: ['sh', '-c', 'test -t 0 && test -t 1 && echo on-a-tty'], terminal: { cols: 80, rows: 24 }, ...sinks() };
    if (c.b.kind === 'fake') {
      await rejects(c.b.spawn(ws, req), 'INVALID');
      return;
    }
    const p = await c.b.spawn(ws, req);
    assert.is(await p.exit, 0);
    assert.match(req.stdout.text, /on-a-tty/);
  }));

  t('refusals: a stopped instance, a layer, an empty argv are INVALID; an absent object NOT_FOUND', withCtx(make, async (c) => {
    const ws = await c.workshop('sp');
    await rejects(c.b.spawn(ws, { argv: ['true'], ...sinks() }), 'INVALID', 'stopped');
    const layer = c.layer('sp');
    await c.b.copy({ source: ws, target: layer, tags: c.tags('sdk') });
    await rejects(c.b.spawn(layer, { argv: ['true'], ...sinks() }), 'INVALID', 'layer');
    await c.b.start(ws);
    await rejects(c.b.spawn(ws, { argv: [], ...sinks() }), 'INVALID', 'empty argv');
    await rejects(c.b.spawn(c.ws('absent'), { argv: ['true'], ...sinks() }), 'NOT_FOUND', 'absent');
    if (c.fixture.plant) {
      const other = c.ws('unowned');
      await c.fixture.plant(other);
      await rejects(c.b.spawn(other, { argv: ['true'], ...sinks() }), 'NOT_OWNED', 'unowned');
    }
  }));

  t.run();
}

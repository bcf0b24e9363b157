/**
 * `spawn` on a real LXD daemon (`bash scripts/lxd-setup.sh`): what only a real exec shows, beyond
 * the port's conformance cases. Exit statuses, stdout and stderr apart and streamed, stdin piped
 * and large, environment, working directory, users by name and number, a terminal with its size
 * and a resize, signals, the refusals with their codes, `stop` ending spawned processes on both
 * pools, and what LXD does to the process when its caller is killed with SIGKILL.
 * Without a daemon: fails in CI, skips with a reason elsewhere.
 */
import { spawn as spawnChild } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PassThrough, Writable } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createLxdBackend } from '../../backends/lxd/index.ts';
import type { Backend, ObjectRef, SpawnRequest, Tags } from '../../backends/types.ts';
import { guarded, LXD_BASE, LXD_BTRFS_POOL, LXD_SOCKET, lxdAvailable, lxdPool, lxdUnavailable, purgeOwner, rawClient, uniqueOwner, rejects } from './lxd-env.ts';

const avail = await lxdAvailable();
/** The pools the pool-dependent cases run on: `dir` and, when it is there (in CI it must be), btrfs. */
const POOLS = avail.ok && ((await lxdPool(LXD_BTRFS_POOL)).ok || process.env.CI) ? ['default', LXD_BTRFS_POOL] : ['default'];
if (avail.ok && POOLS.length === 1) console.log(`SKIP lxd spawn on the btrfs pool: LXD has no pool ${LXD_BTRFS_POOL} (scripts/lxd-setup.sh makes it)`);
const HOLDER = fileURLToPath(new URL('./lxd-spawn-holder.ts', import.meta.url));

/** A spawn with its output collected, each chunk timed (to tell streamed from buffered output). */
async function run(b: Backend, ref: ObjectRef, req: Omit<SpawnRequest, 'stdout' | 'stderr'>, during?: (p: Awaited<ReturnType<Backend['spawn']>>) => void) {
  const chunks: Array<{ fd: 1 | 2; at: number; text: string }> = [];
  const sink = (fd: 1 | 2) => new Writable({ write: (c: Buffer, _e, cb) => (chunks.push({ fd, at: Date.now(), text: c.toString('utf8') }), cb()) });
  const p = await b.spawn(ref, { ...req, stdout: sink(1), stderr: sink(2) });
  during?.(p);
  const code = await p.exit;
  const text = (fd: 1 | 2) => chunks.filter((c) => c.fd === fd).map((c) => c.text).join('');
  return { code, out: text(1), err: text(2), chunks, ended: Date.now() };
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (!avail.ok) {
  const t = suite('lxd spawn');
  lxdUnavailable(t, 'lxd spawn', avail.reason);
  t.run();
} else {
  const owner = uniqueOwner('atl-sp');
  const b = createLxdBackend({ owner, socket: LXD_SOCKET, stopTimeoutS: 0 });
  const tags = (op: string, kind: Tags['kind'] = 'workshop'): Tags => ({ owner, op, kind }) as Tags;
  const ws: ObjectRef = { space: 'workshops', name: 'sp-main' };

  const t = guarded(suite('lxd spawn'));
  t.before(async () => {
    await b.ensureProjects(owner);
    await b.create({ target: ws, source: { base: LXD_BASE }, tags: tags('s0') });
    await b.start(ws);
    // A user with a home, and one whose home is missing.
    await b.exec(ws, { script: 'mkdir -p /home/ada && chown 1000:1000 /home/ada\necho "ada:x:1000:1000:Ada:/home/ada:/bin/sh" >> /etc/passwd\necho "ada:x:1000:" >> /etc/group\necho "staff:x:50:ada" >> /etc/group' });
  });
  t.after(async () => {
    await b.close();
    await purgeOwner(owner);
  });

  t('exit statuses: the process\'s own, 127 and 126 with a shell\'s message, 128+n for a signal', async () => {
    assert.is((await run(b, ws, { argv: ['true'] })).code, 0);
    assert.is((await run(b, ws, { argv: ['sh', '-c', 'exit 42'] })).code, 42);
    const missing = await run(b, ws, { argv: ['no-such-program'] });
    assert.is(missing.code, 127);
    assert.is(missing.err, 'no-such-program: command not found\n');
    const notExec = await run(b, ws, { argv: ['/etc/passwd'] });
    assert.is(notExec.code, 126);
    assert.match(notExec.err, /cannot execute/);
    assert.is((await run(b, ws, { argv: ['sh', '-c', 'kill -9 $$'] })).code, 137);
  });

  t('stdout and stderr arrive apart and as written, before the process ends', async () => {
    const r = await run(b, ws, { argv: ['sh', '-c', 'echo out1; echo err1 >&2; sleep 1; echo out2'] });
    assert.is(r.code, 0);
    assert.is(r.out, 'out1\nout2\n');
    assert.is(r.err, 'err1\n');
    const first = r.chunks.find((c) => c.text.includes('out1'))!;
    assert.ok(r.ended - first.at >= 700, `out1 arrived ${r.ended - first.at} ms before the end: streamed, not held`);
  });

  t('stdin is piped to the end (8 MiB), then end of file; absent stdin is end of file at once', async () => {
    const stdin = new PassThrough();
    const p = run(b, ws, { argv: ['sh', '-c', 'wc -c; echo after-eof'], stdin });
    const block = Buffer.alloc(64 * 1024, 120);
    for (let i = 0; i < 128; i++) if (!stdin.write(block)) await new Promise((r) => stdin.once('drain', r));
    stdin.end();
    const r = await p;
    assert.is(r.out.trim().split(/\s+/).join(' '), `${128 * 64 * 1024} after-eof`);
    const none = await run(b, ws, { argv: ['cat'] });
    assert.is(none.code, 0);
    assert.is(none.out, '');
  });

  t('output larger than a slow reader takes is all delivered (backpressure)', async () => {
    let n = 0;
    const slow = new Writable({ highWaterMark: 16 * 1024, write: (c: Buffer, _e, cb) => ((n += c.length), setTimeout(cb, 1)) });
    const p = await b.spawn(ws, { argv: ['head', '-c', '6000000', '/dev/zero'], stdout: slow, stderr: new PassThrough() });
    assert.is(await p.exit, 0);
    assert.is(n, 6_000_000);
  });

  t('environment: PATH, HOME, USER, LANG, then the request\'s env, which wins', async () => {
    const r = await run(b, ws, { argv: ['sh', '-c', 'echo "$PATH|$HOME|$USER|$LANG|${TERM:-none}|$FOO"'], env: { FOO: 'bar', LANG: 'C' } });
    assert.is(r.out, '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|/root|root|C|none|bar\n');
  });

  t('working directory: the home by default, cwd when it is a directory, INVALID otherwise', async () => {
    assert.is((await run(b, ws, { argv: ['pwd'] })).out, '/root\n');
    assert.is((await run(b, ws, { argv: ['pwd'], cwd: '/tmp' })).out, '/tmp\n');
    await rejects(b.spawn(ws, { argv: ['pwd'], cwd: '/no/such/dir', stdout: new PassThrough(), stderr: new PassThrough() }), 'INVALID');
    await rejects(b.spawn(ws, { argv: ['pwd'], cwd: '/etc/passwd', stdout: new PassThrough(), stderr: new PassThrough() }), 'INVALID');
    await rejects(b.spawn(ws, { argv: ['pwd'], cwd: 'relative', stdout: new PassThrough(), stderr: new PassThrough() }), 'INVALID');
  });

  t('users: by name (HOME from /etc/passwd), by uid, uid:gid, name:group; unknown ones NOT_FOUND', async () => {
    const byName = await run(b, ws, { argv: ['sh', '-c', 'id -u; id -g; echo "$HOME $USER"; pwd'], user: 'ada' });
    assert.is(byName.out, '1000\n1000\n/home/ada ada\n/home/ada\n');
    assert.is((await run(b, ws, { argv: ['sh', '-c', 'id -u; id -g'], user: '1000' })).out, '1000\n1000\n');
    const bare = await run(b, ws, { argv: ['sh', '-c', 'id -u; id -g; echo "$HOME"; pwd'], user: '4321:77' });
    assert.is(bare.out, '4321\n77\n/\n/\n');
    assert.is((await run(b, ws, { argv: ['id', '-g'], user: 'ada:staff' })).out, '50\n');
    assert.is((await run(b, ws, { argv: ['id', '-u'], user: 'nobody' })).out, '65534\n');
    await rejects(b.spawn(ws, { argv: ['true'], user: 'ghost', stdout: new PassThrough(), stderr: new PassThrough() }), 'NOT_FOUND');
    await rejects(b.spawn(ws, { argv: ['true'], user: 'ada:nogroup-here', stdout: new PassThrough(), stderr: new PassThrough() }), 'NOT_FOUND');
    await rejects(b.spawn(ws, { argv: ['true'], user: 'ada:', stdout: new PassThrough(), stderr: new PassThrough() }), 'INVALID');
  });

  t('a terminal: a /dev/pts on every stream, its size, TERM; both streams on stdout', async () => {
    const r = await run(b, ws, { argv: ['sh', '-c', 'tty; stty size; echo "$TERM"; echo err >&2; test -t 2 && echo tty2'], terminal: { cols: 100, rows: 30 } });
    assert.is(r.code, 0);
    assert.match(r.out, /^\/dev\/pts\/\d+\r\n30 100\r\nxterm-256color\r\nerr\r\ntty2\r\n$/);
    assert.is(r.err, '');
  });

  t('a terminal follows a resize; an interactive shell reads its commands from stdin and ends at its end', async () => {
    const stdin = new PassThrough();
    const r = await run(b, ws, { argv: ['sh'], terminal: { cols: 80, rows: 24 }, stdin }, (p) => {
      stdin.write('stty size\n');
      setTimeout(() => {
        p.resize(132, 43);
        setTimeout(() => stdin.end('stty size\n'), 300);
      }, 300);
    });
    assert.is(r.code, 0, 'the shell read end of file (^D) after the last command');
    assert.match(r.out, /24 80\r\n[\s\S]*43 132\r\n/);
  });

  t('kill: SIGTERM by default, any signal by name; a process that ended ignores it', async () => {
    assert.is((await run(b, ws, { argv: ['sleep', '60'] }, (p) => setTimeout(() => p.kill(), 300))).code, 143);
    const trapped = await run(b, ws, { argv: ['sh', '-c', 'trap "echo got-usr1; exit 5" USR1; echo ready; while :; do sleep 0.1; done'] }, (p) => setTimeout(() => p.kill('SIGUSR1'), 500));
    assert.is(trapped.code, 5);
    assert.match(trapped.out, /got-usr1/);
    const tty = await run(b, ws, { argv: ['sleep', '60'], terminal: { cols: 80, rows: 24 } }, (p) => setTimeout(() => p.kill('SIGKILL'), 300));
    assert.is(tty.code, 137);
    const done = await b.spawn(ws, { argv: ['true'], stdout: new PassThrough(), stderr: new PassThrough() });
    assert.is(await done.exit, 0);
    done.kill();
    done.resize(10, 10);
  });

  t('refusals: stopped INVALID, layer INVALID, missing NOT_FOUND, not owned NOT_OWNED, empty argv INVALID, no daemon UNAVAILABLE', async () => {
    const io = { stdout: new PassThrough(), stderr: new PassThrough() };
    const stopped: ObjectRef = { space: 'workshops', name: 'sp-stopped' };
    await b.create({ target: stopped, source: { base: LXD_BASE }, tags: tags('r1') });
    await rejects(b.spawn(stopped, { argv: ['true'], ...io }), 'INVALID');
    const layer: ObjectRef = { space: 'layers', name: 'sp-layer' };
    await b.copy({ source: stopped, target: layer, tags: tags('r2', 'sdk') });
    await rejects(b.spawn(layer, { argv: ['true'], ...io }), 'INVALID');
    await rejects(b.spawn({ space: 'workshops', name: 'sp-absent' }, { argv: ['true'], ...io }), 'NOT_FOUND');
    await rejects(b.spawn(ws, { argv: [], ...io }), 'INVALID');
    const raw = rawClient();
    try {
      await raw.async('POST', '/1.0/instances', { name: 'sp-foreign', type: 'container', profiles: ['default'], source: { type: 'image', alias: LXD_BASE }, config: {} }, { project: `workshop.${owner}` });
      await rejects(b.spawn({ space: 'workshops', name: 'sp-foreign' }, { argv: ['true'], ...io }), 'NOT_OWNED');
      await raw.async('DELETE', '/1.0/instances/sp-foreign', undefined, { project: `workshop.${owner}` });
    } finally {
      raw.close();
    }
    const gone = createLxdBackend({ owner, socket: '/nonexistent/lxd.socket' });
    await rejects(gone.spawn(ws, { argv: ['true'], ...io }), 'UNAVAILABLE');
    await gone.close();
    await b.remove(layer);
    await b.remove(stopped);
  });

  t('a caller killed with SIGKILL: LXD kills its process (pipe and terminal)', async () => {
    for (const mode of ['pipe', 'tty'] as const) {
      const seconds = mode === 'pipe' ? '1231' : '1232';
      const child = spawnChild(process.execPath, ['--import', 'tsx', HOLDER, owner, LXD_SOCKET, ws.name, seconds, mode], { stdio: ['pipe', 'pipe', 'inherit'] });
      let seen = '';
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => ((seen += d.toString('utf8')), seen.includes('started') && resolve()));
        child.on('exit', (c) => reject(new Error(`the holder exited (${c}) before it started: ${seen}`)));
      });
      const running = async () => (await b.exec(ws, { script: `ps -o args | grep -c "^sleep ${seconds}$" || true` })).stdout.trim();
      for (let i = 0; i < 20 && (await running()) !== '1'; i++) await sleep(100);
      assert.is(await running(), '1', `${mode}: sleep ${seconds} runs while its caller lives`);
      child.kill('SIGKILL');
      let left = '1';
      for (let i = 0; i < 50 && left !== '0'; i++) {
        await sleep(100);
        left = await running();
      }
      assert.is(left, '0', `${mode}: sleep ${seconds} is gone once its caller was killed`);
    }
  });

  for (const pool of POOLS) {
    t(`stop ends spawned processes, start after stop works (pool ${pool})`, async () => {
      const onPool = createLxdBackend({ owner, socket: LXD_SOCKET, pool, stopTimeoutS: 5 });
      const ref: ObjectRef = { space: 'workshops', name: `sp-stop-${pool === 'default' ? 'dir' : 'btrfs'}` };
      try {
        await onPool.create({ target: ref, source: { base: LXD_BASE }, tags: tags('st1') });
        await onPool.start(ref);
        const io = () => ({ stdout: new PassThrough(), stderr: new PassThrough() });
        const piped = await onPool.spawn(ref, { argv: ['sleep', '600'], ...io() });
        const tty = await onPool.spawn(ref, { argv: ['sleep', '600'], terminal: { cols: 80, rows: 24 }, ...io() });
        await onPool.stop(ref);
        const codes = await Promise.race([Promise.all([piped.exit, tty.exit]), sleep(15_000).then(() => 'timeout')]);
        assert.ok(Array.isArray(codes) && codes.every((c) => c === 143 || c === 137), `both ended by a signal: ${JSON.stringify(codes)}`);
        await onPool.start(ref);
        const again = await run(onPool, ref, { argv: ['sh', '-c', 'echo again'] });
        assert.is(again.out, 'again\n');
        await onPool.stop(ref);
        await onPool.start(ref);
        assert.is((await onPool.inspect(ref))?.status, 'running');
      } finally {
        await onPool.remove(ref).catch(() => undefined);
        await onPool.close();
      }
    });
  }

  t.run();
}

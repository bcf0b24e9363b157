/**
 * One engine per state directory: a second opener, in this process or another, gets LOCKED
 * naming the holder's pid; the kernel frees a dead holder's lock at once.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { acquireLock, lockHolder } from '../../events/lock.ts';
import { rejection, tempDir } from './helpers.ts';

const lockModule = fileURLToPath(new URL('../../events/lock.ts', import.meta.url));

/** Starts a process that takes the lock, prints "held", and waits to be killed. */
async function holder(stateDir: string): Promise<ChildProcess> {
  const src = `import { acquireLock } from ${JSON.stringify(lockModule)};
await acquireLock(${JSON.stringify(stateDir)});
console.log('held');
setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', src], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => String(d).includes('held') && resolve());
    child.on('exit', (code) => reject(new Error(`holder exited with ${code}`)));
  });
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.on('exit', () => resolve())));
}

test('a second acquire in the same process is LOCKED, naming our pid; release frees it', async () => {
  const dir = await tempDir('lock');
  const first = await acquireLock(dir);
  assert.is(first.pid, process.pid);
  const err = await rejection(acquireLock(dir));
  assert.is(err.code, 'LOCKED');
  assert.equal(err.info, { pid: process.pid });
  assert.ok(err.message.includes(`pid ${process.pid}`) && err.message.includes(dir));
  await first.release();
  const second = await acquireLock(dir);
  await second.release();
  await second.release(); // twice is harmless
});

test('another process holding the lock: LOCKED with its pid; free once it exits', async () => {
  const dir = await tempDir('lock-proc');
  const child = await holder(dir);
  const err = await rejection(acquireLock(dir));
  assert.is(err.code, 'LOCKED');
  assert.is(err.info.pid, child.pid);
  child.kill('SIGTERM');
  await exited(child);
  const lock = await acquireLock(dir);
  await lock.release();
});

test('a lock held by a killed process is free at once: the kernel releases it, and nothing is left in the state directory', async () => {
  const dir = await tempDir('lock-dead');
  const child = await holder(dir);
  assert.equal((await lockHolder(dir))?.pid, child.pid);
  child.kill('SIGKILL');
  await exited(child);
  const t0 = performance.now();
  const lock = await acquireLock(dir);
  assert.ok(performance.now() - t0 < 1000, 'no stale window');
  assert.equal(fs.readdirSync(dir), [], 'the lock writes nothing in the state directory');
  await lock.release();
  assert.is(await lockHolder(dir), null);
});

test('the same directory by another path (a symlink) is the same lock', async () => {
  const dir = await tempDir('lock-alias');
  const alias = `${dir}-alias`;
  fs.symlinkSync(dir, alias);
  const lock = await acquireLock(dir);
  const err = await rejection(acquireLock(alias));
  assert.is(err.code, 'LOCKED');
  await lock.release();
  fs.rmSync(alias);
});

test('openers racing for a free lock: exactly one wins', async () => {
  const dir = await tempDir('lock-race');
  const results = await Promise.allSettled([acquireLock(dir), acquireLock(dir), acquireLock(dir)]);
  const won = results.filter((r) => r.status === 'fulfilled');
  assert.is(won.length, 1);
  for (const r of results) if (r.status === 'rejected') assert.is(r.reason.code, 'LOCKED');
  await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireLock>>>).value.release();
});

test.run();

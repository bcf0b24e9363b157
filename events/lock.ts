/**
 * One engine per state directory, with a lock the kernel releases (`kernel-lock.ts`): a unix
 * socket in the abstract namespace named after the state directory's identity, bound by the
 * engine for its whole life. A killed engine's lock is free at once, and the lock writes nothing in
 * the state directory. A second opener is told the holder's pid (`LOCKED`).
 *
 * @example
 * ```ts
 * const lock = await acquireLock('/home/me/.local/state/atelier'); // AtelierError LOCKED if another engine runs
 * try { ... } finally { await lock.release(); }
 * ```
 */
import fs from 'node:fs';
import { resolve } from 'node:path';
import { AtelierError } from '../machines/errors.ts';
import { bindLock, holderOf, lockNameOf } from './kernel-lock.ts';

export interface StateLock {
  readonly pid: number;
  release(): Promise<void>;
}

function lockedError(stateDir: string, pid: number | null): AtelierError {
  const who = pid === null ? 'another atelier engine (it did not say its pid)' : `pid ${pid} (another atelier engine)`;
  return new AtelierError('LOCKED', `state directory ${stateDir} is locked by ${who}; stop it or use another --state-dir`, { pid });
}

/**
 * Takes the state directory's lock, creating the directory if needed.
 *
 * @throws AtelierError `LOCKED` with `info.pid` (the holder's pid, or null if it did not answer)
 *   when another engine, in this process or another, holds it.
 * @example
 * ```ts
 * const lock = await acquireLock(stateDir);
 * console.log(`engine ${lock.pid} owns ${stateDir}`);
 * await lock.release();
 * ```
 */
export async function acquireLock(stateDir: string): Promise<StateLock> {
  const dir = resolve(stateDir);
  fs.mkdirSync(dir, { recursive: true });
  const name = lockNameOf(dir, 'state');
  const server = await bindLock(name);
  if (!server) throw lockedError(dir, (await holderOf(name))?.pid ?? null);
  let released = false;
  return {
    pid: process.pid,
    async release() {
      if (released) return;
      released = true;
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * Whether some process holds the state directory's lock now (without taking it), and its pid.
 *
 * @example
 * ```ts
 * (await lockHolder(stateDir))?.pid; // 4242, or undefined when nobody holds it
 * ```
 */
export async function lockHolder(stateDir: string): Promise<{ pid: number | null } | null> {
  try {
    return await holderOf(lockNameOf(resolve(stateDir), 'state'));
  } catch {
    return null;
  }
}

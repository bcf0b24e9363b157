/**
 * One engine per state directory.
 *
 * The lock is proper-lockfile's: an atomic `mkdir` of `<stateDir>/.lock`, whose mtime the holder
 * refreshes every few seconds, so a lock nobody refreshes for 10 s is stale and taken over. Next
 * to it, `<stateDir>/lock.pid` names the holder, so a second opener is told whom to stop, and a
 * lock whose holder pid is dead is taken over at once instead of after the stale delay.
 *
 * Taking over a dead holder's lock first renames its pid file away: only one of several openers
 * racing after a crash can win that rename, so only one removes the dead lock.
 *
 * @example
 * ```ts
 * const lock = await acquireLock('/home/me/.local/state/atelier'); // AtelierError LOCKED if another engine runs
 * try { ... } finally { await lock.release(); }
 * ```
 */
import fs from 'node:fs';
import { join, resolve } from 'node:path';
import lockfile from 'proper-lockfile';
import { AtelierError } from '../machines/errors.ts';

export interface StateLock {
  readonly pid: number;
  release(): Promise<void>;
}

export interface LockOptions {
  /**
   * Called if the lock is lost while held (its directory removed or its mtime changed by someone
   * else). Default: a process warning. Another engine may then be writing the same journal.
   */
  onCompromised?: (err: Error) => void;
}

const LOCK_DIR = '.lock';
const PID_FILE = 'lock.pid';
/** How long a second opener waits for a fresh holder to write its pid file before giving up on naming it. */
const PID_WAIT_MS = 500;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readPid(path: string): Promise<number | null> {
  try {
    const n = Number((await fs.promises.readFile(path, 'utf8')).trim());
    return Number.isSafeInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function lockedError(stateDir: string, pid: number | null): AtelierError {
  const who = pid === null ? 'another atelier engine (its pid is not recorded yet)' : `pid ${pid} (another atelier engine)`;
  return new AtelierError('LOCKED', `state directory ${stateDir} is locked by ${who}; stop it or use another --state-dir`, { pid });
}

/**
 * Takes the state directory's lock, creating the directory if needed.
 *
 * @throws AtelierError `LOCKED` with `details.pid` (the holder's pid, or null if not yet known)
 *   when another engine, in this process or another, holds it.
 * @example
 * ```ts
 * const lock = await acquireLock(stateDir);
 * console.log(`engine ${lock.pid} owns ${stateDir}`);
 * await lock.release();
 * ```
 */
export async function acquireLock(stateDir: string, options: LockOptions = {}): Promise<StateLock> {
  const dir = resolve(stateDir);
  // Taking a free lock is synchronous (a handful of small fs calls: see readSegment in
  // events/segments.ts for why start-up avoids the thread pool); only waiting on a holder is not.
  fs.mkdirSync(dir, { recursive: true });
  const pidPath = join(dir, PID_FILE);
  const lockOpts = {
    lockfilePath: join(dir, LOCK_DIR),
    realpath: false,
    retries: 0,
    onCompromised: options.onCompromised ?? ((err: Error) => process.emitWarning(`atelier lost the lock on ${dir}: ${err.message}`)),
  };
  let tookOver = false;
  for (;;) {
    let unlock: () => void;
    try {
      unlock = lockfile.lockSync(dir, lockOpts);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
      let pid = await readPid(pidPath);
      // A holder that has just taken the lock may not have written its pid yet.
      for (let waited = 0; pid === null && waited < PID_WAIT_MS; waited += 50) {
        await sleep(50);
        pid = await readPid(pidPath);
      }
      if (pid === null || alive(pid) || tookOver) throw lockedError(dir, pid);
      tookOver = await takeOver(dir, pidPath, pid);
      continue;
    }
    writePid(pidPath, process.pid);
    let released = false;
    return {
      pid: process.pid,
      async release() {
        if (released) return;
        released = true;
        // The pid file goes first: a pid file without a lock is harmless, a lock naming nobody is not.
        fs.rmSync(pidPath, { force: true });
        unlock();
      },
    };
  }
}

/** Removes a dead holder's lock; false if another opener claimed the takeover first. */
async function takeOver(dir: string, pidPath: string, deadPid: number): Promise<boolean> {
  const claim = `${pidPath}.takeover-${process.pid}`;
  try {
    await fs.promises.rename(pidPath, claim);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true; // someone else took over: retry and see
    throw e;
  }
  // Re-check after the claim: the pid file we renamed must still be the dead holder's.
  const claimed = await readPid(claim);
  if (claimed !== deadPid) {
    // A new holder wrote its pid between our read and the rename: give it back.
    await fs.promises.rename(claim, pidPath);
    return true;
  }
  await fs.promises.rm(claim, { force: true });
  await fs.promises.rm(join(dir, LOCK_DIR), { recursive: true, force: true });
  return true;
}

function writePid(path: string, pid: number): void {
  const temp = `${path}.tmp-${pid}`;
  fs.writeFileSync(temp, `${pid}\n`);
  fs.renameSync(temp, path);
}

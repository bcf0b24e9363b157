/**
 * Locks the kernel releases: a unix socket in Linux's abstract namespace, bound by the holder.
 * Only one process can bind a name at a time, and when the holder dies, however it dies (SIGKILL
 * included), the kernel closes the socket and frees the name at once: no lock file goes stale,
 * nothing is taken over, nothing is written on disk. The holder answers a connection with its pid,
 * so whoever finds the name taken can say whom to stop. Used for the state directory's lock
 * (`lock.ts`) and the overlay store's (`backends/overlay/lock.ts`).
 *
 * Why not a module: proper-lockfile (the lock before) is a directory whose mtime the holder
 * refreshes, so a killed holder's lock stayed for up to its stale delay; Node has no `flock()`, and
 * the modules that add one are native addons. An abstract socket is a few lines of `node:net`.
 *
 * @example
 * ```ts
 * const held = await bindLock(lockNameOf('/srv/state', 'state'));   // a net.Server, or null if taken
 * if (!held) console.log(await holderOf(lockNameOf('/srv/state', 'state'))); // { pid: 4242 }
 * ```
 */
import fs from 'node:fs';
import net from 'node:net';

/** A lock's name: what it guards (a kind) and the directory's identity (device, inode), so any path to it is the same lock. */
export function lockNameOf(dir: string, kind: string): string {
  const st = fs.statSync(dir);
  return `\0atelier-${kind}-lock:${st.dev}:${st.ino}`;
}

/** Bind the name: the lock, held until `close()` or the process ends; null when another holder has it. */
export function bindLock(name: string): Promise<net.Server | null> {
  return new Promise((done, fail) => {
    const server = net.createServer((c) => c.end(`${process.pid}\n`));
    server.once('error', (e: NodeJS.ErrnoException) => (e.code === 'EADDRINUSE' ? done(null) : fail(e)));
    server.listen({ path: name }, () => {
      // The lock must not keep the process alive once everything else is done.
      server.unref();
      done(server);
    });
  });
}

/** Who holds the name now: `{ pid }` (null when it did not say in time), or null when nobody does. */
export function holderOf(name: string): Promise<{ pid: number | null } | null> {
  return new Promise((done) => {
    let text = '';
    let connected = false;
    const c = net.connect({ path: name });
    const finish = (v: { pid: number | null } | null) => {
      c.destroy();
      done(v);
    };
    c.setEncoding('utf8');
    c.on('connect', () => (connected = true));
    c.on('data', (d: string) => (text += d));
    c.on('end', () => {
      const n = Number(text.trim());
      finish({ pid: Number.isSafeInteger(n) && n > 0 ? n : null });
    });
    // Nothing bound to the name: nobody holds it.
    c.on('error', () => finish(connected ? { pid: null } : null));
    c.setTimeout(1000, () => finish(connected ? { pid: null } : null));
  });
}

/**
 * `CopyRequest.resetIdentity` on the overlay backend: the new instance's identity files
 * (`backends/identity.ts`: `/etc/machine-id` emptied, SSH host keys made anew by the host's
 * `ssh-keygen`) are written into its new upper before its meta file is written, so the copy is
 * never visible with its source's identity, and a crash in between leaves only an unreferenced
 * upper for garbage collection.
 *
 * The upper is mounted on a temporary mount point under `views/` (overlayfs: the kernel copies the
 * files up, with their directories' owners and modes, as it would for a process writing them; the
 * copy driver's upper is the full tree itself, written in place). Paths are resolved inside the
 * root (`inroot.ts`): a symlink never leads out to the host. There is no user namespace, so root in
 * the instance is root on the host: new keys are owned by 0:0.
 *
 * @example
 * ```ts
 * const upper = await store.driver.newUpper(src.chain);
 * await resetIdentityInUpper(store, src.chain, upper, 'nav2-1a2b3c4d');
 * ```
 */
import { constants } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BackendError } from '../types.ts';
import { checkHostKeyType, hostKeyPath, hostKeyType, KEY_MODE, MACHINE_ID, makeHostKeys, PUB_MODE, SSH_DIR } from '../identity.ts';
import type { Rw } from './drivers.ts';
import { randomId, removeTree } from './fsutil.ts';
import { resolveInRoot } from './inroot.ts';
import type { InRoot } from './inroot.ts';
import type { Store } from './store.ts';

/**
 * Reset the identity files of the root made of `chain` and the new, not yet referenced `upper` (an
 * instance named `name`). When that fails (a key type ssh-keygen refuses), the upper is collected
 * at once: nothing of the copy stays.
 */
export async function resetIdentityInUpper(store: Store, chain: readonly string[], upper: string, name: string): Promise<void> {
  const rw: Rw = { chain, upper, merged: join(store.layout.views, `identity-${randomId(6)}`) };
  try {
    await store.driver.activate(rw);
    try {
      await resetIdentityInRoot(store.driver.rootOf(rw), name);
    } finally {
      await store.driver.deactivate(rw);
      await removeTree(rw.merged); // the mount point (overlayfs); the copy driver made none
    }
  } catch (e) {
    await store.gc().catch(() => undefined);
    throw e;
  }
}

/** What `path` is inside `root`; a symlink loop counts as nothing there. */
async function at(root: string, path: string): Promise<InRoot | null> {
  try {
    return await resolveInRoot(root, path);
  } catch (e) {
    if (e instanceof BackendError && e.code === 'INVALID') return null;
    throw e;
  }
}

/** Reset the identity files of the root filesystem at `root` (a host path). */
export async function resetIdentityInRoot(root: string, name: string): Promise<void> {
  const keys: Array<{ type: string; key: string; pub: string | null }> = [];
  const ssh = await at(root, SSH_DIR);
  if (ssh?.type === 'dir') {
    for (const file of (await readdir(ssh.host)).sort()) {
      const type = hostKeyType(file);
      if (type === null) continue;
      const key = await at(root, `${ssh.path}/${file}`);
      if (key?.type !== 'file') continue;
      checkHostKeyType(type);
      const pub = await at(root, `${ssh.path}/${file}.pub`);
      keys.push({ type, key: key.host, pub: pub?.type === 'file' ? pub.host : null });
    }
  }
  // Made before anything is written: a key type ssh-keygen refuses changes nothing.
  const made = await makeHostKeys(keys.map((k) => k.type), `root@${name}`);
  const mid = await at(root, MACHINE_ID);
  if (mid?.type === 'file') await rewrite(mid.host, Buffer.alloc(0));
  for (const k of keys) {
    const pair = made.get(k.type);
    if (!pair) throw new BackendError('INTERNAL', `no new key was made for ${hostKeyPath(k.type)}`);
    await rewrite(k.key, pair.key, KEY_MODE);
    if (k.pub !== null) await rewrite(k.pub, pair.pub, PUB_MODE);
  }
}

/**
 * Replace a file's content in place (never through a symlink); with `mode`, also give it that mode
 * and, when this process is root, root's ownership (unprivileged, on the copy driver, every file of
 * a root is the user's anyway).
 */
async function rewrite(host: string, content: Buffer, mode?: number): Promise<void> {
  const fh = await open(host, constants.O_WRONLY | constants.O_TRUNC | constants.O_NOFOLLOW);
  try {
    await fh.writeFile(content);
    if (mode !== undefined) {
      if (process.getuid?.() === 0) await fh.chown(0, 0);
      await fh.chmod(mode);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

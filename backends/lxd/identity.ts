/**
 * `CopyRequest.resetIdentity` on LXD: once the copy is made (stopped), its identity files
 * (`backends/identity.ts`: `/etc/machine-id` emptied, SSH host keys made anew by the host's
 * `ssh-keygen`) are written through the file API, which works on a stopped container (LXD mounts
 * its volume for the request). Paths are resolved inside the instance (`files.ts`); the new keys
 * are pushed as uid 0, gid 0 as seen in the container (LXD shifts them for its idmap).
 *
 * Until the files are reset the copy must not pass for done: a new copy is made without its `op`
 * tag, which is written once the files are reset (`finishCopy`), so a crash in between leaves an
 * object whose op tag says the copy did not happen (reconciliation deletes and redoes it); a
 * failure deletes the copy. A refresh-copy already writes its config, op tag included, last
 * (`adapter.ts`, `refreshOnto`): the files are reset before that.
 *
 * @example
 * ```ts
 * await resetInstanceIdentity(client, 'nav2-1a2b3c4d', 'workshop.alice');
 * ```
 */
import { Readable } from 'node:stream';
import { BackendError } from '../types.ts';
import { checkHostKeyType, hostKeyPath, hostKeyType, KEY_MODE, MACHINE_ID, makeHostKeys, PUB_MODE, SSH_DIR } from '../identity.ts';
import type { LxdClient } from './client.ts';
import { OP_KEY } from './config.ts';
import { resolve } from './files.ts';
import type { LxdFile } from './files.ts';

/** Where a path leads in the instance, or null (nothing there, or a symlink loop). */
async function at(client: LxdClient, name: string, project: string, path: string, method: 'GET' | 'HEAD' = 'HEAD'): Promise<(LxdFile & { path: string }) | null> {
  try {
    return await resolve(client, name, project, path, method);
  } catch (e) {
    if (e instanceof BackendError && e.code === 'INVALID') return null;
    throw e;
  }
}

/** Reset the identity files of the (stopped) instance `name`. */
export async function resetInstanceIdentity(client: LxdClient, name: string, project: string): Promise<void> {
  const keys: Array<{ type: string; key: LxdFile & { path: string }; pub: (LxdFile & { path: string }) | null }> = [];
  const ssh = await at(client, name, project, SSH_DIR, 'GET');
  if (ssh?.type === 'dir') {
    for (const file of listing(ssh.body).sort()) {
      const type = hostKeyType(file);
      if (type === null) continue;
      const key = await at(client, name, project, `${ssh.path}/${file}`);
      if (key?.type !== 'file') continue;
      checkHostKeyType(type);
      const pub = await at(client, name, project, `${ssh.path}/${file}.pub`);
      keys.push({ type, key, pub: pub?.type === 'file' ? pub : null });
    }
  }
  // Made before anything is written: a key type ssh-keygen refuses changes nothing.
  const made = await makeHostKeys(keys.map((k) => k.type), `root@${name}`);
  const mid = await at(client, name, project, MACHINE_ID);
  if (mid?.type === 'file') await pushFile(client, name, project, mid.path, Buffer.alloc(0), { mode: mid.mode, uid: mid.uid, gid: mid.gid });
  for (const k of keys) {
    const pair = made.get(k.type);
    if (!pair) throw new BackendError('INTERNAL', `no new key was made for ${hostKeyPath(k.type)}`);
    await pushFile(client, name, project, k.key.path, pair.key, { mode: KEY_MODE, uid: 0, gid: 0 });
    if (k.pub) await pushFile(client, name, project, k.pub.path, pair.pub, { mode: PUB_MODE, uid: 0, gid: 0 });
  }
}

/**
 * The end of a new copy made with `resetIdentity` and without its op tag: reset its identity files,
 * then write the op tag. On failure the copy is deleted (`remove`) and the error rethrown.
 */
export async function finishCopy(client: LxdClient, name: string, project: string, op: string, remove: () => Promise<void>): Promise<void> {
  try {
    await resetInstanceIdentity(client, name, project);
    await client.sync('PATCH', `/1.0/instances/${encodeURIComponent(name)}`, { config: { [OP_KEY]: op } }, { project });
  } catch (e) {
    await remove().catch(() => undefined);
    throw e;
  }
}

/** The names a directory's `GET` lists (LXD answers a JSON envelope whose metadata is the names). */
function listing(body: Buffer): string[] {
  try {
    const names = (JSON.parse(body.toString('utf8')) as { metadata?: unknown }).metadata;
    return Array.isArray(names) ? names.filter((n): n is string => typeof n === 'string') : [];
  } catch {
    return [];
  }
}

/** Write `content` over the file at `path` in the instance, with the given mode and owner. */
async function pushFile(client: LxdClient, name: string, project: string, path: string, content: Buffer, attrs: { mode: number; uid: number; gid: number }): Promise<void> {
  const headers = {
    'Content-Type': 'application/octet-stream',
    'X-LXD-type': 'file',
    'X-LXD-write': 'overwrite',
    'X-LXD-mode': attrs.mode.toString(8).padStart(4, '0'),
    'X-LXD-uid': String(attrs.uid),
    'X-LXD-gid': String(attrs.gid),
  };
  await client.upload(`/1.0/instances/${encodeURIComponent(name)}/files`, headers, Readable.from(content.length ? [content] : []), { path, project });
}

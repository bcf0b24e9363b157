/**
 * What `CopyRequest.resetIdentity` resets in a root filesystem, shared by the adapters (which do
 * not import each other: lint rule `adapters-apart`), and the host's `ssh-keygen` that makes the
 * new SSH host keys for the overlay and LXD adapters (the fake makes its own, deterministically).
 *
 * - `/etc/machine-id`, when it is a file, is emptied (as in a cloud image: filled at first boot).
 * - Every `/etc/ssh/ssh_host_<type>_key` that is a file gets a new key of that type, and its
 *   `.pub` (when present) the matching public key: modes 0600 and 0644, owned by root (0:0 as seen
 *   in the instance). A `.pub` is never created where the root lacks it; nothing else is created.
 * - Paths are resolved inside the root (a symlink is followed within it, never out to the host);
 *   what is not there, or not a file, is left alone.
 * - A key type `ssh-keygen` cannot make (not in `HOST_KEY_TYPES`, or refused by the host's build)
 *   is `INVALID`; no `ssh-keygen` on the host is `UNAVAILABLE`, naming the Debian package.
 *
 * @example
 * ```ts
 * checkResetIdentity(req);                         // INVALID for a layer target
 * hostKeyType('ssh_host_ed25519_key');              // 'ed25519'
 * const keys = await makeHostKeys(['ed25519'], 'root@nav2-1a2b3c4d');
 * keys.get('ed25519')!.pub.toString().startsWith('ssh-ed25519 '); // true
 * ```
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CopyRequest } from './types.ts';
import { BackendError } from './types.ts';

export const MACHINE_ID = '/etc/machine-id';
export const SSH_DIR = '/etc/ssh';
/** The private key's mode; its `.pub` gets `PUB_MODE`. Both owned by root. */
export const KEY_MODE = 0o600;
export const PUB_MODE = 0o644;

/** The host key types a reset makes anew (`ssh-keygen -t`). */
export const HOST_KEY_TYPES: readonly string[] = ['rsa', 'dsa', 'ecdsa', 'ed25519'];

/** What a public key of each type starts with (`ssh-ed25519 AAAA… root@name`; ECDSA as ssh-keygen's default size). */
export const PUB_ALGORITHM: Readonly<Record<string, string>> = { rsa: 'ssh-rsa', dsa: 'ssh-dss', ecdsa: 'ecdsa-sha2-nistp256', ed25519: 'ssh-ed25519' };

/** The Debian package that has `ssh-keygen`. */
export const SSH_KEYGEN_PACKAGE = 'openssh-client';

/** A new host key pair. */
export interface HostKey {
  readonly key: Buffer;
  readonly pub: Buffer;
}

/** `INVALID` when a copy asks for `resetIdentity` onto a target that is not an instance. */
export function checkResetIdentity(req: Pick<CopyRequest, 'target' | 'resetIdentity'>): void {
  if (req.resetIdentity && req.target.space !== 'workshops') {
    throw new BackendError('INVALID', `resetIdentity is for instances: ${req.target.space}/${req.target.name} is a layer (copy it without resetIdentity)`, { ref: req.target });
  }
}

/** The type of a host key file name (`ssh_host_ed25519_key` → `ed25519`), or null for any other name. */
export function hostKeyType(fileName: string): string | null {
  const m = /^ssh_host_(.+)_key$/.exec(fileName);
  return m ? m[1]! : null;
}

/** `INVALID` for a host key type a reset cannot make anew. */
export function checkHostKeyType(type: string): void {
  if (!HOST_KEY_TYPES.includes(type)) {
    throw new BackendError('INVALID', `cannot make a new SSH host key for ${SSH_DIR}/ssh_host_${type}_key: type "${type}" is not one of ${HOST_KEY_TYPES.join(', ')}`, { type });
  }
}

/** The host key path of a type: `/etc/ssh/ssh_host_<type>_key`. */
export function hostKeyPath(type: string): string {
  return `${SSH_DIR}/ssh_host_${type}_key`;
}

/**
 * New host keys, one pair per type, made by the host's `ssh-keygen` in a private temp directory
 * (removed afterwards), commented `comment` (e.g. `root@<instance>`).
 * @throws `UNAVAILABLE` without `ssh-keygen`; `INVALID` for a type it cannot make.
 */
export async function makeHostKeys(types: readonly string[], comment: string): Promise<Map<string, HostKey>> {
  const out = new Map<string, HostKey>();
  if (types.length === 0) return out;
  for (const t of types) checkHostKeyType(t);
  const dir = await mkdtemp(join(tmpdir(), 'atelier-hostkeys-'));
  try {
    for (const type of types) {
      const file = join(dir, `ssh_host_${type}_key`);
      await keygen(['-q', '-t', type, '-N', '', '-f', file, '-C', comment], type);
      out.set(type, { key: await readFile(file), pub: await readFile(`${file}.pub`) });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

function keygen(args: string[], type: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('ssh-keygen', args, { encoding: 'utf8', timeout: 120_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new BackendError('UNAVAILABLE', `ssh-keygen is not installed on this host (Debian package ${SSH_KEYGEN_PACKAGE}); it makes the new SSH host keys of resetIdentity`, { tool: 'ssh-keygen', package: SSH_KEYGEN_PACKAGE }));
      }
      const why = (stderr || err.message).trim().split('\n').pop() ?? '';
      reject(new BackendError('INVALID', `ssh-keygen cannot make a new ${type} SSH host key: ${why}`, { type, stderr }));
    });
  });
}

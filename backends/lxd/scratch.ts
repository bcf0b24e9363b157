/**
 * Scratch space shared by transient containers: one custom storage volume per scratch key in the
 * owner's workshops project, mounted at `/scratch`, reference-counted by the containers that carry
 * its key (`user.atelier-internal.scratch`): created by the first, deleted with the last.
 */
import { BackendError } from '../types.ts';
import type { LxdClient, LxdInstance } from './client.ts';
import { SCRATCH_KEY } from './config.ts';

/** The pool new root disks go to: the adapter's `pool` option, else the first profile's root disk. */
export async function rootPool(client: LxdClient, pool: string | undefined, profile: string): Promise<string> {
  if (pool) return pool;
  const p = await client.get<{ devices: Record<string, Record<string, string>> }>(`/1.0/profiles/${encodeURIComponent(profile)}`);
  const root = Object.values(p.devices).find((d) => d.type === 'disk' && d.path === '/');
  if (!root?.pool) throw new BackendError('INTERNAL', `profile ${profile} has no root disk; run scripts/lxd-setup.sh`);
  return root.pool;
}

export function scratchVolume(scratch: string): string {
  return `atelier-scratch-${scratch.replace(/[^a-zA-Z0-9-]/g, '-')}`;
}

export async function ensureScratch(client: LxdClient, project: string, pool: string, scratch: string): Promise<string> {
  const volume = scratchVolume(scratch);
  try {
    await client.sync('POST', `/1.0/storage-pools/${encodeURIComponent(pool)}/volumes/custom`, { name: volume, config: {} }, { project });
  } catch (e) {
    if (!(e instanceof BackendError && e.code === 'ALREADY_EXISTS')) throw e;
  }
  return volume;
}

/** Delete the scratch volume once no container in the project carries its key. */
export async function releaseScratch(client: LxdClient, project: string, pool: string, scratch: string): Promise<void> {
  const users = await client.get<LxdInstance[]>('/1.0/instances', { project, recursion: 1, filter: `config.${SCRATCH_KEY} eq ${scratch}` });
  if (users.some((u) => u.config[SCRATCH_KEY] === scratch)) return;
  try {
    await client.sync('DELETE', `/1.0/storage-pools/${encodeURIComponent(pool)}/volumes/custom/${encodeURIComponent(scratchVolume(scratch))}`, undefined, { project });
  } catch (e) {
    if (!(e instanceof BackendError && (e.code === 'NOT_FOUND' || e.code === 'BUSY'))) throw e;
  }
}

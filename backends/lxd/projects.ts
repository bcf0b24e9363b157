/**
 * The owner's two LXD projects, and waiting for operations an earlier (killed) caller left running.
 *
 * Projects are created with `features.images=false` and `features.profiles=false`: they use the
 * default project's images (so an image alias resolves) and profiles (on LXD 5.0 a project with its
 * own, empty default profile cannot receive copies: "No root device could be found"). Features
 * cannot change once a project holds instances, so an existing project with its own images or
 * profiles is reported as `INVALID` rather than used.
 */
import { BackendError } from '../types.ts';
import type { Space } from '../types.ts';
import type { LxdClient, LxdOperation } from './client.ts';
import { projectName } from './config.ts';

export const OWNER_RE = /^(?:[a-zA-Z][-a-zA-Z0-9._]*|[0-9]+)$/;

export async function ensureOwnerProjects(client: LxdClient, owner: string): Promise<void> {
  if (!OWNER_RE.test(owner)) throw new BackendError('INVALID', `owner "${owner}" is not a valid LXD project suffix (^[a-zA-Z][-a-zA-Z0-9._]*$ or a numeric uid)`, { owner });
  for (const space of ['workshops', 'layers'] as const satisfies readonly Space[]) {
    const name = projectName(space, owner);
    const config = { 'features.images': 'false', 'features.profiles': 'false' };
    try {
      await client.sync('POST', '/1.0/projects', { name, description: `atelier ${space} of ${owner}`, config });
    } catch (e) {
      if (!(e instanceof BackendError && e.code === 'ALREADY_EXISTS')) throw e;
      const p = await client.get<{ config: Record<string, string> }>(`/1.0/projects/${encodeURIComponent(name)}`);
      if (p.config['features.images'] !== 'false' || p.config['features.profiles'] !== 'false') {
        throw new BackendError(
          'INVALID',
          `LXD project ${name} exists with its own images or profiles; atelier needs features.images=false and features.profiles=false (set them while the project is empty)`,
          { project: name },
        );
      }
    }
  }
}

/**
 * Wait for LXD operations still running on one instance (hooks excepted). An engine killed in the
 * middle of a call leaves its operation running in the daemon: a copy may still be filling its
 * target. Reading the object only after they end makes "present with this op's tag" mean "done".
 */
export async function settle(client: LxdClient, project: string, name: string): Promise<void> {
  const me = `/1.0/instances/${name}`;
  for (let round = 0; round < 5; round++) {
    let ops: { running?: LxdOperation[] };
    try {
      ops = await client.get<{ running?: LxdOperation[] }>('/1.0/operations', { project, recursion: 1 });
    } catch (e) {
      if (e instanceof BackendError && e.code === 'UNAVAILABLE') throw e;
      return;
    }
    const busy = (ops.running ?? []).filter(
      (op) => !/^Executing command/.test(op.description ?? '') && Object.values(op.resources ?? {}).some((rs) => rs.some((r) => r.split('?')[0] === me)),
    );
    if (busy.length === 0) return;
    // A finished operation vanishes after a few seconds (404): that is as good as done.
    for (const op of busy) await client.wait(op.id, 300).catch(() => undefined);
  }
}

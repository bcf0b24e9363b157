/**
 * The workshops and SDKs the simulation draws from. Each SDK's `setup-base` hook appends
 * `name:version` to `/etc/sdk-chain`, so any instance's or layer's root filesystem says which SDKs
 * were applied to it, in order: what invariant 8 reads. A "bad" SDK writes its line and then exits
 * non-zero, leaving a half-done root filesystem for the undo to clean up.
 *
 * @example
 * ```ts
 * const spec = specOf('alpha', [1, 2, 1]);        // ros2:1, nav:2, tools:1
 * chainOf(spec);                                   // ['ros2:1', 'nav:2', 'tools:1']
 * ```
 */
import { crc32 } from 'node:zlib';
import type { WorkshopSpec } from '../events/catalogue.ts';

/** The workshops a run draws from, with their SDK names and project ids. */
export const WORKSHOPS: Readonly<Record<string, { readonly projectId: string; readonly sdks: readonly string[] }>> = {
  alpha: { projectId: 'a1a2a3a4', sdks: ['ros2', 'nav', 'tools'] },
  beta: { projectId: 'b1b2b3b4', sdks: ['ros2', 'nav'] },
};
export const WORKSHOP_NAMES = Object.keys(WORKSHOPS);

export const CHAIN_FILE = '/etc/sdk-chain';

/** Versions of each SDK of a workshop; `bad` makes the last SDK's hook exit 3 after writing. */
export interface SpecVersion {
  readonly versions: readonly number[];
  readonly bad?: boolean;
}

/** The hash of an SDK: its name, its hook and its parent's hash (docs/design.md), as 8 hex digits. */
function hashOf(name: string, script: string, parent: string): string {
  return crc32(`${name}\0${script}\0${parent}`).toString(16).padStart(8, '0');
}

export function specOf(workshop: string, v: SpecVersion): WorkshopSpec {
  const w = WORKSHOPS[workshop]!;
  let parent = '';
  const sdks = w.sdks.map((name, i) => {
    const line = `${name}:${v.versions[i] ?? 1}`;
    const fail = v.bad === true && i === w.sdks.length - 1;
    const script = `echo ${line} >> "\${ATELIER_ROOTFS%/}${CHAIN_FILE}"${fail ? '\nexit 3' : ''}\n`;
    const hash = hashOf(name, script, parent);
    parent = hash;
    return { name, hash, script };
  });
  return { name: workshop, base: 'busybox', defaultBase: true, projectId: w.projectId, sdks };
}

/** The chain line each SDK hash stands for (every hash the simulation can produce is registered). */
const LINES = new Map<string, string>();

export function chainOf(spec: WorkshopSpec): string[] {
  return spec.sdks.map((s) => {
    const line = /^echo (\S+) >>/.exec(s.script)![1]!;
    LINES.set(s.hash, line);
    return line;
  });
}

/** The chain line of an SDK layer's hash (registered by `chainOf`). */
export function lineOfHash(hash: string): string | undefined {
  return LINES.get(hash);
}

export const DEFAULT_VERSION: SpecVersion = { versions: [1, 1, 1] };

/** How a refresh changes the spec: unchanged, the middle SDK, the first SDK, or a failing hook. */
export type RefreshChange = 'unchanged' | 'middle' | 'first' | 'bad';

export function changed(v: SpecVersion, how: RefreshChange): SpecVersion {
  const versions = [...v.versions];
  if (how === 'middle') versions[1] = (versions[1] ?? 1) + 1;
  if (how === 'first') versions[0] = (versions[0] ?? 1) + 1;
  return { versions, ...(how === 'bad' ? { bad: true } : {}) };
}

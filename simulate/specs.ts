/**
 * The workshops and SDKs the simulation draws from. Each SDK's `setup-base` hook appends
 * `name:version` to `/etc/sdk-chain`, so any instance's or layer's root filesystem says which SDKs
 * were applied to it, in order: what invariant 8 reads. A "bad" SDK writes its line and then exits
 * non-zero, leaving a half-done root filesystem for the undo to clean up.
 *
 * The workshops' SDK chains overlap on one base (the SDK cache shares their layers): alpha
 * [ros2, nav, tools], beta [ros2, nav], gamma [ros2, sim] and delta [ros2]. At the same versions
 * an SDK's hash is the same in every workshop (its name, its hook and its parent's hash), so
 * launches and refreshes of different workshops build and reuse the same shared layers. A refresh
 * flips an SDK's version between 1 and 2 (`changed`), so chains part and meet again, and a layer
 * left in the cache is taken again.
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
  gamma: { projectId: 'c1c2c3c4', sdks: ['ros2', 'sim'] },
  delta: { projectId: 'd1d2d3d4', sdks: ['ros2'] },
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
/** The whole chain (this SDK's line and every one before it) each SDK hash stands for. */
const CHAINS = new Map<string, readonly string[]>();

export function chainOf(spec: WorkshopSpec): string[] {
  const lines = spec.sdks.map((s) => /^echo (\S+) >>/.exec(s.script)![1]!);
  spec.sdks.forEach((s, i) => {
    if (LINES.has(s.hash)) return;
    LINES.set(s.hash, lines[i]!);
    CHAINS.set(s.hash, lines.slice(0, i + 1));
  });
  return lines;
}

/** The chain line of an SDK layer's hash (registered by `chainOf`). */
export function lineOfHash(hash: string): string | undefined {
  return LINES.get(hash);
}

/** What `/etc/sdk-chain` of a complete layer of this SDK hash holds (registered by `chainOf`). */
export function chainOfHash(hash: string): readonly string[] | undefined {
  return CHAINS.get(hash);
}

export const DEFAULT_VERSION: SpecVersion = { versions: [1, 1, 1] };

/** How a refresh changes the spec: unchanged, the middle SDK, the first SDK, or a failing hook. */
export type RefreshChange = 'unchanged' | 'middle' | 'first' | 'bad';

/**
 * The spec a refresh asks for. A change flips that SDK's version between 1 and 2: a workshop
 * refreshed twice the same way is back on the chain it left (and on layers the cache may hold),
 * and workshops refreshed apart meet again. (Versions used to count up; the regression fixtures
 * replay the same either way: only whether a hash changed decides a plan.)
 */
export function changed(v: SpecVersion, how: RefreshChange): SpecVersion {
  const versions = [...v.versions];
  const flip = (n: number | undefined) => ((n ?? 1) === 1 ? 2 : 1);
  if (how === 'middle') versions[1] = flip(versions[1]);
  if (how === 'first') versions[0] = flip(versions[0]);
  return { versions, ...(how === 'bad' ? { bad: true } : {}) };
}

/**
 * The backend conformance suite: one set of cases every adapter (fake, overlay, lxd) must pass,
 * using only the port (`backends/types.ts`), so a rule checked here holds on every backend. Each
 * adapter's test file calls `runConformance` with a factory for a fresh backend; every test makes
 * its own fixture, uses unique names valid on LXD, and removes what it made.
 *
 * Areas (each one uvu suite, each name usable in `opts.skip`):
 * - `lifecycle`: create, copy, refresh-copy, remove, start, stop, inspect and their error codes.
 * - `identity`: new identities on copy, kept on refresh; tags verbatim; list filtered and sorted;
 *   NOT_OWNED for others' and unowned objects (the latter needs the factory's `plant`).
 * - `execution`: hooks (output, env, EXEC_FAILED with the exit status, running required) and
 *   transient containers (IN_USE on their source, shared scratch).
 * - `filesystem`: content through chains of copies (`cases/filesystem.ts`).
 * - `space`: `diskSpace` and `usage` (`cases/space.ts`).
 * - `spawn`: processes with their streams connected (`cases/spawn.ts`).
 * - `sharing`: one SDK layer copied into many instances with `resetIdentity` (own identity files,
 *   writes kept apart, the layer removable under them) and `baseFingerprint` (`cases/sharing.ts`;
 *   its re-registration case needs the factory's `registerBase`).
 *
 * @example
 * ```ts
 * runConformance('fake', async () => ({ backend: createFakeBackend({ seed: 1 }), owner: 'alice', cleanup: async () => {} }));
 * ```
 */
import { executionCases } from './cases/execution.ts';
import { filesystemCases } from './cases/filesystem.ts';
import { identityCases } from './cases/identity.ts';
import { lifecycleCases } from './cases/lifecycle.ts';
import { sharingCases } from './cases/sharing.ts';
import { spaceCases } from './cases/space.ts';
import { spawnCases } from './cases/spawn.ts';
import type { Make } from './cases/types.ts';

export type { Fixture, Make } from './cases/types.ts';

export type ConformanceArea = 'lifecycle' | 'identity' | 'execution' | 'filesystem' | 'space' | 'spawn' | 'sharing';

export interface ConformanceOptions {
  /** Areas to leave out, e.g. `['filesystem']` while an adapter cannot read files yet. */
  readonly skip?: readonly string[];
}

const AREAS: ReadonlyArray<[ConformanceArea, (name: string, make: Make) => void]> = [
  ['lifecycle', lifecycleCases],
  ['identity', identityCases],
  ['execution', executionCases],
  ['filesystem', filesystemCases],
  ['space', spaceCases],
  ['spawn', spawnCases],
  ['sharing', sharingCases],
];

/** Register (and run) every conformance suite against the backends `make` produces. */
export function runConformance(name: string, make: Make, opts: ConformanceOptions = {}): void {
  const skip = new Set(opts.skip ?? []);
  for (const [area, register] of AREAS) {
    if (skip.has(area)) {
      console.log(`${name}: conformance area "${area}" skipped by the adapter's test file`);
      continue;
    }
    register(name, make);
  }
}

/**
 * What an adapter's test file hands the conformance suite: a factory for a fresh, empty backend.
 * Shared by `conformance.ts` and every `cases/*.ts` file.
 *
 * @example
 * ```ts
 * const make: Make = async () => ({ backend: createFakeBackend({ seed: 1 }), owner: 'alice', cleanup: async () => {} });
 * ```
 */
import type { Backend, ObjectRef } from '../../../backends/types.ts';

export interface Fixture {
  readonly backend: Backend;
  /** The owner every object the cases create is tagged with (`ensureProjects` is called for it). */
  readonly owner: string;
  /** Release the backend and whatever the cases left behind (including planted objects). */
  cleanup(): Promise<void>;
  /**
   * Put an object at `ref` that atelier does not own: no `owner` tag (plus `tags`, verbatim). An
   * instance for the `workshops` space, a layer for `layers`. Adapter-specific (the port cannot
   * make one); cases that need it are skipped, with the reason printed, when it is absent.
   */
  plant?(ref: ObjectRef, tags?: Record<string, string>): Promise<void>;
  /**
   * Register base `name` from a root of its own, or, when it is registered already, again from a
   * new root (its content changes): fake `registerBase`, overlay `addBase`, LXD an image imported
   * under that alias. `cleanup` removes what it registered. Adapter-specific (the port has no
   * call for it); the `baseFingerprint` cases that need it are skipped, with the reason printed,
   * when it is absent.
   */
  registerBase?(name: string): Promise<void>;
}

/** Makes a fresh fixture; called once per test. */
export type Make = () => Promise<Fixture>;

/**
 * Where ids and time come from. The engine asks these only when it makes a decision, and records
 * what they gave in the journal, so replay never asks again.
 *
 * @example
 * ```ts
 * const engine = await openEngine({ stateDir, backend, ids: sequentialIds(), clock: steppingClock('2026-01-01T00:00:00.000Z') });
 * ```
 */
import { customAlphabet } from 'nanoid';
import type { Clock, IdSource } from './api.ts';

const HEX = '0123456789abcdef';
const LOWER = '0123456789abcdefghijklmnopqrstuvwxyz';

/** Random ids from nanoid (layer suffixes are host-name safe: no `_`, no trailing `-`). */
export function defaultIds(): IdSource {
  const op = customAlphabet(LOWER, 12);
  const suffix = customAlphabet(HEX, 16);
  const container = customAlphabet(LOWER, 10);
  return { opId: () => `op-${op()}`, layerSuffix: suffix, containerId: container };
}

export const defaultClock: Clock = () => new Date().toISOString();

/** Deterministic ids for tests and simulation: `op-1`, `op-2`, ...; suffixes count up in hex. */
export function sequentialIds(start = 1): IdSource & { readonly next: number } {
  let n = start;
  return {
    get next() {
      return n;
    },
    opId: () => `op-${n++}`,
    layerSuffix: () => (n++).toString(16).padStart(16, '0'),
    containerId: () => `c${(n++).toString(36)}`,
  };
}

/** A clock that moves one millisecond per reading from `start`. */
export function steppingClock(start = '2026-01-01T00:00:00.000Z'): Clock {
  let t = Date.parse(start);
  return () => new Date(t++).toISOString();
}

/**
 * The engine's entry points. See `engine/api.ts` for the types and README.md for a tour.
 *
 * @example
 * ```ts
 * import { openEngine, loadWorkshopFile } from './engine/index.ts';
 * const engine = await openEngine({ stateDir: '/tmp/atelier', backend });
 * await engine.launch(await loadWorkshopFile('workshop.yaml', { defaultBase: backend.defaultBase }));
 * ```
 */
export { openEngine } from './open.ts';
export { replay, openFolded } from './replay.ts';
export { loadWorkshopFile } from './workshop-file.ts';
export { defaultIds, defaultClock, sequentialIds, steppingClock } from './ids.ts';
export { canonicalJson, evolve, initialState, type FoldState } from '../machines/index.ts';
export type * from './api.ts';

/**
 * `openEngine`: what a host embeds. It returns the `Engine` interface (`api.ts`), nothing more.
 *
 * @example
 * ```ts
 * import { openEngine } from 'atelier';
 * import { createFakeBackend } from 'atelier/backends/fake';
 * const engine = await openEngine({ stateDir: '/tmp/st', runDir: '/tmp/run', backend: createFakeBackend({ seed: 1 }) });
 * engine.list(); // []
 * await engine.close();
 * ```
 */
import type { Engine, EngineOptions } from './api.ts';
import { openEngineImpl } from './engine.ts';

/**
 * Open an engine on a state directory: take the lock, replay the journal from its latest
 * checkpoint, check the backend answers, and reconcile journal and backend.
 *
 * Errors: `LOCKED` (another engine holds the directory), `JOURNAL_CORRUPT`, `JOURNAL_VERSION`,
 * `UNAVAILABLE` (the backend does not answer). Nothing is changed when opening fails.
 */
export function openEngine(opts: EngineOptions): Promise<Engine> {
  return openEngineImpl(opts);
}

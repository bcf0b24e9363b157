/**
 * The effect runner: carries out one effect a machine requested, on the backend, idempotently.
 *
 * The machines decide what to do; this file only knows how. It applies docs/design.md's rules for what
 * a target already being there means (the same table reconciliation uses, through `judgeProbe`):
 * an object this op already made is done, an owned leftover of another op is removed and the
 * effect redone, an object someone else owns is never touched and fails the step.
 *
 * @example
 * ```ts
 * const outcome = await runEffect(backend, 'alice', 'op-1', { type: 'start', target: { space: 'workshops', name: 'nav2-1a2b3c4d' } });
 * ```
 */
import { BackendError, SimulatedCrash, isBackendError, type Backend } from '../backends/types.ts';
import { judgeProbe, type Effect, type Identity, type ObjectRef, type Observation } from '../machines/index.ts';

export interface EffectOutcome {
  readonly identity?: Identity;
}

/** What the backend holds at an effect's target, as the reconciliation table reads it. */
export async function observe(backend: Backend, owner: string, target: ObjectRef): Promise<Observation> {
  const info = await backend.inspect(target);
  if (!info) return { present: false };
  return { present: true, owned: info.tags.owner === owner, ...(info.tags.op ? { op: info.tags.op } : {}), ...(info.tags.step ? { step: info.tags.step } : {}), status: info.status };
}

async function createOrCopy(backend: Backend, effect: Extract<Effect, { type: 'create' | 'copy' }>): Promise<EffectOutcome> {
  const info =
    effect.type === 'create'
      ? await backend.create({ target: effect.target, source: { base: effect.base }, tags: effect.tags, ...(effect.refresh ? { refresh: true } : {}) })
      : await backend.copy({ source: effect.source, target: effect.target, tags: effect.tags, ...(effect.refresh ? { refresh: true } : {}), ...(effect.resetIdentity ? { resetIdentity: true } : {}) });
  return effect.tags.kind === 'workshop' ? { identity: info.identity } : {};
}

/**
 * Run one effect. Resolves when it took effect; rejects with the backend's error when it did not
 * (a `SimulatedCrash` passes through untouched: the process is "dead").
 */
export async function runEffect(backend: Backend, owner: string, op: string, effect: Effect): Promise<EffectOutcome> {
  switch (effect.type) {
    case 'create':
    case 'copy':
      try {
        return await createOrCopy(backend, effect);
      } catch (e) {
        if (!isBackendError(e, 'ALREADY_EXISTS') || effect.refresh) throw e;
        // Something holds the name: decide by the table whether it is ours, a leftover, or foreign.
        const seen = await observe(backend, owner, effect.target);
        const { decision } = judgeProbe(effect, seen, op);
        if (decision === 'done') {
          const info = await backend.inspect(effect.target);
          return effect.tags.kind === 'workshop' && info ? { identity: info.identity } : {};
        }
        if (decision === 'fail') throw new BackendError('NOT_OWNED', `${effect.target.space}/${effect.target.name} exists and is not owned by ${owner}; atelier never touches it: rename or remove it yourself`);
        if (decision === 'delete-redo') await backend.remove(effect.target);
        return await createOrCopy(backend, effect);
      }
    case 'remove':
      try {
        await backend.remove(effect.target);
      } catch (e) {
        // Not ours: there is nothing of ours to remove, and we never touch what is not ours.
        if (!isBackendError(e, 'NOT_OWNED')) throw e;
      }
      return {};
    case 'start':
      await backend.start(effect.target);
      return {};
    case 'stop':
      await backend.stop(effect.target);
      return {};
    case 'exec':
      await backend.exec(effect.target, { script: effect.script, env: { ATELIER_SDK: effect.sdk } });
      return {};
  }
}

/** The code and message a failed effect is journaled with. Crashes are not failures: rethrown. */
export function failureOf(e: unknown): { code: string; message: string } {
  if (e instanceof SimulatedCrash) throw e;
  if (e instanceof BackendError) return { code: e.code, message: e.message };
  return { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

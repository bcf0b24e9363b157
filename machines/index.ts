/**
 * The domain core: a decider over atelier's state. `decide(state, input)` returns the events that
 * carry a decision; `evolve(state, event)` applies one; `initialState()` is where a journal starts.
 * The charts (`workshopMachine`, `layerMachine`, `containerMachine`) are the logic `decide` runs.
 * It imports nothing but xstate, immer and its own files (checked by `npm run lint`).
 *
 * @example
 * ```ts
 * import { decide, evolve, initialState, initialVolatile } from './machines/index.ts';
 * const durable = initialState();
 * const events = decide({ durable, volatile: initialVolatile() }, { type: 'command', kind: 'launch', workshop: spec.name, spec, owner: 'alice', at, ids });
 * for (const e of events) evolve(durable, e);
 * durable.workshops.nav2.status; // 'busy': the op has started, its first step is requested
 * ```
 */
export { decide, contextFor, type Input, type IdSupply } from './decide.ts';
export { evolve, evolveVolatile } from './evolve.ts';
export {
  initialState,
  initialVolatile,
  canonicalJson,
  currentStep,
  phaseStepsOf,
  layersHeld,
  stashLayerNames,
  shapeOf,
  STATE_SCHEMA,
  type ContainerRecord,
  type DomainState,
  type FoldState,
  type ObjectRecord,
  type ObjectState,
  type OpRecord,
  type VolatileState,
  type WorkshopRecord,
  type WorkshopStatus,
} from './state.ts';
export { isVolatileEvent, type DomainEvent, type DomainEventType, type KeyedEvent, type LastError } from './events.ts';
export { workshopMachine, MAX_ATTEMPTS } from './workshop.ts';
export { layerMachine, judgeProbe } from './layer.ts';
export { containerMachine } from './container.ts';
export { describeEffect, instanceRef, layerRef } from './plan.ts';
export * from './types.ts';

/**
 * atelier as a library: open an engine on a backend, load workshop files, run commands.
 *
 * @example
 * ```ts
 * import { openEngine, loadWorkshopFile } from 'atelier';
 * import { createFakeBackend } from 'atelier/backends/fake';
 * const engine = await openEngine({ stateDir: '/tmp/st', runDir: '/tmp/run', backend: createFakeBackend({ seed: 1 }) });
 * const spec = await loadWorkshopFile('fixtures/quickstart/workshop.yaml', { defaultBase: engine.backend.defaultBase });
 * await engine.launch(spec, { onProgress: (p) => console.log(p.label, p.status) });
 * await engine.close();
 * ```
 */
export { openEngine } from './engine/index.ts';
export type {
  Clock,
  CommandOptions,
  ContainerView,
  Engine,
  EventCursor,
  JournalEvent,
  EngineOptions,
  EngineState,
  GcReport,
  IdSource,
  Progress,
  ReconcileReport,
  RunRequest,
  RunResult,
  WorkshopStatus,
  WorkshopView,
} from './engine/api.ts';
export { loadWorkshopFile, projectIdFor, sdkHash } from './engine/workshop-file.ts';
export type { LoadWorkshopOptions } from './engine/workshop-file.ts';
export { didYouMean } from './engine/hints.ts';
export {
  instanceName,
  ownerName,
  sdkLayerName,
  stashName,
  stashSdkName,
  validateOwnerName,
  validateProjectId,
  validateSdkName,
  validateWorkshopName,
} from './machines/names.ts';
export { AtelierError, exitCodeFor, isAtelierError } from './machines/errors.ts';
export type { AtelierErrorCode } from './machines/errors.ts';
export { BackendError, isBackendError, LAYER_KINDS, SimulatedCrash, spaceOf } from './backends/types.ts';
export type {
  Backend,
  BackendErrorCode,
  CopyRequest,
  CreateRequest,
  CreateSource,
  ExecRequest,
  ExecResult,
  FileInfo,
  Identity,
  ObjectInfo,
  ObjectKind,
  ObjectRef,
  Space,
  Status,
  Tags,
} from './backends/types.ts';
export type { JournalRecord, OpKind, Phase, SdkLayer, SdkSpec, StashShape, WorkshopSpec } from './events/catalogue.ts';
// The domain core: the decider every command goes through, for hosts that want to run or inspect
// decisions themselves (replay tools, simulations). See machines/README.md.
export { decide, evolve, evolveVolatile, initialState, initialVolatile, workshopMachine, layerMachine, containerMachine } from './machines/index.ts';
export type { DomainEvent, DomainState, FoldState, IdSupply, Input, KeyedEvent, VolatileState } from './machines/index.ts';

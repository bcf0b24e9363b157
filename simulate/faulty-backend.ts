/**
 * Fault injection around ANY backend adapter: the fake's fault-plan semantics (`backends/fake/faults.ts`,
 * whose `FaultInjector` decides call by call) applied to a real adapter (overlay, lxd), so the
 * simulation harness can crash and fail a real backend the way it does the fake.
 *
 * - The plan's rules and random faults select calls exactly as in the fake: by kind, by a substring
 *   of the target (`space/name`; the owner for `list` / `ensureProjects`; empty for `listBases`;
 *   the base for `baseFingerprint`), by `nth` matching call, or at random from the plan's seed.
 * - `before`: the call is not made; `fail` throws `BackendError(code)`, `crash` throws `SimulatedCrash`.
 * - `after`: the call is made (its effect is real), then `fail` / `crash` throws. When the call
 *   itself fails, the fault is spent and the call's own error propagates (as in the fake).
 *
 * The wrapper also counts calls (`calls`), what the crash-point enumeration numbers its points by.
 *
 * @example
 * ```ts
 * const b = withFaults(await createOverlayBackend({ root }), { rules: [{ call: 'copy', when: 'after', action: 'crash' }] });
 * await b.copy(req); // copies, then throws SimulatedCrash
 * b.setFaultPlan(null);
 * ```
 */
import { FaultInjector, type Fault, type FaultPlan } from '../backends/fake/faults.ts';
import { BackendError, SimulatedCrash, type Backend, type CallKind, type ObjectRef } from '../backends/types.ts';

export interface FaultyBackend extends Backend {
  /** The adapter underneath (calls on it bypass the plan). */
  readonly inner: Backend;
  /** Replace the plan (null: none); counters start again from zero, as in the fake. */
  setFaultPlan(plan: FaultPlan | null): void;
  /** Port calls made through the wrapper so far (faulted ones included). */
  readonly calls: number;
}

const refText = (r: ObjectRef): string => `${r.space}/${r.name}`;

/** Wrap `backend` so `plan` (and later `setFaultPlan`'s plans) inject faults around its calls. */
export function withFaults(backend: Backend, plan: FaultPlan | null = null): FaultyBackend {
  let injector: FaultInjector | null = plan ? new FaultInjector(plan) : null;
  let calls = 0;
  const raise = (fault: Fault, text: string): never => {
    const what = `${text} (${fault.by} of the fault plan, ${fault.when} the effect)`;
    if (fault.action === 'crash') throw new SimulatedCrash(`simulated crash: ${what}`);
    throw new BackendError(fault.code, `injected ${fault.code}: ${what}`, { injected: true, when: fault.when });
  };
  const call = async <T>(kind: CallKind, target: string, text: string, fn: () => Promise<T>): Promise<T> => {
    calls++;
    const fault = injector?.decide(kind, target) ?? null;
    if (fault?.when === 'before') raise(fault, text);
    const result = await fn(); // its own error propagates; an `after` fault is spent with it
    if (fault?.when === 'after') raise(fault, text);
    return result;
  };
  const b = backend;
  return {
    inner: b,
    get kind() {
      return b.kind;
    },
    get defaultBase() {
      return b.defaultBase;
    },
    get calls() {
      return calls;
    },
    setFaultPlan(p: FaultPlan | null): void {
      injector = p ? new FaultInjector(p) : null;
    },
    ensureProjects: (owner) => call('ensureProjects', owner, `ensureProjects ${owner}`, () => b.ensureProjects(owner)),
    listBases: () => call('listBases', '', 'listBases', () => b.listBases()),
    baseFingerprint: (base) => call('baseFingerprint', base, `baseFingerprint ${base}`, () => b.baseFingerprint(base)),
    spawn: (ref, req) => call('spawn', refText(ref), `spawn ${refText(ref)}`, () => b.spawn(ref, req)),
    create: (req) => call('create', refText(req.target), `create ${refText(req.target)}`, () => b.create(req)),
    copy: (req) => call('copy', refText(req.target), `copy ${refText(req.source)} ${refText(req.target)}`, () => b.copy(req)),
    remove: (ref) => call('remove', refText(ref), `remove ${refText(ref)}`, () => b.remove(ref)),
    start: (ref) => call('start', refText(ref), `start ${refText(ref)}`, () => b.start(ref)),
    stop: (ref) => call('stop', refText(ref), `stop ${refText(ref)}`, () => b.stop(ref)),
    exec: (ref, req) => call('exec', refText(ref), `exec ${refText(ref)}`, () => b.exec(ref, req)),
    inspect: (ref) => call('inspect', refText(ref), `inspect ${refText(ref)}`, () => b.inspect(ref)),
    list: (owner) => call('list', owner, `list ${owner}`, () => b.list(owner)),
    readFile: (ref, path) => call('readFile', refText(ref), `readFile ${refText(ref)} ${path}`, () => b.readFile(ref, path)),
    // Reads of the environment, not calls on objects: outside the plan, as in the fake.
    diskSpace: () => b.diskSpace(),
    usage: (owner) => b.usage(owner),
    close: () => b.close(),
  };
}

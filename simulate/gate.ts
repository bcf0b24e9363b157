/**
 * The gate between an engine incarnation and the shared backend (the fake, or a real adapter under
 * `withFaults`).
 *
 * A dead process makes no more calls. `engine.crash()` closes the journal, but a command that was
 * already past its last append would still reach the backend from this (living) test process; the
 * gate stops it: once killed, every call throws `SimulatedCrash` without touching the fake. A
 * `SimulatedCrash` thrown by the fake's fault plan kills the gate too, so a second command running
 * concurrently dies with the first.
 *
 * For interleavings, `park` is awaited before each call reaches the fake: the concurrency driver
 * parks each command there and lets one go at a time (the fake's effect is synchronous, so the
 * state change must sit behind that await, not inside a scheduled function).
 *
 * A real backend's call takes time: a call already in flight when the process "dies" is awaited
 * (`settled`) before the world reopens, as if the process had died just after it. A dead process's
 * last calls must not race the next incarnation's recovery.
 *
 * @example
 * ```ts
 * const gate = new Gate(fake);
 * const engine = await openEngine({ stateDir, backend: gate.port });
 * gate.kill(); // every later call: SimulatedCrash
 * ```
 */
import { SimulatedCrash, type Backend } from '../backends/types.ts';

export type Park = (label: string) => Promise<void>;

export class Gate {
  dead = false;
  park: Park | null = null;
  /**
   * For interleavings: the engine calls it when a command starts waiting on another one that is not
   * serialised with it (one flight per SDK layer), and the returned function once it stops waiting.
   */
  waiting: (() => () => void) | null = null;
  /** Called once when the gate dies: the world drops the engine there and then, as the process would. */
  onKill: (() => void) | null = null;
  readonly port: Backend;
  /** Calls that reached the backend (observations compare it to know whether anything changed). */
  count = 0;
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(readonly backend: Backend) {
    const call = async <T>(label: string, fn: () => Promise<T>): Promise<T> => {
      if (this.dead) throw new SimulatedCrash(`simulated crash: the engine is dead (${label})`);
      if (this.park) {
        await this.park(label);
        if (this.dead) throw new SimulatedCrash(`simulated crash: the engine is dead (${label})`);
      }
      this.count++;
      const p = fn();
      this.inflight.add(p);
      try {
        return await p;
      } catch (e) {
        if (e instanceof SimulatedCrash) this.kill();
        throw e;
      } finally {
        this.inflight.delete(p);
      }
    };
    const f = backend;
    const ref = (r: { space: string; name: string }) => `${r.space}/${r.name}`;
    this.port = {
      kind: f.kind,
      defaultBase: f.defaultBase,
      ensureProjects: (owner) => call('ensureProjects', () => f.ensureProjects(owner)),
      listBases: () => call('listBases', () => f.listBases()),
      baseFingerprint: (base) => call(`baseFingerprint ${base}`, () => f.baseFingerprint(base)),
      create: (req) => call(`create ${ref(req.target)}`, () => f.create(req)),
      copy: (req) => call(`copy ${ref(req.source)} ${ref(req.target)}`, () => f.copy(req)),
      remove: (r) => call(`remove ${ref(r)}`, () => f.remove(r)),
      start: (r) => call(`start ${ref(r)}`, () => f.start(r)),
      stop: (r) => call(`stop ${ref(r)}`, () => f.stop(r)),
      exec: (r, req) => call(`exec ${ref(r)}`, () => f.exec(r, req)),
      spawn: (r, req) => call(`spawn ${ref(r)}`, () => f.spawn(r, req)),
      inspect: (r) => call(`inspect ${ref(r)}`, () => f.inspect(r)),
      list: (owner) => call('list', () => f.list(owner)),
      readFile: (r, p) => call(`readFile ${ref(r)}`, () => f.readFile(r, p)),
      // Reads of the environment, not calls on objects: never parked or counted (a recorded
      // interleaving replays the same), only refused once the engine is dead.
      diskSpace: () => (this.dead ? Promise.reject(new SimulatedCrash('simulated crash: the engine is dead (diskSpace)')) : f.diskSpace()),
      usage: (owner) => (this.dead ? Promise.reject(new SimulatedCrash('simulated crash: the engine is dead (usage)')) : f.usage(owner)),
      close: () => Promise.resolve(),
    };
  }

  kill(): void {
    if (this.dead) return;
    this.dead = true;
    this.onKill?.();
  }

  /** Wait until no call is in flight (the dead process's last calls have finished). */
  async settled(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  revive(): void {
    this.dead = false;
    this.park = null;
  }
}

/**
 * Deterministic interleaving of concurrent commands at backend-call granularity.
 *
 * Each concurrent command runs in its own async context; before each of its backend calls it
 * parks at the gate. The driver waits until every command is parked, finished, or queued behind
 * an earlier command on the same workshop (the engine serialises those), then lets exactly one
 * go. Which one is the picker's choice: fast-check's scheduler in random runs (seeded, shrinkable),
 * a recorded list when a failure is replayed. Because only one command moves at a time and the
 * driver never picks while one is in flight (journal I/O included), the same choices give the same
 * run, byte for byte.
 *
 * @example
 * ```ts
 * const order: number[] = [];
 * const results = await interleave(gate, [{ key: 'a', run: () => e.stash('a') }, { key: 'b', run: () => e.stash('b') }], schedulerPicker(s, order));
 * ```
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Scheduler } from 'fast-check';
import { SimulatedCrash } from '../backends/types.ts';
import type { Gate } from './gate.ts';
import { InvariantViolation } from './invariants.ts';

export interface Job {
  /**
   * How the engine serialises it: a workshop name (jobs with the same key run one after the
   * other), a key of its own for a job only exclusive sections wait for and hold back (`run`: the
   * engine queues it under `run:<from>:<n>`), `null` for a job it does not serialise at all, and
   * `exclusive` for one that waits for every serialised job before it and holds back those after
   * it (`gc`, `reconcile`).
   */
  readonly key: string | null;
  readonly exclusive?: boolean;
  run(): Promise<unknown>;
}

/** Whether job `b` waits for an earlier job `a` in the engine's serialiser. */
function waitsFor(a: Job, b: Job): boolean {
  if (a.key === null || b.key === null) return false;
  return a.exclusive === true || b.exclusive === true || a.key === b.key;
}

/** A stuck run (a job neither parked nor finishing) fails loudly instead of emptying the event loop. */
const WATCHDOG_MS = 30_000;

/** Chooses which parked job goes next. */
export interface Picker {
  park(job: number, label: string): Promise<void>;
  /** Release one parked job (of `parked`). */
  next(parked: readonly number[]): Promise<void>;
}

/** fast-check's scheduler picks; the choices are recorded in `order` for reproduction. */
export function schedulerPicker(s: Scheduler, order: number[]): Picker {
  return {
    park: (job, label) =>
      s.schedule(Promise.resolve(job), `job ${job}: ${label}`).then(() => {
        order.push(job);
      }),
    next: async () => {
      await s.waitOne();
    },
  };
}

/** Replays recorded choices; a choice that names a job not parked means the run diverged. */
export function scriptedPicker(order: readonly number[]): Picker {
  const waiting = new Map<number, () => void>();
  let i = 0;
  return {
    park: (job) => new Promise<void>((resolve) => waiting.set(job, resolve)),
    next: async (parked) => {
      const want = i < order.length ? order[i++]! : parked[0]!;
      const go = waiting.get(want);
      if (!go || !parked.includes(want)) throw new Error(`simulation: the replayed interleaving diverged at choice ${i} (job ${want} is not waiting; waiting: ${parked.join(', ')})`);
      waiting.delete(want);
      go();
    },
  };
}

const als = new AsyncLocalStorage<number>();

/** Run `jobs` concurrently, one backend call at a time, in the order the picker chooses. */
export async function interleave(gate: Gate, jobs: readonly Job[], picker: Picker): Promise<PromiseSettledResult<unknown>[]> {
  const n = jobs.length;
  const parked = new Array<boolean>(n).fill(false);
  const settled = new Array<boolean>(n).fill(false);
  let wake: (() => void) | null = null;
  const notify = () => wake?.();
  const blocked = (i: number) => jobs.some((j, k) => k < i && !settled[k] && waitsFor(j, jobs[i]!));
  // A job waiting for another's SDK layer (the engine's one flight per layer) moves only once that
  // job journals the layer, which it does while it runs: waiting counts as quiet.
  const waiting = new Array<boolean>(n).fill(false);
  const quiet = () => jobs.every((_, i) => settled[i] || parked[i] || waiting[i] || blocked(i));
  gate.waiting = () => {
    const i = als.getStore();
    if (i === undefined) return () => undefined;
    waiting[i] = true;
    notify();
    // Called synchronously by the job that journals the layer: the waiter is in flight from then on.
    return () => {
      waiting[i] = false;
    };
  };
  gate.park = async (label) => {
    const i = als.getStore();
    if (i === undefined) return; // a call outside the jobs (none expected while interleaving)
    parked[i] = true;
    notify();
    await picker.park(i, label);
    parked[i] = false;
  };
  const results = new Array<PromiseSettledResult<unknown> | undefined>(n);
  jobs.forEach((j, i) =>
    als.run(i, () =>
      // Rejections are handled here: the loop below yields to the event loop before they are collected.
      j.run().then(
        (value) => void (results[i] ??= { status: 'fulfilled', value }),
        (reason: unknown) => void (results[i] ??= { status: 'rejected', reason }),
      ).finally(() => {
        settled[i] = true;
        notify();
      }),
    ),
  );
  try {
    while (!settled.every(Boolean)) {
      if (!quiet()) {
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve, reject) => {
          wake = () => quiet() && resolve();
          timer = setTimeout(() => reject(new Error(`simulation: interleaving stuck for ${WATCHDOG_MS} ms (parked ${JSON.stringify(parked)}, settled ${JSON.stringify(settled)})`)), WATCHDOG_MS);
        }).finally(() => clearTimeout(timer));
      }
      wake = null;
      if (settled.every(Boolean)) break;
      const ready = jobs.map((_, i) => i).filter((i) => parked[i]);
      if (ready.length === 0) {
        // Every job left waits for an SDK layer (or queues behind one that does), and none can move.
        const stuck = jobs.map((_, i) => i).filter((i) => !settled[i]);
        if (!gate.dead) {
          throw new InvariantViolation('9 (shared layers: built once, never half)', `jobs ${stuck.join(', ')} wait for an SDK layer that no command is building: they would wait forever (one flight per layer, never released)`);
        }
        // The process died while they waited: they die with it.
        for (const i of stuck) {
          results[i] ??= { status: 'rejected', reason: new SimulatedCrash('simulated crash: the engine died while the command waited for an SDK layer') };
          settled[i] = true;
        }
        break;
      }
      await picker.next(ready);
      // Let the released job's continuation run (it clears its flag) before judging quiet again.
      await new Promise((r) => setImmediate(r));
    }
    return results as PromiseSettledResult<unknown>[];
  } finally {
    gate.park = null;
    gate.waiting = null;
  }
}
